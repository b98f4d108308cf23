/*
 * Scenario files, read with libyaml's document API. The loader walks the
 * tree once, checking keys and types as it goes; the first error stops it.
 * The helpers it walks with are in yaml.c, the timeline's phases
 * and faults in timeline.c, service files in service.c.
 */
#define _GNU_SOURCE
#include "scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "scenario_int.h"
#include "traffic/traffic.h"

/* request: METHOD /path */
static int load_request(struct doc *d, yaml_node_t *n,
                        struct fl_endpoint_decl *e) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, "request", &s);
  if (rc != 0)
    return rc;
  char method[16], path[1024];
  int at = 0;
  if (sscanf(s, "%15s %n%1023s", method, &at, path) != 2 || path[0] != '/')
    return fl_yaml_fail(d, n,
                        "bad request '%s' (allowed: METHOD /path, e.g. GET "
                        "/api/items)",
                        s);
  static const char *const methods[] = {"GET",   "POST", "PUT",     "DELETE",
                                        "PATCH", "HEAD", "OPTIONS", NULL};
  int known = 0;
  for (int i = 0; methods[i]; i++)
    known |= strcmp(methods[i], method) == 0;
  if (!known)
    return fl_yaml_fail(d, n,
                        "unknown method '%s' (allowed: GET, POST, PUT, DELETE, "
                        "PATCH, HEAD, OPTIONS)",
                        method);
  char why[512];
  int col = 1;
  if (fl_path_check(path, &col, why, sizeof(why)) != 0) {
    /* Pointed at the character in the path: quoted scalars start at
     * their quote. */
    yaml_node_t where = *n;
    where.start_mark.column +=
        (size_t)(at + col - 1 +
                 (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                  n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE));
    return fl_yaml_fail(d, &where, "%s", why);
  }
  if ((rc = fl_yaml_dup(d, n, method, &e->method)) != 0 ||
      (rc = fl_yaml_dup(d, n, path, &e->path)) != 0)
    return rc;
  return 0;
}

/* concurrency: N, a whole number of requests in flight. */
static int load_concurrency(struct doc *d, yaml_node_t *n,
                            struct fl_endpoint_decl *e) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, "concurrency", &s);
  if (rc != 0)
    return rc;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 10000)
    return fl_yaml_fail(d, n,
                        "bad concurrency '%s' (allowed: a whole number of "
                        "requests in flight, 1 to 10000)",
                        s);
  e->concurrency = (int)v;
  return 0;
}

/* rate: N, or { PHASE: N, ..., default: N } (whose phases are checked
 * once the timeline is loaded: load_phase_rates). */
static int load_rate(struct doc *d, yaml_node_t *n,
                     struct fl_endpoint_decl *e) {
  if (n->type == YAML_MAPPING_NODE)
    return 0;
  if (n->type != YAML_SCALAR_NODE)
    return fl_yaml_fail(d, n,
                        "rate of endpoint '%s' must be a number or a mapping "
                        "of phase to number (e.g. { steady: 10, outage: 30 })"
                        ", found %s",
                        e->name, fl_yaml_kind_name(n));
  return fl_yaml_positive(d, n, "rate", &e->rate);
}

/* headers: { NAME: VALUE, ... }, kept as "NAME: VALUE" lines. */
static int load_headers(struct doc *d, yaml_node_t *n,
                        struct fl_endpoint_decl *e) {
  int rc = 0;
  if ((e->headers = fl_yaml_array(d, n, YAML_MAPPING_NODE, "headers",
                                  sizeof(char *))) == NULL)
    return FL_EBADSCENARIO;
  size_t i = 0;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    const char *hk, *hv;
    if ((rc = fl_yaml_want_scalar(d, fl_yaml_node(d, p->key), "a header name",
                                  &hk)) != 0 ||
        (rc = fl_yaml_want_scalar(d, fl_yaml_node(d, p->value),
                                  "a header value", &hv)) != 0)
      return rc;
    if (asprintf(&e->headers[i++], "%s: %s", hk, hv) < 0)
      return fl_yaml_fail(d, n, "out of memory");
  }
  return 0;
}

