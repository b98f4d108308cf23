/*
 * Merging the results of a suite split into shards (`faultline run --shard
 * I/N` on several CI jobs) into the one result the whole suite would have
 * given: the scenarios of every shard in order, the counts and the verdict
 * computed again, and the span from the first shard's start to the last
 * one's end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"

/* Best to worst, as the runner ranks a suite's scenarios. */
static const char *const verdicts[] = {"PASS", "INCONCLUSIVE", "FAIL", "ERROR"};
#define NVERDICTS (sizeof(verdicts) / sizeof(verdicts[0]))

static int verdict_rank(const char *v) {
  for (size_t i = 0; i < NVERDICTS; i++)
    if (v != NULL && strcmp(v, verdicts[i]) == 0)
      return (int)i;
  return (int)NVERDICTS - 1;
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* "2026-11-23T10:00:00Z" (the runner writes UTC), or -1. */
static double iso_seconds(const char *s) {
  struct tm tm = {0};
  const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  if (end == NULL)
    return -1;
  return (double)timegm(&tm);
}

/* A scenario is one file against one service: two shards holding the
 * same one were not split from one suite. */
static int same_scenario(const json_t *a, const json_t *b) {
  const char *fa = str(a, "file"), *fb = str(b, "file");
  const char *sa = str(json_object_get(a, "service"), "file");
  const char *sb = str(json_object_get(b, "service"), "file");
  return fa && fb && strcmp(fa, fb) == 0 && sa && sb && strcmp(sa, sb) == 0;
}

static int add_scenarios(json_t *all, const json_t *doc, const char *name,
                         char *err, size_t errlen) {
  size_t i, k;
  json_t *sc, *seen;
  json_array_foreach(json_object_get(doc, "scenarios"), i, sc) {
    json_array_foreach(all, k, seen) {
      if (same_scenario(seen, sc)) {
        snprintf(err, errlen,
                 "%s: scenario %s (%s) is already in another result: merge "
                 "the results of disjoint shards of one suite",
                 name, str(sc, "name"), str(sc, "file"));
        return -EINVAL;
      }
    }
    json_array_append(all, sc);
  }
  return 0;
}

/* The suite's fields, computed from its scenarios and the shards' times. */
static json_t *suite(const json_t *first, json_t *scenarios, double start,
                     double end, const char *started) {
  json_int_t counts[NVERDICTS] = {0};
  int worst = 0;
  size_t i;
  json_t *sc;
  json_array_foreach(scenarios, i, sc) {
    int r = verdict_rank(str(sc, "verdict"));
    counts[r]++;
    worst = r > worst ? r : worst;
  }
  json_t *c = json_object();
  for (size_t k = 0; k < NVERDICTS; k++)
    json_object_set_new(c, verdicts[k], json_integer(counts[k]));
  json_t *o = json_object();
  json_object_set_new(o, "format", json_string("faultline-result"));
  json_object_set(o, "version", json_object_get(first, "version"));
  json_object_set(o, "faultline", json_object_get(first, "faultline"));
  json_object_set_new(o, "started", json_string(started));
  json_object_set_new(o, "duration", json_real(end > start ? end - start : 0));
  json_object_set_new(o, "verdict", json_string(verdicts[worst]));
  json_object_set_new(o, "counts", c);
  json_object_set_new(o, "scenarios", scenarios);
  return o;
}

int fl_report_merge(json_t *const *docs, const char *const *names, size_t n,
                    json_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (n == 0) {
    snprintf(err, errlen, "no result to merge");
    return -EINVAL;
  }
  json_t *all = json_array();
  double start = -1, end = -1;
  const char *started = NULL;
  for (size_t i = 0; i < n; i++) {
    int rc = fl_report_check(docs[i], names[i], err, errlen);
    if (rc == 0)
      rc = add_scenarios(all, docs[i], names[i], err, errlen);
    if (rc != 0) {
      json_decref(all);
      return rc;
    }
    double s = iso_seconds(str(docs[i], "started"));
    double d = json_number_value(json_object_get(docs[i], "duration"));
    if (s >= 0 && (start < 0 || s < start))
      start = s, started = str(docs[i], "started");
    if (s >= 0 && s + d > end)
      end = s + d;
  }
  if (started == NULL)
    started = str(docs[0], "started");
  *out = suite(docs[0], all, start, end, started ? started : "");
  return 0;
}
