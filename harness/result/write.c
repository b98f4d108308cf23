/*
 * Writing a judged run down as the JSON of docs/result.md. Keys are
 * inserted in the documented order (jansson keeps it), which reports/ and
 * people diffing two results both rely on. Only formatting happens here:
 * rounding, null for "none", names for codes.
 */
#include <math.h>

#include "result.h"

static void set(json_t *o, const char *key, json_t *v) {
  json_object_set_new(o, key, v);
}

static json_t *str_or_null(const char *s) {
  return s != NULL ? json_string(s) : json_null();
}

/* Latencies: microseconds are plenty, and keep the file short. */
static json_t *num_or_null(double v) {
  return isnan(v) ? json_null() : json_real(round(v * 1e6) / 1e6);
}

/* Times on the run's clock: to the millisecond. */
static json_t *millis(double t) { return json_real(round(t * 1000) / 1000); }

static json_t *phases_json(const struct fl_result_scenario *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->nphases; i++) {
    json_t *p = json_object();
    set(p, "name", json_string(s->phases[i].name));
    set(p, "start", json_real(s->phases[i].start));
    set(p, "end", json_real(s->phases[i].end));
    json_array_append_new(a, p);
  }
  return a;
}

static json_t *fault_json(const struct fl_result_fault *f) {
  json_t *j = json_object();
  set(j, "name", json_string(f->name));
  set(j, "kind", json_string(f->kind));
  set(j, "spec", json_string(f->spec));
  set(j, "dependency", str_or_null(f->dependency));
  set(j, "phase", json_string(f->phase));
  set(j, "on", f->on >= 0 ? json_real(f->on) : json_null());
  set(j, "off", f->off >= 0 ? json_real(f->off) : json_null());
  set(j, "matched", json_integer((json_int_t)f->matched));
  set(j, "delivered", json_integer((json_int_t)f->delivered));
  if (f->optional)
    set(j, "optional", json_true());
  return j;
}

static json_t *second_json(const struct fl_result_second *x, size_t t) {
  static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};
  json_t *o = json_object();
  set(o, "t", json_integer((json_int_t)t));
  set(o, "requests", json_integer(x->requests));
  for (int c = 0; c < 4; c++)
    set(o, classes[c], json_integer(x->classes[c + 1]));
  set(o, "error", json_integer(x->errors));
  set(o, "p50", num_or_null(x->p50));
  set(o, "p95", num_or_null(x->p95));
  set(o, "p99", num_or_null(x->p99));
  set(o, "max", num_or_null(x->max));
  return o;
}

static json_t *endpoint_json(const struct fl_result_endpoint *e) {
  json_t *o = json_object();
  set(o, "name", json_string(e->name));
  set(o, "method", json_string(e->method));
  set(o, "path", json_string(e->path));
  set(o, "rate", json_real(e->rate));
  set(o, "timeout", json_real(e->timeout));
  set(o, "requests", json_integer((json_int_t)e->requests));
  json_t *series = json_array();
  for (size_t s = 0; s < e->nseries; s++)
    json_array_append_new(series, second_json(&e->series[s], s));
  set(o, "series", series);
  if (e->ws != NULL)
    set(o, "websocket", fl_result_ws_json(e->ws));
  return o;
}

static json_t *expectation_json(const struct fl_result_expectation *x) {
  json_t *o = json_object();
  set(o, "phase", json_string(x->phase));
  set(o, "endpoint", str_or_null(x->endpoint));
  set(o, "text", json_string(x->text));
  set(o, "expected", json_string(x->expected));
  set(o, "observed", json_string(x->observed));
  set(o, "verdict",
      json_string(x->not_judged ? "NOT_JUDGED"
                  : x->pass     ? "PASS"
                                : "FAIL"));
  return o;
}

/* The log's tail as a JSON string; when it is not UTF-8, bytes above
 * ASCII (and NULs) become '?' so that it stays readable. The bytes are
 * the result's own, and the repair gives the same text every time. */
static json_t *log_tail_json(char *tail, size_t len) {
  if (tail == NULL)
    return json_string("");
  json_t *s = json_stringn(tail, len);
  if (s == NULL) {
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)tail[i] >= 0x80 || tail[i] == '\0')
        tail[i] = '?';
    s = json_stringn(tail, len);
  }
  return s ? s : json_string("");
}

static json_t *exit_json(const struct fl_result_target *t) {
  if (!t->exited)
    return json_null();
  json_t *ex = json_object();
  if (t->signal != NULL)
    set(ex, "signal", json_string(t->signal));
  else
    set(ex, "code", json_integer(t->code));
  return ex;
}

