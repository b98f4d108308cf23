/* Dependencies reused between scenarios (run --reuse-deps, the audit's
 * default), with real PostgreSQL, Redis and uvicorn: an audit subset of
 * the resilient and the fragile example gives the same matrix, cell by
 * cell, with its servers shared as with fresh ones per case (--fresh-deps);
 * a case with a process fault on a dependency (postgres-slots) gets its
 * own server; and nothing is left behind, neither after an audit nor
 * when `faultline run --reuse-deps` is stopped by SIGTERM on a reused
 * server: no process, no file in TMPDIR. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define SERVICES FL_TEST_SOURCE_DIR "/scenarios/services"

static char dir[256], tmp[300], tmpenv[320];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(dir), 0);
  chmod(dir, 0755); /* postgres runs as its own user inside */
  snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  cr_assert_eq(mkdir(tmp, 0755), 0);
}
static void teardown(void) { t_rmtree(dir); }

TestSuite(reuse, .init = setup, .fini = teardown, .timeout = 400);

static int entries(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d != NULL)
    closedir(d);
  return n;
}

/* Processes whose environment holds our TMPDIR: everything faultline
 * started inherits it. They die asynchronously: wait a little. */
static int processes_left(void) {
  int n = 0;
  for (int tries = 0; tries < 100; tries++) {
    n = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9')
        continue;
      char path[300], buf[1 << 15];
      snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
      FILE *f = fopen(path, "r");
      if (f == NULL)
        continue;
      size_t len = fread(buf, 1, sizeof(buf) - 1, f);
      fclose(f);
      for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
          buf[i] = '\n';
      buf[len] = '\0';
      n += strstr(buf, tmpenv) != NULL;
    }
    if (d != NULL)
      closedir(d);
    if (n == 0)
      return 0;
    usleep(100 * 1000);
  }
  return n;
}

static void nothing_left(void) {
  cr_expect_eq(processes_left(), 0, "processes of the run remain");
  cr_expect_eq(entries(tmp), 0, "files remain in TMPDIR %s", tmp);
}

/* Audits `service` (fresh: --fresh-deps); its matrix, the progress lines
 * in *log (the caller frees). */
static json_t *audit(const char *service, const char *only, const char *jobs,
                     int fresh, char **log) {
  char out[400], svc[400], path[450];
  snprintf(out, sizeof(out), "%s/%s-%s", dir, service,
           fresh ? "fresh" : "shared");
  snprintf(svc, sizeof(svc), "%s/%s.yaml", SERVICES, service);
  char *argv[] = {T_FAULTLINE, "audit",      "--jobs", (char *)jobs,
                  "--only",    (char *)only, "--out",  out,
                  svc,         NULL,         NULL};
  if (fresh) {
    argv[8] = "--fresh-deps";
    argv[9] = svc;
  }
  char *env[] = {"NO_COLOR=1", tmpenv, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, 300000, &r), 0);
  cr_expect(r.status == 0 || r.status == 1, "audit exited %d:\n%s", r.status,
            r.err);
  *log = strdup(r.err);
  t_run_free(&r);
  snprintf(path, sizeof(path), "%s/matrix.json", out);
  json_error_t e;
  json_t *m = json_load_file(path, 0, &e);
  cr_assert_not_null(m, "cannot read %s: %s", path, e.text);
  return m;
}

/* Every cell of a is the same in b. */
static void same_cells(const json_t *a, const json_t *b) {
  size_t i, j, n = 0;
  json_t *ca, *cb;
  json_array_foreach(json_object_get(a, "cases"), i, ca) {
    const char *name = json_string_value(json_object_get(ca, "name"));
    json_t *other = NULL;
    json_array_foreach(json_object_get(b, "cases"), j, cb) {
      if (strcmp(json_string_value(json_object_get(cb, "name")), name) == 0)
        other = cb;
    }
    cr_assert_not_null(other, "case %s only with shared servers", name);
    const char *ep;
    json_t *cell;
    json_object_foreach(json_object_get(ca, "cells"), ep, cell) {
      json_t *oc = json_object_get(json_object_get(other, "cells"), ep);
      const char *x = json_string_value(json_object_get(cell, "cell"));
      const char *y = json_string_value(json_object_get(oc, "cell"));
      cr_expect(x != NULL && y != NULL && strcmp(x, y) == 0,
                "%s / %s: '%s' with shared servers, '%s' with fresh ones", name,
                ep, x ? x : "-", y ? y : "-");
      n++;
    }
  }
  cr_expect_gt(n, 0, "no cell compared");
  cr_expect_eq(json_array_size(json_object_get(a, "cases")),
               json_array_size(json_object_get(b, "cases")));
}

/* With --jobs 2 two cases at once hold a server each, and a third
 * reuses one; with --jobs 1 the second does. */
static void shared_same_as_fresh(const char *service, const char *only,
                                 const char *jobs) {
  char *log, *fresh_log;
  json_t *shared = audit(service, only, jobs, 0, &log);
  nothing_left();
  json_t *fresh = audit(service, only, jobs, 1, &fresh_log);
  nothing_left();
  cr_expect(strstr(log, ": reusing the server on port ") != NULL,
            "no server was reused:\n%s", log);
  cr_expect(strstr(fresh_log, "reusing") == NULL,
            "--fresh-deps reused a server:\n%s", fresh_log);
  cr_expect(strstr(log, "[postgres-slots] postgres: reusing") == NULL,
            "postgres-slots, a process fault, shared its server:\n%s", log);
  same_cells(shared, fresh);
  json_decref(shared);
  json_decref(fresh);
  free(log);
  free(fresh_log);
}

Test(reuse, resilient_same_cells) {
  shared_same_as_fresh("resilient", "postgres-down,postgres-slots,redis-down",
                       "2");
}

/* The fragile service's findings, shared against fresh, are left to
 * fl-bench-audit (bench/audit.c compares the matrices cell by cell): the
 * CI budget holds one such pair of audits. */

/* SIGTERM while the second scenario runs on the first one's servers:
 * exit 130, every server ended, the pool's folder gone. */
Test(reuse, run_stopped_on_reused_servers) {
  char sc[400], out[400], svc[400];
  snprintf(sc, sizeof(sc), "%s/short.yaml", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  snprintf(svc, sizeof(svc), "%s/resilient.yaml", SERVICES);
  FILE *f = fopen(sc, "w");
  cr_assert_not_null(f);
  fputs("scenario: short\n"
        "traffic:\n"
        "  items: { request: GET /api/items, rate: 10, timeout: 2s }\n"
        "timeline:\n"
        "  - phase: steady\n"
        "    duration: 2s\n"
        "  - phase: outage\n"
        "    duration: 8s\n"
        "    faults: [ { refuse: redis } ]\n"
        "expect:\n"
        "  always: [ alive ]\n",
        f);
  fclose(f);
  char *argv[] = {
      T_FAULTLINE, "run", "--reuse-deps", "--service", svc, "--out", out, sc,
      sc,          NULL};
  char *env[] = {tmpenv, NULL};
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, env, 1), 0);
  cr_assert_eq(t_expect(&p, "reusing the server", NULL, 0, 120000), 0,
               "the second scenario reused nothing");
  cr_assert_eq(t_expect(&p, "on:  refuse", NULL, 0, 60000), 0);
  kill(p.pid, SIGTERM);
  int st = t_finish(&p, 60000);
  cr_expect_eq(st, 130, "status %d after SIGTERM", st);
  nothing_left();
}
