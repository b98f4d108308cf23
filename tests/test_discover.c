/*
 * faultline audit's discovery against a real service (tests/data/discover:
 * FastAPI with an asyncpg pool opened at start-up, a Redis connection, a
 * written file, a resolved name, and background work while idle) with a
 * real PostgreSQL and Redis started by the runner.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/base.h"
#include "scenario/scenario.h"
#include "support.h"

#define DIR_ T_DATA "/discover"

static char tmp[256];

/* In this process the runner is not beside us: name the shim. */
static void setup(void) {
  cr_assert_eq(t_mkdtemp(tmp), 0);
  setenv("FAULTLINE_PRELOAD", T_SHIM, 1);
}
static void teardown(void) { t_rmtree(tmp); }

TestSuite(discover, .init = setup, .fini = teardown, .timeout = 240);

static const struct fl_audit_endpoint *
find(const struct fl_discovery *d, const char *method, const char *path) {
  for (size_t i = 0; i < d->nendpoints; i++)
    if (strcmp(d->endpoints[i].method, method) == 0 &&
        strcmp(d->endpoints[i].path, path) == 0)
      return &d->endpoints[i];
  cr_assert_fail("no endpoint %s %s", method, path);
  return NULL;
}

static int uses(const struct fl_audit_endpoint *e, enum fl_use_kind k,
                const char *name) {
  for (size_t i = 0; i < e->nuses; i++)
    if (e->uses[i].kind == k && strcmp(e->uses[i].name, name) == 0)
      return 1;
  return 0;
}

static char *listing(const struct fl_discovery *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  fl_discovery_print(d, f);
  fclose(f);
  return text;
}

static void discover(const char *endpoints, struct fl_discovery *d) {
  char work[400], err[FL_ERRLEN];
  snprintf(work, sizeof(work), "%s/work", tmp);
  struct fl_discover_opts o = {.service_file = DIR_ "/service.yaml",
                               .endpoints_file = endpoints,
                               .work_dir = work,
                               .quiet = 1};
  int rc = fl_audit_discover(&o, d, err, sizeof(err));
  cr_assert_eq(rc, 0, "discovery failed: %s", err);
}

Test(discover, openapi_pooled_and_idle) {
  struct fl_discovery d;
  discover(NULL, &d);
  char *text = listing(&d);
  cr_log_info("%s", text);
  cr_assert_str_eq(d.live, "/health");
  cr_assert_str_eq(d.ready, "/health/ready");

  /* The pool's one connection was opened at start-up: /db reached
   * PostgreSQL through reads and writes on it, with no connect. */
  const struct fl_audit_endpoint *db = find(&d, "GET", "/db/1");
  cr_assert(uses(db, FL_USE_DEP, "postgres"), "%s", text);
  cr_assert_eq(db->nuses, 1, "%s", text);
  cr_assert_eq(db->status, 200);
  cr_assert(db->p50 > 0 && db->p99 >= db->p50);
  char log[600];
  snprintf(log, sizeof(log), "%s/work/target.log", tmp);
  FILE *f = fopen(log, "r");
  cr_assert(f != NULL, "no target log at %s", log);
  char line[256];
  int seen = 0;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strstr(line, "pg connections opened so far:") != NULL) {
      cr_assert(strstr(line, "so far: 1") != NULL, "%s", line);
      seen++;
    }
  fclose(f);
  cr_assert_geq(seen, 1, "the service never reported its pool");

  /* Each endpoint what it uses, and the idle service's query and
   * heartbeat file pinned on none. */
  const struct fl_audit_endpoint *cache = find(&d, "GET", "/cache");
  cr_assert(uses(cache, FL_USE_DEP, "redis"), "%s", text);
  cr_assert_eq(cache->nuses, 1, "%s", text);
  const struct fl_audit_endpoint *w = find(&d, "POST", "/write");
  cr_assert_eq(w->status, 201, "%s", text);
  cr_assert(uses(w, FL_USE_PATH, "${DATA_DIR}/out/*"), "%s", text);
  cr_assert_eq(w->nuses, 1, "%s", text);
  cr_assert(uses(find(&d, "GET", "/resolve"), FL_USE_DNS, "localhost"), "%s",
            text);
  const struct fl_audit_endpoint *st = find(&d, "GET", "/static");
  cr_assert_eq(st->nuses, 0, "%s", text);
  cr_assert_eq(find(&d, "GET", "/health")->nuses, 0, "%s", text);
  cr_assert(uses(find(&d, "GET", "/health/ready"), FL_USE_DEP, "postgres"));
  cr_assert_eq(find(&d, "GET", "/missing-example")->status, 410);
  /* The pool and Redis were connected while it started. */
  struct fl_audit_endpoint boot = {.uses = d.startup, .nuses = d.nstartup};
  cr_assert(uses(&boot, FL_USE_DEP, "postgres"), "%s", text);
  cr_assert(uses(&boot, FL_USE_DEP, "redis"), "%s", text);
  /* The union, each once. */
  cr_assert_eq(d.nuses, 4, "%s", text);
  cr_assert(strstr(text, "postgres") != NULL);
  free(text);
  fl_discovery_free(&d);
}