/* One sample: every fd ("fds"), the service's own ("own": all but
 * inbound connections, what `fds` judges), and by kind. */
static json_t *sample_json(const struct fl_result_target *t,
                           const struct fl_result_sample *x) {
  json_t *s = json_object(), *conns = json_object();
  set(s, "t", millis(x->t));
  set(s, "fds", json_integer(x->fds));
  set(s, "rss_kb", json_integer(x->rss_kb));
  set(s, "own", json_integer(x->fds - x->inbound));
  set(s, "inbound", json_integer(x->inbound));
  set(s, "files", json_integer(x->files));
  set(s, "other", json_integer(x->other));
  /* A dependency named "other" is the one conns(other) judges too. */
  set(conns, "other", json_integer(x->conns_other));
  for (size_t i = 0; i < t->nconns; i++)
    set(conns, t->conn_names[i], json_integer(x->conns[i]));
  set(s, "conns", conns);
  return s;
}

static json_t *target_json(const struct fl_result_target *t) {
  json_t *o = json_object();
  set(o, "command", json_string(t->command));
  set(o, "pid", t->pid >= 0 ? json_integer(t->pid) : json_null());
  set(o, "exit", exit_json(t));
  set(o, "restarts", json_integer(t->restarts));
  json_t *series = json_array();
  for (size_t i = 0; i < t->nseries; i++)
    json_array_append_new(series, sample_json(t, &t->series[i]));
  set(o, "series", series);
  set(o, "log", json_string(t->log));
  set(o, "log_tail", log_tail_json(t->log_tail, t->log_tail_len));
  return o;
}

static json_t *injection_json(const struct fl_result_injection *e) {
  json_t *j = json_object();
  set(j, "t", millis(e->t));
  set(j, "pid", json_integer(e->pid));
  set(j, "op", json_string(e->op));
  set(j, "rule", json_integer(e->rule));
  set(j, "error", e->error ? json_string(e->error) : json_integer(e->err));
  return j;
}

static json_t *faults_json(const struct fl_result_scenario *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->nfaults; i++)
    json_array_append_new(a, fault_json(&s->faults[i]));
  return a;
}

static json_t *endpoints_json(const struct fl_result_scenario *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->nendpoints; i++)
    json_array_append_new(a, endpoint_json(&s->endpoints[i]));
  return a;
}

static json_t *expectations_json(const struct fl_result_scenario *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->nexpectations; i++)
    json_array_append_new(a, expectation_json(&s->expectations[i]));
  return a;
}

static json_t *injections_json(const struct fl_result_scenario *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->ninjections; i++)
    json_array_append_new(a, injection_json(&s->injections[i]));
  return a;
}

json_t *fl_result_scenario_json(const struct fl_result_scenario *s) {
  json_t *o = json_object();
  set(o, "name", json_string(s->name));
  set(o, "file", json_string(s->file));
  set(o, "description", json_string(s->description ? s->description : ""));
  json_t *svc = json_object();
  set(svc, "name", json_string(s->service));
  set(svc, "file", json_string(s->service_file));
  set(o, "service", svc);
  set(o, "started", json_string(s->started));
  set(o, "duration", json_real(s->duration));
  set(o, "setup", json_real(s->setup));
  set(o, "seed", json_integer((json_int_t)s->seed));
  set(o, "phases", phases_json(s));
  set(o, "faults", faults_json(s));
  set(o, "endpoints", endpoints_json(s));
  set(o, "expectations", expectations_json(s));
  set(o, "target", target_json(&s->target));
  set(o, "injections", injections_json(s));
  set(o, "injections_total", json_integer((json_int_t)s->injections_total));
  set(o, "verdict", json_string(fl_verdict_name(s->verdict)));
  set(o, "reason", json_string(s->reason));
  return o;
}

json_t *fl_result_suite_json(const struct fl_result_suite *s) {
  json_t *o = json_object();
  set(o, "format", json_string("faultline-result"));
  set(o, "version", json_integer(1));
  set(o, "faultline", json_string(FL_VERSION));
  set(o, "started", json_string(s->started));
  set(o, "duration", json_real(s->duration));
  set(o, "verdict", json_string(fl_verdict_name(s->verdict)));
  json_t *c = json_object();
  for (int k = 0; k < FL_VERDICT_COUNT; k++)
    set(c, fl_verdict_name((enum fl_verdict)k), json_integer(s->counts[k]));
  set(o, "counts", c);
  json_t *list = json_array();
  for (size_t i = 0; i < s->nscenarios; i++)
    json_array_append_new(list, fl_result_scenario_json(s->scenarios[i]));
  set(o, "scenarios", list);
  return o;
}
