/*
 * The runner: each scenario goes S_DEPS → S_TARGET → S_RUNNING →
 * S_DRAINING → S_TEARDOWN → S_DONE on one libuv loop, driven by callbacks
 * (dependency ready, readiness probe, timeline timer, traffic drained,
 * process exit). Any failure or a signal jumps to S_TEARDOWN, which always
 * ends every process it started and removes every temporary file.
 *
 * This file holds the suite (scenarios run --jobs at a time, signals) and
 * each scenario's lifecycle: dependencies, teardown and finishing. The
 * target process is in target.c, the timeline and its faults in
 * timeline.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "live.h"
#include "run_int.h"

#define KILL_GRACE_MS 5000

static void run_next(struct suite *s);

double fl_run_since(uint64_t from_ns) {
  return (double)(uv_hrtime() - from_ns) / 1e9;
}

void fl_run_say(const struct srun *r, const char *fmt, ...) {
  if (r->suite->o->quiet)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fl_live_say(r->sc->name, msg);
}

void fl_run_fail(struct srun *r, const char *fmt, ...) {
  if (r->error[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    fl_run_say(r, "error: %s", r->error);
  }
  fl_run_teardown(r);
}

static int mkdir_p(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* ---- dependencies ---- */

static void on_dep_ready(fl_dep_t *dep, int rc, void *arg) {
  struct srun *r = arg;
  if (r->state != S_DEPS)
    return;
  if (rc != 0) {
    fl_run_fail(r, "dependency %s did not start: %s", fl_dep_name(dep),
                fl_dep_error(dep));
    return;
  }
  fl_run_say(r, "%s ready on %s:%d", fl_dep_name(dep), fl_dep_host(dep),
             fl_dep_port(dep));
  if (++r->deps_ready == r->ndeps)
    fl_target_start(r);
}

/* ---- the beginning ---- */

/* The run's clock and handles, before anything can fail: teardown then
 * finds them in a known state. */
static void init_run(struct srun *r) {
  struct suite *s = r->suite;
  r->state = S_DEPS;
  r->t_begin_ns = uv_hrtime();
  time_t now = time(NULL);
  strftime(r->started_iso, sizeof(r->started_iso), "%Y-%m-%dT%H:%M:%SZ",
           gmtime(&now));
  uv_timer_init(&s->loop, &r->timer);
  uv_timer_init(&s->loop, &r->sampler);
  uv_timer_init(&s->loop, &r->killer);
  r->timer.data = r->sampler.data = r->killer.data = r;
  r->timers_open = 1;
  r->tlog = NULL;
}

/* The run's temporary folder: its data folder and its control segment
 * (with the blackholes that hang needs). 0, or the run has failed. */
static int make_workdir(struct srun *r) {
  int rc = fl_make_tmpdir("run", r->x->workdir, sizeof(r->x->workdir));
  if (rc != 0) {
    fl_run_fail(r, "cannot create a temporary folder: %s", strerror(-rc));
    return -1;
  }
  chmod(r->x->workdir, 0755); /* postgres runs as its own user inside it */
  char ctl[PATH_MAX], err[FL_ERRLEN];
  if (snprintf(r->x->datadir, sizeof(r->x->datadir), "%s/data",
               r->x->workdir) >= (int)sizeof(r->x->datadir) ||
      snprintf(ctl, sizeof(ctl), "%s/control", r->x->workdir) >=
          (int)sizeof(ctl)) {
    fl_run_fail(r, "TMPDIR is too long");
    return -1;
  }
  if (mkdir(r->x->datadir, 0700) != 0) {
    fl_run_fail(r, "cannot set up %s: %s", r->x->workdir, strerror(errno));
    return -1;
  }
  const struct fl_run_opts *o = r->suite->o;
  uint64_t seed = o->have_seed ? o->seed : r->sc->seed;
  if (fl_control_setup(ctl, seed, &r->ctl, err, sizeof(err)) != 0) {
    fl_run_fail(r, "%s", err);
    return -1;
  }
  if (o->record && fl_control_set_recording(r->ctl, 1) != 0) {
    fl_run_fail(r, "cannot turn usage recording on");
    return -1;
  }
  return 0;
}

static void start_deps(struct srun *r);

static void begin(struct srun *r) {
  init_run(r);
  char err[FL_ERRLEN];
  int rc;
  if ((rc = fl_scenario_check(r->sc, r->sv, err, sizeof(err))) != 0) {
    fl_run_fail(r, "%s", err);
    return;
  }
  if ((rc = mkdir_p(r->outdir)) != 0) {
    fl_run_fail(r, "cannot create %s: %s", r->outdir, strerror(-rc));
    return;
  }
  if (make_workdir(r) == 0)
    start_deps(r);
}

