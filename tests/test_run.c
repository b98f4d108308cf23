/* faultline run and validate, from the outside: real files, a real target
 * (python3's http.server under the shim), real redis-server. Bad files are
 * refused with their place; every ending (pass, inconclusive, a target that
 * dies at start, SIGINT, SIGTERM) leaves no process and no file behind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "support.h"

static char dir[256], tmp[300], out[300];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  cr_assert_eq(mkdir(tmp, 0755), 0);
}

static void teardown(void) { t_rmtree(dir); }

TestSuite(run, .init = setup, .fini = teardown);

static void write_file(const char *name, const char *text) {
  char path[400];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

/* Entries left in our private TMPDIR: the runner must leave none. */
static int leftovers(void) {
  DIR *d = opendir(tmp);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static int alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

static void run(struct t_run *r, const char *file, int timeout_ms) {
  char path[400], tmpenv[320];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  char *argv[] = {T_FAULTLINE, "run", "--out", out, path, NULL};
  char *env[] = {tmpenv, NULL};
  cr_assert_eq(t_run(argv, env, NULL, timeout_ms, r), 0);
}

/* A static file server that needs no dependency. */
static const char *web_service =
    "service: web\n"
    "command: [/usr/bin/python3, -m, http.server, --bind, 127.0.0.1, "
    "\"${PORT}\"]\n"
    "ready: { tcp: true, timeout: 10s }\n";

static const char *web_scenario =
    "scenario: web\n"
    "service: web.yaml\n"
    "traffic:\n"
    "  root: { request: GET /, rate: 20, timeout: 2s }\n"
    "timeline:\n"
    "  - phase: a\n"
    "    duration: 1s\n"
    "  - phase: b\n"
    "    duration: 1s\n"
    "    faults:\n"
    "      - { refuse: \"127.0.0.1:9\" }\n"
    "expect:\n"
    "  a:\n"
    "    root: [ \"rate(200) >= 95%\", \"requests >= 15\" ]\n"
    "  always:\n"
    "    - alive\n";

Test(run, undelivered_fault_is_inconclusive, .timeout = 60) {
  write_file("web.yaml", web_service);
  write_file("s.yaml", web_scenario);
  struct t_run r;
  run(&r, "s.yaml", 45000);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect(strstr(r.out, "INCONCLUSIVE") != NULL, "%s", r.out);
  cr_expect(strstr(r.out, "fault never delivered: refuse 127.0.0.1:9") != NULL,
            "%s", r.out);
  char res[400];
  snprintf(res, sizeof(res), "%s/result.json", out);
  cr_expect_eq(access(res, R_OK), 0, "no %s", res);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* An optional fault never met proves nothing either way: beside a
 * delivered one the scenario passes; alone it leaves it INCONCLUSIVE. */
Test(run, optional_fault_never_met, .timeout = 90) {
  write_file("web.yaml", web_service);
  char text[2048];
  snprintf(text, sizeof(text), "%s", web_scenario);
  char *at = strstr(text, "      - { refuse: \"127.0.0.1:9\" }\n");
  cr_assert_not_null(at);
  snprintf(at, sizeof(text) - (size_t)(at - text),
           "      - { exhaust: sockets }\n"
           "      - { refuse: \"127.0.0.1:9\", optional: true }\n%s",
           strstr(web_scenario, "expect:\n"));
  write_file("s.yaml", text);
  struct t_run r;
  run(&r, "s.yaml", 60000);
  cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
  char res[400];
  snprintf(res, sizeof(res), "%s/result.json", out);
  json_t *j = json_load_file(res, 0, NULL);
  cr_assert_not_null(j, "no %s", res);
  json_t *faults = json_object_get(
      json_array_get(json_object_get(j, "scenarios"), 0), "faults");
  cr_expect(
      json_is_true(json_object_get(json_array_get(faults, 1), "optional")));
  cr_expect_eq(json_integer_value(
                   json_object_get(json_array_get(faults, 1), "delivered")),
               0);
  /* python's accept() retried in a tight loop on EMFILE: a flood of
   * injections, of which the run keeps the last ones and counts all. */
  json_t *sc = json_array_get(json_object_get(j, "scenarios"), 0);
  size_t kept = json_array_size(json_object_get(sc, "injections"));
  json_int_t total =
      json_integer_value(json_object_get(sc, "injections_total"));
  cr_expect(kept > 0 && kept <= 4096, "%zu injections kept", kept);
  cr_expect_geq(total, (json_int_t)kept);
  json_decref(j);
  t_run_free(&r);

  at = strstr(text, "      - { exhaust: sockets }\n");
  memmove(at, at + strlen("      - { exhaust: sockets }\n"),
          strlen(at + strlen("      - { exhaust: sockets }\n")) + 1);
  write_file("s.yaml", text);
  run(&r, "s.yaml", 60000);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect(strstr(r.out, "INCONCLUSIVE") != NULL, "%s", r.out);
  cr_expect(strstr(r.out, "any of its 1 optional faults") != NULL, "%s", r.out);
  t_run_free(&r);
}

/* --json and --junit: copies where CI wants them, beside the usual ones;
 * a path that cannot be written is refused before anything runs. */
Test(run, json_and_junit_copies, .timeout = 60) {
  write_file("web.yaml", web_service);
  write_file("s.yaml", web_scenario);
  char path[400], json[400], junit[400], tmpenv[320];
  snprintf(path, sizeof(path), "%s/s.yaml", dir);
  snprintf(json, sizeof(json), "%s/ci-result.json", dir);
  snprintf(junit, sizeof(junit), "%s/ci-junit.xml", dir);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  char *env[] = {tmpenv, NULL};
  char *bad[] = {T_FAULTLINE,           "run", "--out", out, "--json",
                 "/nonexistent/r.json", path,  NULL};
  struct t_run r;
  cr_assert_eq(t_run(bad, env, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
  cr_expect(strstr(r.err, "cannot write --json /nonexistent/r.json: No such "
                          "file or directory") != NULL,
            "%s", r.err);
  cr_expect_eq(access(out, F_OK), -1, "it ran anyway");
  t_run_free(&r);
  char *folder[] = {T_FAULTLINE, "run", "--out", out,
                    "--junit",   dir,   path,    NULL};
  cr_assert_eq(t_run(folder, env, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
  cr_expect(strstr(r.err, "Is a directory") != NULL, "%s", r.err);
  t_run_free(&r);
  char *novalue[] = {T_FAULTLINE, "run", path, "--json", NULL};
  cr_assert_eq(t_run(novalue, env, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
  cr_expect(strstr(r.err, "--json needs a value") != NULL, "%s", r.err);
  cr_expect_eq(access(out, F_OK), -1, "it ran anyway");
  t_run_free(&r);

  char *argv[] = {T_FAULTLINE, "run",     "--out", out,  "--json",
                  json,        "--junit", junit,   path, NULL};
  cr_assert_eq(t_run(argv, env, NULL, 45000, &r), 0);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  t_run_free(&r);
  /* The copies are the same documents as those in the output folder. */
  const char *pairs[][2] = {{json, "result.json"}, {junit, "junit.xml"}};
  for (size_t i = 0; i < 2; i++) {
    char theirs[450], cmd[1000];
    snprintf(theirs, sizeof(theirs), "%s/%s", out, pairs[i][1]);
    snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", pairs[i][0], theirs);
    cr_expect_eq(system(cmd), 0, "%s differs from %s", pairs[i][0], theirs);
  }
  FILE *f = fopen(junit, "r");
  cr_assert_not_null(f);
  char head[256] = "";
  cr_expect_gt(fread(head, 1, sizeof(head) - 1, f), 0);
  fclose(f);
  cr_expect(strstr(head, "<testsuites") != NULL, "%s", head);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
}

/* Every form `faultline list` shows, filled in, is a valid expectation. */
Test(run, list_forms_validate) {
  char *argv[] = {T_FAULTLINE, "list", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_assert_eq(r.status, 0, "%s", r.err);
  static const char *const actions[] = {"refuse",   "latency", "down",  "kill",
                                        "saturate", "dns",     "enospc"};
  for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
    char needle[32];
    snprintf(needle, sizeof(needle), "\n  %s ", actions[i]);
    cr_expect(strstr(r.out, needle) != NULL, "no %s in:\n%s", actions[i],
              r.out);
  }
  /* Endpoint forms, then target forms: "    FORM   what it means". */
  char endpoint[2048] = "", target[2048] = "", ws[2048] = "";
  char *section = NULL;
  int forms = 0;
  for (char *line = strtok(r.out, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    if (strstr(line, "per endpoint:") != NULL)
      section = endpoint;
    else if (strstr(line, "per WebSocket endpoint") != NULL)
      section = ws;
    else if (strstr(line, "for the target:") != NULL)
      section = target;
    if (section == NULL || strncmp(line, "    ", 4) != 0)
      continue;
    char form[128], filled[160] = "";
    size_t len = 0;
    char *gap = strstr(line + 4, "  ");
    snprintf(form, sizeof(form), "%.*s", gap ? (int)(gap - line - 4) : 100,
             line + 4);
    /* Placeholders, longest first so N does not eat N% or NMB. */
    static const char *const subst[][2] = {
        {"header(NAME)", "header(Retry-After)"},
        {"fault(NAME)", "fault(refuse)"},
        {"conns(NAME)", "conns(other)"},
        {"CODE", "1011"},
        {"CLASS", "503"},
        {"OP", ">="},
        {"DURATION", "2s"},
        {"N%", "50%"},
        {"NMB", "50MB"},
        {"p(N)", "p(99)"},
        {"N", "1"}};
    for (char *p = form; *p != '\0';) {
      size_t k = 0;
      while (k < sizeof(subst) / sizeof(subst[0]) &&
             strncmp(p, subst[k][0], strlen(subst[k][0])) != 0)
        k++;
      if (k < sizeof(subst) / sizeof(subst[0])) {
        len += (size_t)snprintf(filled + len, sizeof(filled) - len, "%s",
                                subst[k][1]);
        p += strlen(subst[k][0]);
      } else {
        filled[len++] = *p++;
        filled[len] = '\0';
      }
    }
    snprintf(section + strlen(section), 2048 - strlen(section),
             section != target ? "      - '%s'\n" : "    - '%s'\n", filled);
    forms++;
  }
  t_run_free(&r);
  cr_assert_eq(forms, 26, "found %d forms", forms);
  char scenario[6000];
  snprintf(scenario, sizeof(scenario),
           "scenario: forms\nservice: web.yaml\ntraffic:\n"
           "  root: { request: GET /, rate: 5 }\n"
           "  live: { request: WS /ws, connections: 1 }\n"
           "timeline:\n  - phase: a\n    duration: 1s\n"
           "    faults: [ { refuse: \"127.0.0.1:9\" } ]\n"
           "expect:\n  a:\n    root:\n%s    live:\n%s  always:\n%s",
           endpoint, ws, target);
  write_file("web.yaml", web_service);
  write_file("forms.yaml", scenario);
  char path[400];
  snprintf(path, sizeof(path), "%s/forms.yaml", dir);
  char *val[] = {T_FAULTLINE, "validate", path, NULL};
  cr_assert_eq(t_run(val, NULL, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 0, "%s\n%s", scenario, r.err);
  t_run_free(&r);
}

Test(run, target_dying_at_start_is_an_error, .timeout = 60) {
  write_file("web.yaml", "service: web\n"
                         "command: \"echo starting; exit 3\"\n"
                         "ready: { tcp: true, timeout: 10s }\n");
  write_file("s.yaml", web_scenario);
  struct t_run r;
  run(&r, "s.yaml", 45000);
  cr_expect_eq(r.status, 3, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect(strstr(r.out, "ERROR") != NULL, "%s", r.out);
  cr_expect(strstr(r.out, "the target exited with status 3 while starting") !=
                NULL,
            "%s", r.out);
  char log[400];
  snprintf(log, sizeof(log), "%s/web/target.log", out);
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f, "no target log at %s", log);
  char line[64] = "";
  cr_expect_not_null(fgets(line, sizeof(line), f));
  fclose(f);
  cr_expect_str_eq(line, "starting\n");
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* Killed by a signal halfway: faultline ends the target and redis, removes
 * its files, still writes what it saw, and exits 130. */
static void interrupted(int sig) {
  write_file("svc.yaml", "service: web\n"
                         "command: [/usr/bin/python3, -m, http.server, --bind, "
                         "127.0.0.1, \"${PORT}\"]\n"
                         "ready: { tcp: true }\n"
                         "dependencies:\n"
                         "  cache: { type: redis }\n");
  write_file("long.yaml", "scenario: long\n"
                          "service: svc.yaml\n"
                          "traffic:\n"
                          "  root: { request: GET /, rate: 5 }\n"
                          "timeline:\n"
                          "  - phase: a\n"
                          "    duration: 60s\n"
                          "    faults: [ { kill: cache } ]\n");
  char path[400], tmpenv[320];
  snprintf(path, sizeof(path), "%s/long.yaml", dir);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  char *argv[] = {T_FAULTLINE, "run", "--out", out, path, NULL};
  char *env[] = {tmpenv, NULL};
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, env, 1), 0);
  char line[512];
  cr_assert_eq(t_expect(&p, "target pid", line, sizeof(line), 30000), 0,
               "the target never started");
  pid_t target = atoi(strstr(line, "target pid") + 11);
  cr_assert_eq(t_expect(&p, "traffic for", NULL, 0, 30000), 0);
  cr_assert(alive(target));
  kill(p.pid, sig);
  int st = t_finish(&p, 20000);
  cr_expect_eq(st, 130, "faultline exited %d after signal %d", st, sig);
  long long end = t_now_ms() + 5000;
  while (alive(target) && t_now_ms() < end)
    usleep(10000);
  cr_expect(!alive(target), "the target (pid %d) outlived faultline", target);
  struct t_run r;
  char *pg[] = {"pgrep", "-f", tmp, NULL};
  cr_assert_eq(t_run(pg, NULL, NULL, 5000, &r), 0);
  cr_expect_str_eq(r.out, "", "processes left running from %s", tmp);
  t_run_free(&r);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  char res[400];
  snprintf(res, sizeof(res), "%s/result.json", out);
  cr_expect_eq(access(res, R_OK), 0, "no %s after the signal", res);
}

Test(run, sigterm_cleans_up, .timeout = 90) { interrupted(SIGTERM); }
Test(run, sigint_cleans_up, .timeout = 90) { interrupted(SIGINT); }

/* ---- validate ---- */

struct bad_case {
  const char *text;
  const char *message; /* after "FILE:" */
};

static const struct bad_case bad_scenarios[] = {
    {"scenario: x\nservice: web.yaml\ntraffik: {}\n",
     "3:1: unknown key 'traffik' in a scenario file (allowed: scenario, "
     "description, service, seed, traffic, timeline, expect)"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: 10 }\n"
     "timeline:\n  - phase: p\n    duration: 3x\n",
     "6:15: bad duration '3x' for duration (allowed: a number with ms, s or "
     "m, e.g. 250ms, 2s, 1m)"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: 10 }\n"
     "timeline:\n  - phase: p\n    duration: 1s\n"
     "    faults: [ { refuze: postgres } ]\n",
     "7:17: unknown fault 'refuze'"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: 10 }\n"
     "timeline:\n  - phase: p\n    duration: 1s\n"
     "expect:\n  q:\n    a: [ \"rate(2xx) >= 9%\" ]\n",
     "8:3: expectations for phase 'q', which the timeline does not define"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: 10 }\n"
     "timeline:\n  - phase: p\n    duration: 1s\n"
     "expect:\n  p:\n    a: [ \"rate(2xx) >= 105%\" ]\n",
     "9:24: bad percentage '105%'"},
    {"scenario: x\ntraffic:\n  a: { request: FETCH /, rate: 10 }\n",
     "3:17: unknown method 'FETCH'"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: -1 }\n",
     "3:30: bad rate '-1' (allowed: a number above 0, e.g. 50)"},
    {"scenario: x\ntraffic:\n  a: { request: \"GET /p/{5..1}\", rate: 10 }\n",
     "3:25: empty range '{5..1}' in path '/p/{5..1}': its start is above its "
     "end (allowed: {A..B} with whole numbers A <= B, or {x,y,...} with two "
     "or more non-empty items)"},
    {"scenario: x\ntraffic:\n  a:\n    request: GET /p/{items\n"
     "    rate: 10\n",
     "4:21: unclosed '{' in path '/p/{items'"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: { p: 10 } }\n"
     "timeline:\n  - phase: p\n    duration: 1s\n"
     "  - phase: q\n    duration: 1s\n",
     "3:30: rate of endpoint 'a' names no rate for phase 'q' (name every "
     "phase, or give default: N)"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: { p: 1, r: 2 } }\n"
     "timeline:\n  - phase: p\n    duration: 1s\n",
     "3:38: rate for phase 'r', which the timeline does not define (allowed: "
     "p, default)"},
    {"scenario: x\ntraffic:\n  a: { request: GET /, rate: 5, concurrency: 0 "
     "}\n",
     "3:46: bad concurrency '0' (allowed: a whole number of requests in "
     "flight, 1 to 10000)"},
    {"scenario: [x\n", "not valid YAML"},
};

Test(run, validate_reports_place_and_reason) {
  write_file("web.yaml", web_service);
  for (size_t i = 0; i < sizeof(bad_scenarios) / sizeof(bad_scenarios[0]);
       i++) {
    write_file("bad.yaml", bad_scenarios[i].text);
    char path[400];
    snprintf(path, sizeof(path), "%s/bad.yaml", dir);
    char *argv[] = {T_FAULTLINE, "validate", path, NULL};
    struct t_run r;
    cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
    cr_expect_eq(r.status, 2, "case %zu: exit %d", i, r.status);
    cr_expect(strncmp(r.err, path, strlen(path)) == 0 &&
                  strstr(r.err, bad_scenarios[i].message) != NULL,
              "case %zu: expected '%s: ...%s', got '%s'", i, path,
              bad_scenarios[i].message, r.err);
    t_run_free(&r);
  }
}

Test(run, bad_file_runs_nothing) {
  write_file("web.yaml", web_service);
  write_file("bad.yaml", "scenario: x\nservice: web.yaml\ntraffic:\n"
                         "  a: { request: GET /, rate: 10 }\ntimeline:\n"
                         "  - phase: p\n    duration: 1s\n"
                         "    faults: [ { kill: nothere } ]\n");
  struct t_run r;
  run(&r, "bad.yaml", 10000);
  cr_expect_eq(r.status, 2);
  cr_expect(strstr(r.err, "kill needs a managed dependency of service 'web', "
                          "found 'nothere'") != NULL,
            "%s", r.err);
  cr_expect_eq(access(out, F_OK), -1, "an output folder was created");
  cr_expect_eq(leftovers(), 0);
  t_run_free(&r);
}

Test(run, library_validates) {
  char cmd[2048];
  snprintf(cmd, sizeof(cmd),
           "%s validate %s/scenarios/*.yaml %s/scenarios/services/*.yaml",
           T_FAULTLINE, FL_TEST_SOURCE_DIR, FL_TEST_SOURCE_DIR);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &r), 0);
  cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
  t_run_free(&r);
}

