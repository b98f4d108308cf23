/*
 * Discovery: the service runs under the shim with its dependencies (a run
 * session, harness/run), recording on; an idle baseline window first, then
 * each endpoint alone in a window of its own (a few requests, idle
 * between), twice, a use counted only when both windows saw it. What a window
 * used beyond the idle service's rate is the endpoint's: destinations (mapped
 * to the service's dependencies by port), names resolved, paths written
 * (created files as their folder's glob,
 * ${DATA_DIR} kept).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_int.h"
#include "base/base.h"
#include "control/control.h"
#include "run/run.h"

#define REQUESTS 6          /* per endpoint window */
#define GAP_MS 60           /* idle between them */
#define SETTLE_MS 250       /* after the last: late work still counts */
#define BASELINE_MS 1500    /* the idle service's window */
#define REQUEST_TIMEOUT 5.0 /* seconds */
#define PASSES 2            /* windows per endpoint: a use is seen in all */

struct disc {
  const struct fl_discover_opts *o;
  struct fl_discovery *out;
  char *err;
  size_t errlen;
  int rc;
  struct fl_usage_view *before, *after, *base, *win;
  double base_secs;
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR)
    ;
}

/* Is a window's count of something more than the idle service does in as
 * long? `idle` is its count in the baseline. */
static int beyond_idle(const struct disc *d, uint64_t count, uint64_t idle,
                       double secs) {
  if (count == 0)
    return 0;
  if (idle == 0)
    return 1;
  double expected = (double)idle * secs / d->base_secs;
  return (double)count > 2.0 * expected + 2.0;
}

static uint64_t idle_dest(const struct disc *d, const struct fl_addr *a) {
  for (size_t i = 0; i < d->base->ndests; i++) {
    const struct fl_usage_dest_view *b = &d->base->dests[i];
    if (b->addr.family == a->family && b->addr.port == a->port &&
        memcmp(b->addr.addr, a->addr, sizeof(a->addr)) == 0)
      return b->connects + b->ios;
  }
  return 0;
}

static uint64_t idle_text(const struct fl_usage_text_view *v, size_t n,
                          const char *text) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].text, text) == 0)
      return v[i].count;
  return 0;
}

static int loopback(const struct fl_addr *a) {
  static const uint8_t v6[16] = {[15] = 1};
  return (a->family == AF_INET && a->addr[0] == 127) ||
         (a->family == AF_INET6 && memcmp(a->addr, v6, 16) == 0);
}

/* A destination as a use: a dependency of the service by its port (on
 * loopback or its own address), else HOST:PORT. */
static int dest_use(const struct fl_run_session *s, const struct fl_addr *a,
                    struct fl_audit_endpoint *e) {
  char host[INET6_ADDRSTRLEN] = "", text[INET6_ADDRSTRLEN + 16];
  inet_ntop(a->family, a->addr, host, sizeof(host));
  for (size_t i = 0; i < s->ndeps; i++) {
    const fl_dep_t *dep = s->deps[i];
    if (dep == NULL || fl_dep_port(dep) != a->port)
      continue;
    const char *dh = fl_dep_host(dep);
    if (loopback(a) || (dh != NULL && strcmp(dh, host) == 0))
      return fl_audit_add_use(&e->uses, &e->nuses, FL_USE_DEP,
                              fl_dep_name(dep));
  }
  snprintf(text, sizeof(text), a->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
           host, (unsigned)a->port);
  return fl_audit_add_use(&e->uses, &e->nuses, FL_USE_HOSTPORT, text);
}

/* The system's and the interpreter's own files are not the service's. */
static int ignored_path(const char *p) {
  return strncmp(p, "/dev/", 5) == 0 || strncmp(p, "/proc/", 6) == 0 ||
         strncmp(p, "/sys/", 5) == 0 || strstr(p, "/__pycache__/") != NULL;
}

/* A written path as a glob: a created file's folder "/ *" (its name is
 * often new each time), ${DATA_DIR} for the run's data folder. */
