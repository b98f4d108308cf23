/*
 * Judging a finished scenario and writing it down as JSON (the format is
 * docs/result.md). A scenario is ERROR when it could not run, INCONCLUSIVE
 * when nothing was proven (no traffic, or a fault never delivered), FAIL
 * when an expectation failed, else PASS.
 */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "run_int.h"

static double secs(uint64_t from, uint64_t to) {
  return from == 0 || to < from ? 0 : (double)(to - from) / 1e9;
}

static json_t *num_or_null(double v) {
  return isnan(v) ? json_null() : json_real(round(v * 1e6) / 1e6);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p) {
  if (n == 0)
    return NAN;
  size_t k = (size_t)ceil(p / 100.0 * (double)n);
  return v[k == 0 ? 0 : k - 1];
}

static json_t *endpoint_series(const struct fl_request *q, size_t n,
                               double total) {
  json_t *series = json_array();
  size_t secs_n = (size_t)ceil(total);
  double *lat = malloc((n + 1) * sizeof(double));
  size_t at = 0;
  for (size_t s = 0; s < secs_n && lat != NULL; s++) {
    long cls[5] = {0}, errors = 0, count = 0;
    size_t nl = 0;
    while (at < n && q[at].sched < (double)(s + 1)) {
      const struct fl_request *r = &q[at++];
      count++;
      lat[nl++] = r->latency;
      if (r->error != FL_XFER_OK || r->status == 0)
        errors++;
      else if (r->status >= 200 && r->status < 600)
        cls[r->status / 100 - 1]++;
    }
    qsort(lat, nl, sizeof(double), cmp_double);
    json_t *o = json_object();
    json_object_set_new(o, "t", json_integer((json_int_t)s));
    json_object_set_new(o, "requests", json_integer(count));
    json_object_set_new(o, "2xx", json_integer(cls[1]));
    json_object_set_new(o, "3xx", json_integer(cls[2]));
    json_object_set_new(o, "4xx", json_integer(cls[3]));
    json_object_set_new(o, "5xx", json_integer(cls[4]));
    json_object_set_new(o, "error", json_integer(errors));
    json_object_set_new(o, "p50", num_or_null(pct(lat, nl, 50)));
    json_object_set_new(o, "p95", num_or_null(pct(lat, nl, 95)));
    json_object_set_new(o, "p99", num_or_null(pct(lat, nl, 99)));
    json_object_set_new(o, "max", num_or_null(nl ? lat[nl - 1] : NAN));
    json_array_append_new(series, o);
  }
  free(lat);
  return series;
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

static void target_facts(const struct srun *r, double from, double to,
                         struct fl_target_facts *f) {
  memset(f, 0, sizeof(*f));
  f->restarts = r->target_exits;
  f->crashed = r->exit_signal != 0 && r->exit_signal != SIGTERM &&
               r->exit_signal != SIGKILL && r->target_exits > 0 &&
               r->exit_t < r->total;
  f->exited = r->target_exits > 0 && r->exit_t < r->total;
  double base_end = r->sc->nphases ? r->phase_start[1] : r->total;
  double fsum = 0, rsum = 0;
  int nb = 0;
  for (size_t i = 0; i < r->nsamples; i++) {
    const struct sample *s = &r->samples[i];
    if (s->t <= base_end) {
      fsum += s->fds;
      rsum += (double)s->rss_kb;
      nb++;
    }
    if (s->t >= from && s->t <= to + 1) {
      if (s->fds > f->fds_max)
        f->fds_max = s->fds;
      if ((double)s->rss_kb > f->rss_max_kb)
        f->rss_max_kb = (double)s->rss_kb;
    }
  }
  f->fds_baseline = nb ? fsum / nb : -1; /* -1: never sampled */
  f->rss_baseline_kb = nb ? rsum / nb : -1;
  if (r->nsamples == 0)
    f->fds_max = f->rss_max_kb = -1;
  f->fault_delivered = fault_delivered;
  f->arg = (void *)r;
}

static int endpoint_index(const struct srun *r, const char *name) {
  for (size_t i = 0; i < r->sc->nendpoints; i++)
    if (strcmp(r->sc->endpoints[i].name, name) == 0)
      return (int)i;
  return -1;
}

static json_t *judge_expectations(const struct srun *r, int *failed) {
  json_t *list = json_array();
  *failed = 0;
  for (size_t i = 0; i < r->sc->nexpects; i++) {
    const struct fl_expect_decl *x = &r->sc->expects[i];
    double from, to;
    window(r, x->phase, &from, &to);
    char expected[256] = "", observed[512] = "";
    int pass;
    if (x->endpoint != NULL) {
      int ep = endpoint_index(r, x->endpoint);
      const struct fl_request *q = NULL;
      size_t n = ep >= 0 ? fl_traffic_records(r->traffic, ep, &q) : 0;
      pass = fl_expect_eval_endpoint(
          &x->e, q, n, from, to, ep >= 0 ? r->sc->endpoints[ep].timeout : 0,
          expected, sizeof(expected), observed, sizeof(observed));
    } else {
      struct fl_target_facts f;
      target_facts(r, from, to, &f);
      pass = fl_expect_eval_target(&x->e, &f, expected, sizeof(expected),
                                   observed, sizeof(observed));
    }
    *failed += !pass;
    json_t *o = json_object();
    json_object_set_new(o, "phase", json_string(x->phase));
    json_object_set_new(o, "endpoint",
                        x->endpoint ? json_string(x->endpoint) : json_null());
    json_object_set_new(o, "text", json_string(x->e.text));
    json_object_set_new(o, "expected", json_string(expected));
    json_object_set_new(o, "observed", json_string(observed));
    json_object_set_new(o, "verdict", json_string(pass ? "PASS" : "FAIL"));
    json_array_append_new(list, o);
  }
  return list;
}

static json_t *log_tail(const char *path, size_t max) {
  FILE *f = path[0] ? fopen(path, "rb") : NULL;
  if (f == NULL)
    return json_string("");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  long from = size > (long)max ? size - (long)max : 0;
  fseek(f, from, SEEK_SET);
  char *buf = calloc(max + 1, 1);
  size_t n = buf ? fread(buf, 1, max, f) : 0;
  fclose(f);
  if (buf == NULL)
    return json_string("");
  char *start = buf; /* from a line boundary */
  if (from > 0) {
    char *nl = memchr(buf, '\n', n);
    if (nl != NULL)
      start = nl + 1;
  }
  size_t len = n - (size_t)(start - buf);
  json_t *s = json_stringn(start, len);
  if (s == NULL) { /* not UTF-8: keep it readable as ASCII */
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)start[i] >= 0x80 || start[i] == '\0')
        start[i] = '?';
    s = json_stringn(start, len);
  }
  free(buf);
  return s ? s : json_string("");
}