static int load_endpoint(struct doc *d, yaml_node_t *k, yaml_node_t *v,
                         struct fl_endpoint_decl *e) {
  int rc;
  if ((rc = fl_yaml_string(d, k, "an endpoint name", &e->name)) != 0)
    return rc;
  e->pos = fl_yaml_pos(k);
  if ((rc = fl_yaml_want_kind(d, v, YAML_MAPPING_NODE, "an endpoint")) != 0)
    return rc;
  yaml_node_t *req = fl_yaml_get(d, v, "request");
  if (req != NULL && fl_sc_is_ws_request(req)) {
    if ((rc = fl_sc_load_ws(d, v, req, e)) != 0)
      return rc;
    yaml_node_t *h = fl_yaml_get(d, v, "headers");
    return h != NULL ? load_headers(d, h, e) : 0;
  }
  if ((rc = fl_yaml_check_keys(d, v, "an endpoint",
                               "request rate timeout body headers "
                               "concurrency")) != 0)
    return rc;
  yaml_node_t *n = fl_yaml_get(d, v, "request");
  if (n == NULL)
    return fl_yaml_fail(d, v, "endpoint '%s' needs 'request: METHOD /path'",
                        e->name);
  if ((rc = load_request(d, n, e)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, v, "rate")) == NULL)
    return fl_yaml_fail(
        d, v, "endpoint '%s' needs a rate (requests per second)", e->name);
  if ((rc = load_rate(d, n, e)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, v, "concurrency")) != NULL &&
      (rc = load_concurrency(d, n, e)) != 0)
    return rc;
  e->timeout = 2.0;
  if ((n = fl_yaml_get(d, v, "timeout")) != NULL &&
      (rc = fl_yaml_duration(d, n, "timeout", &e->timeout)) != 0)
    return rc;
  if (e->timeout <= 0)
    return fl_yaml_fail(d, n, "timeout must be above 0");
  if ((n = fl_yaml_get(d, v, "body")) != NULL &&
      (rc = fl_yaml_string(d, n, "body", &e->body)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, v, "headers")) != NULL)
    return load_headers(d, n, e);
  return 0;
}

static int find_endpoint(const struct fl_scenario *sc, const char *name);

static int add_expect(struct doc *d, struct fl_scenario *sc, yaml_node_t *n,
                      const char *phase, const char *endpoint) {
  const char *text;
  int rc = fl_yaml_want_scalar(d, n, "an expectation", &text);
  if (rc != 0)
    return rc;
  struct fl_expect_decl *x = &sc->expects[sc->nexpects];
  char e[512];
  int col = 1;
  if (fl_expect_parse(text, &x->e, &col, e, sizeof(e)) != 0) {
    yaml_node_t at = *n;
    /* Plain and quoted scalars start at their first character (or quote). */
    int quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                 n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    at.start_mark.column += (size_t)(col - 1 + quoted);
    return fl_yaml_fail(d, &at, "%s", e);
  }
  if (endpoint != NULL && !fl_expect_is_endpoint(&x->e))
    return fl_yaml_fail(d, n,
                        "'%s' is about the target, not an endpoint: put it "
                        "directly under the phase (or always)",
                        text);
  if (endpoint == NULL && fl_expect_is_endpoint(&x->e))
    return fl_yaml_fail(d, n,
                        "'%s' needs an endpoint: put it under "
                        "PHASE: { ENDPOINT: [...] }",
                        text);
  int ep = endpoint != NULL ? find_endpoint(sc, endpoint) : -1;
  if (ep >= 0 && sc->endpoints[ep].ws != fl_expect_is_ws(&x->e))
    return fl_yaml_fail(
        d, n,
        sc->endpoints[ep].ws
            ? "'%s' is about HTTP requests; endpoint '%s' is a WebSocket one "
              "(allowed: connect rate(CLASS), rtt p(N), closes(CODE), "
              "messages OP N per connection, recovers(connect rate(...)))"
            : "'%s' is about WebSocket connections; endpoint '%s' is an HTTP "
              "one",
        text, endpoint);
  x->pos = fl_yaml_pos(n);
  if ((rc = fl_yaml_dup(d, n, phase, &x->phase)) != 0 ||
      (endpoint && (rc = fl_yaml_dup(d, n, endpoint, &x->endpoint)) != 0))
    return rc;
  sc->nexpects++;
  return 0;
}

