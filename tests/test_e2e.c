/* The proof that faultline tells guardrails from their absence: every
 * scenario of the library runs against both example services, with real
 * PostgreSQL, Redis and uvicorn. Every scenario passes on `resilient`; on
 * `fragile` every one fails, for the reasons named below, and none is
 * inconclusive. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

#define SCENARIOS FL_TEST_SOURCE_DIR "/scenarios"
#define JOBS "2"

/* Failed expectations each scenario must show on fragile, as
 * "phase / endpoint: text" (endpoint empty for target expectations). */
struct expected_failure {
  const char *scenario;
  const char *failures[4];
};

static const struct expected_failure fragile[] = {
    {"db-down",
     {"outage / items: rate(503) >= 90%",
      "outage / items: header(Retry-After) on 503",
      "outage / live: rate(200) >= 99%", NULL}},
    {"db-restart",
     {"outage / items: header(Retry-After) on 503",
      "outage / live: rate(200) >= 99%", NULL}},
    {"db-blackhole",
     {"outage / items: max < 2s", "outage / live: rate(200) >= 99%", NULL}},
    {"db-flapping",
     {"flapping / items: rate(500) == 0%", "flapping / live: rate(200) >= 99%",
      NULL}},
    {"dns-failure",
     {"outage / items: header(Retry-After) on 503",
      "outage / live: rate(200) >= 99%", NULL}},
    {"pool-limit", {"outage / items: header(Retry-After) on 503", NULL}},
    {"pool-saturated", {"outage / items: header(Retry-After) on 503", NULL}},
    {"redis-killed",
     {"outage / profile: rate(2xx) >= 95%",
      "outage / profile: header(X-Cache) == \"degraded\" on 2xx",
      /* a client per failed call, each holding a connection */
      "recovery / : settles(conns(redis) <= baseline + 5) within 5s", NULL}},
    {"redis-paused",
     {"outage / profile: p(99) < 1.5s",
      "outage / profile: header(X-Cache) == \"degraded\" on 2xx", NULL}},
    {"fd-exhaustion", {"outage / items: rate(503) >= 50%", NULL}},
    {"disk-full", {"outage / upload: rate(507) >= 95%", NULL}},
    {"db-slow",
     {"slow / items: p(99) < 2s", "slow / items: header(Retry-After) on 503",
      NULL}},
    {"redis-stall",
     {"outage / profile: p(99) < 1.5s",
      "outage / profile: header(X-Cache) == \"degraded\" on 2xx", NULL}},
    /* Protocol faults: a live peer saying no. Redis errors reach the
     * client as 500s (no cache fallback for an error reply). */
    {"redis-loading", {"outage / profile: rate(2xx) >= 95%", NULL}},
    {"redis-oom", {"outage / profile: rate(2xx) >= 95%", NULL}},
    /* PostgreSQL refusing or closing sessions: 500 with no Retry-After,
     * and a liveness probe that needs the database. */
    {"db-too-many-clients",
     {"outage / items: rate(503) >= 80%",
      "outage / items: header(Retry-After) on 503",
      "outage / live: rate(200) >= 99%", NULL}},
    {"db-admin-shutdown",
     {"outage / items: rate(503) >= 80%",
      "outage / items: header(Retry-After) on 503",
      "outage / live: rate(200) >= 99%", NULL}},
    /* The payments upstream: its 503 and a cut body become 500s; a slow
     * one is waited for with no timeout, starving the other endpoints. */
    {"upstream-503",
     {"outage / checkout: rate(503) >= 90%",
      "outage / checkout: header(Retry-After) on 503", NULL}},
    {"upstream-slow",
     {"outage / checkout: rate(503) >= 90%", "outage / checkout: p(99) < 2s",
      "outage / static: rate(2xx) >= 99%", NULL}},
    {"upstream-cut",
     {"outage / checkout: rate(503) >= 90%",
      "outage / checkout: header(Retry-After) on 503", NULL}},
    /* WebSockets: a feed that drops every connection is redialled in a
     * tight loop and its clients see abnormal closes; a silent feed is
     * waited on with no deadline; a storm opens a feed connection per
     * client. */
    {"ws-upstream-drop",
     {"outage / ws: closes(1006) == 0", "always / : fault(ws_close) hit <= 200",
      NULL}},
    {"ws-upstream-silent",
     {"silent / ws: rtt p(99) < 2s", "silent / ws: closes(1013) >= 1", NULL}},
    {"ws-reconnect-storm", {"always / : conns(feed) <= baseline + 20", NULL}},
    /* One client stops reading: the serial broadcast waits on it and the
     * 49 others get nothing until it reads again. */
    {"ws-slow-client", {"stuck / board: messages >= 20 per connection", NULL}},
};