json_t *fl_result_scenario(struct srun *r) {
  const struct fl_scenario *sc = r->sc;
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(sc->name));
  json_object_set_new(o, "file", json_string(sc->file));
  json_object_set_new(o, "description",
                      json_string(sc->description ? sc->description : ""));
  json_t *svc = json_object();
  json_object_set_new(svc, "name", json_string(r->sv->name));
  json_object_set_new(svc, "file", json_string(r->sv->file));
  json_object_set_new(o, "service", svc);
  json_object_set_new(o, "started", json_string(r->started_iso));
  uint64_t end = r->t_end_ns ? r->t_end_ns : uv_hrtime();
  json_object_set_new(o, "duration", json_real(secs(r->t_begin_ns, end)));
  json_object_set_new(o, "setup",
                      json_real(secs(r->t_begin_ns, r->t_traffic_ns)));
  json_object_set_new(o, "seed", json_integer((json_int_t)sc->seed));

  json_t *phases = json_array();
  double t = 0;
  for (size_t i = 0; i < sc->nphases; i++) {
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string(sc->phases[i].name));
    json_object_set_new(p, "start", json_real(t));
    t += sc->phases[i].duration;
    json_object_set_new(p, "end", json_real(t));
    json_array_append_new(phases, p);
  }
  json_object_set_new(o, "phases", phases);

  json_t *faults = json_array();
  int undelivered = 0;
  char undelivered_names[256] = "";
  for (size_t i = 0; i < r->nfaults; i++) {
    const struct fault_state *f = &r->faults[i];
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(f->name));
    json_object_set_new(j, "kind",
                        json_string(f->decl->kind == FL_FAULT_PROCESS
                                        ? "process"
                                    : f->rule.ops == 0 ? "proxy"
                                                       : "shim"));
    json_object_set_new(j, "spec", json_string(f->spec));
    json_object_set_new(j, "dependency",
                        f->dep ? json_string(fl_dep_name(f->dep))
                               : json_null());
    json_object_set_new(j, "phase", json_string(f->phase));
    json_object_set_new(j, "on",
                        f->on_t >= 0 ? json_real(f->on_t) : json_null());
    json_object_set_new(j, "off",
                        f->off_t >= 0 ? json_real(f->off_t) : json_null());
    json_object_set_new(j, "matched", json_integer((json_int_t)f->matched));
    json_object_set_new(j, "delivered", json_integer((json_int_t)f->delivered));
    json_array_append_new(faults, j);
    if (f->delivered == 0) {
      undelivered++;
      snprintf(undelivered_names + strlen(undelivered_names),
               sizeof(undelivered_names) - strlen(undelivered_names), "%s%s",
               undelivered > 1 ? ", " : "", f->name);
    }
  }
  json_object_set_new(o, "faults", faults);

  json_t *eps = json_array();
  long requests = 0;
  for (size_t i = 0; i < sc->nendpoints; i++) {
    const struct fl_endpoint_decl *d = &sc->endpoints[i];
    const struct fl_request *q = NULL;
    size_t n = r->traffic ? fl_traffic_records(r->traffic, (int)i, &q) : 0;
    requests += (long)n;
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(d->name));
    json_object_set_new(e, "method", json_string(d->method));
    json_object_set_new(e, "path", json_string(d->path));
    json_object_set_new(e, "rate", json_real(d->rate));
    json_object_set_new(e, "timeout", json_real(d->timeout));
    json_object_set_new(e, "requests", json_integer((json_int_t)n));
    json_object_set_new(e, "series", endpoint_series(q, n, r->total));
    json_array_append_new(eps, e);
  }
  json_object_set_new(o, "endpoints", eps);

  int failed = 0;
  json_t *exps = r->traffic && r->error[0] == '\0'
                     ? judge_expectations(r, &failed)
                     : json_array();
  json_object_set_new(o, "expectations", exps);

  json_t *tg = json_object();
  json_object_set_new(tg, "command", json_string(r->command));
  json_object_set_new(
      tg, "pid", r->target_spawned ? json_integer(r->target.pid) : json_null());
  json_t *ex = json_null();
  if (r->target_exits > 0 && r->exit_t < r->total) {
    ex = json_object();
    if (r->exit_signal)
      json_object_set_new(ex, "signal",
                          json_string(sigabbrev_np(r->exit_signal)
                                          ? sigabbrev_np(r->exit_signal)
                                          : "?"));
    else
      json_object_set_new(ex, "code", json_integer(r->exit_code));
  }
  json_object_set_new(tg, "exit", ex);
  json_object_set_new(tg, "restarts", json_integer(0));
  json_t *series = json_array();
  for (size_t i = 0; i < r->nsamples; i++) {
    json_t *s = json_object();
    json_object_set_new(s, "t",
                        json_real(round(r->samples[i].t * 1000) / 1000));
    json_object_set_new(s, "fds", json_integer(r->samples[i].fds));
    json_object_set_new(s, "rss_kb", json_integer(r->samples[i].rss_kb));
    json_array_append_new(series, s);
  }
  json_object_set_new(tg, "series", series);
  json_object_set_new(tg, "log", json_string(r->log_path));
  json_object_set_new(tg, "log_tail", log_tail(r->log_path, 4096));
  json_object_set_new(o, "target", tg);

  json_t *inj = json_array();
  struct timespec rt, mt;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mt);
  /* Event times are wall-clock; traffic time 0 is t_traffic_ns (hrtime,
   * monotonic). Map one onto the other through "now". */
  double real_now = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
  double traffic_age = secs(r->t_traffic_ns, uv_hrtime());
  for (size_t i = 0; i < r->ninjections; i++) {
    const struct fl_event_view *e = &r->injections[i];
    json_t *j = json_object();
    double t_rel = (double)e->time_ns / 1e9 - (real_now - traffic_age);
    json_object_set_new(j, "t", json_real(round(t_rel * 1000) / 1000));
    json_object_set_new(j, "pid", json_integer(e->pid));
    json_object_set_new(j, "op", json_string(fl_op_name(e->op)));
    json_object_set_new(j, "rule", json_integer(e->rule_id));
    const char *en = fl_errcode_name(e->err);
    json_object_set_new(j, "error",
                        en ? json_string(en) : json_integer(e->err));
    json_array_append_new(inj, j);
  }
  json_object_set_new(o, "injections", inj);

  const char *verdict;
  char reason[FL_ERRLEN + 64];
  if (r->error[0] != '\0') {
    verdict = "ERROR";
    snprintf(reason, sizeof(reason), "%s", r->error);
  } else if (requests == 0) {
    verdict = "INCONCLUSIVE";
    snprintf(reason, sizeof(reason), "no traffic was sent");
  } else if (undelivered > 0) {
    verdict = "INCONCLUSIVE";
    snprintf(reason, sizeof(reason),
             "fault never delivered: %s (nothing was proven)%s",
             undelivered_names, failed ? "; some expectations failed too" : "");
  } else if (failed > 0) {
    verdict = "FAIL";
    snprintf(reason, sizeof(reason), "%d of %zu expectations failed", failed,
             json_array_size(exps));
  } else {
    verdict = "PASS";
    snprintf(reason, sizeof(reason), "%zu expectations held",
             json_array_size(exps));
  }
  json_object_set_new(o, "verdict", json_string(verdict));
  json_object_set_new(o, "reason", json_string(reason));
  return o;
}