static int count_scalars(struct doc *d, yaml_node_t *n) {
  if (n->type == YAML_SCALAR_NODE)
    return 1;
  int c = 0;
  if (n->type == YAML_SEQUENCE_NODE)
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++)
      c += count_scalars(d, fl_yaml_node(d, *it));
  if (n->type == YAML_MAPPING_NODE)
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++)
      c += count_scalars(d, fl_yaml_node(d, p->value));
  return c;
}

static int find_endpoint(const struct fl_scenario *sc, const char *name) {
  for (size_t i = 0; i < sc->nendpoints; i++) /* a failed one may have none */
    if (sc->endpoints[i].name != NULL &&
        strcmp(sc->endpoints[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int find_phase(const struct fl_scenario *sc, const char *name) {
  for (size_t i = 0; i < sc->nphases; i++) /* a failed one may have none */
    if (sc->phases[i].name != NULL && strcmp(sc->phases[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* One endpoint's expectations: a list, or a single one. */
static int load_endpoint_expects(struct doc *d, struct fl_scenario *sc,
                                 yaml_node_t *ek, yaml_node_t *ev,
                                 const char *phase) {
  const char *ep;
  int rc = fl_yaml_want_scalar(d, ek, "an endpoint name", &ep);
  if (rc != 0)
    return rc;
  int target = strcmp(ep, "target") == 0;
  if (!target && find_endpoint(sc, ep) < 0)
    return fl_yaml_fail(d, ek,
                        "expectations for endpoint '%s', which traffic "
                        "does not define",
                        ep);
  if (ev->type == YAML_SCALAR_NODE)
    return add_expect(d, sc, ev, phase, target ? NULL : ep);
  if ((rc = fl_yaml_want_kind(d, ev, YAML_SEQUENCE_NODE, "expectations")) != 0)
    return rc;
  for (yaml_node_item_t *it = ev->data.sequence.items.start;
       it < ev->data.sequence.items.top; it++)
    if ((rc = add_expect(d, sc, fl_yaml_node(d, *it), phase,
                         target ? NULL : ep)) != 0 &&
        !fl_yaml_recover(d, rc))
      return rc;
  return 0;
}

/* A phase's expectations: [TARGET-EXPECT...] | { ENDPOINT: [...], ... } */
static int load_phase_expects(struct doc *d, struct fl_scenario *sc,
                              yaml_node_t *v, const char *phase) {
  int rc;
  if (v->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top; it++)
      if ((rc = add_expect(d, sc, fl_yaml_node(d, *it), phase, NULL)) != 0 &&
          !fl_yaml_recover(d, rc))
        return rc;
    return 0;
  }
  if (v->type != YAML_MAPPING_NODE)
    return fl_yaml_fail(d, v,
                        "expectations of '%s' must be a list or a mapping "
                        "of endpoint to list, found %s",
                        phase, fl_yaml_kind_name(v));
  for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
       q < v->data.mapping.pairs.top; q++)
    if ((rc = load_endpoint_expects(d, sc, fl_yaml_node(d, q->key),
                                    fl_yaml_node(d, q->value), phase)) != 0 &&
        !fl_yaml_recover(d, rc))
      return rc;
  return 0;
}

/* expect: { PHASE|always: ... } */
static int load_expects(struct doc *d, yaml_node_t *n, struct fl_scenario *sc) {
  int rc = fl_yaml_want_kind(d, n, YAML_MAPPING_NODE, "expect");
  if (rc != 0)
    return rc;
  sc->expects = calloc((size_t)count_scalars(d, n) + 1, sizeof(*sc->expects));
  if (sc->expects == NULL)
    return fl_yaml_fail(d, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key), *v = fl_yaml_node(d, p->value);
    const char *phase;
    if ((rc = fl_yaml_want_scalar(d, k, "a phase name", &phase)) == 0 &&
        strcmp(phase, "always") != 0 && find_phase(sc, phase) < 0)
      rc = fl_yaml_fail(d, k,
                        "expectations for phase '%s', which the timeline "
                        "does not define",
                        phase);
    if (rc == 0)
      rc = load_phase_expects(d, sc, v, phase);
    if (rc != 0 && !fl_yaml_recover(d, rc))
      return rc;
  }
  return 0;
}

/* scenario, description, service and seed. */
static int load_about(struct doc *d, yaml_node_t *root,
                      struct fl_scenario *sc) {
  yaml_node_t *n;
  const char *s;
  int rc;
  if ((n = fl_yaml_get(d, root, "scenario")) == NULL)
    return fl_yaml_fail(d, root, "a scenario file needs 'scenario: NAME'");
  if ((rc = fl_yaml_string(d, n, "scenario", &sc->name)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, root, "description")) != NULL &&
      (rc = fl_yaml_string(d, n, "description", &sc->description)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, root, "service")) != NULL) {
    if ((rc = fl_yaml_want_scalar(d, n, "service", &s)) != 0)
      return rc;
    if ((sc->service_file = fl_yaml_relative_to(d->file, s)) == NULL)
      return fl_yaml_fail(d, n, "cannot resolve %s: %s", s, strerror(errno));
  }
  sc->seed = 1;
  if ((n = fl_yaml_get(d, root, "seed")) != NULL) {
    char *end;
    if ((rc = fl_yaml_want_scalar(d, n, "seed", &s)) != 0)
      return rc;
    errno = 0;
    sc->seed = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0' || s[0] == '-' || s[0] == '\0')
      return fl_yaml_fail(d, n, "bad seed '%s' (allowed: a whole number)", s);
  }
  return 0;
}

/* traffic: { ENDPOINT: {...}, ... } */
static int load_traffic(struct doc *d, yaml_node_t *root,
                        struct fl_scenario *sc) {
  yaml_node_t *n = fl_yaml_get(d, root, "traffic");
  if (n == NULL)
    return fl_yaml_fail(d, root,
                        "scenario '%s' needs traffic (endpoints to "
                        "request)",
                        sc->name ? sc->name : "(unnamed)");
  int rc = 0;
  if ((sc->endpoints = fl_yaml_array(d, n, YAML_MAPPING_NODE, "traffic",
                                     sizeof(*sc->endpoints))) == NULL)
    return FL_EBADSCENARIO;
  if (fl_yaml_count(n) == 0)
    return fl_yaml_fail(d, n, "traffic has no endpoint");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    struct fl_endpoint_decl *e = &sc->endpoints[sc->nendpoints++];
    if ((rc = load_endpoint(d, fl_yaml_node(d, p->key),
                            fl_yaml_node(d, p->value), e)) == 0 &&
        strcmp(e->name, "target") == 0)
      rc = fl_yaml_fail(d, fl_yaml_node(d, p->key),
                        "'target' is reserved for target "
                        "expectations; choose another endpoint name");
    if (rc != 0 && !fl_yaml_recover(d, rc))
      return rc;
  }
  return 0;
}

/* timeline: [PHASE, ...] */
static int load_timeline(struct doc *d, yaml_node_t *root,
                         struct fl_scenario *sc) {
  yaml_node_t *n = fl_yaml_get(d, root, "timeline");
  if (n == NULL)
    return fl_yaml_fail(d, root,
                        "scenario '%s' needs a timeline (a list of "
                        "phases)",
                        sc->name ? sc->name : "(unnamed)");
  int rc = 0;
  if ((sc->phases = fl_yaml_array(d, n, YAML_SEQUENCE_NODE, "timeline",
                                  sizeof(*sc->phases))) == NULL)
    return FL_EBADSCENARIO;
  if (fl_yaml_count(n) == 0)
    return fl_yaml_fail(d, n, "the timeline has no phase");
  for (yaml_node_item_t *it = n->data.sequence.items.start;
       it < n->data.sequence.items.top; it++) {
    /* Counted before loading, so that a half-loaded phase is freed. */
    struct fl_phase *ph = &sc->phases[sc->nphases++];
    rc = fl_sc_load_phase(d, fl_yaml_node(d, *it), ph, &sc->phases[0]);
    int first = rc == 0 ? find_phase(sc, ph->name) : -1;
    if (first >= 0 && &sc->phases[first] != ph)
      rc = fl_yaml_fail(d, fl_yaml_node(d, *it), "phase '%s' is defined twice",
                        ph->name);
    if (rc != 0 && !fl_yaml_recover(d, rc))
      return rc;
  }
  return 0;
}

/* The phases a rate map may name, for its errors. */
static void phase_names(const struct fl_scenario *sc, char *buf, size_t size) {
  buf[0] = '\0';
  for (size_t i = 0; i < sc->nphases; i++)
    snprintf(buf + strlen(buf), size - strlen(buf), "%s, ", sc->phases[i].name);
  snprintf(buf + strlen(buf), size - strlen(buf), "default");
}

/* One endpoint's rate: { PHASE: N, default: N }: a rate for every phase
 * of the timeline, named or the default. */
static int load_phase_rate_map(struct doc *d, yaml_node_t *m,
                               struct fl_scenario *sc,
                               struct fl_endpoint_decl *e) {
  char names[512];
  double dflt = 0;
  if ((e->phase_rates = calloc(sc->nphases, sizeof(double))) == NULL)
    return fl_yaml_fail(d, m, "out of memory");
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
       p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key);
    const char *name;
    int rc = fl_yaml_want_scalar(d, k, "a phase name", &name);
    if (rc != 0)
      return rc;
    int i = strcmp(name, "default") == 0 ? -1 : find_phase(sc, name);
    double *slot = i >= 0 ? &e->phase_rates[i] : &dflt;
    phase_names(sc, names, sizeof(names));
    if (i < 0 && strcmp(name, "default") != 0)
      return fl_yaml_fail(d, k,
                          "rate for phase '%s', which the timeline does not "
                          "define (allowed: %s)",
                          name, names);
    if (*slot > 0)
      return fl_yaml_fail(d, k, "rate for '%s' is given twice", name);
    if ((rc = fl_yaml_positive(d, fl_yaml_node(d, p->value), "rate", slot)) !=
        0)
      return rc;
  }
  for (size_t i = 0; i < sc->nphases; i++) {
    if (e->phase_rates[i] == 0 && dflt == 0)
      return fl_yaml_fail(d, m,
                          "rate of endpoint '%s' names no rate for phase '%s' "
                          "(name every phase, or give default: N)",
                          e->name, sc->phases[i].name);
    if (e->phase_rates[i] == 0)
      e->phase_rates[i] = dflt;
  }
  e->rate = e->phase_rates[0];
  return 0;
}

