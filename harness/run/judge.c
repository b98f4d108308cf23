/*
 * Judging a finished scenario: its records become a struct
 * fl_result_scenario (result/), which result/ writes down as JSON. A
 * scenario is ERROR when it could not run, INCONCLUSIVE when nothing was
 * proven (no traffic, or a fault never delivered), FAIL when an
 * expectation failed, else PASS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "faults/faults.h"
#include "run_int.h"

/* How much of the target's log a result keeps. */
#define LOG_TAIL_MAX 4096

/* What the verdict is decided from, gathered while judging the parts. */
struct tally {
  long requests;
  int failed;      /* expectations that failed */
  int undelivered; /* required faults never delivered */
  char undelivered_names[256];
  int required, optional_delivered; /* optional faults: any one will do */
};

static double secs(uint64_t from, uint64_t to) {
  return from == 0 || to < from ? 0 : (double)(to - from) / 1e9;
}

/* n zeroed items (at least one, so that none is not a failure), or NULL. */
static void *new_array(size_t n, size_t size) {
  return calloc(n > 0 ? n : 1, size);
}

static void judge_phases(const struct srun *r, struct fl_result_scenario *res) {
  double t = 0;
  for (size_t i = 0; i < r->sc->nphases; i++) {
    struct fl_result_phase *p = &res->phases[i];
    p->name = r->sc->phases[i].name;
    p->start = t;
    t += r->sc->phases[i].duration;
    p->end = t;
  }
  res->nphases = r->sc->nphases;
}

static void judge_faults(const struct srun *r, struct fl_result_scenario *res,
                         struct tally *t) {
  for (size_t i = 0; i < r->nfaults; i++) {
    const struct fault_state *f = &r->faults[i];
    res->faults[i] = (struct fl_result_fault){
        .name = f->name,
        .kind = fl_fault_kind_name(f->decl->kind),
        .spec = f->spec,
        .phase = f->phase,
        /* The dependency's name as the scenario spells it: the
         * dependency itself may be gone by now. */
        .dependency = f->dep ? f->decl->target : NULL,
        .on = f->on_t,
        .off = f->off_t,
        .matched = f->matched,
        .delivered = f->delivered,
        .optional = f->decl->optional,
    };
    if (f->decl->optional) {
      t->optional_delivered += f->delivered > 0;
      continue;
    }
    t->required++;
    if (f->delivered == 0) {
      size_t used = strlen(t->undelivered_names);
      t->undelivered++;
      snprintf(t->undelivered_names + used, sizeof(t->undelivered_names) - used,
               "%s%s", t->undelivered > 1 ? ", " : "", f->name);
    }
  }
  /* Only optional faults (a dependency down: refused and reset, whichever
   * the service meets): the scenario needs one of them delivered. */
  if (t->required == 0 && r->nfaults > 0 && t->optional_delivered == 0) {
    t->undelivered = 1;
    snprintf(t->undelivered_names, sizeof(t->undelivered_names),
             "any of its %zu optional faults", r->nfaults);
  }
  res->nfaults = r->nfaults;
}

/* One second's requests q[0..n): outcomes by class, latency percentiles.
 * lat has room for n values. */
static void judge_second(const struct fl_request *q, size_t n, double *lat,
                         struct fl_result_second *x) {
  x->requests = (long)n;
  for (size_t i = 0; i < n; i++) {
    lat[i] = q[i].latency;
    if (q[i].error != FL_XFER_OK || q[i].status == 0)
      x->errors++;
    else if (q[i].status >= 200 && q[i].status < 600)
      x->classes[q[i].status / 100 - 1]++;
  }
  fl_sort_values(lat, n);
  x->p50 = fl_percentile(lat, n, 50);
  x->p95 = fl_percentile(lat, n, 95);
  x->p99 = fl_percentile(lat, n, 99);
  x->max = n ? lat[n - 1] : NAN;
}

/* The per-second series of requests q[0..n) (sorted by schedule) over a
 * run of `total` seconds. 0 or -ENOMEM. */
