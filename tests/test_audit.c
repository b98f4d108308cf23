/* faultline audit without running a service: the battery's cases, the
 * scenario files they are written as (which `faultline validate` must
 * accept), the matrix's cells from result data, its renderings, the
 * expectation form it relies on, and bad input. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "expect/expect.h"
#include "known_discovery.h"
#include "report.h"
#include "support.h"

#define SERVICE FL_TEST_SOURCE_DIR "/scenarios/services/resilient.yaml"
#define KNOWN T_DATA "/audit_known_discovery.yaml"

TestSuite(audit, .timeout = 60);

struct fixture {
  struct fl_service *sv;
  struct fl_discovery d;
  struct fl_battery b;
};

static void load(struct fixture *f, const char *only) {
  char err[FL_ERRLEN];
  cr_assert_eq(fl_service_load(SERVICE, &f->sv, err, sizeof(err)), 0, "%s",
               err);
  cr_assert_eq(t_known_discovery(KNOWN, &f->d, err, sizeof(err)), 0, "%s", err);
  struct fl_battery_opts bo;
  fl_battery_defaults(&bo);
  cr_assert_eq(
      fl_battery_build(&f->d, f->sv, &bo, only, &f->b, err, sizeof(err)), 0,
      "%s", err);
}

static void unload(struct fixture *f) {
  fl_battery_free(&f->b);
  fl_discovery_free(&f->d);
  fl_service_free(f->sv);
}

static const struct fl_audit_case *case_named(const struct fixture *f,
                                              const char *name) {
  for (size_t i = 0; i < f->b.ncases; i++)
    if (strcmp(f->b.cases[i].name, name) == 0)
      return &f->b.cases[i];
  return NULL;
}

static int role(const struct fl_audit_case *c, const char *ep) {
  for (size_t i = 0; i < c->neps; i++)
    if (strcmp(c->eps[i].name, ep) == 0)
      return c->eps[i].role;
  cr_assert_fail("case %s has no endpoint %s", c->name, ep);
  return -1;
}

Test(audit, battery_has_every_case_of_the_issue) {
  struct fixture f;
  load(&f, NULL);
  static const char *const want[] = {"postgres-down",
                                     "postgres-blackhole",
                                     "postgres-slow",
                                     "postgres-slow-timeout",
                                     "postgres-flapping",
                                     "postgres-slots",
                                     "redis-down",
                                     "redis-blackhole",
                                     "redis-slow",
                                     "redis-slow-timeout",
                                     "redis-flapping",
                                     "dns-localhost-fail",
                                     "disk-uploads-enospc",
                                     "disk-uploads-eio",
                                     "dns-cache.internal-fail",
                                     "process-fds"};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    cr_expect_not_null(case_named(&f, want[i]), "no case %s", want[i]);
  cr_expect_eq(f.b.ncases, sizeof(want) / sizeof(want[0]));
  cr_expect_null(case_named(&f, "redis-slots"), "redis has no slots");
  unload(&f);
}

Test(audit, roles_follow_what_each_endpoint_uses) {
  struct fixture f;
  load(&f, NULL);
  const struct fl_audit_case *c = case_named(&f, "redis-down");
  cr_assert_not_null(c);
  cr_expect_eq(role(c, "profile"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "items"), FL_ROLE_OTHER);
  cr_expect_eq(role(c, "static"), FL_ROLE_OTHER);
  cr_expect_eq(role(c, "live"), FL_ROLE_LIVE);
  cr_expect_eq(role(c, "ready"), FL_ROLE_READY);
  cr_expect_eq(c->eps[c->neps - 1].ready_down, 0,
               "redis is not needed by items: readiness may stay 200");
  c = case_named(&f, "postgres-down");
  cr_expect_eq(role(c, "items"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "profile"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "upload"), FL_ROLE_OTHER);
  cr_expect_eq(c->eps[c->neps - 1].ready_down, 1,
               "every data endpoint needs postgres");
  c = case_named(&f, "disk-uploads-enospc");
  cr_expect_eq(role(c, "upload"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "items"), FL_ROLE_OTHER);
  c = case_named(&f, "dns-localhost-fail");
  cr_expect(strstr(c->faults, "dns: \"localhost\"") != NULL, "%s", c->faults);
  cr_expect(strstr(c->faults, "reset: \"postgres\"") != NULL, "%s", c->faults);
  /* Resolved only at start-up: the pools connected then are reset so
   * that they must resolve again, and their users are judged. */
  c = case_named(&f, "dns-cache.internal-fail");
  cr_assert_not_null(c);
  cr_expect(strstr(c->faults, "dns: \"cache.internal\"") != NULL, "%s",
            c->faults);
  cr_expect(strstr(c->faults, "reset: \"redis\"") != NULL, "%s", c->faults);
  cr_expect(strstr(c->faults, "reset: \"postgres\"") != NULL, "%s", c->faults);
  cr_expect_eq(role(c, "profile"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "items"), FL_ROLE_AFFECTED);
  cr_expect_eq(role(c, "static"), FL_ROLE_OTHER);
  cr_expect_eq(role(c, "upload"), FL_ROLE_OTHER);
  unload(&f);
}

