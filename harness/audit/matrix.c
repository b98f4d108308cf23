/*
 * The failure-propagation matrix: each case's judged scenario read back
 * into one cell per endpoint, named by what was seen. The expectations
 * casefile.c writes are the evidence; a cell is named by the first that
 * failed, in this order:
 *   affected:  rate(500) == 0%  -> "500"
 *              p(99) < ...      -> "hang"
 *              header(...)      -> "no Retry-After"
 *              recovers(...)    -> "no recovery"
 *              none: "graceful 503" when most fault-phase answers were
 *              errors, else "fallback 2xx"
 *   other, live: any failure in the fault phase -> "cascade" (the cell is
 *              the endpoint it reached), else "unaffected"
 *   ready:     rate(500) -> "500", rate(503) -> "readiness stays up",
 *              recovers -> "no recovery"
 *   process:   alive -> "crash", a settled count -> "leak", else "ok"
 * A scenario that was INCONCLUSIVE or ERROR proves nothing: every cell of
 * its case is "inconclusive".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "audit.h"

static const char *const findings[] = {
    "500",         "hang", "no Retry-After", "cascade",
    "no recovery", "leak", "crash",          "readiness stays up"};

int fl_matrix_is_finding(const char *cell) {
  for (size_t i = 0; i < sizeof(findings) / sizeof(findings[0]); i++)
    if (strcmp(cell, findings[i]) == 0)
      return 1;
  return 0;
}

static const json_t *scenario_named(const json_t *result, const char *name,
                                    size_t *index) {
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(result, "scenarios"), i, s) {
    if (strcmp(json_string_value(json_object_get(s, "name")) ?: "", name) ==
        0) {
      *index = i;
      return s;
    }
  }
  return NULL;
}

static const char *str(const json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

/* The first failed expectation of endpoint ep (NULL: the target) whose
 * text starts with `prefix` (in `phase`, or any when NULL). */
static const json_t *failed(const json_t *sc, const char *ep, const char *phase,
                            const char *prefix) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(sc, "expectations"), i, x) {
    const json_t *xe = json_object_get(x, "endpoint");
    if (strcmp(str(x, "verdict"), "FAIL") != 0 ||
        (ep ? strcmp(json_string_value(xe) ?: "", ep) != 0 : !json_is_null(xe)))
      continue;
    if ((phase == NULL || strcmp(str(x, "phase"), phase) == 0) &&
        strncmp(str(x, "text"), prefix, strlen(prefix)) == 0)
      return x;
  }
  return NULL;
}

/* Most answers in the fault phase were not 2xx. */
static int mostly_errors(const json_t *sc, const char *ep) {
  double from = 0, to = 0, ok = 0, bad = 0;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(sc, "phases"), i, x) {
    if (strcmp(str(x, "name"), "fault") == 0) {
      from = json_number_value(json_object_get(x, "start"));
      to = json_number_value(json_object_get(x, "end"));
    }
  }
  json_array_foreach(json_object_get(sc, "endpoints"), i, x) {
    if (strcmp(str(x, "name"), ep) != 0)
      continue;
    size_t j;
    json_t *s;
    json_array_foreach(json_object_get(x, "series"), j, s) {
      double t = json_number_value(json_object_get(s, "t"));
      if (t < from || t >= to)
        continue;
      ok += json_number_value(json_object_get(s, "2xx"));
      bad += json_number_value(json_object_get(s, "4xx")) +
             json_number_value(json_object_get(s, "5xx")) +
             json_number_value(json_object_get(s, "error"));
    }
  }
  return bad > ok;
}

struct cell {
  const char *name;
  const json_t *why; /* the failed expectation, or NULL */
};

static struct cell affected(const json_t *sc, const char *ep) {
  static const char *const order[][2] = {
      {"rate(500)", "500"}, {"p(", "hang"}, {"header(", "no Retry-After"}};
  const json_t *x;
  for (size_t i = 0; i < 3; i++)
    if ((x = failed(sc, ep, "fault", order[i][0])) != NULL)
      return (struct cell){order[i][1], x};
  if ((x = failed(sc, ep, "recovery", "recovers")) != NULL)
    return (struct cell){"no recovery", x};
  return (struct cell){mostly_errors(sc, ep) ? "graceful 503" : "fallback 2xx",
                       NULL};
}