static int judge_series(const struct fl_request *q, size_t n, double total,
                        struct fl_result_endpoint *e) {
  size_t nsecs = (size_t)ceil(total);
  double *lat = new_array(n, sizeof(double));
  e->series = new_array(nsecs, sizeof(*e->series));
  if (lat == NULL || e->series == NULL) {
    free(lat);
    return -ENOMEM;
  }
  size_t at = 0;
  for (size_t s = 0; s < nsecs; s++) {
    size_t end = at;
    while (end < n && q[end].sched < (double)(s + 1))
      end++;
    judge_second(q + at, end - at, lat, &e->series[s]);
    at = end;
  }
  e->nseries = nsecs;
  free(lat);
  return 0;
}

static int judge_endpoints(const struct srun *r, struct fl_result_scenario *res,
                           struct tally *t) {
  for (size_t i = 0; i < r->sc->nendpoints; i++) {
    const struct fl_endpoint_decl *d = &r->sc->endpoints[i];
    const struct fl_request *q = NULL;
    size_t n = r->traffic ? fl_traffic_records(r->traffic, (int)i, &q) : 0;
    struct fl_result_endpoint *e = &res->endpoints[i];
    *e = (struct fl_result_endpoint){.name = d->name,
                                     .method = d->method,
                                     .path = d->path,
                                     .rate = d->rate,
                                     .timeout = d->timeout,
                                     .requests = n};
    res->nendpoints = i + 1;
    t->requests += (long)n;
    /* A WebSocket endpoint's attempts are its traffic. */
    long ws = d->ws ? fl_judge_ws_endpoint(r, (int)i, e) : 0;
    if (ws < 0)
      return -ENOMEM;
    t->requests += ws;
    if (judge_series(q, n, r->total, e) != 0)
      return -ENOMEM;
  }
  return 0;
}

static long fault_delivered(const char *name, void *arg) {
  const struct srun *r = arg;
  long total = -1;
  for (size_t i = 0; i < r->nfaults; i++) {
    const struct fault_state *f = &r->faults[i];
    if (strcmp(name, f->name) == 0 || strcmp(name, f->decl->target) == 0 ||
        strcmp(name, f->decl->action) == 0)
      total = (total < 0 ? 0 : total) + (long)f->delivered;
  }
  return total;
}

/* The window [from, to) of a phase name, or the whole run for "always". */
static void window(const struct srun *r, const char *phase, double *from,
                   double *to) {
  *from = 0;
  *to = r->total;
  for (size_t i = 0; i < r->sc->nphases; i++)
    if (strcmp(r->sc->phases[i].name, phase) == 0) {
      *from = r->phase_start[i];
      *to = r->phase_start[i + 1];
    }
}

/* Which dependency conns(NAME) reads: its index in a sample's conns,
 * -1 for "other" (connections to no dependency), -2 for none. A
 * dependency named "other" is that dependency. */
static int conns_index(const struct srun *r, const char *name) {
  for (size_t i = 0; i < r->sv->ndeps && i < FL_RESULT_CONNS; i++)
    if (strcmp(r->sv->deps[i].name, name) == 0)
      return (int)i;
  return strcmp(name, "other") == 0 ? -1 : -2;
}

/* What an expectation counts in sample s (rss in kB). `fds` is the
 * service's own: the inbound connections are the traffic's, which grow
 * with requests in flight whether or not the service leaks. */
static double count_of(const struct fl_expect *e, int dep,
                       const struct fl_result_sample *s) {
  switch ((enum fl_expect_count)e->count) {
  case FL_COUNT_FDS:
    return s->fds - s->inbound;
  case FL_COUNT_CONNS:
    return dep >= 0 ? s->conns[dep] : s->conns_other;
  case FL_COUNT_INBOUND:
    return s->inbound;
  case FL_COUNT_FILES:
    return s->files;
  case FL_COUNT_RSS:
    return (double)s->rss_kb;
  }
  return 0;
}

/* The count e names: its mean over the first phase, the most within
 * [from, to + 1] (a sample lands up to a second late), and for settles
 * the samples of [from, to + 0.5] (the last one, at the end of the
 * traffic, included) in `series` (room for r->nsamples). */