/* The rates given per phase, now that the timeline is known. */
static int load_phase_rates(struct doc *d, yaml_node_t *root,
                            struct fl_scenario *sc) {
  yaml_node_t *n = fl_yaml_get(d, root, "traffic");
  size_t i = 0;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top && i < sc->nendpoints; p++, i++) {
    yaml_node_t *rate = fl_yaml_get(d, fl_yaml_node(d, p->value), "rate");
    int rc = rate != NULL && rate->type == YAML_MAPPING_NODE
                 ? load_phase_rate_map(d, rate, sc, &sc->endpoints[i])
                 : 0;
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int load_scenario(struct doc *d, void *obj) {
  struct fl_scenario *sc = obj;
  yaml_node_t *root = yaml_document_get_root_node(&d->yd), *n;
  int rc = fl_yaml_dup(d, NULL, d->file, &sc->file);
  if (rc != 0)
    return rc;
  /* The sections that name nothing of each other: each one's errors are
   * reported, as a compiler goes on after an error. */
  if ((rc = fl_yaml_check_keys(d, root, "a scenario file",
                               "scenario description service seed traffic "
                               "timeline expect")) != 0 &&
      !fl_yaml_recover(d, rc))
    return rc;
  static int (*const sections[])(struct doc *, yaml_node_t *,
                                 struct fl_scenario *) = {
      load_about, load_traffic, load_timeline};
  for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
    if ((rc = sections[i](d, root, sc)) != 0 && !fl_yaml_recover(d, rc))
      return rc;
  /* Rates and expectations name endpoints and phases: judged only when
   * those loaded whole, so that a typo there is not reported again. */
  if (d->nerrors > 0)
    return FL_EBADSCENARIO;
  if ((rc = load_phase_rates(d, root, sc)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, root, "expect")) != NULL &&
      (rc = load_expects(d, n, sc)))
    return rc;
  return 0;
}