static int path_use(const struct fl_run_session *s,
                    const struct fl_usage_text_view *p,
                    struct fl_audit_endpoint *e) {
  char glob[FL_USE_TEXT + 32], *slash;
  snprintf(glob, sizeof(glob), "%s", p->text);
  if ((p->flags & FL_USEF_CREATE) && (slash = strrchr(glob, '/')) != NULL)
    snprintf(slash, sizeof(glob) - (size_t)(slash - glob), "/*");
  size_t n = strlen(s->data_dir);
  char out[sizeof(glob) + 16];
  if (strncmp(glob, s->data_dir, n) == 0 && (glob[n] == '/' || !glob[n]))
    snprintf(out, sizeof(out), "${DATA_DIR}%s", glob + n);
  else
    snprintf(out, sizeof(out), "%s", glob);
  return fl_audit_add_use(&e->uses, &e->nuses, FL_USE_PATH, out);
}

static int attribute(struct disc *d, const struct fl_run_session *s,
                     struct fl_audit_endpoint *e, double secs) {
  const struct fl_usage_view *w = d->win, *b = d->base;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < w->ndests; i++) {
    const struct fl_usage_dest_view *v = &w->dests[i];
    if (beyond_idle(d, v->connects + v->ios, idle_dest(d, &v->addr), secs))
      rc = dest_use(s, &v->addr, e);
  }
  for (size_t i = 0; rc == 0 && i < w->nnames; i++)
    if (beyond_idle(d, w->names[i].count,
                    idle_text(b->names, b->nnames, w->names[i].text), secs))
      rc = fl_audit_add_use(&e->uses, &e->nuses, FL_USE_DNS, w->names[i].text);
  for (size_t i = 0; rc == 0 && i < w->npaths; i++)
    if (!ignored_path(w->paths[i].text) &&
        beyond_idle(d, w->paths[i].count,
                    idle_text(b->paths, b->npaths, w->paths[i].text), secs))
      rc = path_use(s, &w->paths[i], e);
  return rc;
}

/* The most frequent status of the window's requests. */
static int usual_status(const int *st, int n) {
  int best = 0, best_n = 0;
  for (int i = 0; i < n; i++) {
    int k = 0;
    for (int j = 0; j < n; j++)
      k += st[j] == st[i];
    if (k > best_n) {
      best = st[i];
      best_n = k;
    }
  }
  return best;
}

/* One endpoint's window: its requests, then what they used. */
static int exercise(struct disc *d, const struct fl_run_session *s,
                    struct fl_audit_endpoint *e) {
  int st[REQUESTS];
  double lat[REQUESTS];
  fl_control_usage(s->ctl, d->before);
  double t0 = now_s();
  for (int i = 0; i < REQUESTS; i++) {
    int rc =
        fl_audit_http(s->base_url, e, REQUEST_TIMEOUT, &st[i], &lat[i], NULL);
    if (rc != 0)
      return rc;
    sleep_ms(GAP_MS);
  }
  sleep_ms(SETTLE_MS);
  fl_control_usage(s->ctl, d->after);
  fl_usage_delta(d->before, d->after, d->win);
  e->status = usual_status(st, REQUESTS);
  fl_sort_values(lat, REQUESTS);
  e->p50 = fl_percentile(lat, REQUESTS, 50);
  e->p99 = fl_percentile(lat, REQUESTS, 99);
  return attribute(d, s, e, now_s() - t0);
}

static void free_uses(struct fl_use *u, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(u[i].name);
  free(u);
}

/* A second window, later: what the endpoint uses is what both saw. A
 * service's own background work (a pool's keepalive pings, a feed it
 * follows) falls into some window by chance, seldom into the same
 * endpoint's twice. */
