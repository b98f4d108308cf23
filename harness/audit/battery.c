/*
 * The battery: for each thing the endpoints were seen to use, the faults
 * that a careful service survives. A managed dependency: down (refused
 * and reset), blackhole (connects hang, open connections dropped), slow
 * (well above the endpoints' p99, then just past a 2 s client timeout),
 * flapping; PostgreSQL also its connection slots held. Any other address:
 * down, blackhole, flapping. The process: fd exhaustion. Each resolved
 * name: DNS failure, also a name resolved only while the service started
 * (a pool's address), whose failure shows when the pool must reconnect.
 * Each written path: ENOSPC and EIO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "base/base.h"

/* Just past the usual 2 s client timeout of a database or cache call. */
#define PAST_TIMEOUT_MS 2500
/* A slowness worth noticing and still below any sane timeout. */
#define SLOW_MIN_MS 400
#define SLOW_MAX_MS 1500

void fl_battery_defaults(struct fl_battery_opts *o) {
  *o = (struct fl_battery_opts){.steady = 3,
                                .fault = 5,
                                .recovery = 10,
                                .settled = 3,
                                .rate = 10,
                                .timeout = 3};
}

static int uses(const struct fl_audit_endpoint *e, int kind, const char *n) {
  for (size_t i = 0; i < e->nuses; i++)
    if ((int)e->uses[i].kind == kind && strcmp(e->uses[i].name, n) == 0)
      return 1;
  return 0;
}

/* A data endpoint uses at least one dependency (not only files). */
static int is_data(const struct fl_audit_endpoint *e) {
  for (size_t i = 0; i < e->nuses; i++)
    if (e->uses[i].kind == FL_USE_DEP || e->uses[i].kind == FL_USE_HOSTPORT)
      return 1;
  return 0;
}

/* What a case fails, beside the thing itself: for a DNS name, the
 * dependencies reached through it are reset once so that drivers must
 * resolve again; those count as failed too. */
struct failed {
  int kind;
  const char *name;
  const char *also[8]; /* dependencies reset with it */
  size_t nalso;
};

static int endpoint_hit(const struct fl_audit_endpoint *e,
                        const struct failed *f) {
  if (f->kind == 0) /* the process: every data endpoint */
    return is_data(e) || e->nuses > 0;
  if (uses(e, f->kind, f->name))
    return 1;
  for (size_t i = 0; i < f->nalso; i++)
    if (uses(e, FL_USE_DEP, f->also[i]))
      return 1;
  return 0;
}

/* Needed by every data endpoint (and there is one). */
static int needed_by_all(const struct fl_discovery *d, const struct failed *f) {
  size_t data = 0;
  for (size_t i = 0; i < d->nendpoints; i++) {
    if (!is_data(&d->endpoints[i]))
      continue;
    data++;
    if (!endpoint_hit(&d->endpoints[i], f))
      return 0;
  }
  return data > 0;
}

static int set_roles(struct fl_audit_case *c, const struct fl_discovery *d,
                     const struct failed *f, int outage) {
  c->neps = d->nendpoints + (d->live != NULL) + (d->ready != NULL);
  if ((c->eps = calloc(c->neps, sizeof(*c->eps))) == NULL)
    return -ENOMEM;
  size_t i = 0;
  for (; i < d->nendpoints; i++) {
    snprintf(c->eps[i].name, sizeof(c->eps[i].name), "%s",
             d->endpoints[i].name);
    c->eps[i].role =
        endpoint_hit(&d->endpoints[i], f) ? FL_ROLE_AFFECTED : FL_ROLE_OTHER;
    c->eps[i].status = d->endpoints[i].status;
  }
  if (d->live != NULL) {
    snprintf(c->eps[i].name, sizeof(c->eps[i].name), "live");
    c->eps[i++].role = FL_ROLE_LIVE;
  }
  if (d->ready != NULL) {
    snprintf(c->eps[i].name, sizeof(c->eps[i].name), "ready");
    c->eps[i].role = FL_ROLE_READY;
    c->eps[i].ready_down = outage && needed_by_all(d, f);
  }
  return 0;
}