static char dir[256];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(dir), 0);
  chmod(dir, 0755); /* postgres runs as its own user inside */
}
static void teardown(void) { t_rmtree(dir); }

TestSuite(e2e, .init = setup, .fini = teardown);

/* Runs the whole library against a service; returns result.json. */
static json_t *run_suite(const char *service, const char *name) {
  char out[400], svc[400], tmpdir[400], tmpenv[420];
  snprintf(out, sizeof(out), "%s/%s", dir, name);
  snprintf(svc, sizeof(svc), "%s/services/%s.yaml", SCENARIOS, service);
  snprintf(tmpdir, sizeof(tmpdir), "%s/tmp-%s", dir, name);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmpdir);
  cr_assert_eq(mkdir(tmpdir, 0755), 0);
  glob_t g;
  cr_assert_eq(glob(SCENARIOS "/*.yaml", 0, NULL, &g), 0);
  char **argv = calloc(g.gl_pathc + 10, sizeof(char *));
  size_t n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "run";
  argv[n++] = "--quiet";
  argv[n++] = "--jobs";
  argv[n++] = JOBS;
  argv[n++] = "--service";
  argv[n++] = svc;
  argv[n++] = "--out";
  argv[n++] = out;
  for (size_t i = 0; i < g.gl_pathc; i++)
    argv[n++] = g.gl_pathv[i];
  char *env[] = {tmpenv, "NO_COLOR=1", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, 480000, &r), 0);
  cr_log_info("%s\n%s", r.out, r.err);
  char res[450];
  snprintf(res, sizeof(res), "%s/result.json", out);
  json_error_t e;
  json_t *j = json_load_file(res, 0, &e);
  cr_assert_not_null(j, "no result from the %s run (exit %d):\n%s%s", service,
                     r.status, r.out, r.err);
  /* fragile: 1: every scenario fails, startup-db-down included (it cannot
   * start with the database down: the service failing, not an ERROR). */
  int want = strcmp(service, "resilient") == 0 ? 0 : 1;
  cr_expect_eq(r.status, want, "faultline run on %s exited %d", service,
               r.status);
  /* Every temporary file removed, every process gone. */
  char *ls[] = {"ls", "-A", tmpdir, NULL};
  char *pg[] = {"pgrep", "-f", tmpdir, NULL};
  struct t_run left;
  cr_assert_eq(t_run(ls, NULL, NULL, 10000, &left), 0);
  cr_expect_str_eq(left.out, "", "files left by the %s run:\n%s", service,
                   left.out);
  t_run_free(&left);
  cr_assert_eq(t_run(pg, NULL, NULL, 10000, &left), 0);
  cr_expect_str_eq(left.out, "", "processes left by the %s run:\n%s", service,
                   left.out);
  t_run_free(&left);
  /* The reports of this real run: the HTML is well-formed (it is written
   * as XML), the JUnit validates, the Markdown has the verdict table. */
  char html[450], junit[450], md[450];
  snprintf(html, sizeof(html), "%s/report.html", out);
  snprintf(junit, sizeof(junit), "%s/junit.xml", out);
  snprintf(md, sizeof(md), "%s/report.md", out);
  char *xh[] = {"xmllint", "--noout", "--nonet", html, NULL};
  char *xj[] = {"xmllint",           "--noout", "--schema",
                T_DATA "/junit.xsd", junit,     NULL};
  struct t_run x;
  cr_assert_eq(t_run(xh, NULL, NULL, 30000, &x), 0);
  cr_expect_eq(x.status, 0, "%s is not well-formed: %s", html, x.err);
  t_run_free(&x);
  cr_assert_eq(t_run(xj, NULL, NULL, 30000, &x), 0);
  cr_expect_eq(x.status, 0, "%s does not validate: %s", junit, x.err);
  t_run_free(&x);
  char *cat[] = {"cat", md, NULL};
  cr_assert_eq(t_run(cat, NULL, NULL, 10000, &x), 0);
  cr_expect(strstr(x.out, "| Scenario | Service | Verdict |") != NULL &&
                strstr(x.out, "| db-down | ") != NULL,
            "%s has no verdict table:\n%s", md, x.out);
  t_run_free(&x);
  t_run_free(&r);
  globfree(&g);
  free(argv);
  return j;
}

