/*
 * JUnit XML for CI systems, valid against the Ant JUnit schema that Jenkins
 * and most CI systems follow (tests/data/junit.xsd): <testsuites> holding
 * one <testsuite> per scenario, one <testcase> per expectation, classname
 * the scenario's name and name "phase / endpoint: text" ("phase: text"
 * for an expectation about the target or the faults).
 *
 * Mapping of verdicts, so that nothing but PASS ever looks green:
 *  - a FAIL expectation is a <failure> with expected and observed;
 *  - an ERROR scenario (it could not run) gets one extra testcase "run"
 *    holding an <error type="ERROR"> with the reason;
 *  - an INCONCLUSIVE scenario gets one extra testcase "conclusive" holding
 *    an <error type="INCONCLUSIVE"> with the reason and the faults that
 *    were never delivered. It is an error, not <skipped>: CI systems count
 *    skipped tests as harmless, and an unproven scenario is not harmless.
 *  - a NOT_JUDGED expectation (the target did not start under the start
 *    faults, which its failed `starts` testcase says) is <skipped>.
 *
 * The schema wants a timestamp without a zone: the result's times are UTC
 * and are written as such without the "Z". The result does not record the
 * host, so hostname is "localhost" as the schema suggests.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"

static void attr(FILE *out, const char *name, const char *value) {
  fprintf(out, " %s=\"", name);
  fl_rep_xml(out, value, 1);
  fputc('"', out);
}

static void property(FILE *out, const char *name, const char *value) {
  if (value == NULL)
    return;
  fputs("      <property", out);
  attr(out, "name", name);
  attr(out, "value", value);
  fputs("/>\n", out);
}

/* YYYY-MM-DDTHH:MM:SS from an RFC 3339 time, or 0 when it is not one. */
static int timestamp(char *buf, const char *rfc3339) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  if (rfc3339 == NULL || strlen(rfc3339) < sizeof(shape) - 1)
    return 0;
  for (size_t i = 0; i < sizeof(shape) - 1; i++)
    if (shape[i] == 'd' ? !isdigit((unsigned char)rfc3339[i])
                        : rfc3339[i] != shape[i])
      return 0;
  memcpy(buf, rfc3339, sizeof(shape) - 1);
  buf[sizeof(shape) - 1] = '\0';
  return 1;
}

/* The length of the phase an expectation is about (0 for "always"). */
static double phase_length(const json_t *s, const char *phase) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(s, "phases"), i, p) {
    if (strcmp(fl_rep_str(p, "name", ""), phase) == 0)
      return fl_rep_num(p, "end", 0) - fl_rep_num(p, "start", 0);
  }
  return 0;
}

static void testcase_open(FILE *out, const char *classname) {
  fputs("    <testcase", out);
  attr(out, "classname", classname);
  fputs(" name=\"", out);
}

static void expectation(FILE *out, const json_t *s, const json_t *e) {
  const char *phase = fl_rep_str(e, "phase", "always");
  testcase_open(out, fl_rep_str(s, "name", ""));
  fl_rep_xml(out, phase, 1);
  if (fl_rep_str(e, "endpoint", NULL) != NULL) {
    fputs(" / ", out);
    fl_rep_xml(out, fl_rep_str(e, "endpoint", ""), 1);
  }
  fputs(": ", out);
  fl_rep_xml(out, fl_rep_str(e, "text", ""), 1);
  fprintf(out, "\" time=\"%.3f\"", phase_length(s, phase));
  if (fl_rep_verdict_of(e) == FL_REP_PASS) {
    fputs("/>\n", out);
    return;
  }
  if (fl_rep_not_judged(e)) {
    fputs(">\n      <skipped", out);
    attr(out, "message", fl_rep_str(e, "observed", "not judged"));
    fputs("/>\n    </testcase>\n", out);
    return;
  }
  const char *expected = fl_rep_str(e, "expected", "-");
  const char *observed = fl_rep_str(e, "observed", "-");
  fputs(">\n      <failure type=\"expectation\" message=\"expected ", out);
  fl_rep_xml(out, expected, 1);
  fputs(", observed ", out);
  fl_rep_xml(out, observed, 1);
  fputs("\">expected: ", out);
  fl_rep_xml(out, expected, 0);
  fputs("\nobserved: ", out);
  fl_rep_xml(out, observed, 0);
  fputs("</failure>\n    </testcase>\n", out);
}