/* The slowest p99 of the endpoints that use f, in ms. */
static double slow_ms(const struct fl_discovery *d, const struct failed *f) {
  double p99 = 0;
  for (size_t i = 0; i < d->nendpoints; i++)
    if (endpoint_hit(&d->endpoints[i], f) && d->endpoints[i].p99 > p99)
      p99 = d->endpoints[i].p99;
  double ms = p99 * 1000 * 10;
  return ms < SLOW_MIN_MS ? SLOW_MIN_MS : ms > SLOW_MAX_MS ? SLOW_MAX_MS : ms;
}

struct builder {
  const struct fl_discovery *d;
  const struct fl_battery_opts *o;
  const char *only;
  struct fl_battery *b;
  double other_p99;
};

static int kept(const char *only, const char *name) {
  if (only == NULL)
    return 1;
  char *copy = strdup(only), *save = NULL;
  int keep = 0;
  for (char *g = copy ? strtok_r(copy, ",", &save) : NULL; g && !keep;
       g = strtok_r(NULL, ",", &save))
    keep = fnmatch(g, name, 0) == 0;
  free(copy);
  return keep;
}

/* A case name: letters, digits, '-' and '.' only. */
static void tidy(char *s) {
  for (; *s; s++)
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
        !(*s >= '0' && *s <= '9') && *s != '-' && *s != '.')
      *s = '-';
}

static int add_case(struct builder *bd, const struct failed *f, const char *row,
                    const char *fault, double fault_s, int outage,
                    const char *what, const char *faults) {
  char name[128];
  snprintf(name, sizeof(name), "%s-%s", row, fault);
  tidy(name);
  if (!kept(bd->only, name))
    return 0;
  struct fl_battery *b = bd->b;
  struct fl_audit_case *nc = realloc(b->cases, (b->ncases + 1) * sizeof(*nc));
  if (nc == NULL)
    return -ENOMEM;
  b->cases = nc;
  struct fl_audit_case *c = &nc[b->ncases];
  memset(c, 0, sizeof(*c));
  snprintf(c->name, sizeof(c->name), "%s", name);
  snprintf(c->row, sizeof(c->row), "%s", row);
  snprintf(c->fault, sizeof(c->fault), "%s", fault);
  snprintf(c->what, sizeof(c->what), "%s", what);
  snprintf(c->faults, sizeof(c->faults), "%s", faults);
  c->fault_s = fault_s;
  c->slow_s = 2;
  c->other_p99 = bd->other_p99;
  c->conns = (const char *const *)b->dep_names;
  if (set_roles(c, bd->d, f, outage) != 0)
    return -ENOMEM;
  b->ncases++;
  return 0;
}

/* A managed dependency, or (proc 0) any other address: no proxy and no
 * process faults there. */
static int dep_cases(struct builder *bd, const struct failed *f, int managed,
                     int postgres) {
  const char *n = f->name;
  char fx[512], what[256];
  int rc;
  /* Which of the two a service meets depends on its pool (open
   * connections reset, or new ones refused): either proves the case. */
  snprintf(fx, sizeof(fx),
           "{ refuse: \"%s\", optional: true }, "
           "{ reset: \"%s\", optional: true }",
           n, n);
  snprintf(what, sizeof(what),
           "%s refuses new connections and resets open "
           "ones",
           n);
  if ((rc = add_case(bd, f, n, "down", bd->o->fault, 1, what, fx)) != 0)
    return rc;
  snprintf(fx, sizeof(fx),
           "{ hang: \"%s\", optional: true }, "
           "{ reset: \"%s\", until: 1s, optional: true }",
           n, n);
  snprintf(what, sizeof(what),
           "%s is blackholed: connects hang, open "
           "connections are dropped",
           n);
  if ((rc = add_case(bd, f, n, "blackhole", bd->o->fault, 1, what, fx)) != 0)
    return rc;
  if (managed) {
    double ms = slow_ms(bd->d, f);
    snprintf(fx, sizeof(fx), "{ latency: \"%s\", ms: %.0f }", n, ms);
    snprintf(what, sizeof(what),
             "every answer from %s is %.0f ms late (well "
             "above the endpoints' p99)",
             n, ms);
    if ((rc = add_case(bd, f, n, "slow", bd->o->fault, 0, what, fx)) != 0)
      return rc;
    snprintf(fx, sizeof(fx), "{ latency: \"%s\", ms: %d }", n, PAST_TIMEOUT_MS);
    snprintf(what, sizeof(what),
             "every answer from %s is %d ms late (just "
             "past a 2 s client timeout)",
             n, PAST_TIMEOUT_MS);
    if ((rc = add_case(bd, f, n, "slow-timeout", bd->o->fault, 1, what, fx)))
      return rc;
  }
  snprintf(fx, sizeof(fx),
           "{ refuse: \"%s\", every: 2s, optional: true }, "
           "{ reset: \"%s\", every: 2s, optional: true }",
           n, n);
  snprintf(what, sizeof(what), "%s comes and goes every 2 s", n);
  if ((rc = add_case(bd, f, n, "flapping", bd->o->fault + 3, 0, what, fx)))
    return rc;
  if (!postgres)
    return 0;
  snprintf(fx, sizeof(fx),
           "{ saturate: \"%s\" }, { reset: \"%s\", at: 2s, optional: true }", n,
           n);
  snprintf(what, sizeof(what),
           "every connection slot of %s is held from "
           "outside and the service's are dropped",
           n);
  /* Not an outage for readiness: the service's open connections work
   * until they are dropped, and a new one waits for a slot. */
  return add_case(bd, f, n, "slots", bd->o->fault + 3, 0, what, fx);
}