static int failed_has(json_t *scenario, const char *want) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(scenario, "expectations"), i, x) {
    if (strcmp(json_string_value(json_object_get(x, "verdict")), "FAIL"))
      continue;
    const char *ep = json_string_value(json_object_get(x, "endpoint"));
    char name[512];
    snprintf(name, sizeof(name), "%s / %s: %s",
             json_string_value(json_object_get(x, "phase")), ep ? ep : "",
             json_string_value(json_object_get(x, "text")));
    if (strcmp(name, want) == 0)
      return 1;
  }
  return 0;
}

Test(e2e, resilient_passes_fragile_fails_for_the_right_reasons,
     .timeout = 1000) {
  json_t *res = run_suite("resilient", "resilient");
  size_t i;
  json_t *s;
  size_t count = json_array_size(json_object_get(res, "scenarios"));
  cr_expect_geq(count, 14, "only %zu scenarios ran", count);
  json_array_foreach(json_object_get(res, "scenarios"), i, s) {
    char why[2048] = "";
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(s, "expectations"), k, x) {
      if (strcmp(json_string_value(json_object_get(x, "verdict")), "FAIL"))
        continue;
      const char *ep = json_string_value(json_object_get(x, "endpoint"));
      snprintf(why + strlen(why), sizeof(why) - strlen(why),
               "\n  %s / %s: %s: observed %s",
               json_string_value(json_object_get(x, "phase")), ep ? ep : "",
               json_string_value(json_object_get(x, "text")),
               json_string_value(json_object_get(x, "observed")));
    }
    cr_expect_str_eq(json_string_value(json_object_get(s, "verdict")), "PASS",
                     "%s on resilient: %s%s",
                     json_string_value(json_object_get(s, "name")),
                     json_string_value(json_object_get(s, "reason")), why);
  }
  json_decref(res);

  json_t *frag = run_suite("fragile", "fragile");
  json_array_foreach(json_object_get(frag, "scenarios"), i, s) {
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *verdict = json_string_value(json_object_get(s, "verdict"));
    if (strcmp(name, "startup-db-down") == 0) {
      /* fragile builds its pool at start-up: it cannot start at all, and
       * starts without the fault (the control start): the service failing,
       * with `starts` saying how, and nothing else judged. */
      cr_expect_str_eq(verdict, "FAIL", "startup-db-down on fragile: %s",
                       json_string_value(json_object_get(s, "reason")));
      cr_expect(failed_has(s, "always / : starts"),
                "startup-db-down on fragile: 'starts' did not fail");
      const char *obs = NULL;
      size_t k;
      json_t *x;
      json_array_foreach(json_object_get(s, "expectations"), k, x) {
        if (strcmp(json_string_value(json_object_get(x, "text")), "starts") ==
            0)
          obs = json_string_value(json_object_get(x, "observed"));
      }
      cr_expect(obs && strstr(obs, "exited with status 3 after ") == obs &&
                    strstr(obs, "Application startup failed") != NULL,
                "startup-db-down on fragile: starts observed %s", obs);
      json_array_foreach(json_object_get(s, "expectations"), k, x) {
        const char *v = json_string_value(json_object_get(x, "verdict"));
        const char *text = json_string_value(json_object_get(x, "text"));
        if (strcmp(text, "starts") != 0)
          cr_expect_str_eq(v, "NOT_JUDGED", "startup-db-down on fragile: %s",
                           text);
      }
      continue;
    }
    cr_expect_str_eq(verdict, "FAIL", "%s on fragile: %s", name,
                     json_string_value(json_object_get(s, "reason")));
    const struct expected_failure *want = NULL;
    for (size_t k = 0; k < sizeof(fragile) / sizeof(fragile[0]); k++)
      if (strcmp(fragile[k].scenario, name) == 0)
        want = &fragile[k];
    cr_expect_not_null(want, "scenario %s has no expected failures listed",
                       name);
    for (size_t k = 0; want && k < 4 && want->failures[k]; k++)
      cr_expect(failed_has(s, want->failures[k]),
                "%s on fragile: '%s' did not fail", name, want->failures[k]);
  }
  json_decref(frag);
}