const char *fl_result_verdict(const json_t *scenario) {
  const char *v = json_string_value(json_object_get(scenario, "verdict"));
  return v ? v : "ERROR";
}

json_t *fl_result_suite(json_t *scenarios, const char *started_iso,
                        double duration) {
  static const char *const order[] = {"PASS", "INCONCLUSIVE", "FAIL", "ERROR"};
  long counts[4] = {0};
  int worst = 0;
  size_t i;
  json_t *s;
  json_array_foreach(scenarios, i, s) {
    const char *v = fl_result_verdict(s);
    for (int k = 0; k < 4; k++)
      if (strcmp(v, order[k]) == 0) {
        counts[k]++;
        if (k > worst)
          worst = k;
      }
  }
  json_t *o = json_object();
  json_object_set_new(o, "format", json_string("faultline-result"));
  json_object_set_new(o, "version", json_integer(1));
  json_object_set_new(o, "faultline", json_string(FL_VERSION));
  json_object_set_new(o, "started", json_string(started_iso));
  json_object_set_new(o, "duration", json_real(duration));
  json_object_set_new(
      o, "verdict",
      json_string(json_array_size(scenarios) ? order[worst] : "ERROR"));
  json_t *c = json_object();
  for (int k = 0; k < 4; k++)
    json_object_set_new(c, order[k], json_integer(counts[k]));
  json_object_set_new(o, "counts", c);
  json_object_set_new(o, "scenarios", scenarios);
  return o;
}
