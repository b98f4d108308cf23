/* The state of one scenario's run, shared by run.c (doing) and result.c
 * (judging and writing it down). */
#ifndef FL_RUN_PRIV_H
#define FL_RUN_PRIV_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "blackhole.h"
#include "control.h"
#include "deps.h"
#include "proxy.h"
#include "run.h"
#include "scenario.h"
#include "traffic.h"

struct fault_state {
  const struct fl_fault_decl *decl;
  const char *phase;
  char name[160]; /* "refuse postgres" */
  char spec[FL_SPEC_MAX];
  struct fl_rule rule; /* shim and proxy faults */
  fl_dep_t *dep;       /* process faults, and rules aimed at a dependency */
  uint32_t id;         /* installed rule, 0 when off */
  int on;
  int switches;       /* times switched on */
  double on_t, off_t; /* first on, last off (-1: never / still on) */
  uint64_t matched, delivered;
};

struct timeline_event {
  double t;
  int on;
  size_t fault;
};

struct sample {
  double t;
  int fds;
  long rss_kb;
};

enum srun_state {
  S_NEW,
  S_DEPS,
  S_TARGET,
  S_RUNNING,
  S_DRAINING,
  S_TEARDOWN,
  S_DONE,
};

struct suite;

struct srun {
  struct suite *suite;
  struct fl_scenario *sc;
  struct fl_service *sv;
  int state;
  char error[FL_ERRLEN]; /* set: the scenario is ERROR */
  char outdir[PATH_MAX], workdir[PATH_MAX], datadir[PATH_MAX];
  char started_iso[32];
  uint64_t t_begin_ns, t_traffic_ns, t_end_ns;

  fl_control_t *ctl;
  struct fl_blackhole bh4, bh6;
  fl_dep_t **deps;
  size_t ndeps, deps_ready, deps_freed;
  fl_proxy_t **proxies; /* per dependency that stream faults aim at */

  int port;
  char base_url[64];
  char command[1024];
  uv_process_t target;
  int target_spawned, target_alive, target_exits, exit_signal;
  int64_t exit_code;
  double exit_t;
  int log_fd;
  char log_path[PATH_MAX];
  double ready_deadline;
  int probing;

  uv_timer_t timer, sampler, killer;
  int timers_open;
  fl_traffic_t *traffic;
  int traffic_closing;

  struct fault_state *faults;
  size_t nfaults;
  struct timeline_event *events;
  size_t nevents, next_event;
  double *phase_start;
  double total;

  struct sample *samples;
  size_t nsamples, samples_cap;
  struct fl_event_view *injections;
  size_t ninjections;
  uint64_t ring_since;
  json_t *result;
};

/* result.c: judges a finished run and returns its JSON object. */
json_t *fl_result_scenario(struct srun *r);
json_t *fl_result_suite(json_t *scenarios, const char *started_iso,
                        double duration);
const char *fl_result_verdict(const json_t *scenario);

#endif