Test(audit, only_keeps_the_named_cases) {
  struct fixture f;
  load(&f, "postgres-s*,process-fds");
  cr_expect_eq(f.b.ncases, 4); /* slow, slow-timeout, slots, fds */
  cr_expect_not_null(case_named(&f, "process-fds"));
  unload(&f);
}

/* Every case, written out, passes `faultline validate` on its service. */
Test(audit, generated_scenarios_validate, .timeout = 120) {
  struct fixture f;
  load(&f, NULL);
  char dir[256];
  cr_assert_eq(t_mkdtemp(dir), 0);
  struct fl_battery_opts bo;
  fl_battery_defaults(&bo);
  char **argv = calloc(f.b.ncases + 5, sizeof(char *));
  argv[0] = T_FAULTLINE;
  argv[1] = "validate";
  argv[2] = "--service";
  argv[3] = SERVICE;
  for (size_t i = 0; i < f.b.ncases; i++) {
    cr_assert(asprintf(&argv[4 + i], "%s/%s.yaml", dir, f.b.cases[i].name) > 0);
    cr_assert_eq(fl_case_write(&f.b.cases[i], &f.d, &bo, SERVICE, argv[4 + i]),
                 0);
  }
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 60000, &r), 0);
  cr_expect_eq(r.status, 0, "validate: %s%s", r.out, r.err);
  t_run_free(&r);
  for (size_t i = 0; i < f.b.ncases; i++)
    free(argv[4 + i]);
  free(argv);
  t_rmtree(dir);
  unload(&f);
}

/* An endpoint whose usual answer is not a 2xx (a 404 for an unknown id,
 * a 401 without a token) is held to that answer, not to 2xx: otherwise
 * every case would call it a cascade. */
Test(audit, endpoints_are_held_to_their_usual_status) {
  struct fixture f;
  load(&f, NULL);
  fl_battery_free(&f.b);
  for (size_t i = 0; i < f.d.nendpoints; i++)
    if (strcmp(f.d.endpoints[i].name, "static") == 0)
      f.d.endpoints[i].status = 404;
  struct fl_battery_opts bo;
  fl_battery_defaults(&bo);
  char err[FL_ERRLEN], dir[256], path[300];
  cr_assert_eq(
      fl_battery_build(&f.d, f.sv, &bo, "redis-down", &f.b, err, sizeof(err)),
      0, "%s", err);
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(path, sizeof(path), "%s/redis-down.yaml", dir);
  cr_assert_eq(fl_case_write(&f.b.cases[0], &f.d, &bo, SERVICE, path), 0);
  static char text[65536];
  FILE *in = fopen(path, "r");
  cr_assert_not_null(in);
  text[fread(text, 1, sizeof(text) - 1, in)] = '\0';
  fclose(in);
  cr_expect(strstr(text, "static: [ \"rate(404) >= 95%\"") != NULL, "%s", text);
  cr_expect(strstr(text, "items: [ \"rate(2xx) >= 95%\"") != NULL, "%s", text);
  cr_expect(strstr(text, "profile: [ \"recovers(rate(2xx) >= 90%)") != NULL,
            "%s", text);
  t_rmtree(dir);
  unload(&f);
}

/* ---- the matrix from result data ---- */

static json_t *expectation(const char *phase, const char *ep, const char *text,
                           int pass) {
  return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s}", "phase", phase,
                   "endpoint", ep, "text", text, "expected", "x", "observed",
                   pass ? "held" : "seen otherwise", "verdict",
                   pass ? "PASS" : "FAIL");
}

/* A scenario for the postgres-down case: items and profile affected,
 * static and upload not, with the failures given. */
static json_t *scenario(const char *verdict, json_t *exps, int items_2xx) {
  json_t *series =
      json_pack("[{s:i, s:i, s:i, s:i, s:i, s:i}]", "t", 4, "2xx", items_2xx,
                "3xx", 0, "4xx", 0, "5xx", items_2xx ? 0 : 10, "error", 0);
  return json_pack("{s:s, s:s, s:s, s:[{s:s, s:f, s:f}], s:[{s:s, s:o}], "
                   "s:o}",
                   "name", "postgres-down", "verdict", verdict, "reason", "r",
                   "phases", "name", "fault", "start", 3.0, "end", 8.0,
                   "endpoints", "name", "items", "series", series,
                   "expectations", exps);
}