static void start_deps(struct srun *r) {
  struct suite *s = r->suite;
  int rc;
  r->ndeps = r->sv->ndeps;
  r->deps = calloc(r->ndeps + 1, sizeof(*r->deps));
  if (r->deps == NULL) {
    fl_run_fail(r, "out of memory");
    return;
  }
  size_t external = 0;
  for (size_t i = 0; i < r->ndeps; i++) {
    const struct fl_dep_decl *d = &r->sv->deps[i];
    if (!fl_dep_kind_managed(d->kind)) {
      rc = fl_dep_external(d->name, d->address, &r->deps[i]);
      external++;
    } else if (fl_pool_fits(r, i)) {
      rc = fl_pool_lease(r, i, on_dep_ready);
    } else {
      rc = fl_dep_start_config(&s->loop, d->kind, d->name, r->x->workdir,
                               d->config, on_dep_ready, r, &r->deps[i]);
    }
    if (rc != 0) {
      fl_run_fail(r, "cannot start dependency %s: %s", d->name,
                  r->deps[i] ? fl_dep_error(r->deps[i]) : fl_strerror(rc));
      return;
    }
  }
  r->deps_ready = external;
  fl_run_say(r, "starting (service %s, %zu dependencies)", r->sv->name,
             r->ndeps);
  if (r->deps_ready == r->ndeps)
    fl_target_start(r);
}

/* ---- teardown ---- */

/* The suite keeps its signal handlers until the last folder is gone, so a
 * Ctrl-C then still cleans up instead of killing us halfway. */
static void on_workdir_removed(void *arg) {
  struct suite *s = arg;
  s->removing--;
  run_next(s);
}

/* The result holds its own copies of the samples and injections: a suite
 * of hundreds of scenarios keeps only the results until its end. */
static void release_judged(struct srun *r) {
  if (r->result == NULL)
    return;
  free(r->samples);
  free(r->injections);
  free(r->events);
  r->samples = NULL;
  r->injections = NULL;
  r->events = NULL;
  r->nsamples = r->samples_cap = r->ninjections = r->nevents = 0;
}

/* What only the result borrowed goes once the result is on disk: a suite
 * of hundreds of scenarios keeps no per-run state but the verdicts. */
static void release_spooled(struct srun *r) {
  if (!r->spooled)
    return;
  free(r->faults);
  free(r->deps);
  free(r->proxies);
  free(r->phase_start);
  free(r->x);
  r->faults = NULL;
  r->deps = NULL;
  r->proxies = NULL;
  r->phase_start = NULL;
  r->x = NULL;
  r->nfaults = 0;
}

static void finish(struct srun *r) {
  fl_session_join(r); /* its driver uses the segment: it goes last */
  if (r->ctl != NULL) {
    fl_timeline_collect_injections(r);
    fl_control_remove(r->ctl);
    r->ctl = NULL;
  }
  fl_tlog_close(r->tlog);
  r->tlog = NULL;
  r->suite->removing++;
  fl_rm_tree_async(&r->suite->loop, r->x->workdir, on_workdir_removed,
                   r->suite);
  if (r->t_end_ns == 0)
    r->t_end_ns = uv_hrtime();
  if (r->result == NULL && !r->spooled && r->suite->drive == NULL)
    r->result = fl_judge_scenario(r);
  release_judged(r);
  r->state = S_DONE;
  if (r->suite->drive == NULL) /* a session has no verdict */
    fl_run_say(r, "%s",
               r->spooled ? fl_verdict_name(r->verdict)
                          : fl_result_verdict(r->result));
  fl_spool_result(r);
  release_spooled(r);
  if (r->timers_open) {
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_close((uv_handle_t *)&r->sampler, NULL);
    uv_close((uv_handle_t *)&r->killer, NULL);
    r->timers_open = 0;
  }
  struct suite *s = r->suite;
  s->active--;
  s->finished++;
  /* A heavy scenario (500 WebSocket clients) leaves megabytes of freed
   * heap that glibc keeps mapped; a suite of hundreds must stay flat. */
  malloc_trim(0);
  run_next(s);
}

static void on_dep_freed(void *arg) {
  struct srun *r = arg;
  if (++r->deps_freed == r->ndeps)
    finish(r);
}

static void on_traffic_freed(void *arg) {
  struct srun *r = arg;
  r->traffic_closing = 0;
  fl_run_teardown(r);
}

static int same_control(const char *value, void *arg) {
  return strcmp(value, arg) == 0;
}