static void release_scenario(void *sc) { fl_scenario_free(sc); }

int fl_scenario_load(const char *path, struct fl_scenario **out, char *err,
                     size_t errlen) {
  static const struct fl_yaml_schema schema = {sizeof(struct fl_scenario),
                                               load_scenario, release_scenario};
  void *sc;
  int rc = fl_yaml_load_file(path, &schema, &sc, err, errlen);
  *out = sc;
  return rc;
}

void fl_scenario_free(struct fl_scenario *sc) {
  if (sc == NULL)
    return;
  free(sc->file);
  free(sc->name);
  free(sc->description);
  free(sc->service_file);
  for (size_t i = 0; i < sc->nendpoints; i++) {
    struct fl_endpoint_decl *e = &sc->endpoints[i];
    free(e->name);
    free(e->method);
    free(e->path);
    free(e->body);
    free(e->message);
    free(e->phase_rates);
    for (size_t k = 0; e->headers && e->headers[k]; k++)
      free(e->headers[k]);
    free(e->headers);
  }
  free(sc->endpoints);
  for (size_t i = 0; i < sc->nphases; i++) {
    struct fl_phase *ph = &sc->phases[i];
    free(ph->name);
    for (size_t k = 0; k < ph->nfaults; k++) {
      free(ph->faults[k].action);
      free(ph->faults[k].target);
      free(ph->faults[k].options);
    }
    free(ph->faults);
  }
  free(sc->phases);
  for (size_t i = 0; i < sc->nexpects; i++) {
    free(sc->expects[i].phase);
    free(sc->expects[i].endpoint);
  }
  free(sc->expects);
  free(sc);
}

