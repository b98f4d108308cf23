/* Reports rendered from two recorded runs (tests/data/results: resilient,
 * every scenario passing; fragile, with FAIL, INCONCLUSIVE and ERROR
 * scenarios and a log full of markup and escape codes), checked by real
 * tools: xmllint parses the HTML and every SVG in it and validates the
 * JUnit XML against the Ant JUnit schema, a headless Chromium loads the
 * page offline and screenshots a failing scenario. Bad input gets one
 * clear sentence, through fl_report_load and through `faultline report`. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "support.h"

#define RESULTS T_DATA "/results"
#define ARTIFACTS FL_TEST_BUILD_DIR "/artifacts"

static struct {
  char dir[256];
  struct t_run run;
  json_t *result;
} S;

static void setup(void) {
  memset(&S, 0, sizeof(S));
  cr_assert_eq(t_mkdtemp(S.dir), 0);
}

static void teardown(void) {
  t_run_free(&S.run);
  json_decref(S.result);
  t_rmtree(S.dir);
}

TestSuite(reports, .init = setup, .fini = teardown, .timeout = 120);

static char *in_dir(char *buf, size_t size, const char *name) {
  int n = snprintf(buf, size, "%s/%s", S.dir, name);
  cr_assert(n > 0 && (size_t)n < size, "path too long: %s/%s", S.dir, name);
  return buf;
}

/* Loads tests/data/results/NAME.json into S.result. */
static json_t *sample(const char *name) {
  char path[512], err[512] = "";
  snprintf(path, sizeof(path), RESULTS "/%s.json", name);
  json_decref(S.result);
  int rc = fl_report_load(path, &S.result, err, sizeof(err));
  cr_assert_eq(rc, 0, "cannot load %s: %s", path, err);
  return S.result;
}

typedef int (*render_fn)(const json_t *, FILE *);

/* Renders result into path. */
static void render(render_fn fn, const json_t *result, const char *path) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "cannot create %s", path);
  cr_assert_eq(fn(result, f), 0, "rendering %s failed", path);
  cr_assert_eq(fclose(f), 0);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot read %s", path);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    fwrite(chunk, 1, n, m);
  fclose(f);
  fclose(m);
  return buf;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

/* Runs argv (NULL-terminated) within timeout_ms into S.run; the status. */
static int run(int timeout_ms, const char *arg, ...) {
  char *argv[32];
  int n = 0;
  va_list ap;
  va_start(ap, arg);
  for (const char *a = arg; a != NULL && n < 31; a = va_arg(ap, const char *))
    argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  t_run_free(&S.run);
  cr_assert_eq(t_run(argv, NULL, NULL, timeout_ms, &S.run), 0, "cannot run %s",
               argv[0]);
  cr_assert_neq(S.run.status, 127, "%s is not installed (scripts/setup)",
                argv[0]);
  cr_assert_neq(S.run.status, -1, "%s did not finish within %d ms", argv[0],
                timeout_ms);
  return S.run.status;
}

/* xmllint --xpath EXPR path: the answer without its newline. */
static const char *xpath(const char *path, const char *expr) {
  run(30000, "xmllint", "--xpath", expr, path, NULL);
  cr_assert_eq(S.run.status, 0, "xpath %s: %s", expr, S.run.err);
  size_t n = strlen(S.run.out);
  while (n > 0 && S.run.out[n - 1] == '\n')
    S.run.out[--n] = '\0';
  return S.run.out;
}

/* The charts a scenario should have: two per endpoint, two for the target
 * when it was sampled. */
static int expected_charts(const json_t *result) {
  int n = 0;
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(result, "scenarios"), i, s) {
    n += 2 * (int)json_array_size(json_object_get(s, "endpoints"));
    json_t *t = json_object_get(s, "target");
    n += json_array_size(json_object_get(t, "series")) > 0 ? 2 : 0;
  }
  return n;
}

static const char *verdict_of(const json_t *obj) {
  return json_string_value(json_object_get(obj, "verdict"));
}

/* ---- Loading: good files, and one clear sentence for bad ones. ---- */

Test(reports, samples_load) {
  const char *names[] = {"resilient", "fragile"};
  for (size_t i = 0; i < 2; i++) {
    json_t *r = sample(names[i]);
    cr_assert_eq(json_array_size(json_object_get(r, "scenarios")) >= 3, 1);
  }
  cr_assert_str_eq(verdict_of(sample("resilient")), "PASS");
  cr_assert_str_eq(verdict_of(sample("fragile")), "ERROR");
}