/* ", { reset: "D", until: 1s, optional: true }" for each dependency in
 * also: a service with no connection open to one has nothing to reset. */
static void resets(const struct failed *f, char *buf, size_t len) {
  for (size_t i = 0; i < f->nalso; i++)
    snprintf(buf + strlen(buf), len - strlen(buf),
             ", { reset: \"%s\", until: 1s, optional: true }", f->also[i]);
}

static int dns_case(struct builder *bd, struct failed *f) {
  const struct fl_discovery *d = bd->d;
  for (size_t i = 0; i < d->nendpoints; i++) {
    const struct fl_audit_endpoint *e = &d->endpoints[i];
    if (!uses(e, FL_USE_DNS, f->name))
      continue;
    for (size_t j = 0; j < e->nuses && f->nalso < 8; j++) {
      size_t k = 0;
      while (k < f->nalso && strcmp(f->also[k], e->uses[j].name) != 0)
        k++;
      if (e->uses[j].kind == FL_USE_DEP && k == f->nalso)
        f->also[f->nalso++] = e->uses[j].name;
    }
  }
  char fx[512], row[160], what[256];
  snprintf(fx, sizeof(fx), "{ dns: \"%s\" }", f->name);
  resets(f, fx, sizeof(fx));
  snprintf(row, sizeof(row), "dns:%s", f->name);
  snprintf(what, sizeof(what), "%s stops resolving (EAI_AGAIN)%s", f->name,
           f->nalso ? "; connections through it are dropped" : "");
  return add_case(bd, f, row, "fail", bd->o->fault, 1, what, fx);
}

static int used_by_any(const struct fl_discovery *d, int kind,
                       const char *name) {
  for (size_t i = 0; i < d->nendpoints; i++)
    if (uses(&d->endpoints[i], kind, name))
      return 1;
  return 0;
}

/* A name resolved only at start-up: the dependencies connected then, and
 * used by an endpoint since, are the ones reached through it (which one
 * cannot be told, so each is reset and each of their users judged). */