static const struct fl_dep_decl *find_dep(const struct fl_service *sv,
                                          const char *name) {
  for (size_t i = 0; i < sv->ndeps; i++)
    if (strcmp(sv->deps[i].name, name) == 0)
      return &sv->deps[i];
  return NULL;
}

int fl_scenario_check(const struct fl_scenario *sc, const struct fl_service *sv,
                      char *err, size_t errlen) {
  for (size_t i = 0; i < sc->nphases; i++)
    for (size_t k = 0; k < sc->phases[i].nfaults; k++) {
      const struct fl_fault_decl *f = &sc->phases[i].faults[k];
      const struct fl_dep_decl *dep = find_dep(sv, f->target);
      int literal = f->pending != FL_PENDING_DEP;
      if (f->kind == FL_FAULT_PROCESS &&
          (dep == NULL || !fl_dep_kind_managed(dep->kind))) {
        snprintf(err, errlen,
                 "%s:%d:%d: %s needs a managed dependency of service '%s', "
                 "found '%s'",
                 sc->file, f->pos.line, f->pos.col, f->action, sv->name,
                 f->target);
        return FL_EBADSCENARIO;
      }
      if (f->kind == FL_FAULT_PROCESS &&
          !fl_dep_kind_supports(dep->kind, fl_dep_fault_of(f->type->proc, 1))) {
        char kinds[128];
        snprintf(err, errlen, "%s:%d:%d: %s works on %s only, '%s' is not one",
                 sc->file, f->pos.line, f->pos.col, f->action,
                 fl_dep_kind_names(fl_dep_fault_of(f->type->proc, 1), kinds,
                                   sizeof(kinds)),
                 f->target);
        return FL_EBADSCENARIO;
      }
      if (f->type->protocol != NULL) {
        const char *speaks = NULL;
        if (dep != NULL)
          speaks = dep->protocol ? dep->protocol
                   : fl_dep_kind_managed(dep->kind)
                       ? fl_dep_kind_name(dep->kind)
                       : NULL;
        if (speaks == NULL || strcmp(speaks, f->type->protocol) != 0) {
          snprintf(err, errlen,
                   "%s:%d:%d: %s needs a dependency that speaks %s (a "
                   "managed one of type %s, or type external with protocol: "
                   "%s), found '%s'%s%s",
                   sc->file, f->pos.line, f->pos.col, f->action,
                   f->type->protocol, f->type->protocol, f->type->protocol,
                   f->target,
                   speaks ? ", which speaks "
                   : dep  ? ", which has no protocol:"
                          : "",
                   speaks ? speaks : "");
          return FL_EBADSCENARIO;
        }
      }
      if (dep == NULL && !literal) {
        char names[256] = "";
        for (size_t j = 0; j < sv->ndeps; j++)
          snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                   j ? ", " : "", sv->deps[j].name);
        snprintf(err, errlen,
                 "%s:%d:%d: fault target '%s' is not a dependency of service "
                 "'%s' (allowed: %s, or an address host:port)",
                 sc->file, f->pos.line, f->pos.col, f->target, sv->name,
                 names[0] ? names : "none declared");
        return FL_EBADSCENARIO;
      }
    }
  return 0;
}