Test(reports, truncated_file) {
  json_t *r = (json_t *)1;
  char err[512] = "";
  int rc = fl_report_load(RESULTS "/truncated.json", &r, err, sizeof(err));
  cr_assert_eq(rc, -EBADMSG);
  cr_assert_null(r);
  int line = 0, col = 0;
  const char *at = strstr(err, "truncated.json:");
  cr_assert_not_null(at, "the file is not named: %s", err);
  cr_assert_eq(sscanf(at, "truncated.json:%d:%d:", &line, &col), 2,
               "no line:column: %s", err);
  cr_assert_gt(line, 100);
  cr_assert_not_null(strstr(err, "ends early (a truncated file?)"), "%s", err);
  cr_assert_null(strchr(err, '\n'), "more than one line: %s", err);
}

Test(reports, foreign_file) {
  json_t *r;
  char err[512] = "";
  int rc = fl_report_load(RESULTS "/foreign.json", &r, err, sizeof(err));
  cr_assert_eq(rc, -EBADMSG);
  cr_assert_str_eq(err, RESULTS "/foreign.json: not a faultline result (no "
                                "\"format\": \"faultline-result\")");
}

Test(reports, unreadable_file) {
  json_t *r;
  char err[512] = "", path[300];
  int rc = fl_report_load(in_dir(path, sizeof(path), "none.json"), &r, err,
                          sizeof(err));
  cr_assert_eq(rc, -ENOENT);
  cr_assert_not_null(strstr(err, "cannot read "), "%s", err);
  cr_assert_not_null(strstr(err, "none.json: No such file"), "%s", err);
  rc = fl_report_load(S.dir, &r, err, sizeof(err));
  cr_assert_eq(rc, -EISDIR, "%s", err);
}

/* Documents that are JSON but not results this version reads, each with
 * the words its error must hold. */
static const struct {
  const char *json;
  const char *message;
} bad[] = {
    {"[1, 2]", "not a faultline result (no \"format\": \"faultline-result\")"},
    {"{\"format\": \"junit\"}",
     "not a faultline result (\"format\" is \"junit\", not "
     "\"faultline-result\")"},
    {"{\"format\": \"faultline-result\", \"version\": \"1\"}",
     "\"version\" is missing or not a positive integer"},
    {"{\"format\": \"faultline-result\", \"version\": 2}",
     "result format version 2 is newer than this faultline reads (1): "
     "upgrade faultline"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": \"OK\"}",
     "the result.verdict is \"OK\" (allowed: PASS, FAIL, INCONCLUSIVE, "
     "ERROR)"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\"}",
     "the result has no \"scenarios\" array"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\", \"scenarios\": [{\"verdict\": \"PASS\"}]}",
     "scenarios[0] has no \"name\""},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\", \"scenarios\": [{\"name\": \"db-down\"}]}",
     "scenarios[0] (\"db-down\") has no \"verdict\""},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"FAIL\", \"scenarios\": [{\"name\": \"a\", \"verdict\": \"FAIL\", "
     "\"expectations\": [{\"text\": \"x\", \"verdict\": \"PASS\"}, "
     "{\"text\": \"y\", \"verdict\": \"ERROR\"}]}]}",
     "scenarios[0] (\"a\").expectations[1].verdict is \"ERROR\" (allowed: "
     "PASS, FAIL, NOT_JUDGED)"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\", \"scenarios\": [{\"name\": \"a\", \"verdict\": \"PASS\", "
     "\"endpoints\": [{\"name\": \"items\", \"series\": [{\"t\": 0}, "
     "{\"t\": \"1\"}]}]}]}",
     "scenarios[0] (\"a\").endpoints[0].series[1].t is not a number"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\", \"scenarios\": [{\"name\": \"a\", \"verdict\": \"PASS\", "
     "\"phases\": {}}]}",
     "scenarios[0] (\"a\").phases is not an array"},
    {"{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
     "\"PASS\", \"scenarios\": [{\"name\": \"a\", \"verdict\": \"PASS\", "
     "\"target\": {\"series\": [{\"fds\": 3}]}}]}",
     "scenarios[0] (\"a\").target.series[0] has no \"t\""},
};

