/* The state of one scenario's run, shared by the files that do it: run.c
 * (the suite and each scenario's lifecycle), target.c (the target
 * process), timeline.c (faults switched over time, and traffic), and
 * by judge.c (judging it; result/ writes the verdict down). */
#ifndef FL_RUN_PRIV_H
#define FL_RUN_PRIV_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "control/control.h"
#include "deps/deps.h"
#include "proxy/proxy.h"
#include "result/result.h"
#include "run.h"
#include "scenario/scenario.h"
#include "traffic/traffic.h"

/* Injection events a run keeps for its report (the most recent ones). */
#define FL_INJECTIONS_KEPT 4096

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

enum srun_state {
  S_NEW,
  S_DEPS,
  S_TARGET,
  S_RUNNING,
  S_DRAINING,
  S_TEARDOWN,
  S_DONE,
};

/* A start that failed while start faults were on (start.c): how the
 * first attempt ended, kept for `starts` and the result's target. */
struct start_end {
  int failed;   /* it did not start under the faults, and does without */
  int exited;   /* it ended on its own (else it was never ready) */
  int sig;      /* the signal that ended it, or 0 */
  int64_t code; /* else its exit status */
  long pid;
  char how[512]; /* "exited with status 3 after 1.2s: <last log lines>" */
  char log[PATH_MAX];
};

struct suite;

/* A run's paths and start record: allocated apart from struct srun and
 * freed once its result is on disk, so that a suite of hundreds of
 * scenarios does not keep (or touch, page by page) 17 kB per finished
 * run. */
struct srun_scratch {
  char workdir[PATH_MAX], datadir[PATH_MAX];
  char log_path[PATH_MAX]; /* the target's output */
  char command[1024];      /* the target's command line, for the report */
  struct start_end start;
};

struct srun {
  struct suite *suite;
  struct fl_scenario *sc;
  struct fl_service *sv;
  int state;
  struct srun_scratch *x; /* what only a running run needs */
  char started_iso[32];
  uint64_t t_begin_ns, t_traffic_ns, t_end_ns;

  fl_control_t *ctl; /* with the blackholes it publishes */
  fl_dep_t **deps;
  size_t ndeps, deps_ready, deps_freed;
  int deps_freeing;     /* fl_dep_free called on each; on_dep_freed finishes */
  fl_proxy_t **proxies; /* per dependency that stream faults aim at */

  int port;
  char base_url[64];
  uv_process_t target;
  int target_spawned, target_alive, target_exits, exit_signal;
  int64_t exit_code;
  double exit_t;
  struct fl_tlog *tlog; /* the target's output, into log_path */
  double ready_deadline;
  int probing;
  uint64_t t_spawn_ns;
  /* The control start (start.c): 0 none; 1 the first attempt failed under
   * the start faults and is ending; 2 the target runs again without them. */
  int control;

  uv_timer_t timer, sampler, killer;
  int timers_open;
  fl_traffic_t *traffic;
  int traffic_closing;
  int strays_reaped; /* the target's escaped descendants, at teardown */

  struct fault_state *faults;
  size_t nfaults;
  struct timeline_event *events;
  size_t nevents, next_event;
  double *phase_start;
  double total;

  struct fl_result_sample *samples;
  size_t nsamples, samples_cap;
  struct fl_event_view *injections;
  size_t ninjections;  /* the last FL_INJECTIONS_KEPT at most */
  uint64_t ring_since; /* also: how many injections the shim recorded */
  struct fl_result_scenario *result; /* judged */
  /* Once judged, the result is written to OUT/NAME/scenario.json and
   * leaves memory (fl_spool_result); its verdict stays. */
  int spooled;
  enum fl_verdict verdict;
  /* Last: a suite's runs are allocated at once and their pages touched as
   * each starts; the fields a run writes then stay on its first page. */
  char outdir[PATH_MAX];
  char error[FL_ERRLEN]; /* set: the scenario is ERROR */
};

/* guard.c: the process that cleans up after a killed runner. */
struct guard {
  int pid; /* -1: none */
  int fd;  /* the pipe it watches */
};
/* Forks the guard; 0 or -errno (the run goes on without one). */
int fl_guard_start(struct guard *g);
/* Tells it the run ended cleanly and waits for it. */
void fl_guard_stop(struct guard *g);

/* pool.c: servers kept across the suite's scenarios (--reuse-deps). */
struct pool_dep;
struct pool {
  char dir[PATH_MAX]; /* its servers' folder, made at the first lease */
  struct pool_dep **v;
  size_t n, cap;
  size_t freeing; /* servers still being freed */
  size_t serial;  /* names its servers' folders */
  int closing, removing;
  struct suite *suite;
  void (*again)(struct suite *s); /* called when a close step finished */
};

struct suite {
  uv_loop_t loop;
  const struct fl_run_opts *o;
  struct srun *runs;
  size_t nruns, next, active, finished;
  size_t removing; /* run folders still being removed off the loop */
  uv_signal_t sigint, sigterm;
  uv_timer_t live;
  int interrupted;
  int closed; /* the signal and live handles are closed */
  char shim[PATH_MAX];
  char setpriv[PATH_MAX];
  struct guard guard;
  /* A session (session.c): the caller's driver instead of a timeline. */
  fl_run_drive_fn drive;
  void *drive_arg;
  uv_async_t drive_done;
  uv_thread_t drive_thread;
  int drive_state; /* 0 not started, 1 running, 2 joined */
  _Atomic int stopping;
  struct fl_run_session session;
  struct pool pool;
};