static int startup_dns_cases(struct builder *bd) {
  const struct fl_discovery *d = bd->d;
  for (size_t i = 0; i < d->nstartup; i++) {
    const struct fl_use *u = &d->startup[i];
    if (u->kind != FL_USE_DNS || used_by_any(d, FL_USE_DNS, u->name))
      continue;
    struct failed f = {FL_USE_DNS, u->name, {0}, 0};
    for (size_t j = 0; j < d->nstartup && f.nalso < 8; j++)
      if (d->startup[j].kind == FL_USE_DEP &&
          used_by_any(d, FL_USE_DEP, d->startup[j].name))
        f.also[f.nalso++] = d->startup[j].name;
    int rc = dns_case(bd, &f);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int path_cases(struct builder *bd, const struct failed *f) {
  static const char *const acts[] = {"enospc", "eio"};
  char row[160], fx[512], what[256];
  /* The row's short name: the last part of the glob without a wildcard. */
  char copy[160] = "", *save = NULL;
  snprintf(copy, sizeof(copy), "%s", f->name);
  const char *part = "files";
  for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save))
    if (strpbrk(p, "*?[$") == NULL)
      part = p;
  snprintf(row, sizeof(row), "disk:%s", part);
  for (size_t i = 0; i < 2; i++) {
    snprintf(fx, sizeof(fx), "{ %s: \"%s\" }", acts[i], f->name);
    snprintf(what, sizeof(what), "writes under %s fail with %s", f->name,
             i ? "EIO" : "ENOSPC");
    int rc = add_case(bd, f, row, acts[i], bd->o->fault, 0, what, fx);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int process_case(struct builder *bd) {
  struct failed f = {0};
  char fx[512];
  snprintf(fx, sizeof(fx), "{ exhaust: sockets }");
  for (char **n = bd->b->dep_names; *n && f.nalso < 8; n++)
    f.also[f.nalso++] = *n;
  resets(&f, fx, sizeof(fx));
  return add_case(bd, &f, "process", "fds", bd->o->fault, 0,
                  "the process runs out of descriptors (EMFILE); its "
                  "connections are dropped",
                  fx);
}

static const struct fl_dep_decl *declared(const struct fl_service *sv,
                                          const char *name) {
  for (size_t i = 0; i < sv->ndeps; i++)
    if (strcmp(sv->deps[i].name, name) == 0)
      return &sv->deps[i];
  return NULL;
}

static int use_cases(struct builder *bd, const struct fl_service *sv,
                     const struct fl_use *u, char *err, size_t errlen) {
  struct failed f = {(int)u->kind, u->name, {0}, 0};
  if (u->kind == FL_USE_DNS)
    return dns_case(bd, &f);
  if (u->kind == FL_USE_PATH)
    return path_cases(bd, &f);
  if (u->kind == FL_USE_HOSTPORT)
    return dep_cases(bd, &f, 0, 0);
  const struct fl_dep_decl *dd = declared(sv, u->name);
  if (dd == NULL) {
    snprintf(err, errlen,
             "an endpoint uses '%s', which %s does not declare "
             "as a dependency",
             u->name, sv->file);
    return FL_EBADSCENARIO;
  }
  int managed = fl_dep_kind_managed(dd->kind);
  return dep_cases(bd, &f, managed,
                   managed && fl_dep_kind_supports(dd->kind, FL_DEP_SATURATE));
}

static int dep_names(struct fl_battery *b, const struct fl_service *sv) {
  if ((b->dep_names = calloc(sv->ndeps + 1, sizeof(char *))) == NULL)
    return -ENOMEM;
  for (size_t i = 0, n = 0; i < sv->ndeps; i++)
    if (fl_dep_kind_managed(sv->deps[i].kind) &&
        (b->dep_names[n++] = strdup(sv->deps[i].name)) == NULL)
      return -ENOMEM;
  return 0;
}

int fl_battery_build(const struct fl_discovery *d, const struct fl_service *sv,
                     const struct fl_battery_opts *o, const char *only,
                     struct fl_battery *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  struct builder bd = {d, o, only, out, 1.0};
  for (size_t i = 0; i < d->nendpoints; i++)
    if (d->endpoints[i].p99 * 10 > bd.other_p99)
      bd.other_p99 = d->endpoints[i].p99 * 10;
  int rc = dep_names(out, sv);
  for (size_t i = 0; rc == 0 && i < d->nuses; i++)
    rc = use_cases(&bd, sv, &d->uses[i], err, errlen);
  if (rc == 0)
    rc = startup_dns_cases(&bd);
  if (rc == 0)
    rc = process_case(&bd);
  if (rc == 0 && out->ncases == 0) {
    snprintf(err, errlen, "--only '%s' keeps none of the cases", only);
    rc = -ENOENT;
  }
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  if (rc != 0)
    fl_battery_free(out);
  return rc;
}

void fl_battery_free(struct fl_battery *b) {
  for (size_t i = 0; i < b->ncases; i++)
    free(b->cases[i].eps);
  free(b->cases);
  for (size_t i = 0; b->dep_names && b->dep_names[i]; i++)
    free(b->dep_names[i]);
  free(b->dep_names);
  memset(b, 0, sizeof(*b));
}