static int exercise_again(struct disc *d, const struct fl_run_session *s,
                          struct fl_audit_endpoint *e) {
  struct fl_use *first = e->uses;
  size_t nfirst = e->nuses;
  e->uses = NULL;
  e->nuses = 0;
  int rc = exercise(d, s, e);
  size_t kept = 0;
  for (size_t i = 0; i < e->nuses; i++) {
    int seen = 0;
    for (size_t j = 0; j < nfirst && !seen; j++)
      seen = first[j].kind == e->uses[i].kind &&
             strcmp(first[j].name, e->uses[i].name) == 0;
    if (seen)
      e->uses[kept++] = e->uses[i];
    else
      free(e->uses[i].name);
  }
  e->nuses = kept;
  free_uses(first, nfirst);
  return rc;
}

static int have_get(const struct fl_discovery *r, const char *path) {
  for (size_t i = 0; i < r->nendpoints; i++)
    if (strcmp(r->endpoints[i].path, path) == 0 &&
        strcmp(r->endpoints[i].method, "GET") == 0)
      return 1;
  return 0;
}

static int add_get(struct fl_discovery *r, const char *path) {
  if (have_get(r, path))
    return 0;
  struct fl_audit_endpoint *bigger =
      realloc(r->endpoints, (r->nendpoints + 1) * sizeof(*bigger));
  if (bigger == NULL)
    return -ENOMEM;
  r->endpoints = bigger;
  struct fl_audit_endpoint *e = &bigger[r->nendpoints];
  memset(e, 0, sizeof(*e));
  r->nendpoints++;
  if ((e->method = strdup("GET")) == NULL || (e->path = strdup(path)) == NULL)
    return -ENOMEM;
  return fl_audit_name_endpoints(r->endpoints, r->nendpoints);
}

/* Does GET path answer something other than "no such thing"? */
static int answers(const struct fl_run_session *s, const char *path) {
  struct fl_audit_endpoint e = {.method = "GET", .path = (char *)path};
  int status = 0;
  double secs;
  if (fl_audit_http(s->base_url, &e, REQUEST_TIMEOUT, &status, &secs, NULL))
    return 0;
  return status != 0 && status != 404 && status != 405;
}

/* Liveness and readiness: the service file's readiness check where its
 * name says which, else the first of the usual paths that answers. */
static int find_probes(struct disc *d, const struct fl_run_session *s) {
  static const char *const live[] = {"/livez", "/healthz", "/health"};
  static const char *const ready[] = {"/readyz", "/health/ready", "/ready"};
  struct fl_discovery *r = d->out;
  const char *own = s->sv->ready_http;
  if (own != NULL && own[0] == '/') {
    char **slot = strstr(own, "ready") ? &r->ready : &r->live;
    if ((*slot = strdup(own)) == NULL)
      return -ENOMEM;
  }
  for (size_t i = 0; r->live == NULL && i < 3; i++)
    if (answers(s, live[i]) && (r->live = strdup(live[i])) == NULL)
      return -ENOMEM;
  for (size_t i = 0; r->ready == NULL && i < 3; i++)
    if (answers(s, ready[i]) && (r->ready = strdup(ready[i])) == NULL)
      return -ENOMEM;
  int rc = r->live ? add_get(r, r->live) : 0;
  return rc == 0 && r->ready ? add_get(r, r->ready) : rc;
}

static int openapi_endpoints(struct disc *d, const struct fl_run_session *s) {
  const char *path = d->o->openapi_path ? d->o->openapi_path : "/openapi.json";
  struct fl_audit_endpoint e = {.method = "GET", .path = (char *)path};
  int status = 0;
  double secs;
  char *body = NULL, where[512];
  snprintf(where, sizeof(where), "%s%s", s->base_url, path);
  int rc =
      fl_audit_http(s->base_url, &e, REQUEST_TIMEOUT, &status, &secs, &body);
  if (rc == 0 && (status != 200 || body == NULL)) {
    snprintf(d->err, d->errlen,
             "%s answered %d, not an OpenAPI document: name the endpoints "
             "with --endpoints FILE, or the document with --openapi PATH",
             where, status);
    rc = FL_EBADSCENARIO;
  } else if (rc == 0) {
    rc = fl_audit_endpoints_openapi(body, where, &d->out->endpoints,
                                    &d->out->nendpoints, d->err, d->errlen);
  }
  free(body);
  return rc;
}