Test(discover, endpoints_file) {
  struct fl_discovery d;
  discover(DIR_ "/endpoints.yaml", &d);
  char *text = listing(&d);
  cr_log_info("%s", text);
  /* The two named, and liveness and readiness added. */
  cr_assert_eq(d.nendpoints, 4, "%s", text);
  cr_assert_str_eq(d.endpoints[0].name, "static");
  cr_assert_str_eq(d.endpoints[1].name, "cached");
  cr_assert_str_eq(d.endpoints[1].headers[0], "X-Test: 1");
  cr_assert(uses(&d.endpoints[1], FL_USE_DEP, "redis"), "%s", text);
  cr_assert_eq(d.endpoints[0].nuses, 0, "%s", text);
  cr_assert_str_eq(d.ready, "/health/ready");
  free(text);
  fl_discovery_free(&d);
}

/* A bad endpoints file is reported as FILE:LINE:COL before anything
 * starts. */
Test(discover, bad_endpoints_files) {
  static const struct {
    const char *file, *where, *what;
  } cases[] = {
      {"not_a_list.yaml", ":1:1: ", "is a list"},
      {"bad_method.yaml", ":2:13: ", "method must be one of"},
      {"unknown_key.yaml", ":3:3: ", "unknown key 'rate'"},
      {"no_path.yaml", ":1:3: ", "needs both method and path"},
      {"relative.yaml", ":1:24: ", "must start with '/'"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    char path[400], err[FL_ERRLEN], want[500];
    snprintf(path, sizeof(path), DIR_ "/bad/%s", cases[i].file);
    struct fl_discover_opts o = {.service_file = DIR_ "/service.yaml",
                                 .endpoints_file = path,
                                 .work_dir = tmp,
                                 .quiet = 1};
    struct fl_discovery d;
    cr_assert_eq(fl_audit_discover(&o, &d, err, sizeof(err)), FL_EBADSCENARIO,
                 "%s", cases[i].file);
    snprintf(want, sizeof(want), "%s%s", path, cases[i].where);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s: %s", cases[i].file,
              err);
    cr_assert(strstr(err, cases[i].what) != NULL, "%s", err);
    cr_assert_eq(d.nendpoints, 0);
  }
}

/* The command prints the discovery and exits 0. */
Test(discover, command) {
  char out[400];
  snprintf(out, sizeof(out), "%s/cli", tmp);
  char *const argv[] = {T_FAULTLINE, "audit",       "--discover-only",
                        "--quiet",   "--endpoints", DIR_ "/endpoints.yaml",
                        "--out",     out,           DIR_ "/service.yaml",
                        NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 180000, &r), 0);
  cr_assert_eq(r.status, 0, "%s", r.out);
  cr_assert(strstr(r.out, "discovered 4 endpoints") != NULL, "%s", r.out);
  cr_assert(strstr(r.out, "redis") != NULL, "%s", r.out);
  t_run_free(&r);
  char *const bad[] = {T_FAULTLINE,
                       "audit",
                       "--discover-only",
                       "--endpoints",
                       DIR_ "/bad/bad_method.yaml",
                       DIR_ "/service.yaml",
                       NULL};
  cr_assert_eq(t_run(bad, NULL, NULL, 60000, &r), 0);
  cr_assert_eq(r.status, FL_EXIT_USAGE, "%s", r.out);
  cr_assert(strstr(r.err, "bad_method.yaml:2:13:") != NULL, "%s", r.err);
  t_run_free(&r);
}
