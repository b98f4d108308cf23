/*
 * Loading a result document and checking it against docs/result.md, so
 * that renderers meet only the shapes they expect and a person handed the
 * wrong file learns which file, where, and what is wrong in one sentence.
 *
 * The check covers what the renderers rely on (names, verdicts, times and
 * the types of the arrays); fields the renderers treat as optional may be
 * absent or null.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fmt.h"
#include "report.h"

struct check {
  const char *name;
  char *err;
  size_t errlen;
};

/* "NAME: message." into the caller's buffer; returns -EBADMSG. */
__attribute__((format(printf, 2, 3))) static int fail(struct check *c,
                                                      const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->errlen > 0)
    snprintf(c->err, c->errlen, "%s: %s", c->name, msg);
  return -EBADMSG;
}

/* obj[key] must be a string, and not empty when `nonempty` is set. */
static int need_str(struct check *c, const json_t *obj, const char *where,
                    const char *key, int nonempty) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL || json_is_null(v))
    return fail(c, "%s has no \"%s\"", where, key);
  if (!json_is_string(v))
    return fail(c, "%s.%s is not a string", where, key);
  if (nonempty && json_string_length(v) == 0)
    return fail(c, "%s.%s is empty", where, key);
  return 0;
}

static int need_num(struct check *c, const json_t *obj, const char *where,
                    const char *key) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL || json_is_null(v))
    return fail(c, "%s has no \"%s\"", where, key);
  if (!json_is_number(v))
    return fail(c, "%s.%s is not a number", where, key);
  return 0;
}

/* A field that may be absent or null, else must be a number. */
static int opt_num(struct check *c, const json_t *obj, const char *where,
                   const char *key) {
  json_t *v = json_object_get(obj, key);
  if (v != NULL && !json_is_null(v) && !json_is_number(v))
    return fail(c, "%s.%s is not a number", where, key);
  return 0;
}

/* obj.verdict: PASS, FAIL or NOT_JUDGED for an expectation, else any of
 * the four. */
static int need_verdict(struct check *c, const json_t *obj, const char *where,
                        int expectation) {
  int rc = need_str(c, obj, where, "verdict", 1);
  if (rc != 0)
    return rc;
  const char *s = fl_rep_str(obj, "verdict", "");
  int v = fl_rep_verdict(s);
  if (expectation && fl_rep_not_judged(obj))
    return 0;
  if (expectation && v != FL_REP_PASS && v != FL_REP_FAIL)
    return fail(
        c, "%s.verdict is \"%s\" (allowed: PASS, FAIL, " FL_REP_NOT_JUDGED ")",
        where, s);
  if (v < 0)
    return fail(c,
                "%s.verdict is \"%s\" (allowed: PASS, FAIL, INCONCLUSIVE, "
                "ERROR)",
                where, s);
  return 0;
}

/* obj[key] when it is an array, NULL when absent or null; an error when it
 * is anything else. */
static int opt_array(struct check *c, const json_t *obj, const char *where,
                     const char *key, json_t **arr) {
  json_t *v = json_object_get(obj, key);
  *arr = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_array(v))
    return fail(c, "%s.%s is not an array", where, key);
  *arr = v;
  return 0;
}

/* Each element of obj[key] must be an object; `each` checks it. */
typedef int (*check_fn)(struct check *c, const json_t *e, const char *where);

static int each(struct check *c, const json_t *obj, const char *where,
                const char *key, check_fn fn) {
  json_t *arr;
  int rc = opt_array(c, obj, where, key, &arr);
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    if (rc != 0)
      break;
    char at[256];
    /* A place this deep only names where a message points: cut it. */
    if (snprintf(at, sizeof(at), "%s%s%s[%zu]", where, where[0] ? "." : "", key,
                 i) >= (int)sizeof(at))
      memcpy(at + sizeof(at) - 4, "...", 4);
    rc = json_is_object(e) ? fn(c, e, at) : fail(c, "%s is not an object", at);
  }
  return rc;
}

static int check_phase(struct check *c, const json_t *e, const char *where) {
  int rc = need_str(c, e, where, "name", 0);
  if (rc == 0)
    rc = need_num(c, e, where, "start");
  if (rc == 0)
    rc = need_num(c, e, where, "end");
  return rc;
}

