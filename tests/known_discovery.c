/*
 * A known discovery for test_audit: what the battery and the matrix are
 * built from, read from a file instead of measured, so their tests need no
 * service and cannot be swayed by what a run happened to see (discovery
 * itself is test_discover's and test_audit_e2e's). The format:
 *
 *   live: /health
 *   ready: /health/ready
 *   endpoints:
 *     - { name: items, method: GET, path: /api/items,
 *         uses: [postgres, "dns:localhost"] }
 *     - { name: upload, method: POST, path: /api/upload, body: "x",
 *         headers: { Content-Type: text/plain },
 *         uses: ["path:${DATA_DIR}/uploads/ *"] }   (glob without the space)
 *
 *   startup: [postgres, "dns:db.internal"]   (used while starting)
 *
 * A use is a dependency's name, "dns:NAME", "path:GLOB" or "HOST:PORT".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "audit/discover.h"
#include "base/base.h"
#include "known_discovery.h"

struct known {
  const char *file;
  yaml_document_t yd;
  char *err;
  size_t errlen;
};

static int bad(struct known *s, const yaml_node_t *n, const char *what) {
  snprintf(s->err, s->errlen, "%s:%zu:%zu: %s", s->file,
           n ? n->start_mark.line + 1 : 1, n ? n->start_mark.column + 1 : 1,
           what);
  return FL_EBADSCENARIO;
}

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                          : NULL;
}

static int push_use(struct fl_use **v, size_t *n, int kind, const char *name) {
  for (size_t i = 0; i < *n; i++)
    if ((int)(*v)[i].kind == kind && strcmp((*v)[i].name, name) == 0)
      return 0;
  struct fl_use *nv = realloc(*v, (*n + 1) * sizeof(*nv));
  if (nv == NULL)
    return -ENOMEM;
  *v = nv;
  if ((nv[*n].name = strdup(name)) == NULL)
    return -ENOMEM;
  nv[(*n)++].kind = kind;
  return 0;
}

static int add_use(struct fl_use **v, size_t *n, const char *text) {
  if (strncmp(text, "dns:", 4) == 0)
    return push_use(v, n, FL_USE_DNS, text + 4);
  if (strncmp(text, "path:", 5) == 0)
    return push_use(v, n, FL_USE_PATH, text + 5);
  return push_use(v, n, strchr(text, ':') ? FL_USE_HOSTPORT : FL_USE_DEP, text);
}

/* A list of uses ("uses:" of an endpoint, "startup:") into *v. */
static int take_uses(struct known *s, yaml_node_t *list, const char *what,
                     struct fl_use **v, size_t *n) {
  if (list->type != YAML_SEQUENCE_NODE)
    return bad(s, list, what);
  for (yaml_node_item_t *it = list->data.sequence.items.start;
       it < list->data.sequence.items.top; it++) {
    const char *u = scalar(yaml_document_get_node(&s->yd, *it));
    int rc = u ? add_use(v, n, u) : bad(s, list, "bad use");
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int take_headers(struct known *s, yaml_node_t *m,
                        struct fl_audit_endpoint *e) {
  if (m->type != YAML_MAPPING_NODE)
    return bad(s, m, "headers: expected a mapping of Name: value");
  size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
  if ((e->headers = calloc(n + 1, sizeof(char *))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];
    const char *k = scalar(yaml_document_get_node(&s->yd, p->key));
    const char *v = scalar(yaml_document_get_node(&s->yd, p->value));
    if (k == NULL || v == NULL || asprintf(&e->headers[i], "%s: %s", k, v) < 0)
      return bad(s, m, "headers: expected Name: value");
  }
  return 0;
}

static int take_field(struct known *s, struct fl_audit_endpoint *e,
                      const char *k, yaml_node_t *v) {
  char **str = strcmp(k, "name") == 0     ? &e->name
               : strcmp(k, "method") == 0 ? &e->method
               : strcmp(k, "path") == 0   ? &e->path
               : strcmp(k, "body") == 0   ? &e->body
                                          : NULL;
  if (str != NULL) {
    if (scalar(v) == NULL)
      return bad(s, v, "expected a string");
    return (*str = strdup(scalar(v))) ? 0 : -ENOMEM;
  }
  if (strcmp(k, "headers") == 0)
    return take_headers(s, v, e);
  if (strcmp(k, "uses") != 0)
    return bad(s, v,
               "unknown key (allowed: name, method, path, body, "
               "headers, uses)");
  return take_uses(s, v, "uses: expected a list", &e->uses, &e->nuses);
}

static int take_endpoint(struct known *s, yaml_node_t *m,
                         struct fl_audit_endpoint *e) {
  if (m->type != YAML_MAPPING_NODE)
    return bad(s, m, "an endpoint: expected a mapping");
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
       p < m->data.mapping.pairs.top; p++) {
    const char *k = scalar(yaml_document_get_node(&s->yd, p->key));
    int rc =
        take_field(s, e, k ? k : "", yaml_document_get_node(&s->yd, p->value));
    if (rc != 0)
      return rc;
  }
  if (e->name == NULL || e->path == NULL || e->path[0] != '/')
    return bad(s, m, "an endpoint needs a name and a path starting with /");
  if (e->method == NULL && (e->method = strdup("GET")) == NULL)
    return -ENOMEM;
  e->status = 200;
  return 0;
}

static int take_top(struct known *s, struct fl_discovery *d, const char *k,
                    yaml_node_t *v) {
  if (strcmp(k, "live") == 0 || strcmp(k, "ready") == 0) {
    char **dst = k[0] == 'l' ? &d->live : &d->ready;
    if (scalar(v) == NULL || scalar(v)[0] != '/')
      return bad(s, v, "expected a path starting with /");
    return (*dst = strdup(scalar(v))) ? 0 : -ENOMEM;
  }
  if (strcmp(k, "startup") == 0)
    return take_uses(s, v, "startup: expected a list", &d->startup,
                     &d->nstartup);
  if (strcmp(k, "endpoints") != 0)
    return bad(s, v, "unknown key (allowed: live, ready, startup, endpoints)");
  if (v->type != YAML_SEQUENCE_NODE)
    return bad(s, v, "endpoints: expected a list");
  size_t n =
      (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  if ((d->endpoints = calloc(n ? n : 1, sizeof(*d->endpoints))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    struct fl_audit_endpoint *e = &d->endpoints[d->nendpoints++];
    int rc = take_endpoint(
        s, yaml_document_get_node(&s->yd, v->data.sequence.items.start[i]), e);
    for (size_t j = 0; rc == 0 && j < e->nuses; j++)
      rc = push_use(&d->uses, &d->nuses, (int)e->uses[j].kind, e->uses[j].name);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int load(struct known *s, FILE *f, struct fl_discovery *d) {
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  if (!yaml_parser_load(&p, &s->yd)) {
    snprintf(s->err, s->errlen, "%s:%zu:%zu: %s", s->file,
             p.problem_mark.line + 1, p.problem_mark.column + 1,
             p.problem ? p.problem : "not YAML");
    yaml_parser_delete(&p);
    return FL_EBADSCENARIO;
  }
  yaml_parser_delete(&p);
  yaml_node_t *root = yaml_document_get_root_node(&s->yd);
  int rc = 0;
  if (root == NULL || root->type != YAML_MAPPING_NODE)
    rc = bad(s, root, "expected a mapping (live, ready, endpoints)");
  for (yaml_node_pair_t *pr = rc ? NULL : root->data.mapping.pairs.start;
       pr && pr < root->data.mapping.pairs.top && rc == 0; pr++) {
    const char *k = scalar(yaml_document_get_node(&s->yd, pr->key));
    rc = take_top(s, d, k ? k : "", yaml_document_get_node(&s->yd, pr->value));
  }
  if (rc == 0 && d->nendpoints == 0)
    rc = bad(s, root, "no endpoints");
  yaml_document_delete(&s->yd);
  return rc;
}

/* The uses' kind is fixed by their text, except a bare name: a managed
 * dependency when the service declares one so, which the battery checks. */
int t_known_discovery(const char *path, struct fl_discovery *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof(*out));
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
    return -e;
  }
  struct known s = {.file = path, .err = err, .errlen = errlen};
  int rc = load(&s, f, out);
  fclose(f);
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  if (rc != 0)
    fl_discovery_free(out);
  return rc;
}