/* A target that never becomes ready: ERROR at its deadline, and nothing of
 * the run left behind. */
Test(run, readiness_deadline_is_an_error, .timeout = 60) {
  write_file("web.yaml", "service: web\n"
                         "command: \"exec sleep 600\"\n"
                         "ready: { tcp: true, timeout: 1s }\n");
  write_file("s.yaml", web_scenario);
  struct t_run r;
  long long t0 = t_now_ms();
  run(&r, "s.yaml", 45000);
  cr_expect_eq(r.status, 3, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect(strstr(r.out, "the target was not ready within 1s") != NULL, "%s",
            r.out);
  cr_expect_lt(t_now_ms() - t0, 20000, "the deadline was not kept");
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  char *pg[] = {"pgrep", "-x", "-f", "sleep 600", NULL};
  struct t_run left;
  cr_assert_eq(t_run(pg, NULL, NULL, 5000, &left), 0);
  cr_expect_str_eq(left.out, "", "the target outlived the run");
  t_run_free(&left);
  t_run_free(&r);
}

/* A dependency that cannot start (no redis-server on this PATH): ERROR
 * naming it, the target never started, nothing left behind. */
Test(run, dependency_failure_is_an_error, .timeout = 60) {
  write_file("svc.yaml", "service: web\n"
                         "command: [/usr/bin/python3, -m, http.server, "
                         "\"${PORT}\"]\n"
                         "dependencies:\n"
                         "  cache: { type: redis }\n");
  write_file("s.yaml", "scenario: s\nservice: svc.yaml\ntraffic:\n"
                       "  a: { request: GET /, rate: 5 }\ntimeline:\n"
                       "  - phase: p\n    duration: 1s\n");
  char path[400], tmpenv[320];
  snprintf(path, sizeof(path), "%s/s.yaml", dir);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  char *argv[] = {T_FAULTLINE, "run", "--out", out, path, NULL};
  /* setpriv is there (the runner needs it), redis-server is not. */
  char bin[300], link[320], pathenv[320];
  snprintf(bin, sizeof(bin), "%s/bin", dir);
  snprintf(link, sizeof(link), "%s/setpriv", bin);
  snprintf(pathenv, sizeof(pathenv), "PATH=%s", bin);
  cr_assert_eq(mkdir(bin, 0755), 0);
  cr_assert_eq(symlink("/usr/bin/setpriv", link), 0);
  char *env[] = {tmpenv, pathenv, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, 30000, &r), 0);
  cr_expect_eq(r.status, 3, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect(strstr(r.out, "dependency cache did not start") != NULL &&
                strstr(r.out, "redis-server") != NULL,
            "%s", r.out);
  cr_expect(strstr(r.err, "target pid") == NULL, "the target was started");
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* result.json's "restarts" is the number `no restart` judges: 0 for a
 * target that ran to the end (its stop by the runner is no restart), 1
 * for one that ended on its own during the run. */
static void restarts_case(const char *command, int want, int exit_status) {
  char service[512];
  snprintf(service, sizeof(service),
           "service: web\n"
           "command: [%s/usr/bin/python3, -m, http.server, --bind, "
           "127.0.0.1, \"${PORT}\"]\n"
           "ready: { tcp: true, timeout: 10s }\n",
           command);
  write_file("web.yaml", service);
  write_file("s.yaml", "scenario: web\n"
                       "service: web.yaml\n"
                       "traffic:\n"
                       "  root: { request: GET /, rate: 20, timeout: 1s }\n"
                       "timeline:\n"
                       "  - phase: a\n"
                       "    duration: 3s\n"
                       "expect:\n"
                       "  always:\n"
                       "    - no restart\n");
  struct t_run r;
  run(&r, "s.yaml", 45000);
  cr_expect_eq(r.status, exit_status, "exit %d\n%s%s", r.status, r.out, r.err);
  char res[400], cmd[600], want_line[64];
  snprintf(res, sizeof(res), "%s/result.json", out);
  snprintf(want_line, sizeof(want_line), "\"restarts\": %d", want);
  snprintf(cmd, sizeof(cmd), "grep -q '%s' '%s'", want_line, res);
  cr_expect_eq(system(cmd), 0, "no %s in %s", want_line, res);
  snprintf(cmd, sizeof(cmd), "grep -q '\"observed\": \"%s\"' '%s'",
           want ? "restarted 1 time" : "no restart", res);
  cr_expect_eq(system(cmd), 0, "`no restart` judged another number");
  t_run_free(&r);
}

Test(run, restarts_is_what_no_restart_judges, .timeout = 60) {
  restarts_case("", 0, 0);
}

Test(run, target_ending_early_is_a_restart, .timeout = 60) {
  restarts_case("/usr/bin/timeout, 1.5, ", 1, 1);
}

/* ---- a target that does not start: its failure, or the harness's ---- */

/* A service the way many are written: it reaches its cache at start-up
 * and exits 3 when it cannot (gate.py), else serves HTTP. */
static const char *gate_py =
    "import os, socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', "
    "int(os.environ['CACHE_PORT'])), 2).close()\n"
    "except OSError as e:\n"
    "    print('starting', flush=True)\n"
    "    print('cannot reach the cache:', e, flush=True)\n"
    "    sys.exit(3)\n"
    "os.execv('/usr/bin/python3', ['python3', '-m', 'http.server', "
    "'--bind', '127.0.0.1', os.environ['PORT']])\n";

static void gate_service(const char *command) {
  char svc[512];
  snprintf(svc, sizeof(svc),
           "service: gate\n"
           "command: %s\n"
           "env: { CACHE_PORT: \"${CACHE_PORT}\", PORT: \"${PORT}\" }\n"
           "ready: { tcp: true, timeout: 10s }\n"
           "dependencies:\n"
           "  cache: { type: redis }\n",
           command);
  write_file("gate.yaml", svc);
  write_file("gate.py", gate_py);
  write_file("s.yaml", "scenario: gate\n"
                       "service: gate.yaml\n"
                       "traffic:\n"
                       "  root: { request: GET /, rate: 20, timeout: 2s }\n"
                       "timeline:\n"
                       "  - phase: a\n"
                       "    duration: 2s\n"
                       "    faults:\n"
                       "      - { refuse: cache, at: start }\n"
                       "expect:\n"
                       "  a:\n"
                       "    root: [ \"rate(200) >= 95%\" ]\n"
                       "  always:\n"
                       "    - alive\n");
}

static json_t *load_result(void) {
  char res[400];
  snprintf(res, sizeof(res), "%s/result.json", out);
  json_error_t e;
  json_t *j = json_load_file(res, 0, &e);
  cr_assert_not_null(j, "%s: %s", res, e.text);
  return j;
}

static json_t *scenario0(json_t *doc) {
  return json_array_get(json_object_get(doc, "scenarios"), 0);
}

static const char *jstr(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* Exits at start under `refuse: cache, at: start`, starts without it: the
 * service failing. FAIL (exit 1): `starts` failed with how it ended and
 * its log, every other expectation not judged, nothing left behind. */
Test(run, start_fault_that_stops_the_start_is_a_fail, .timeout = 90) {
  gate_service("[/usr/bin/python3, gate.py]");
  struct t_run r;
  run(&r, "s.yaml", 80000);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  json_t *doc = load_result();
  json_t *s = scenario0(doc);
  cr_expect_str_eq(jstr(s, "verdict"), "FAIL", "%s", jstr(s, "reason"));
  json_t *x = json_object_get(s, "expectations");
  cr_assert_eq(json_array_size(x), 3, "%s", jstr(s, "reason"));
  json_t *starts = json_array_get(x, 0);
  cr_expect_str_eq(jstr(starts, "text"), "starts");
  cr_expect_str_eq(jstr(starts, "verdict"), "FAIL");
  const char *obs = jstr(starts, "observed");
  cr_expect(strstr(obs, "exited with status 3 after ") == obs, "%s", obs);
  cr_expect(strstr(obs, "starting | cannot reach the cache: ") != NULL, "%s",
            obs);
  for (size_t i = 1; i < 3; i++)
    cr_expect_str_eq(jstr(json_array_get(x, i), "verdict"), "NOT_JUDGED", "%s",
                     jstr(json_array_get(x, i), "text"));
  json_t *ex = json_object_get(json_object_get(s, "target"), "exit");
  cr_expect_eq(json_integer_value(json_object_get(ex, "code")), 3);
  char ctl[400];
  snprintf(ctl, sizeof(ctl), "%s/gate/target-control.log", out);
  cr_expect_eq(access(ctl, R_OK), 0, "no control start log %s", ctl);
  json_decref(doc);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* Never ready under the fault (it waits for its cache forever), ready
 * without it: FAIL too, the first attempt ended by the runner. */
Test(run, start_fault_that_hangs_the_start_is_a_fail, .timeout = 90) {
  gate_service("[/usr/bin/python3, hang.py]");
  write_file("hang.py", "import os, socket, time\n"
                        "try:\n"
                        "    socket.create_connection(('127.0.0.1', "
                        "int(os.environ['CACHE_PORT'])), 2).close()\n"
                        "except OSError:\n"
                        "    print('waiting for the cache', flush=True)\n"
                        "    time.sleep(600)\n"
                        "os.execv('/usr/bin/python3', ['python3', '-m', "
                        "'http.server', '--bind', '127.0.0.1', "
                        "os.environ['PORT']])\n");
  struct t_run r;
  run(&r, "s.yaml", 80000);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  json_t *doc = load_result();
  json_t *s = scenario0(doc);
  cr_expect_str_eq(jstr(s, "verdict"), "FAIL", "%s", jstr(s, "reason"));
  const char *obs =
      jstr(json_array_get(json_object_get(s, "expectations"), 0), "observed");
  cr_expect_str_eq(obs, "was not ready within 10s (TCP port): waiting for "
                        "the cache");
  json_decref(doc);
  char *pg[] = {"pgrep", "-f", "hang.py", NULL};
  struct t_run left;
  cr_assert_eq(t_run(pg, NULL, NULL, 5000, &left), 0);
  cr_expect_str_eq(left.out, "", "the first attempt outlived the run");
  t_run_free(&left);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* Exits at start under the fault and without it too: not the fault's
 * doing, the harness's set-up. ERROR (exit 3), saying so. */
Test(run, target_failing_also_without_faults_is_an_error, .timeout = 90) {
  gate_service("\"echo starting; exit 3\"");
  struct t_run r;
  run(&r, "s.yaml", 80000);
  cr_expect_eq(r.status, 3, "exit %d\n%s%s", r.status, r.out, r.err);
  json_t *doc = load_result();
  json_t *s = scenario0(doc);
  cr_expect_str_eq(jstr(s, "verdict"), "ERROR");
  cr_expect(strstr(jstr(s, "reason"), "exited with status 3 while starting, "
                                      "also with the start faults off") != NULL,
            "%s", jstr(s, "reason"));
  json_decref(doc);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* A target that dies during the run: FAIL through `alive` and `no crash`,
 * each saying how (signal), when and the end of its log. */
Test(run, target_dying_mid_run_says_how, .timeout = 60) {
  write_file("crash.py",
             "import http.server, os, signal, sys, threading\n"
             "def crash():\n"
             "    print('about to crash', flush=True)\n"
             "    os.kill(os.getpid(), signal.SIGSEGV)\n"
             "threading.Timer(1.5, crash).start()\n"
             "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])),"
             " http.server.SimpleHTTPRequestHandler).serve_forever()\n");
  write_file("web.yaml", "service: web\n"
                         "command: [/usr/bin/python3, crash.py, \"${PORT}\"]\n"
                         "ready: { tcp: true, timeout: 10s }\n");
  write_file("s.yaml", "scenario: web\nservice: web.yaml\ntraffic:\n"
                       "  root: { request: GET /, rate: 10, timeout: 1s }\n"
                       "timeline:\n  - phase: a\n    duration: 3s\n"
                       "expect:\n  always: [ alive, no crash ]\n");
  struct t_run r;
  run(&r, "s.yaml", 45000);
  cr_expect_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
  json_t *doc = load_result();
  json_t *s = scenario0(doc);
  cr_expect_str_eq(jstr(s, "verdict"), "FAIL", "%s", jstr(s, "reason"));
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(s, "expectations"), i, x) {
    const char *obs = jstr(x, "observed");
    cr_expect_str_eq(jstr(x, "verdict"), "FAIL", "%s", jstr(x, "text"));
    cr_expect(strstr(obs, "killed by signal 11 (SIGSEGV) at t=") == obs &&
                  strstr(obs, "about to crash") != NULL,
              "%s: %s", jstr(x, "text"), obs);
  }
  json_decref(doc);
  t_run_free(&r);
}

/* A target that holds N connections to its redis from the start, and
 * answers slowly after its first 2 s so that traffic keeps many inbound
 * connections open: conns(cache) counts the N, inbound the traffic's,
 * and fds (the service's own) does not grow with requests in flight. */
#define HELD 6
static const char *holder_py =
    "import os, socket, sys, threading, time\n"
    "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
    "held = [socket.create_connection(('127.0.0.1', "
    "int(os.environ['CACHE_PORT']))) for _ in range(int(os.environ['HELD']))]\n"
    "start = time.monotonic()\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        if time.monotonic() - start > 3:\n"
    "            time.sleep(1.5)\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', '2')\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

/* The most of one count over result.json's target series; conns under
 * "conns" when dep is set. -1 when absent. */
static long series_max(json_t *doc, const char *key, const char *dep) {
  json_t *series = json_object_get(
      json_object_get(json_array_get(json_object_get(doc, "scenarios"), 0),
                      "target"),
      "series");
  long max = -1;
  size_t i;
  json_t *s;
  json_array_foreach(series, i, s) {
    json_t *v = dep ? json_object_get(json_object_get(s, key), dep)
                    : json_object_get(s, key);
    if (json_is_integer(v) && json_integer_value(v) > max)
      max = (long)json_integer_value(v);
  }
  return max;
}

Test(run, fds_by_kind, .timeout = 90) {
  write_file("holder.py", holder_py);
  char service[512];
  snprintf(service, sizeof(service),
           "service: holder\n"
           "command: [/usr/bin/python3, %s/holder.py, \"${PORT}\"]\n"
           "env: { CACHE_PORT: \"${CACHE_PORT}\", HELD: \"%d\" }\n"
           "ready: { tcp: true, timeout: 10s }\n"
           "dependencies:\n"
           "  cache: { type: redis }\n",
           dir, HELD);
  write_file("holder.yaml", service);
  write_file("s.yaml", "scenario: held\n"
                       "service: holder.yaml\n"
                       "traffic:\n"
                       "  root: { request: GET /, rate: 20, timeout: 5s }\n"
                       "timeline:\n"
                       "  - phase: a\n"
                       "    duration: 3s\n"
                       "  - phase: slow\n"
                       "    duration: 4s\n"
                       "expect:\n"
                       "  slow:\n"
                       "    - inbound >= baseline + 10\n"
                       "    - fds <= baseline + 3\n"
                       "    - conns(cache) <= baseline\n"
                       "    - conns(cache) >= baseline\n"
                       "    - settles(fds <= baseline + 3) within 1s\n");
  struct t_run r;
  run(&r, "s.yaml", 75000);
  char res[400];
  snprintf(res, sizeof(res), "%s/result.json", out);
  json_error_t e;
  json_t *doc = json_load_file(res, 0, &e);
  cr_assert_not_null(doc, "%s: %s\n%s%s", res, e.text, r.out, r.err);
  cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
  cr_expect_eq(series_max(doc, "conns", "cache"), HELD);
  cr_expect_eq(series_max(doc, "conns", "other"), 0);
  cr_expect_geq(series_max(doc, "inbound", NULL), 10);
  /* Every fd is counted once by kind; "own" is all but inbound. */
  json_t *s0 = json_array_get(
      json_object_get(
          json_object_get(json_array_get(json_object_get(doc, "scenarios"), 0),
                          "target"),
          "series"),
      0);
  cr_assert_not_null(s0);
  long fds = (long)json_integer_value(json_object_get(s0, "fds"));
  long sum = 0;
  const char *kinds[] = {"inbound", "files", "other"};
  for (size_t i = 0; i < 3; i++)
    sum += (long)json_integer_value(json_object_get(s0, kinds[i]));
  json_t *c = json_object_get(s0, "conns");
  const char *k;
  json_t *v;
  json_object_foreach(c, k, v) sum += (long)json_integer_value(v);
  cr_expect_eq(sum, fds, "kinds add up to %ld of %ld fds", sum, fds);
  cr_expect_eq(json_integer_value(json_object_get(s0, "own")),
               fds - json_integer_value(json_object_get(s0, "inbound")));
  json_decref(doc);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}

/* A target that prints megabytes a second while it serves: its log is
 * capped and rotated (target.log at most 8 MB, target.log.1 the previous
 * one), and the run goes on with its verdicts unaffected. */
static const char *flood_py =
    "import sys, threading\n"
    "from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler\n"
    "class H(SimpleHTTPRequestHandler):\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "def flood():\n"
    "    line = 'x' * 1023 + '\\n'\n"
    "    while True:\n"
    "        sys.stdout.write(line * 1024)\n"
    "        sys.stdout.flush()\n"
    "threading.Thread(target=flood, daemon=True).start()\n"
    "ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H)"
    ".serve_forever()\n";

static long file_size(const char *name) {
  char path[400];
  struct stat st;
  snprintf(path, sizeof(path), "%s/web/%s", out, name);
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

Test(run, flooding_target_log_is_capped_and_rotated, .timeout = 90) {
  write_file("flood.py", flood_py);
  char service[600];
  snprintf(service, sizeof(service),
           "service: web\n"
           "command: [/usr/bin/python3, %s/flood.py, \"${PORT}\"]\n"
           "ready: { tcp: true, timeout: 10s }\n",
           dir);
  write_file("web.yaml", service);
  write_file("s.yaml", "scenario: web\n"
                       "service: web.yaml\n"
                       "traffic:\n"
                       "  root: { request: GET /, rate: 20, timeout: 2s }\n"
                       "timeline:\n"
                       "  - phase: a\n"
                       "    duration: 4s\n"
                       "expect:\n"
                       "  a:\n"
                       "    root: [ \"rate(200) >= 95%\" ]\n"
                       "  always:\n"
                       "    - alive\n");
  struct t_run r;
  run(&r, "s.yaml", 60000);
  cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
  long now = file_size("target.log"), prev = file_size("target.log.1");
  cr_expect_geq(prev, 8L << 20, "no full rotated log (target.log.1: %ld)",
                prev);
  cr_expect_leq(prev, 8L << 20, "target.log.1 is %ld bytes", prev);
  cr_expect(now >= 0 && now <= 8L << 20, "target.log is %ld bytes", now);
  cr_expect_eq(leftovers(), 0, "temporary files left in %s", tmp);
  t_run_free(&r);
}