static int check_fault(struct check *c, const json_t *e, const char *where) {
  int rc = need_str(c, e, where, "name", 0);
  const char *nums[] = {"on", "off", "matched", "delivered"};
  for (size_t i = 0; rc == 0 && i < sizeof(nums) / sizeof(nums[0]); i++)
    rc = opt_num(c, e, where, nums[i]);
  return rc;
}

static int check_sample(struct check *c, const json_t *e, const char *where) {
  return need_num(c, e, where, "t");
}

static int check_endpoint(struct check *c, const json_t *e, const char *where) {
  int rc = need_str(c, e, where, "name", 0);
  if (rc == 0)
    rc = each(c, e, where, "series", check_sample);
  return rc;
}

static int check_expectation(struct check *c, const json_t *e,
                             const char *where) {
  int rc = need_str(c, e, where, "text", 0);
  if (rc == 0)
    rc = need_verdict(c, e, where, 1);
  return rc;
}

static int check_scenario(struct check *c, const json_t *s, const char *where) {
  int rc = need_str(c, s, where, "name", 1);
  if (rc != 0)
    return rc;
  char at[256];
  snprintf(at, sizeof(at), "%s (\"%.64s\")", where, fl_rep_str(s, "name", ""));
  rc = need_verdict(c, s, at, 0);
  if (rc == 0)
    rc = opt_num(c, s, at, "duration");
  if (rc == 0)
    rc = each(c, s, at, "phases", check_phase);
  if (rc == 0)
    rc = each(c, s, at, "faults", check_fault);
  if (rc == 0)
    rc = each(c, s, at, "endpoints", check_endpoint);
  if (rc == 0)
    rc = each(c, s, at, "expectations", check_expectation);
  json_t *target = json_object_get(s, "target");
  if (rc == 0 && target != NULL && !json_is_null(target)) {
    char tat[300];
    snprintf(tat, sizeof(tat), "%s.target", at);
    rc = json_is_object(target) ? each(c, target, tat, "series", check_sample)
                                : fail(c, "%s is not an object", tat);
  }
  return rc;
}

int fl_report_check(const json_t *r, const char *name, char *err,
                    size_t errlen) {
  struct check c = {name, err, errlen};
  const char *format = fl_rep_str(r, "format", NULL);
  if (!json_is_object(r) || format == NULL)
    return fail(&c, "not a faultline result (no \"format\": "
                    "\"faultline-result\")");
  if (strcmp(format, "faultline-result") != 0)
    return fail(&c,
                "not a faultline result (\"format\" is \"%.64s\", not "
                "\"faultline-result\")",
                format);
  json_t *version = json_object_get(r, "version");
  if (!json_is_integer(version) || json_integer_value(version) < 1)
    return fail(&c, "\"version\" is missing or not a positive integer");
  if (json_integer_value(version) > FL_RESULT_VERSION)
    return fail(&c,
                "result format version %lld is newer than this faultline "
                "reads (%d): upgrade faultline",
                (long long)json_integer_value(version), FL_RESULT_VERSION);
  int rc = need_verdict(&c, r, "the result", 0);
  if (rc != 0)
    return rc;
  if (!json_is_array(json_object_get(r, "scenarios")))
    return fail(&c, "the result has no \"scenarios\" array");
  return each(&c, r, "", "scenarios", check_scenario);
}

int fl_report_load(const char *path, json_t **out, char *err, size_t errlen) {
  *out = NULL;
  FILE *f = fopen(path, "r");
  struct stat st;
  int rc = 0;
  if (f == NULL)
    rc = -errno;
  else if (fstat(fileno(f), &st) != 0)
    rc = -errno;
  else if (S_ISDIR(st.st_mode))
    rc = -EISDIR;
  if (rc != 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
    if (f != NULL)
      fclose(f);
    return rc;
  }
  json_error_t jerr;
  json_t *r = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
  int read_errno = ferror(f) ? errno : 0;
  fclose(f);
  if (r == NULL && read_errno != 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(read_errno));
    return -read_errno;
  }
  if (r == NULL) {
    if (json_error_code(&jerr) == json_error_premature_end_of_input)
      snprintf(err, errlen, "%s:%d:%d: the JSON ends early (a truncated file?)",
               path, jerr.line, jerr.column);
    else
      snprintf(err, errlen, "%s:%d:%d: not valid JSON: %s", path, jerr.line,
               jerr.column, jerr.text);
    return -EBADMSG;
  }
  rc = fl_report_check(r, path, err, errlen);
  if (rc != 0) {
    json_decref(r);
    return rc;
  }
  *out = r;
  return 0;
}