static void sample_facts(const struct srun *r, const struct fl_expect *e,
                         double from, double to, struct fl_count_sample *series,
                         struct fl_target_facts *f) {
  double base_end = r->sc->nphases ? r->phase_start[1] : r->total;
  double sum = 0, max = -1;
  int nb = 0, dep = e->count == FL_COUNT_CONNS ? conns_index(r, e->name) : 0;
  f->no_such_dep = dep == -2;
  for (size_t i = 0; i < r->nsamples && !f->no_such_dep; i++) {
    const struct fl_result_sample *s = &r->samples[i];
    double v = count_of(e, dep, s);
    if (s->t <= base_end) {
      sum += v;
      nb++;
    }
    if (s->t >= from && s->t <= to + 1 && v > max)
      max = v;
    if (series != NULL && s->t >= from && s->t <= to + 0.5)
      series[f->nseries++] = (struct fl_count_sample){s->t, v};
  }
  double base = nb ? sum / nb : -1; /* -1: never sampled */
  if (e->count == FL_COUNT_RSS) {
    f->rss_baseline_kb = base;
    f->rss_max_kb = max;
  } else {
    f->fds_baseline = base;
    f->fds_max = max;
  }
  f->series = series;
  f->from = from;
}

/* Whether the target ended on its own before the end of the scenario
 * (the runner stops it only after the last phase). */
static int ended_early(const struct srun *r) {
  return r->target_exits > 0 && r->exit_t < r->total;
}

/* The one count of restarts, judged by `no restart` and written in the
 * result: the runner never starts the target again, so a target that
 * ended early was not the same process throughout, and that is 1. Its
 * own end at the runner's hands after the last phase is not counted. */
static int target_restarts(const struct srun *r) { return ended_early(r); }

/* How the target ended early, in words: status or signal, when, and the
 * last lines of its log. */
static void ending_words(const struct srun *r, char *buf, size_t len) {
  char what[160];
  if (r->exit_signal != 0) {
    const char *abbrev = sigabbrev_np(r->exit_signal);
    snprintf(what, sizeof(what), "killed by signal %d (SIG%s) at t=%.1fs",
             r->exit_signal, abbrev ? abbrev : "?", r->exit_t);
  } else {
    snprintf(what, sizeof(what), "exited with status %lld at t=%.1fs",
             (long long)r->exit_code, r->exit_t);
  }
  fl_start_words(r->x->log_path, what, buf, len);
}

/* ending: room for the words of how the target ended. */
static void target_facts(const struct srun *r, const struct fl_expect *e,
                         double from, double to, struct fl_count_sample *series,
                         struct fl_target_facts *f, char *ending, size_t len) {
  memset(f, 0, sizeof(*f));
  f->restarts = target_restarts(r);
  f->crashed = r->exit_signal != 0 && r->exit_signal != SIGTERM &&
               r->exit_signal != SIGKILL && ended_early(r);
  f->exited = ended_early(r);
  if (f->exited) {
    ending_words(r, ending, len);
    f->ending = ending;
  }
  if (r->x->start.failed)
    f->start_failure = r->x->start.how;
  if (e->kind == FL_EXP_FDS || e->kind == FL_EXP_RSS ||
      e->kind == FL_EXP_SETTLES)
    sample_facts(r, e, from, to, series, f);
  f->fault_delivered = fault_delivered;
  f->arg = (void *)r;
}

static int judge_target_expectation(const struct srun *r,
                                    const struct fl_expect_decl *x, double from,
                                    double to,
                                    struct fl_result_expectation *o) {
  struct fl_target_facts f;
  struct fl_count_sample *series = NULL;
  char ending[512];
  if (x->e.kind == FL_EXP_SETTLES &&
      (series = new_array(r->nsamples, sizeof(*series))) == NULL) {
    snprintf(o->observed, sizeof(o->observed), "out of memory");
    return 0;
  }
  target_facts(r, &x->e, from, to, series, &f, ending, sizeof(ending));
  int pass = fl_expect_eval_target(&x->e, &f, o->expected, sizeof(o->expected),
                                   o->observed, sizeof(o->observed));
  free(series);
  return pass;
}