/* What the target started and left running: a daemon (its own session,
 * out of reach of the group signal) or a child that ignored SIGTERM.
 * They carry this run's control segment in their environment. */
static void reap_strays(struct srun *r) {
  if (r->strays_reaped || !r->target_spawned || r->ctl == NULL)
    return;
  r->strays_reaped = 1;
  int n =
      fl_reap_marked(FL_CTL_ENV, same_control, (void *)fl_control_path(r->ctl));
  if (n > 0)
    fl_run_say(r, "killed %d process%s the target left running", n,
               n == 1 ? "" : "es");
}

static void on_kill_deadline(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->target_alive)
    kill(-r->target.pid, SIGKILL);
}

/* Ends what is running, one step per call: every callback that completes a
 * step calls it again. */
void fl_run_teardown(struct srun *r) {
  if (r->state == S_DONE)
    return;
  if (r->state != S_TEARDOWN) {
    r->state = S_TEARDOWN;
    uv_timer_stop(&r->timer);
    uv_timer_stop(&r->sampler);
    if (r->traffic != NULL && r->ctl != NULL) {
      for (size_t i = 0; i < r->nfaults; i++)
        if (r->faults[i].on && r->faults[i].decl->kind != FL_FAULT_PROCESS)
          fl_timeline_switch(r, &r->faults[i], 0);
      fl_timeline_collect_injections(r);
    }
  }
  if (r->target_alive) {
    if (!uv_is_active((uv_handle_t *)&r->killer)) {
      kill(-r->target.pid, SIGTERM);
      uv_timer_start(&r->killer, on_kill_deadline, KILL_GRACE_MS, 0);
    }
    return; /* on_target_exit calls us again */
  }
  reap_strays(r);
  if (r->traffic_closing)
    return; /* on_traffic_freed calls us again */
  if (r->traffic != NULL) {
    /* The records go with the traffic object: judge first. */
    r->result = fl_judge_scenario(r);
    fl_traffic_t *t = r->traffic;
    r->traffic = NULL;
    r->traffic_closing = 1;
    fl_traffic_free(t, on_traffic_freed, r);
    return;
  }
  for (size_t i = 0; r->proxies != NULL && i < r->ndeps; i++)
    if (r->proxies[i] != NULL) {
      fl_proxy_close(r->proxies[i]);
      r->proxies[i] = NULL;
    }
  if (r->deps_freed < r->ndeps && r->deps != NULL) {
    if (r->deps_freeing)
      return; /* a second teardown (a signal): on_dep_freed finishes */
    r->deps_freeing = 1;
    size_t n = r->ndeps;
    for (size_t i = 0; i < n; i++) {
      fl_dep_t *d = r->deps[i];
      r->deps[i] = NULL;
      if (d == NULL)
        on_dep_freed(r);
      else if (fl_pool_return(r->suite, d, on_dep_freed, r) != 0)
        fl_dep_free(d, on_dep_freed, r);
    }
    return;
  }
  finish(r);
}

/* ---- the suite ---- */

static void on_signal(uv_signal_t *h, int sig) {
  struct suite *s = h->data;
  if (s->interrupted++) {
    fprintf(stderr, "faultline: second signal, killing everything\n");
    for (size_t i = 0; i < s->nruns; i++)
      if (s->runs[i].target_alive)
        kill(-s->runs[i].target.pid, SIGKILL);
    return;
  }
  fprintf(stderr, "faultline: %s: stopping and cleaning up\n", strsignal(sig));
  for (size_t i = 0; i < s->nruns; i++) {
    struct srun *r = &s->runs[i];
    if (r->state != S_NEW && r->state != S_DONE)
      fl_run_fail(r, "interrupted by %s", strsignal(sig));
  }
  s->next = s->nruns; /* start nothing more */
  run_next(s);
}

static void on_live(uv_timer_t *t) {
  struct suite *s = t->data;
  fl_live_draw(s->runs, s->nruns);
}

static void run_next(struct suite *s) {
  int jobs = s->o->jobs > 0 ? s->o->jobs : 1;
  while (!s->interrupted && s->next < s->nruns && s->active < (size_t)jobs) {
    struct srun *r = &s->runs[s->next++];
    s->active++;
    begin(r);
  }
  if (s->active == 0 && (s->next >= s->nruns || s->interrupted) &&
      s->removing == 0 && !s->closed) {
    if (fl_pool_close(s, run_next))
      return; /* its servers are still going */
    s->closed = 1;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->live, NULL);
    if (!s->o->quiet)
      fl_live_end();
  }
}