static json_t *matrix_of(json_t *sc) {
  struct fixture f;
  load(&f, "postgres-down");
  json_t *result = json_pack("{s:[o]}", "scenarios", sc);
  json_t *m = fl_matrix_build(&f.b, result);
  json_decref(result);
  unload(&f);
  cr_assert_not_null(m);
  return m;
}

static const char *cell(const json_t *m, const char *ep) {
  const json_t *c = json_array_get(json_object_get(m, "cases"), 0);
  return json_string_value(json_object_get(
      json_object_get(json_object_get(c, "cells"), ep), "cell"));
}

Test(audit, matrix_names_each_failure) {
  json_t *e = json_array();
  json_array_append_new(e, expectation("fault", "items", "rate(500) == 0%", 0));
  json_array_append_new(e, expectation("fault", "items", "p(99) < 2s", 0));
  json_array_append_new(e, expectation("fault", "profile", "p(99) < 2s", 0));
  json_array_append_new(e,
                        expectation("fault", "upload", "rate(2xx) >= 95%", 0));
  json_array_append_new(e,
                        expectation("fault", "ready", "rate(503) >= 80%", 0));
  json_array_append_new(
      e, expectation("settled", NULL, "conns(redis) <= baseline + 5", 0));
  json_array_append_new(e, expectation("fault", "static", "p(99) < 1s", 1));
  json_t *m = matrix_of(scenario("FAIL", e, 0));
  cr_expect_str_eq(cell(m, "items"), "500", "500 goes before hang");
  cr_expect_str_eq(cell(m, "profile"), "hang");
  cr_expect_str_eq(cell(m, "upload"), "cascade");
  cr_expect_str_eq(cell(m, "static"), "unaffected");
  cr_expect_str_eq(cell(m, "ready"), "readiness stays up");
  cr_expect_str_eq(cell(m, "process"), "leak");
  cr_expect_str_eq(json_string_value(json_object_get(m, "verdict")),
                   "FINDINGS");
  json_decref(m);
}

Test(audit, matrix_tells_503_from_fallback_and_missing_retry_after) {
  json_t *e = json_array();
  json_array_append_new(e, expectation("fault", "profile",
                                       "header(Retry-After) on 5xx if any", 0));
  json_array_append_new(
      e, expectation("recovery", "ready", "recovers(rate(2xx) >= 95%)", 0));
  json_t *m = matrix_of(scenario("FAIL", e, 0));
  cr_expect_str_eq(cell(m, "items"), "graceful 503");
  cr_expect_str_eq(cell(m, "profile"), "no Retry-After");
  cr_expect_str_eq(cell(m, "ready"), "no recovery");
  json_decref(m);
  m = matrix_of(scenario("PASS", json_array(), 10));
  cr_expect_str_eq(cell(m, "items"), "fallback 2xx");
  cr_expect_str_eq(cell(m, "ready"), "graceful 503");
  cr_expect_str_eq(cell(m, "process"), "ok");
  cr_expect_str_eq(json_string_value(json_object_get(m, "verdict")),
                   "GRACEFUL");
  json_decref(m);
}

Test(audit, inconclusive_case_proves_nothing) {
  json_t *m = matrix_of(scenario("INCONCLUSIVE", json_array(), 10));
  cr_expect_str_eq(cell(m, "items"), "inconclusive");
  cr_expect_str_eq(cell(m, "static"), "inconclusive");
  cr_expect_str_eq(json_string_value(json_object_get(m, "verdict")),
                   "INCONCLUSIVE");
  json_decref(m);
  /* A case missing from the result did not run. */
  struct fixture f;
  load(&f, "postgres-down");
  json_t *empty = json_pack("{s:[]}", "scenarios");
  m = fl_matrix_build(&f.b, empty);
  cr_expect_str_eq(cell(m, "items"), "inconclusive");
  json_decref(m);
  json_decref(empty);
  unload(&f);
}

static char *render(int (*fn)(const json_t *, FILE *), const json_t *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cr_assert_eq(fn(m, f), 0);
  fclose(f);
  return buf;
}

static int summary(const json_t *m, FILE *f) {
  return fl_audit_summary(m, f, 0);
}