/* pool.c. fits: run r's dependency i may come from the pool (reuse on,
 * a kind that resets, no process fault on it in the scenario). lease:
 * sets r->deps[i] and calls cb(dep, rc, r) once it is ready (a kept
 * server reset, or a new one started); 0, or a negative code with nothing
 * leased. return: gives a leased dependency back (kept when it ended its
 * lease running, else freed) and calls done (maybe at once); -ENOENT when
 * dep is not the pool's. close: frees every server and the folder; 1
 * while that goes on (again(s) is called after each step), 0 once done. */
int fl_pool_fits(const struct srun *r, size_t i);
int fl_pool_lease(struct srun *r, size_t i, fl_dep_cb cb);
int fl_pool_return(struct suite *s, fl_dep_t *dep, void (*done)(void *arg),
                   void *arg);
int fl_pool_close(struct suite *s, void (*again)(struct suite *s));

/* run.c: the loop over s->runs (0, or FL_ENOSHIM with err); freeing. */
int fl_run_loop(struct suite *s, char *err, size_t errlen);
void fl_run_free_runs(struct suite *s);

/* session.c: the driver's thread. init before the loop runs; ready
 * when the target is ready (starts the driver, whose end tears down);
 * join waits for a driver still running (told to stop first). */
void fl_session_init(struct suite *s);
void fl_session_ready(struct srun *r);
void fl_session_join(struct srun *r);

/* run.c: the lifecycle. fl_run_fail() records the first error (the
 * scenario is then ERROR) and tears down; fl_run_teardown() ends what is
 * running, one step per call. */
double fl_run_since(uint64_t from_ns);
void fl_run_say(const struct srun *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fl_run_fail(struct srun *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fl_run_teardown(struct srun *r);

/* target.c: the target process. */
/* ${PORT}, ${DATA_DIR} and each dependency's ${NAME_HOST}, _PORT, _ADDR
 * and _URL, for fl_expand(); NULL for another name. */
const char *fl_target_lookup(const char *name, void *arg);
/* Starts the target once the dependencies are ready (S_TARGET); the
 * timeline begins when it is ready. */
void fl_target_start(struct srun *r);
/* Spawns the target (again, for the control start) and waits until it
 * is ready. */
void fl_target_launch(struct srun *r);
/* One sample of the target's descriptors and memory. */
void fl_target_sample(struct srun *r);
void fl_target_on_sample(uv_timer_t *t);

/* start.c: a target that fails to start. fl_start_failed() is called
 * when it ended or was not ready in time while starting (`how`: "exited
 * with status 3"); it decides between ERROR and the control start.
 * fl_start_ready() is called when it is ready. */
void fl_start_failed(struct srun *r, const char *how);
void fl_start_ready(struct srun *r);
/* The relaunch, once the first attempt's process handle is closed. */
void fl_start_closed(struct srun *r);
/* "<what>: <the last lines of log>" into buf (what: "exited with status
 * 3 after 1.2s"). */
void fl_start_words(const char *log, const char *what, char *buf, size_t len);
/* fdkinds.c: adds the descriptors of the target's processes, by kind, and
 * their memory to s. 0, or a negative errno (nothing to sample). */
int fl_target_count_fds(const struct srun *r, struct fl_result_sample *s);

/* timeline.c: faults and traffic. */
int fl_timeline_resolve_faults(struct srun *r);
int fl_timeline_start_proxies(struct srun *r);
void fl_timeline_switch(struct srun *r, struct fault_state *f, int on);
/* Moves the control segment's new injection events into r->injections. */
void fl_timeline_collect_injections(struct srun *r);
/* The target is ready: starts traffic and the timeline (S_RUNNING). */
void fl_timeline_begin_traffic(struct srun *r);

/* judge.c: judges a finished run, while its traffic records exist; NULL
 * when out of memory. The result borrows the run's strings. */
struct fl_result_scenario *fl_judge_scenario(struct srun *r);
/* Writes r's result to OUT/NAME/scenario.json and frees it (r->spooled),
 * so a long suite holds verdicts, not results; when the file cannot be
 * written the result stays in memory. */
void fl_spool_result(struct srun *r);
/* The suite's result document for the judged runs[0..n), spooled ones
 * read back. */
json_t *fl_judge_suite(const struct srun *runs, size_t n, const char *started,
                       double duration);

/* judge_ws.c: WebSocket endpoints. The expectation e of endpoint ep
 * over [from, to) (1 pass, 0 fail); the endpoint's "websocket" figures
 * into e->ws: the attempts it made, or -ENOMEM. */
int fl_judge_ws_expectation(const struct srun *r, int ep,
                            const struct fl_expect *e, double from, double to,
                            struct fl_result_expectation *o);
long fl_judge_ws_endpoint(const struct srun *r, int ep,
                          struct fl_result_endpoint *e);

/* tlog.c: the target's stdout and stderr, read from a pipe into `path`,
 * rotated past 8 MB (PATH.1). fl_tlog_open gives the pipe's write end for
 * the child in *child_fd (the caller closes it after spawning). drain
 * reads what is waiting now, so the log is whole before its tail is read;
 * close drains, closes the file and frees once the pipe is closed. */
struct fl_tlog;
int fl_tlog_open(uv_loop_t *loop, const char *path, struct fl_tlog **out,
                 int *child_fd);
void fl_tlog_drain(struct fl_tlog *t);
void fl_tlog_close(struct fl_tlog *t);

#endif