Test(reports, bad_documents) {
  const char *good =
      "{\"format\": \"faultline-result\", \"version\": 1, \"verdict\": "
      "\"PASS\", \"scenarios\": [{\"name\": \"a\", \"verdict\": \"PASS\"}]}";
  char err[512] = "";
  json_t *r = json_loads(good, 0, NULL);
  cr_assert_eq(fl_report_check(r, "x.json", err, sizeof(err)), 0, "%s", err);
  json_decref(r);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r = json_loads(bad[i].json, 0, NULL);
    cr_assert_not_null(r, "case %zu is not JSON", i);
    err[0] = '\0';
    int rc = fl_report_check(r, "x.json", err, sizeof(err));
    json_decref(r);
    char want[512];
    snprintf(want, sizeof(want), "x.json: %s", bad[i].message);
    cr_expect_eq(rc, -EBADMSG, "case %zu accepted", i);
    cr_expect_str_eq(err, want, "case %zu: got \"%s\"", i, err);
  }
}

/* ---- HTML. ---- */

/* Elements libxml2's HTML parser (HTML 4) does not know: HTML5 sectioning
 * and SVG. It reports each as "Tag X invalid"; any other message fails. */
static const char *const html5_tags[] = {
    "header",  "main",    "footer", "section", "figure", "figcaption",
    "details", "summary", "svg",    "desc",    "defs",   "pattern",
    "rect",    "line",    "text",   "g",       "path",   "circle"};