Test(audit, renderings_show_the_cells) {
  json_t *e = json_array();
  json_array_append_new(e, expectation("fault", "items", "rate(500) == 0%", 0));
  json_t *m = matrix_of(scenario("FAIL", e, 0));
  json_object_set_new(m, "service", json_string("svc<x>"));
  char *md = render(fl_audit_markdown, m);
  cr_expect(strstr(md, "| postgres | down | **500** |") != NULL, "%s", md);
  cr_expect(strstr(md, "scenarios/postgres-down.yaml") != NULL, "%s", md);
  char *html = render(fl_audit_html, m);
  cr_expect(strstr(html, "href=\"run/report.html#s0\"") != NULL, "%s", html);
  cr_expect(strstr(html, "class=\"bad\"") != NULL);
  cr_expect(strstr(html, "svc&lt;x&gt;") != NULL, "names are escaped");
  char *term = render(summary, m);
  cr_expect(strstr(term, "500 (items)") != NULL, "%s", term);
  cr_expect(strstr(term, "FINDINGS") != NULL, "%s", term);
  free(md);
  free(html);
  free(term);
  json_decref(m);
}

/* ---- the expectation form the cases use ---- */

Test(audit, header_if_any_passes_without_such_responses) {
  struct fl_expect e;
  char err[256], exp[128], obs[256];
  int col;
  cr_assert_eq(fl_expect_parse("header(Retry-After) on 5xx if any", &e, &col,
                               err, sizeof(err)),
               0, "%s", err);
  cr_expect_eq(e.if_any, 1);
  cr_expect_neq(fl_expect_parse("header(Retry-After) on 5xx if", &e, &col, err,
                                sizeof(err)),
                0);
  cr_assert_eq(fl_expect_parse("header(Retry-After) on 5xx if any", &e, &col,
                               err, sizeof(err)),
               0);
  struct fl_request ok = {.sched = 0.1, .latency = 0.01, .status = 200};
  cr_expect_eq(fl_expect_eval_endpoint(&e, &ok, 1, 0, 1, 2, exp, sizeof(exp),
                                       obs, sizeof(obs)),
               1, "%s", obs);
  cr_assert_eq(
      fl_expect_parse("header(Retry-After) on 5xx", &e, &col, err, sizeof(err)),
      0);
  cr_expect_eq(fl_expect_eval_endpoint(&e, &ok, 1, 0, 1, 2, exp, sizeof(exp),
                                       obs, sizeof(obs)),
               0, "without 'if any' no response in CLASS fails");
}

/* ---- bad input: exit 2, with the place ---- */

static struct t_run audit(const char *endpoints_text, const char *extra) {
  char dir[256], path[300], out[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(path, sizeof(path), "%s/endpoints.yaml", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  FILE *f = fopen(path, "w");
  fputs(endpoints_text, f);
  fclose(f);
  char *argv[] = {T_FAULTLINE,   "audit", "--quiet",     "--out", out,
                  "--endpoints", path,    (char *)extra, SERVICE, NULL};
  if (extra == NULL) {
    argv[7] = SERVICE;
    argv[8] = NULL;
  }
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 80000, &r), 0);
  t_rmtree(dir);
  return r;
}

Test(audit, bad_input_exits_2_and_runs_nothing) {
  struct t_run r = audit("endpoints:\n  - { method: GET, path: /x }\n", NULL);
  cr_expect_eq(r.status, 2);
  cr_expect(strstr(r.err, "endpoints.yaml:1:1: an endpoints file is a list") !=
                NULL,
            "%s", r.err);
  t_run_free(&r);
  r = audit("- { method: GET, path: /x }\n- { method: GET, path: x }\n", NULL);
  cr_expect_eq(r.status, 2);
  cr_expect(strstr(r.err, "endpoints.yaml:2:") != NULL, "%s", r.err);
  cr_expect(strstr(r.err, "must start with '/'") != NULL, "%s", r.err);
  t_run_free(&r);
  r = audit("- { method: GET, path: /x, colour: red }\n", NULL);
  cr_expect_eq(r.status, 2);
  cr_expect(strstr(r.err, "unknown key 'colour'") != NULL, "%s", r.err);
  t_run_free(&r);
  r = audit("- { method: GET, path: /x }\n", "--jobs=0");
  cr_expect_eq(r.status, 2);
  t_run_free(&r);
  r = audit("- { method: GET, path: /x }\n", "--openapi=openapi.json");
  cr_expect_eq(r.status, 2);
  t_run_free(&r);
  char *argv[] = {T_FAULTLINE, "audit", NULL};
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2);
  t_run_free(&r);
}

/* --only is checked against the cases, which need discovery: the service
 * runs once, and no case does. */
Test(audit, only_that_keeps_nothing_exits_2, .timeout = 90) {
  struct t_run r =
      audit("- { method: GET, path: /api/static }\n", "--only=nothing-*");
  cr_expect_eq(r.status, 2, "%s", r.err);
  cr_expect(strstr(r.err, "keeps none") != NULL, "%s", r.err);
  t_run_free(&r);
}

Test(audit, help_page) {
  char *argv[] = {T_FAULTLINE, "audit", "--help", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 0);
  cr_expect(strstr(r.out, "usage: faultline audit") != NULL, "%s", r.out);
  t_run_free(&r);
}