static int union_uses(struct fl_discovery *r) {
  for (size_t i = 0; i < r->nendpoints; i++)
    for (size_t j = 0; j < r->endpoints[i].nuses; j++) {
      const struct fl_use *u = &r->endpoints[i].uses[j];
      int rc = fl_audit_add_use(&r->uses, &r->nuses, u->kind, u->name);
      if (rc != 0)
        return rc;
    }
  return 0;
}

/* Recording was on from the target's start: what it used until now (its
 * start-up and the readiness checks) has no idle baseline to subtract. */
static int startup_uses(struct disc *d, const struct fl_run_session *s) {
  struct fl_audit_endpoint tmp = {0};
  fl_control_usage(s->ctl, d->after);
  fl_usage_delta(NULL, d->after, d->win);
  int rc = attribute(d, s, &tmp, 0);
  d->out->startup = tmp.uses;
  d->out->nstartup = tmp.nuses;
  return rc;
}

static int discover(struct disc *d, const struct fl_run_session *s) {
  int rc = startup_uses(d, s);
  if (rc == 0 && d->out->endpoints == NULL)
    rc = openapi_endpoints(d, s);
  if (rc == 0)
    rc = find_probes(d, s);
  if (rc == 0)
    rc = fl_control_set_recording(s->ctl, 1);
  if (rc != 0)
    return rc;
  fl_control_usage(s->ctl, d->before);
  double t0 = now_s();
  sleep_ms(BASELINE_MS);
  fl_control_usage(s->ctl, d->after);
  fl_usage_delta(d->before, d->after, d->base);
  d->base_secs = now_s() - t0;
  for (int pass = 0; pass < PASSES; pass++)
    for (size_t i = 0; rc == 0 && i < d->out->nendpoints; i++) {
      if (fl_run_session_stopping(s))
        return -EINTR;
      if (!d->o->quiet)
        fprintf(stderr, "faultline: discover: %s %s%s\n",
                d->out->endpoints[i].method, d->out->endpoints[i].path,
                pass ? " (again)" : "");
      rc = pass == 0 ? exercise(d, s, &d->out->endpoints[i])
                     : exercise_again(d, s, &d->out->endpoints[i]);
    }
  fl_control_set_recording(s->ctl, 0);
  return rc == 0 ? union_uses(d->out) : rc;
}

static void drive(const struct fl_run_session *s, void *arg) {
  struct disc *d = arg;
  d->rc = discover(d, s);
  if (d->rc == -ENOMEM)
    snprintf(d->err, d->errlen, "out of memory");
  else if (d->rc != 0 && d->err[0] == '\0')
    snprintf(d->err, d->errlen, "discovery failed: %s", fl_strerror(d->rc));
}

int fl_audit_discover(const struct fl_discover_opts *o,
                      struct fl_discovery *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  err[0] = '\0';
  struct disc d = {.o = o, .out = out, .err = err, .errlen = errlen};
  int rc = 0;
  if (o->endpoints_file != NULL)
    rc = fl_audit_endpoints_load(o->endpoints_file, &out->endpoints,
                                 &out->nendpoints, err, errlen);
  d.before = calloc(1, sizeof(*d.before));
  d.after = calloc(1, sizeof(*d.after));
  d.base = calloc(1, sizeof(*d.base));
  d.win = calloc(1, sizeof(*d.win));
  if (rc == 0 && (!d.before || !d.after || !d.base || !d.win)) {
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
  }
  if (rc == 0) {
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before the driver's thread */
    struct fl_run_opts ro = {
        .out_dir = o->work_dir, .quiet = o->quiet, .record = 1};
    rc = fl_run_service(o->service_file, &ro, drive, &d, err, errlen);
    if (rc == 0 && d.rc != 0)
      rc = d.rc; /* err holds its sentence */
  }
  free(d.before);
  free(d.after);
  free(d.base);
  free(d.win);
  if (rc != 0)
    fl_discovery_free(out);
  return rc;
}
