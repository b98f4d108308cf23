/*
 * The audit from end to end: discovery, the battery's cases written as
 * scenario files under DIR/scenarios/ (and loaded back, so that a case
 * that would not validate never runs), `run`'s engine on them side by
 * side, and the matrix from its result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit_int.h"
#include "base/base.h"
#include "run/run.h"

static int mkdir_ok(const char *path, char *err, size_t errlen) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST)
    return 0;
  int e = errno;
  snprintf(err, errlen, "cannot make %s: %s", path, strerror(e));
  return -e;
}

/* The service file as the scenario names it: relative to the scenarios'
 * folder, so that the folder can be committed and run anywhere beside
 * the service; absolute when either cannot be resolved. */
static void service_ref(const char *service, const char *dir, char *out,
                        size_t len) {
  char s[PATH_MAX], d[PATH_MAX];
  if (realpath(service, s) == NULL || realpath(dir, d) == NULL) {
    snprintf(out, len, "%s", service);
    return;
  }
  size_t i = 0, common = 0; /* the folders both share: d[0..common) */
  for (; s[i] && s[i] == d[i]; i++)
    if (s[i] == '/')
      common = i;
  if (d[i] == '\0' && s[i] == '/')
    common = i; /* the service is inside dir */
  out[0] = '\0';
  for (const char *p = d + common; *p; p++)
    if (*p == '/')
      snprintf(out + strlen(out), len - strlen(out), "../");
  snprintf(out + strlen(out), len - strlen(out), "%s", s + common + 1);
}

/* Writes case c and checks it as `faultline validate` would. */
static int write_case(const struct fl_audit_case *c,
                      const struct fl_discovery *d,
                      const struct fl_battery_opts *bo,
                      const struct fl_service *sv, const char *path, char *err,
                      size_t errlen) {
  char dir[PATH_MAX], ref[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  *strrchr(dir, '/') = '\0';
  service_ref(sv->file, dir, ref, sizeof(ref));
  int rc = fl_case_write(c, d, bo, ref, path);
  if (rc != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
    return rc;
  }
  struct fl_scenario *sc;
  if ((rc = fl_scenario_load(path, &sc, err, errlen)) != 0)
    return rc;
  rc = fl_scenario_check(sc, sv, err, errlen);
  fl_scenario_free(sc);
  return rc;
}

static void free_files(char **files, size_t n) {
  for (size_t i = 0; files && i < n; i++)
    free(files[i]);
  free(files);
}

static int write_cases(const struct fl_battery *b, const struct fl_discovery *d,
                       const struct fl_service *sv, const char *dir,
                       char ***files, char *err, size_t errlen) {
  struct fl_battery_opts bo;
  fl_battery_defaults(&bo);
  if ((*files = calloc(b->ncases + 1, sizeof(char *))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < b->ncases; i++) {
    if (asprintf(&(*files)[i], "%s/%s.yaml", dir, b->cases[i].name) < 0) {
      (*files)[i] = NULL;
      return -ENOMEM;
    }
    int rc = write_case(&b->cases[i], d, &bo, sv, (*files)[i], err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The battery's scenarios, run as `faultline run --jobs N` would. */
static int run_cases(const struct fl_audit_opts *o, const struct fl_battery *b,
                     const struct fl_discovery *d, const struct fl_service *sv,
                     json_t **result, char *err, size_t errlen) {
  char dir[PATH_MAX], run_dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/scenarios", o->out_dir);
  snprintf(run_dir, sizeof(run_dir), "%s/run", o->out_dir);
  char **files = NULL;
  int rc = mkdir_ok(o->out_dir, err, errlen);
  if (rc == 0)
    rc = mkdir_ok(dir, err, errlen);
  if (rc == 0)
    rc = write_cases(b, d, sv, dir, &files, err, errlen);
  if (rc == 0) {
    if (!o->quiet)
      fprintf(stderr,
              "faultline: %zu cases written to %s/; running them "
              "(--jobs %d)\n",
              b->ncases, dir, o->jobs);
    struct fl_run_opts ro = {.out_dir = run_dir,
                             .service_file = sv->file,
                             .jobs = o->jobs,
                             .quiet = o->quiet,
                             .reuse_deps = !o->fresh_deps};
    rc = fl_run_suite(files, (int)b->ncases, &ro, result, err, errlen);
  }
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  free_files(files, b->ncases);
  return rc;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Discovery lists the probes among the endpoints it exercised; the
 * battery holds them to their own roles, as "live" and "ready", once. */
static void drop_probes(struct fl_discovery *d) {
  size_t kept = 0;
  for (size_t i = 0; i < d->nendpoints; i++) {
    struct fl_audit_endpoint *e = &d->endpoints[i];
    int probe = strcmp(e->method, "GET") == 0 &&
                ((d->live != NULL && strcmp(e->path, d->live) == 0) ||
                 (d->ready != NULL && strcmp(e->path, d->ready) == 0));
    if (probe)
      fl_audit_endpoint_free(e);
    else
      d->endpoints[kept++] = *e;
  }
  d->nendpoints = kept;
}

int fl_audit_run(const struct fl_audit_opts *o, json_t **matrix,
                 json_t **result, char *err, size_t errlen) {
  double t0 = now_s();
  *matrix = *result = NULL;
  struct fl_service *sv = NULL;
  int rc = fl_service_load(o->service_file, &sv, err, errlen);
  if (rc != 0)
    return rc;
  char work[PATH_MAX];
  snprintf(work, sizeof(work), "%s/discover", o->out_dir);
  struct fl_discover_opts dopt = {.service_file = o->service_file,
                                  .endpoints_file = o->endpoints_file,
                                  .openapi_path = o->openapi_path,
                                  .work_dir = work,
                                  .quiet = o->quiet};
  struct fl_discovery d;
  if ((rc = fl_audit_discover(&dopt, &d, err, errlen)) != 0) {
    fl_service_free(sv);
    return rc;
  }
  if (!o->quiet)
    fl_discovery_print(&d, stderr);
  drop_probes(&d);
  struct fl_battery_opts bo;
  fl_battery_defaults(&bo);
  struct fl_battery b;
  rc = fl_battery_build(&d, sv, &bo, o->only, &b, err, errlen);
  if (rc == 0) {
    rc = run_cases(o, &b, &d, sv, result, err, errlen);
    if (*result != NULL && (*matrix = fl_matrix_build(&b, *result)) != NULL) {
      json_object_set_new(*matrix, "service", json_string(sv->name));
      json_object_set_new(*matrix, "service_file", json_string(sv->file));
      json_object_set_new(*matrix, "jobs", json_integer(o->jobs));
      json_object_set_new(*matrix, "duration", json_real(now_s() - t0));
    } else if (*result != NULL) {
      snprintf(err, errlen, "out of memory");
      rc = -ENOMEM;
    }
    fl_battery_free(&b);
  }
  fl_discovery_free(&d);
  fl_service_free(sv);
  return rc;
}