static int load_runs(struct suite *s, char *const *files, int nfiles, char *err,
                     size_t errlen) {
  /* A shard may hold no scenario: its result is an empty suite. */
  s->runs = calloc(nfiles > 0 ? (size_t)nfiles : 1, sizeof(*s->runs));
  if (s->runs == NULL)
    return -ENOMEM;
  for (int i = 0; i < nfiles; i++) {
    struct srun *r = &s->runs[s->nruns];
    r->suite = s;
    if ((r->x = calloc(1, sizeof(*r->x))) == NULL)
      return -ENOMEM;
    s->nruns++; /* from here fl_run_free_runs frees what it holds */
    int rc = fl_scenario_load(files[i], &r->sc, err, errlen);
    if (rc != 0)
      return rc;
    const char *svc =
        s->o->service_file ? s->o->service_file : r->sc->service_file;
    if (svc == NULL) {
      snprintf(err, errlen,
               "%s: no service to run against (add 'service: FILE' or pass "
               "--service FILE)",
               files[i]);
      return FL_EBADSCENARIO;
    }
    if ((rc = fl_service_load(svc, &r->sv, err, errlen)) != 0)
      return rc;
    if ((rc = fl_scenario_check(r->sc, r->sv, err, errlen)) != 0)
      return rc;
    /* One output folder per scenario, named after it (and its service
     * when the same scenario appears twice). */
    snprintf(r->outdir, sizeof(r->outdir), "%s/%s", s->o->out_dir, r->sc->name);
    for (size_t j = 0; j + 1 < s->nruns; j++)
      if (strcmp(s->runs[j].outdir, r->outdir) == 0) {
        snprintf(r->outdir, sizeof(r->outdir), "%s/%s-%s-%d", s->o->out_dir,
                 r->sc->name, r->sv->name, i);
        break;
      }
  }
  return 0;
}

void fl_run_free_runs(struct suite *s) {
  for (size_t i = 0; i < s->nruns; i++) {
    struct srun *r = &s->runs[i];
    fl_scenario_free(r->sc);
    fl_service_free(r->sv);
    free(r->x);
    free(r->deps);
    free(r->proxies);
    free(r->faults);
    free(r->events);
    free(r->phase_start);
    free(r->samples);
    free(r->injections);
    fl_result_free(r->result);
  }
  free(s->runs);
}

/* Runs the loaded runs on one loop until every one is done: signals, the
 * guard, the live view. 0, or FL_ENOSHIM with err set (nothing ran). */
int fl_run_loop(struct suite *s, char *err, size_t errlen) {
  const struct fl_run_opts *o = s->o;
  if (fl_find_shim(s->shim, sizeof(s->shim)) != 0) {
    snprintf(err, errlen,
             "libfaultline-preload.so not found beside faultline-run or "
             "in ../lib/faultline/ from it (set FAULTLINE_PRELOAD to its "
             "path)");
    return FL_ENOSHIM;
  }
  if (fl_find_program("setpriv", s->setpriv, sizeof(s->setpriv)) != 0)
    s->setpriv[0] = '\0';
  signal(SIGPIPE, SIG_IGN);
  /* Everything we start carries our tag; the guard, forked before the
   * loop exists, ends what carries it should we be killed. */
  char tag[48];
  if (fl_owner_tag(tag, sizeof(tag)) == 0)
    setenv(FL_OWNER_ENV, tag, 1);
  fl_guard_start(&s->guard);
  uv_loop_init(&s->loop);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_timer_init(&s->loop, &s->live);
  s->live.data = s;
  if (!o->quiet && fl_live_tty())
    uv_timer_start(&s->live, on_live, 500, 500);
  if (s->drive != NULL)
    fl_session_init(s);
  run_next(s);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  fl_guard_stop(&s->guard);
  return 0;
}

int fl_run_suite(char *const *files, int nfiles, const struct fl_run_opts *o,
                 json_t **result, char *err, size_t errlen) {
  struct suite s;
  memset(&s, 0, sizeof(s));
  s.o = o;
  *result = NULL;
  time_t now = time(NULL);
  char started[32];
  strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  uint64_t t0 = uv_hrtime();
  int rc = load_runs(&s, files, nfiles, err, errlen);
  if (rc == 0)
    rc = fl_run_loop(&s, err, errlen);
  if (rc != 0) {
    fl_run_free_runs(&s);
    return rc;
  }
  *result = fl_judge_suite(s.runs, s.nruns, started, fl_run_since(t0));
  int interrupted = s.interrupted;
  fl_run_free_runs(&s);
  return interrupted ? -EINTR : 0;
}