static struct cell judge(const json_t *sc, const struct fl_case_endpoint *e) {
  const json_t *x;
  switch (e->role) {
  case FL_ROLE_AFFECTED:
    return affected(sc, e->name);
  case FL_ROLE_READY:
    if ((x = failed(sc, e->name, "fault", "rate(500)")) != NULL)
      return (struct cell){"500", x};
    if ((x = failed(sc, e->name, "fault", "rate(503)")) != NULL)
      return (struct cell){"readiness stays up", x};
    if ((x = failed(sc, e->name, "recovery", "recovers")) != NULL)
      return (struct cell){"no recovery", x};
    /* Not required to go down (some data endpoint does without what
     * failed), but it may: say what it did. */
    return (struct cell){e->ready_down || mostly_errors(sc, e->name)
                             ? "graceful 503"
                             : "unaffected",
                         NULL};
  default:
    if ((x = failed(sc, e->name, "fault", "")) != NULL)
      return (struct cell){"cascade", x};
    return (struct cell){"unaffected", NULL};
  }
}

static struct cell process(const json_t *sc) {
  const json_t *x;
  if ((x = failed(sc, NULL, NULL, "alive")) != NULL)
    return (struct cell){"crash", x};
  if ((x = failed(sc, NULL, "settled", "")) != NULL)
    return (struct cell){"leak", x};
  return (struct cell){"ok", NULL};
}

static json_t *cell_json(struct cell c, const char *verdict,
                         const char *reason) {
  if (strcmp(verdict, "PASS") != 0 && strcmp(verdict, "FAIL") != 0)
    return json_pack("{s:s, s:s}", "cell", "inconclusive", "detail", reason);
  if (c.why == NULL)
    return json_pack("{s:s}", "cell", c.name);
  char detail[1024];
  snprintf(detail, sizeof(detail), "%s: %s (expected %s)", str(c.why, "text"),
           str(c.why, "observed"), str(c.why, "expected"));
  return json_pack("{s:s, s:s}", "cell", c.name, "detail", detail);
}

static json_t *case_json(const struct fl_audit_case *c, const json_t *result,
                         int counts[3]) {
  size_t index = 0;
  const json_t *sc = scenario_named(result, c->name, &index);
  const char *verdict = sc ? str(sc, "verdict") : "ERROR";
  const char *reason = sc ? str(sc, "reason") : "the case did not run";
  char timeline[64];
  snprintf(timeline, sizeof(timeline), "run/report.html#s%zu", index);
  char file[200];
  snprintf(file, sizeof(file), "scenarios/%s.yaml", c->name);
  json_t *cells = json_object();
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "name",
                        c->name, "row", c->row, "fault", c->fault, "what",
                        c->what, "verdict", verdict, "timeline", timeline,
                        "scenario", file, "cells", cells);
  if (j == NULL)
    return NULL;
  for (size_t i = 0; i <= c->neps; i++) {
    struct cell cl = sc == NULL    ? (struct cell){"", NULL}
                     : i < c->neps ? judge(sc, &c->eps[i])
                                   : process(sc);
    json_t *cj = cell_json(cl, verdict, reason);
    const char *name = json_string_value(json_object_get(cj, "cell"));
    counts[strcmp(name, "inconclusive") == 0 ? 2
           : fl_matrix_is_finding(name)      ? 1
                                             : 0]++;
    json_object_set_new(cells, i < c->neps ? c->eps[i].name : "process", cj);
  }
  return j;
}

static json_t *endpoint_names(const struct fl_battery *b) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < b->ncases; i++)
    for (size_t k = 0; k <= b->cases[i].neps; k++) {
      const char *n =
          k < b->cases[i].neps ? b->cases[i].eps[k].name : "process";
      size_t j;
      json_t *v;
      int seen = 0;
      json_array_foreach(a, j, v) seen |= strcmp(json_string_value(v), n) == 0;
      if (!seen)
        json_array_append_new(a, json_string(n));
    }
  return a;
}

json_t *fl_matrix_build(const struct fl_battery *b, const json_t *result) {
  int counts[3] = {0, 0, 0};
  json_t *cases = json_array();
  for (size_t i = 0; cases && i < b->ncases; i++)
    if (json_array_append_new(cases, case_json(&b->cases[i], result, counts)) !=
        0) {
      json_decref(cases);
      return NULL;
    }
  const char *verdict = counts[1]   ? "FINDINGS"
                        : counts[2] ? "INCONCLUSIVE"
                                    : "GRACEFUL";
  return json_pack("{s:s, s:i, s:s, s:o, s:o, s:{s:i, s:i, s:i}}", "format",
                   "faultline-audit", "version", 1, "verdict", verdict,
                   "endpoints", endpoint_names(b), "cases", cases, "counts",
                   "graceful", counts[0], "findings", counts[1], "inconclusive",
                   counts[2]);
}
