/*
 * faultline run: scenarios against their service, on one libuv loop.
 * Each scenario starts its dependencies and the target, drives traffic
 * through the timeline's faults, tears everything down and is judged; the
 * suite's result is one JSON document (docs/result.md).
 */
#ifndef FL_RUN_H
#define FL_RUN_H

#include <jansson.h>
#include <stdint.h>

struct fl_run_opts {
  const char *out_dir;      /* where result.json and logs go */
  const char *service_file; /* overrides every scenario's service */
  int jobs;                 /* scenarios run at once */
  int quiet;                /* no progress lines */
  int have_seed;
  uint64_t seed;
};

/* Runs the scenario files; *result gets the suite's result (also on
 * failures of single scenarios, which are ERROR in it). Returns 0, or a
 * negative code when nothing could run (err says why), or -EINTR when
 * interrupted by SIGINT/SIGTERM (*result then holds what was done). */
/* Ends what a killed run left behind (its processes, its temporary
 * folders and what they hold), never what a live run owns. `faultline
 * run` calls it at its start; a runner's guard when the runner dies. */
void fl_run_reap(void);

int fl_run_suite(char *const *files, int nfiles, const struct fl_run_opts *o,
                 json_t **result, char *err, size_t errlen);

#endif
