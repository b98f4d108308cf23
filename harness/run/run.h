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

#include "control/control.h"
#include "deps/deps.h"
#include "scenario/scenario.h"

struct fl_run_opts {
  const char *out_dir;      /* where result.json and logs go */
  const char *service_file; /* overrides every scenario's service */
  int jobs;                 /* scenarios run at once */
  int quiet;                /* no progress lines */
  int have_seed;
  uint64_t seed;
  int record; /* usage recording on from the target's start (audit) */
  /* Keep PostgreSQL and Redis servers from one scenario to the next,
   * reset in between, where no process fault changes them (pool.c). */
  int reuse_deps;
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

/*
 * A session: the service of a service file running under the shim with
 * its dependencies, as `run` starts it, driven by the caller instead of a
 * scenario (audit discovery). No fault is on and no traffic runs.
 */
struct fl_run_session {
  const char *base_url; /* http://127.0.0.1:PORT */
  const char *data_dir; /* ${DATA_DIR} */
  const char *work_dir;
  fl_control_t *ctl;           /* the target's control segment */
  const struct fl_service *sv; /* the service file, loaded */
  fl_dep_t *const *deps;       /* sv->deps' running dependencies */
  size_t ndeps;
};

/* Called on a thread of its own once the target is ready; the session
 * ends (everything is torn down) when it returns. It should return soon
 * once fl_run_session_stopping() says so (a signal). */
typedef void (*fl_run_drive_fn)(const struct fl_run_session *s, void *arg);
int fl_run_session_stopping(const struct fl_run_session *s);

/* Starts the service of `service_file` (o->out_dir gets its log), calls
 * drive, tears down. Returns 0 when drive ran and returned, or a negative
 * code with one sentence in err (the service did not start, the shim is
 * missing, interrupted: -EINTR). */
int fl_run_service(const char *service_file, const struct fl_run_opts *o,
                   fl_run_drive_fn drive, void *arg, char *err, size_t errlen);

#endif