static int endpoint_index(const struct srun *r, const char *name) {
  for (size_t i = 0; i < r->sc->nendpoints; i++)
    if (strcmp(r->sc->endpoints[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int judge_one(const struct srun *r, const struct fl_expect_decl *x,
                     struct fl_result_expectation *o) {
  double from, to;
  window(r, x->phase, &from, &to);
  if (x->endpoint == NULL)
    return judge_target_expectation(r, x, from, to, o);
  int ep = endpoint_index(r, x->endpoint);
  if (ep >= 0 && r->sc->endpoints[ep].ws)
    return fl_judge_ws_expectation(r, ep, &x->e, from, to, o);
  const struct fl_request *q = NULL;
  size_t n = ep >= 0 ? fl_traffic_records(r->traffic, ep, &q) : 0;
  /* A header check reads the slot the traffic captured its header in. */
  struct fl_expect e = x->e;
  if (e.kind == FL_EXP_HEADER) {
    int slot = fl_traffic_header_slot(r->traffic, ep, e.name);
    e.header = slot >= 0 ? slot : -1;
  }
  return fl_expect_eval_endpoint(
      &e, q, n, from, to, ep >= 0 ? r->sc->endpoints[ep].timeout : 0,
      o->expected, sizeof(o->expected), o->observed, sizeof(o->observed));
}

static void judge_declared(const struct srun *r, size_t i,
                           struct fl_result_expectation *o) {
  const struct fl_expect_decl *x = &r->sc->expects[i];
  o->phase = x->phase;
  o->endpoint = x->endpoint;
  o->text = x->e.text;
}

/* `starts` over a failed start: no phase ran, so no window or sample. */
static int judge_starts(const struct srun *r, const struct fl_expect *e,
                        struct fl_result_expectation *o) {
  struct fl_target_facts f = {.start_failure = r->x->start.how};
  return fl_expect_eval_target(e, &f, o->expected, sizeof(o->expected),
                               o->observed, sizeof(o->observed));
}

/* The target did not start under the start faults (start.c): `starts`
 * failed, named or not, and nothing else had anything to be judged on. */
static void judge_not_started(const struct srun *r,
                              struct fl_result_scenario *res, struct tally *t) {
  static const struct fl_expect implied = {.kind = FL_EXP_STARTS,
                                           .text = "starts"};
  size_t n = 0, named = 0;
  for (size_t i = 0; i < r->sc->nexpects; i++)
    named += r->sc->expects[i].e.kind == FL_EXP_STARTS;
  if (!named) {
    struct fl_result_expectation *o = &res->expectations[n++];
    *o =
        (struct fl_result_expectation){.phase = "always", .text = implied.text};
    o->pass = judge_starts(r, &implied, o);
  }
  for (size_t i = 0; i < r->sc->nexpects; i++) {
    struct fl_result_expectation *o = &res->expectations[n++];
    judge_declared(r, i, o);
    if (r->sc->expects[i].e.kind == FL_EXP_STARTS) {
      o->pass = judge_starts(r, &r->sc->expects[i].e, o);
      continue;
    }
    o->not_judged = 1;
    snprintf(o->expected, sizeof(o->expected), "%s", o->text);
    snprintf(o->observed, sizeof(o->observed),
             "not judged: the target did not start");
  }
  for (size_t i = 0; i < n; i++)
    t->failed += !res->expectations[i].pass && !res->expectations[i].not_judged;
  res->nexpectations = n;
}

/* Only a run that sent traffic without error has anything to judge. */
static void judge_expectations(const struct srun *r,
                               struct fl_result_scenario *res,
                               struct tally *t) {
  if (r->x->start.failed && r->error[0] == '\0') {
    judge_not_started(r, res, t);
    return;
  }
  if (r->traffic == NULL || r->error[0] != '\0')
    return;
  for (size_t i = 0; i < r->sc->nexpects; i++) {
    struct fl_result_expectation *o = &res->expectations[i];
    judge_declared(r, i, o);
    o->pass = judge_one(r, &r->sc->expects[i], o);
    t->failed += !o->pass;
  }
  res->nexpectations = r->sc->nexpects;
}

/* The last `max` bytes of a file, from a line boundary; nothing when it
 * cannot be read. 0 or -ENOMEM. */
static int read_tail(const char *path, size_t max, char **out, size_t *len) {
  FILE *f = path[0] ? fopen(path, "rb") : NULL;
  if (f == NULL)
    return 0;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  long from = size > (long)max ? size - (long)max : 0;
  fseek(f, from, SEEK_SET);
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max, f) : 0;
  fclose(f);
  if (buf == NULL)
    return -ENOMEM;
  char *start = buf;
  char *nl = from > 0 ? memchr(buf, '\n', n) : NULL;
  if (nl != NULL)
    start = nl + 1;
  *len = n - (size_t)(start - buf);
  memmove(buf, start, *len);
  *out = buf;
  return 0;
}

static int judge_target(const struct srun *r, struct fl_result_target *t) {
  t->command = r->x->command;
  t->pid = r->target_spawned ? r->target.pid : -1;
  t->exited = ended_early(r);
  int sig = r->exit_signal;
  t->code = r->exit_code;
  const char *log = r->x->log_path;
  if (r->x->start.failed) { /* the attempt that failed, not the control */
    t->pid = r->x->start.pid;
    t->exited = r->x->start.exited;
    sig = r->x->start.sig;
    t->code = r->x->start.code;
    log = r->x->start.log;
  }
  if (t->exited && sig) {
    const char *abbrev = sigabbrev_np(sig);
    t->signal = abbrev ? abbrev : "?";
  }
  t->restarts = target_restarts(r);
  if ((t->series = new_array(r->nsamples, sizeof(*t->series))) == NULL)
    return -ENOMEM;
  if (r->nsamples > 0)
    memcpy(t->series, r->samples, r->nsamples * sizeof(*t->series));
  t->nseries = r->nsamples;
  for (; t->nconns < r->sv->ndeps && t->nconns < FL_RESULT_CONNS; t->nconns++)
    t->conn_names[t->nconns] = r->sv->deps[t->nconns].name;
  t->log = log;
  return read_tail(log, LOG_TAIL_MAX, &t->log_tail, &t->log_tail_len);
}

static void judge_injections(const struct srun *r,
                             struct fl_result_scenario *res) {
  /* Event times are wall-clock; traffic time 0 is t_traffic_ns (hrtime,
   * monotonic). Map one onto the other through "now". */
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  double real_now = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
  double traffic_age = secs(r->t_traffic_ns, uv_hrtime());
  for (size_t i = 0; i < r->ninjections; i++) {
    const struct fl_event_view *e = &r->injections[i];
    res->injections[i] = (struct fl_result_injection){
        .t = (double)e->time_ns / 1e9 - (real_now - traffic_age),
        .pid = e->pid,
        .rule = e->rule_id,
        .op = fl_op_name(e->op),
        .error = fl_errcode_name(e->err),
        .err = e->err,
    };
  }
  res->ninjections = r->ninjections;
  res->injections_total = r->ring_since;
}

static void decide(const struct srun *r, const struct tally *t,
                   struct fl_result_scenario *res) {
  char *why = res->reason;
  size_t len = sizeof(res->reason);
  if (r->error[0] != '\0') {
    res->verdict = FL_VERDICT_ERROR;
    /* The reason is one line of a table: a long error is cut. */
    if (snprintf(why, len, "%s", r->error) >= (int)len && len > 4)
      memcpy(why + len - 4, "...", 4);
  } else if (r->x->start.failed) {
    /* The control start (start.c) showed it starts without the faults. */
    res->verdict = FL_VERDICT_FAIL;
    snprintf(why, len,
             "the target did not start under the start faults (it does "
             "without them): %s",
             r->x->start.how);
  } else if (t->requests == 0) {
    res->verdict = FL_VERDICT_INCONCLUSIVE;
    snprintf(why, len, "no traffic was sent");
  } else if (t->undelivered > 0) {
    res->verdict = FL_VERDICT_INCONCLUSIVE;
    snprintf(why, len, "fault never delivered: %s (nothing was proven)%s",
             t->undelivered_names,
             t->failed ? "; some expectations failed too" : "");
  } else if (t->failed > 0) {
    res->verdict = FL_VERDICT_FAIL;
    snprintf(why, len, "%d of %zu expectations failed", t->failed,
             res->nexpectations);
  } else {
    res->verdict = FL_VERDICT_PASS;
    snprintf(why, len, "%zu expectations held", res->nexpectations);
  }
}

static void judge_header(const struct srun *r, struct fl_result_scenario *res) {
  res->name = r->sc->name;
  res->file = r->sc->file;
  res->description = r->sc->description;
  res->service = r->sv->name;
  res->service_file = r->sv->file;
  res->started = r->started_iso;
  uint64_t end = r->t_end_ns ? r->t_end_ns : uv_hrtime();
  res->duration = secs(r->t_begin_ns, end);
  res->setup = secs(r->t_begin_ns, r->t_traffic_ns);
  res->seed = r->sc->seed;
}

static int alloc_parts(const struct srun *r, struct fl_result_scenario *res) {
  res->phases = new_array(r->sc->nphases, sizeof(*res->phases));
  res->faults = new_array(r->nfaults, sizeof(*res->faults));
  res->endpoints = new_array(r->sc->nendpoints, sizeof(*res->endpoints));
  /* One more for the `starts` a failed start adds. */
  res->expectations =
      new_array(r->sc->nexpects + 1, sizeof(*res->expectations));
  res->injections = new_array(r->ninjections, sizeof(*res->injections));
  return res->phases && res->faults && res->endpoints && res->expectations &&
                 res->injections
             ? 0
             : -ENOMEM;
}

struct fl_result_scenario *fl_judge_scenario(struct srun *r) {
  struct fl_result_scenario *res = fl_result_new();
  struct tally t = {0};
  if (res == NULL || alloc_parts(r, res) != 0)
    goto fail;
  judge_header(r, res);
  judge_phases(r, res);
  judge_faults(r, res, &t);
  if (judge_endpoints(r, res, &t) != 0)
    goto fail;
  judge_expectations(r, res, &t);
  if (judge_target(r, &res->target) != 0)
    goto fail;
  judge_injections(r, res);
  decide(r, &t, res);
  return res;
fail:
  fl_result_free(res);
  return NULL;
}

void fl_spool_result(struct srun *r) {
  if (r->result == NULL || r->spooled)
    return;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/scenario.json", r->outdir);
  json_t *j = fl_result_scenario_json(r->result);
  if (j == NULL || json_dump_file(j, path, JSON_COMPACT) != 0) {
    json_decref(j);
    return;
  }
  json_decref(j);
  r->verdict = r->result->verdict;
  r->spooled = 1;
  fl_result_free(r->result);
  r->result = NULL;
}

/* A run's result document: from memory, or read back from its file. */
static json_t *scenario_json(const struct srun *r, enum fl_verdict *v) {
  if (r->result != NULL) {
    *v = r->result->verdict;
    return fl_result_scenario_json(r->result);
  }
  if (!r->spooled)
    return NULL;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/scenario.json", r->outdir);
  *v = r->verdict;
  return json_load_file(path, JSON_DECODE_ANY, NULL);
}

json_t *fl_judge_suite(const struct srun *runs, size_t n, const char *started,
                       double duration) {
  struct fl_result_suite s = {.started = started, .duration = duration};
  enum fl_verdict worst = FL_VERDICT_PASS;
  json_t *list = json_array();
  size_t judged = 0;
  for (size_t i = 0; i < n && list != NULL; i++) {
    enum fl_verdict v;
    json_t *j = scenario_json(&runs[i], &v);
    if (j == NULL)
      continue;
    json_array_append_new(list, j);
    judged++;
    s.counts[v]++;
    if (v > worst)
      worst = v;
  }
  /* A suite where nothing was judged proved nothing. */
  s.verdict = judged ? worst : FL_VERDICT_ERROR;
  json_t *o = list != NULL ? fl_result_suite_json(&s) : NULL;
  if (o == NULL || json_object_set_new(o, "scenarios", list) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}