static void check_html_parses(const char *path) {
  run(30000, "xmllint", "--html", "--noout", path, NULL);
  cr_assert_eq(S.run.status, 0, "xmllint --html: %s", S.run.err);
  char *save = NULL;
  for (char *l = strtok_r(S.run.err, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    if (strncmp(l, path, strlen(path)) != 0)
      continue; /* the quoted source line and the caret under it */
    char tag[64] = "";
    const char *msg = strstr(l, "HTML parser error : Tag ");
    int known = msg != NULL && sscanf(msg, "HTML parser error : Tag %63s", tag);
    int ok = 0;
    for (size_t i = 0; known && i < sizeof(html5_tags) / sizeof(*html5_tags);
         i++)
      ok |= strcmp(tag, html5_tags[i]) == 0 && strstr(msg, " invalid") != NULL;
    cr_assert(ok, "xmllint --html: %s", l);
  }
  /* The page is polyglot: well-formed XML as a whole. */
  run(30000, "xmllint", "--noout", path, NULL);
  cr_assert_eq(S.run.status, 0, "not well-formed XML: %s", S.run.err);
  cr_assert_str_empty(S.run.err);
}

Test(reports, html_parses) {
  const char *names[] = {"resilient", "fragile"};
  for (size_t i = 0; i < 2; i++) {
    char path[300], file[64];
    snprintf(file, sizeof(file), "%s.html", names[i]);
    render(fl_report_html, sample(names[i]), in_dir(path, sizeof(path), file));
    check_html_parses(path);
  }
}

/* Every <svg> of the page, written to its own file and parsed as XML;
 * each is an accessible image with fault windows and phase marks. */
Test(reports, html_svgs_well_formed) {
  json_t *r = sample("fragile");
  char path[300];
  render(fl_report_html, r, in_dir(path, sizeof(path), "fragile.html"));
  char *html = slurp(path);
  int n = 0;
  for (char *p = html; (p = strstr(p, "<svg")) != NULL; n++) {
    char *end = strstr(p, "</svg>");
    cr_assert_not_null(end, "svg %d is not closed", n);
    end += strlen("</svg>");
    char svg[300], name[32];
    snprintf(name, sizeof(name), "chart%d.svg", n);
    FILE *f = fopen(in_dir(svg, sizeof(svg), name), "w");
    fwrite(p, 1, (size_t)(end - p), f);
    fclose(f);
    run(30000, "xmllint", "--noout", svg, NULL);
    cr_assert_eq(S.run.status, 0, "svg %d is not well-formed: %s", n,
                 S.run.err);
    char save = *end;
    *end = '\0';
    cr_expect(strstr(p, "xmlns=\"http://www.w3.org/2000/svg\"") != NULL,
              "svg %d", n);
    cr_expect(strstr(p, "role=\"img\"") && strstr(p, "<title id=") &&
                  strstr(p, "<desc id="),
              "svg %d lacks role, title or desc", n);
    /* Every chart of the fragile run is of a scenario with one fault and
     * three phases: its window hatched (a rect titled with the fault) and
     * labelled, the phase boundaries dashed. */
    cr_expect_eq(count(p, "-h)\" stroke=\"#4d4d4d\" stroke-width=\"1\">"
                          "<title>fault "),
                 1, "svg %d: no hatched fault window", n);
    cr_expect_eq(count(p, ">fault: "), 1, "svg %d: no fault label", n);
    cr_expect(strstr(p, "Fault windows: ") != NULL,
              "svg %d: the windows are not in its description", n);
    cr_expect_geq(count(p, "stroke-dasharray=\"4 3\""), 2,
                  "svg %d: phase boundaries missing", n);
    *end = save;
    p = end;
  }
  cr_assert_eq(n, expected_charts(r), "%d charts, expected %d", n,
               expected_charts(r));
  cr_assert_eq(n, 14);
  free(html);
}

Test(reports, html_content) {
  json_t *r = sample("fragile");
  char path[300];
  render(fl_report_html, r, in_dir(path, sizeof(path), "fragile.html"));
  char *html = slurp(path);
  /* Self-contained: nothing fetched, nothing run. */
  cr_expect_null(strstr(html, "<script"), "a <script> in the page");
  cr_expect_null(strstr(html, "<link"));
  cr_expect_null(strstr(html, "<img"));
  cr_expect_null(strstr(html, "src="));
  cr_expect_null(strstr(html, "url(http"));
  cr_expect_eq(count(html, "http"), count(html, "http://www.w3.org/2000/svg"),
               "a reference other than the SVG namespace");
  /* The target's log, escaped: markup as text, ESC made visible. */
  cr_expect(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  cr_expect(strstr(html, "\xe2\x90\x9b[31mERROR"), "ESC not shown as U+241B");
  cr_expect_null(strchr(html, '\x1b'));
  /* Overview: one row per scenario, verdict as word and symbol. */
  cr_expect_eq(count(html, "<th scope=\"row\"><a href=\"#s"), 4);
  cr_expect(strstr(html, "<span aria-hidden=\"true\">\xe2\x9c\x97 </span>"
                         "FAIL</span>"));
  cr_expect(strstr(html, "? </span>INCONCLUSIVE</span>"));
  /* An expectation table for each scenario that has expectations; the
   * log tail for each that did not pass (here: all four). */
  cr_expect_eq(count(html, "<table class=\"expectations\">"), 3);
  cr_expect(strstr(html, "<th scope=\"row\">rate(503) &gt;= 95%</th><td>"
                         "&gt;= 95%</td><td>0.0% (0 of 100): 100 answered "
                         "500</td>"));
  cr_expect_eq(count(html, "<pre class=\"log\""), 4);
  cr_expect(strstr(html, "never delivered</span>"), "undelivered fault");
  cr_expect(strstr(html, "@media print"));
  free(html);

  render(fl_report_html, sample("resilient"), path);
  html = slurp(path);
  cr_expect_eq(count(html, "<pre class=\"log\""), 0, "log of a pass shown");
  cr_expect_eq(count(html, "FAIL</span>"), 0);
  free(html);
}

/* ---- JUnit XML. ---- */

Test(reports, junit_validates) {
  const char *names[] = {"resilient", "fragile"};
  for (size_t i = 0; i < 2; i++) {
    char path[300], file[64];
    snprintf(file, sizeof(file), "%s.xml", names[i]);
    render(fl_report_junit, sample(names[i]), in_dir(path, sizeof(path), file));
    run(30000, "xmllint", "--noout", "--schema", T_DATA "/junit.xsd", path,
        NULL);
    cr_assert_eq(S.run.status, 0, "%s does not validate:\n%s", file, S.run.err);
    cr_assert(strstr(S.run.err, " validates"), "%s", S.run.err);
  }
  /* What CI shows for the fragile run: nothing green but the passes. */
  char path[300];
  in_dir(path, sizeof(path), "fragile.xml");
  cr_expect_str_eq(xpath(path, "count(//testsuite)"), "4");
  cr_expect_str_eq(xpath(path, "count(//testcase/failure)"), "6");
  cr_expect_str_eq(
      xpath(path,
            "string(//testsuite[@name='disk-full']/testcase/error/@type)"),
      "INCONCLUSIVE");
  cr_expect_str_eq(
      xpath(path, "string(//testsuite[@name='db-down-at-start']/@errors)"),
      "1");
  cr_expect_str_eq(xpath(path, "count(//skipped)"), "0");
  cr_expect_str_eq(xpath(path, "string(//testcase[failure][1]/@name)"),
                   "outage / items: rate(503) >= 95%");
  cr_expect_str_eq(
      xpath(path, "string(//testsuite[@name='redis-stall']/testcase[3]/@name)"),
      "always: no restart");
}

/* The schema check is not vacuous: a document the schema forbids fails. */
Test(reports, junit_schema_rejects) {
  char path[300];
  FILE *f = fopen(in_dir(path, sizeof(path), "bad.xml"), "w");
  fputs("<testsuites><testsuite name=\"a\" package=\"p\" id=\"0\" "
        "timestamp=\"2026-11-23T10:00:00Z\" hostname=\"h\" tests=\"1\" "
        "failures=\"0\" errors=\"0\" time=\"1\"><properties/>"
        "<testcase classname=\"a\" name=\"b\" time=\"0\"/>"
        "<system-out/><system-err/></testsuite></testsuites>\n",
        f);
  fclose(f);
  run(30000, "xmllint", "--noout", "--schema", T_DATA "/junit.xsd", path, NULL);
  cr_assert_neq(S.run.status, 0, "a zoned timestamp validated");
}

/* ---- Markdown and the terminal summary. ---- */

Test(reports, markdown_tables) {
  json_t *r = sample("fragile");
  char path[300];
  render(fl_report_markdown, r, in_dir(path, sizeof(path), "fragile.md"));
  char *md = slurp(path);
  cr_assert(strstr(md, "## \xe2\x9b\x94 faultline: ERROR\n"), "%s", md);
  cr_assert(strstr(md, "\n| Scenario | Service | Verdict | Duration | Failed "
                       "|\n|:--|:--|:--|--:|--:|\n"),
            "%s", md);
  const char *rows[] = {
      "| db-down | fragile | \xe2\x9d\x8c FAIL | 13.3 s | 3 of 6 |\n",
      "| redis-stall | fragile | \xe2\x9d\x8c FAIL | 15.1 s | 2 of 4 |\n",
      "| disk-full | fragile | \xe2\x9a\xa0\xef\xb8\x8f INCONCLUSIVE | 13.0 s "
      "| 1 of 2 |\n",
      "| db-down-at-start | fragile | \xe2\x9b\x94 ERROR | 1.4 s | 0 of 0 "
      "|\n"};
  for (size_t i = 0; i < 4; i++)
    cr_expect(strstr(md, rows[i]), "no row %s", rows[i]);
  /* Failed expectations with expected and observed; pipes and markup
   * escaped so the table holds. */
  cr_expect(strstr(md, "| outage | items | rate(503) >= 95% | >= 95% | 0.0% "
                       "(0 of 100): 100 answered 500 |\n"));
  cr_expect(strstr(md, "| body !\\~ /Traceback\\|asyncpg\\|\\<html>/ | no "
                       "exception text \\| host \\| SQL |"));
  cr_expect_eq(count(md, "\n### "), 4);
  cr_expect(strstr(md, "was never delivered (0 calls matched)"));
  cr_expect_null(strchr(md, '\x1b'));
  free(md);

  render(fl_report_markdown, sample("resilient"), path);
  md = slurp(path);
  cr_expect(strstr(md, "## \xe2\x9c\x85 faultline: PASS\n"), "%s", md);
  cr_expect(strstr(md, "| db-down | resilient | \xe2\x9c\x85 PASS | 13.2 s "
                       "| 0 of 6 |\n"),
            "%s", md);
  cr_expect_eq(count(md, "\n### "), 0, "details for a passing run");
  free(md);
}

Test(reports, summary_table) {
  json_t *r = sample("fragile");
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  cr_assert_eq(fl_report_summary(r, m, 0), 0);
  fclose(m);
  cr_expect_null(strchr(buf, '\x1b'), "colour without asking:\n%s", buf);
  cr_expect(strstr(buf, "ERROR  4 scenarios in 52.7 s: 0 passed, 2 failed, "
                        "1 inconclusive, 1 error\n"),
            "%s", buf);
  cr_expect(strstr(buf, "  disk-full         fragile  INCONCLUSIVE  13.0 s "
                        "   1 of 2  fault 'disk full' was never delivered"),
            "%s", buf);
  cr_expect(strstr(buf, "  FAIL redis-stall: outage / profile: p99 <= "
                        "500ms\n      expected: <= 500 ms\n      observed: "
                        "2.0 s (client timeout)\n"),
            "%s", buf);
  free(buf);
  buf = NULL;
  m = open_memstream(&buf, &len);
  cr_assert_eq(fl_report_summary(r, m, 1), 0);
  fclose(m);
  cr_expect(strstr(buf, "\033[1;31mFAIL\033[0m"), "%s", buf);
  cr_expect(strstr(buf, "\033[33mINCONCLUSIVE\033[0m"), "%s", buf);
  free(buf);
}

/* A target that did not start under its start faults: FAIL with
 * `starts` failed and the other expectations NOT_JUDGED. Every format
 * loads it and shows "not judged", never as a failure nor as a pass. */
static json_t *not_started(void) {
  json_t *r = json_deep_copy(sample("fragile"));
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(r, "scenarios"), i, s) {
    if (strcmp(json_string_value(json_object_get(s, "name")),
               "db-down-at-start") != 0)
      continue;
    json_object_set_new(s, "verdict", json_string("FAIL"));
    json_t *x = json_pack(
        "[{s:s,s:n,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s,s:s},"
        "{s:s,s:n,s:s,s:s,s:s,s:s}]",
        "phase", "always", "endpoint", "text", "starts", "expected",
        "starts under the start faults", "observed",
        "exited with status 3 after 1.2s: Application startup failed.",
        "verdict", "FAIL", "phase", "outage", "endpoint", "items", "text",
        "rate(503) >= 90%", "expected", "rate(503) >= 90%", "observed",
        "not judged: the target did not start", "verdict", "NOT_JUDGED",
        "phase", "always", "endpoint", "text", "alive", "expected", "alive",
        "observed", "not judged: the target did not start", "verdict",
        "NOT_JUDGED");
    json_object_set_new(s, "expectations", x);
  }
  char path[300], err[512] = "";
  in_dir(path, sizeof(path), "not-started.json");
  cr_assert_eq(json_dump_file(r, path, JSON_INDENT(1)), 0);
  json_decref(r);
  json_t *loaded = NULL;
  cr_assert_eq(fl_report_load(path, &loaded, err, sizeof(err)), 0, "%s", err);
  return loaded;
}

Test(reports, not_judged_in_every_format) {
  json_t *r = not_started();
  char path[300];
  render(fl_report_junit, r, in_dir(path, sizeof(path), "ns.xml"));
  run(30000, "xmllint", "--noout", "--schema", T_DATA "/junit.xsd", path, NULL);
  cr_expect_eq(S.run.status, 0, "does not validate:\n%s", S.run.err);
  const char *suite = "//testsuite[@name='db-down-at-start']";
  char expr[256];
  snprintf(expr, sizeof(expr), "string(%s/@skipped)", suite);
  cr_expect_str_eq(xpath(path, expr), "2");
  snprintf(expr, sizeof(expr), "string(%s/@failures)", suite);
  cr_expect_str_eq(xpath(path, expr), "1");
  snprintf(expr, sizeof(expr), "string(%s/testcase[skipped][1]/@name)", suite);
  cr_expect_str_eq(xpath(path, expr), "outage / items: rate(503) >= 90%");
  snprintf(expr, sizeof(expr), "string(%s/testcase[failure]/@name)", suite);
  cr_expect_str_eq(xpath(path, expr), "always: starts");

  render(fl_report_markdown, r, in_dir(path, sizeof(path), "ns.md"));
  char *md = slurp(path);
  cr_expect(strstr(md, "| db-down-at-start | fragile | \xe2\x9d\x8c FAIL | "
                       "1.4 s | 1 of 3 |\n"),
            "%s", md);
  cr_expect(strstr(md, "| always | - | starts | starts under the start "
                       "faults | exited with status 3 after 1.2s: "
                       "Application startup failed. |\n"),
            "%s", md);
  cr_expect(strstr(md, "2 not judged (the target did not start): outage / "
                       "items: rate(503) >= 90%, always: alive\n"),
            "%s", md);
  cr_expect_null(strstr(md, "| not judged: the target did not start |"),
                 "a not judged expectation listed as failed:\n%s", md);
  free(md);

  render(fl_report_html, r, in_dir(path, sizeof(path), "ns.html"));
  char *html = slurp(path);
  cr_expect_eq(count(html, "</span>not judged</span>"), 2, "%s", html);
  cr_expect(strstr(html, "<caption>1 of 3 expectations failed</caption>"));
  free(html);

  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  cr_assert_eq(fl_report_summary(r, m, 0), 0);
  fclose(m);
  cr_expect(strstr(buf, "1 of 3, 2 not judged"), "%s", buf);
  cr_expect(strstr(buf, "FAIL db-down-at-start: always: starts\n"), "%s", buf);
  cr_expect_null(strstr(buf, "FAIL db-down-at-start: always: alive"), "%s",
                 buf);
  free(buf);
  json_decref(r);
}

/* ---- The command. ---- */

/* 1 when this build's faultline has the report command (main.c wired). */
static int have_report_command(void) {
  run(20000, T_FAULTLINE, "report", "--help", NULL);
  return S.run.status == 0 && strstr(S.run.out, "usage: faultline report");
}

Test(reports, command) {
  if (!have_report_command())
    cr_skip_test("faultline has no report command yet (harness/cli/main.c)");
  char html[300], md[300], xml[300];
  in_dir(html, sizeof(html), "r.html");
  in_dir(md, sizeof(md), "r.md");
  in_dir(xml, sizeof(xml), "r.xml");
  int st = run(20000, T_FAULTLINE, "report", RESULTS "/fragile.json", "--html",
               html, "--md", md, "--junit", xml, NULL);
  cr_assert_eq(st, 0, "%s", S.run.err);
  cr_assert_str_empty(S.run.out);
  cr_assert_str_empty(S.run.err);
  char *text = slurp(md);
  cr_expect(strstr(text, "| db-down | fragile |"));
  free(text);
  text = slurp(html);
  cr_expect(strstr(text, "</html>\n"));
  free(text);
  struct stat sb;
  cr_expect_neq(stat(xml, &sb), -1);
  char tmp[320];
  snprintf(tmp, sizeof(tmp), "%s.tmp", xml);
  cr_expect_eq(access(tmp, F_OK), -1, "a temporary file was left behind");

  /* No output option: the summary, without colour into a pipe. */
  st = run(20000, T_FAULTLINE, "report", RESULTS "/resilient.json", NULL);
  cr_assert_eq(st, 0, "%s", S.run.err);
  cr_expect(strstr(S.run.out, "PASS  3 scenarios in "), "%s", S.run.out);
  cr_expect_null(strchr(S.run.out, '\x1b'));
  st = run(20000, T_FAULTLINE, "report", "--md", "-", RESULTS "/resilient.json",
           NULL);
  cr_assert_eq(st, 0, "%s", S.run.err);
  cr_expect(strncmp(S.run.out, "## ", 3) == 0, "%s", S.run.out);
}

/* Bad input: exit status 2 and one sentence on stderr naming the problem;
 * nothing written. */
Test(reports, command_bad_input) {
  if (!have_report_command())
    cr_skip_test("faultline has no report command yet (harness/cli/main.c)");
  char html[300];
  in_dir(html, sizeof(html), "r.html");
  const struct {
    const char *args[4];
    const char *message;
  } cases[] = {
      {{RESULTS "/truncated.json", "--html", html},
       "truncated.json:542:61: the JSON ends early (a truncated file?)"},
      {{RESULTS "/foreign.json", "--html", html},
       "foreign.json: not a faultline result (no \"format\": "
       "\"faultline-result\")"},
      {{RESULTS "/fragile.json", "--bogus", html}, "unknown option '--bogus'"},
      {{RESULTS "/fragile.json", "--html"}, "--html needs a file name"},
      {{"--html", html}, "no result file given"},
      {{RESULTS "/fragile.json", RESULTS "/resilient.json"},
       "one result file at a time"},
      {{RESULTS "/fragile.json", "--md", "-", "--junit"},
       "--junit needs a file name"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *argv[8] = {T_FAULTLINE, "report"};
    int n = 2;
    for (int k = 0; k < 4 && cases[i].args[k] != NULL; k++)
      argv[n++] = (char *)cases[i].args[k];
    argv[n] = NULL;
    t_run_free(&S.run);
    cr_assert_eq(t_run(argv, NULL, NULL, 20000, &S.run), 0);
    cr_expect_eq(S.run.status, 2, "case %zu: exit %d", i, S.run.status);
    cr_expect(strncmp(S.run.err, "faultline: report: ", 19) == 0 &&
                  strstr(S.run.err, cases[i].message) != NULL,
              "case %zu: %s", i, S.run.err);
    cr_expect_eq(count(S.run.err, "\n"), 1, "case %zu: %s", i, S.run.err);
    cr_expect_eq(access(html, F_OK), -1, "case %zu wrote a report", i);
  }
}

/* ---- A real browser. ---- */

/* Runs headless Chromium on file://path with one or two more arguments
 * (arg2 may be NULL), its profile in our temporary folder and a proxy that
 * leads nowhere, so the page gets nothing from the network. Waits for it
 * to exit, which it does once the DOM or screenshot is written. */
static void chromium(const char *path, const char *arg1, const char *arg2) {
  char url[400], profile[300], prof_arg[320];
  snprintf(url, sizeof(url), "file://%s", path);
  snprintf(prof_arg, sizeof(prof_arg), "--user-data-dir=%s",
           in_dir(profile, sizeof(profile), "chromium-profile"));
  char *argv[16] = {"chromium",
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--proxy-server=127.0.0.1:9",
                    "--proxy-bypass-list=<-loopback>",
                    prof_arg,
                    (char *)arg1};
  int n = 10;
  if (arg2 != NULL)
    argv[n++] = (char *)arg2;
  argv[n++] = url;
  argv[n] = NULL;
  t_run_free(&S.run);
  cr_assert_eq(t_run(argv, NULL, NULL, 90000, &S.run), 0);
  cr_assert_neq(S.run.status, 127,
                "chromium is not installed (apt-get install chromium, or "
                "scripts/setup)");
  cr_assert_eq(S.run.status, 0, "chromium failed (status %d):\n%s",
               S.run.status, S.run.err);
}

Test(reports, browser_dom, .timeout = 180) {
  json_t *r = sample("fragile");
  char path[300];
  render(fl_report_html, r, in_dir(path, sizeof(path), "fragile.html"));
  chromium(path, "--dump-dom", NULL);
  const char *dom = S.run.out;
  cr_assert(strstr(dom, "</html>"), "no DOM dumped:\n%.2000s", S.run.err);
  cr_expect_eq(count(dom, "<svg"), expected_charts(r));
  cr_expect_eq(count(dom, "role=\"img\""), expected_charts(r));
  cr_expect_eq(count(dom, "<table class=\"expectations\">"), 3);
  cr_expect(strstr(dom, "<th scope=\"row\">rate(503) &gt;= 95%</th>"));
  cr_expect(strstr(dom, "<h2 id=\"overview\">Suite overview</h2>"));
  cr_expect_null(strstr(dom, "<script"), "the log's markup became a script");
}

/* PNG signature, then IHDR's width and height (big-endian). */
static void png_size(const char *path, unsigned *w, unsigned *h) {
  unsigned char b[24];
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "no screenshot at %s", path);
  size_t n = fread(b, 1, sizeof(b), f);
  fclose(f);
  cr_assert_eq(n, sizeof(b), "%s is too short for a PNG", path);
  cr_assert_eq(memcmp(b, "\x89PNG\r\n\x1a\n", 8), 0, "%s is not a PNG", path);
  *w = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
  *h = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
}

/* The report of one failing scenario (fragile's db-down), screenshotted and
 * kept with the test artefacts beside the HTML it shows. */
Test(reports, browser_screenshot, .timeout = 180) {
  json_t *r = json_deep_copy(sample("fragile"));
  json_t *db = json_incref(json_array_get(json_object_get(r, "scenarios"), 0));
  cr_assert_str_eq(json_string_value(json_object_get(db, "name")), "db-down");
  json_object_set_new(r, "scenarios", json_pack("[o]", db));
  json_object_set_new(r, "verdict", json_string("FAIL"));
  json_object_set(r, "duration", json_object_get(db, "duration"));
  json_object_set_new(r, "counts",
                      json_pack("{s:i, s:i, s:i, s:i}", "PASS", 0, "FAIL", 1,
                                "INCONCLUSIVE", 0, "ERROR", 0));
  char err[256];
  cr_assert_eq(fl_report_check(r, "one scenario", err, sizeof(err)), 0, "%s",
               err);
  mkdir(ARTIFACTS, 0755);
  const char *html = ARTIFACTS "/report-fragile.html";
  const char *png = ARTIFACTS "/report-fragile.png";
  unlink(png);
  render(fl_report_html, r, html);
  json_decref(r);
  check_html_parses(html);
  chromium(html, "--screenshot=" ARTIFACTS "/report-fragile.png",
           "--window-size=1280,2000");
  unsigned w, h;
  png_size(png, &w, &h);
  cr_expect_eq(w, 1280);
  cr_expect_eq(h, 2000);
  struct stat st;
  cr_assert_eq(stat(png, &st), 0);
  /* A blank page compresses to a few kilobytes; text and charts do not. */
  cr_expect_gt(st.st_size, 40000, "screenshot of %lld bytes: blank?",
               (long long)st.st_size);
}