/* The extra testcase of an ERROR or INCONCLUSIVE scenario. */
static void verdict_error(FILE *out, const json_t *s, enum fl_rep_verdict v) {
  const char *reason = fl_rep_str(s, "reason", "no reason given");
  testcase_open(out, fl_rep_str(s, "name", ""));
  fprintf(out, "%s\" time=\"%.3f\">\n      <error type=\"%s\"",
          v == FL_REP_ERROR ? "run" : "conclusive",
          v == FL_REP_ERROR ? fl_rep_num(s, "setup", 0) : 0.0,
          fl_rep_verdict_name(v));
  attr(out, "message", reason);
  fputc('>', out);
  fl_rep_xml(out, fl_rep_verdict_name(v), 0);
  fputs(": ", out);
  fl_rep_xml(out, reason, 0);
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(s, "faults"), i, f) {
    if (fl_rep_num(f, "delivered", 0) > 0 ||
        json_is_true(json_object_get(f, "optional")))
      continue;
    fputs("\nnever delivered: ", out);
    fl_rep_xml(out, fl_rep_str(f, "name", ""), 0);
    fputs(" (", out);
    fl_rep_xml(out, fl_rep_str(f, "spec", "?"), 0);
    fprintf(out, ", %.0f calls matched)", fl_rep_num(f, "matched", 0));
  }
  fputs("</error>\n    </testcase>\n", out);
}

static void testsuite(FILE *out, const json_t *r, const json_t *s, size_t id) {
  enum fl_rep_verdict v = fl_rep_verdict_of(s);
  int total;
  int failures = fl_rep_failed(s, &total);
  int errors = v == FL_REP_ERROR || v == FL_REP_INCONCLUSIVE;
  char ts[32];
  if (!timestamp(ts, fl_rep_str(s, "started", NULL)) &&
      !timestamp(ts, fl_rep_str(r, "started", NULL)))
    strcpy(ts, "1970-01-01T00:00:00");
  const json_t *service = json_object_get(s, "service");
  fputs("  <testsuite", out);
  attr(out, "name", fl_rep_str(s, "name", "unnamed"));
  attr(out, "package", fl_rep_str(service, "name", "faultline"));
  fprintf(out,
          " id=\"%zu\" timestamp=\"%s\" hostname=\"localhost\" tests=\"%d\" "
          "failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\">\n",
          id, ts, total + errors, failures, errors, fl_rep_unjudged(s),
          fl_rep_num(s, "duration", 0));
  fputs("    <properties>\n", out);
  property(out, "verdict", fl_rep_verdict_name(v));
  property(out, "reason", fl_rep_str(s, "reason", NULL));
  property(out, "service", fl_rep_str(service, "name", NULL));
  property(out, "file", fl_rep_str(s, "file", NULL));
  char seed[32];
  snprintf(seed, sizeof(seed), "%.0f", fl_rep_num(s, "seed", 0));
  property(out, "seed", seed);
  fputs("    </properties>\n", out);
  if (errors)
    verdict_error(out, s, v);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(s, "expectations"), i, e)
      expectation(out, s, e);
  /* The target's log goes to system-out when something went wrong, where
   * CI systems show it beside the failure. */
  fputs("    <system-out>", out);
  if (v != FL_REP_PASS)
    fl_rep_xml(out, fl_rep_str(json_object_get(s, "target"), "log_tail", ""),
               0);
  fputs("</system-out>\n    <system-err></system-err>\n  </testsuite>\n", out);
}

int fl_report_junit(const json_t *r, FILE *out) {
  fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
  fprintf(out, "<!-- faultline: suite verdict %s -->\n<testsuites>\n",
          fl_rep_verdict_name(fl_rep_verdict_of(r)));
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(r, "scenarios"), i, s)
      testsuite(out, r, s, i);
  fputs("</testsuites>\n", out);
  fflush(out);
  return ferror(out) ? -EIO : 0;
}
