/*
 * Service and scenario files, read with libyaml's document API (every node
 * keeps its line and column). Each loader walks the tree once, checking
 * keys and types as it goes; the first error stops it.
 */
#define _GNU_SOURCE
#include "scenario.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "errors.h"
#include "faultspec.h"

struct doc {
  const char *file;
  yaml_document_t yd;
  char *err;
  size_t errlen;
  int failed;
};

static int fail_at(struct doc *d, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct doc *d, const yaml_node_t *n, const char *fmt, ...) {
  if (d->failed)
    return FL_EBADSCENARIO;
  d->failed = 1;
  int k = snprintf(d->err, d->errlen, "%s:%zu:%zu: ", d->file,
                   n ? n->start_mark.line + 1 : 1,
                   n ? n->start_mark.column + 1 : 1);
  if (k < 0 || (size_t)k >= d->errlen)
    return FL_EBADSCENARIO;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err + k, d->errlen - (size_t)k, fmt, ap);
  va_end(ap);
  return FL_EBADSCENARIO;
}

static struct fl_pos pos_of(const yaml_node_t *n) {
  return (struct fl_pos){(int)n->start_mark.line + 1,
                         (int)n->start_mark.column + 1};
}

static yaml_node_t *node(struct doc *d, int id) {
  return yaml_document_get_node(&d->yd, id);
}

static const char *kind_name(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}

static const char *scalar(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                     : NULL;
}

static int want_scalar(struct doc *d, const yaml_node_t *n, const char *what,
                       const char **out) {
  if ((*out = scalar(n)) == NULL)
    return fail_at(d, n, "%s must be a scalar, found %s", what, kind_name(n));
  return 0;
}

static int want_kind(struct doc *d, const yaml_node_t *n, yaml_node_type_t t,
                     const char *what) {
  if (n->type == t)
    return 0;
  return fail_at(d, n, "%s must be %s, found %s", what,
                 t == YAML_MAPPING_NODE ? "a mapping" : "a list", kind_name(n));
}

static int dup_str(struct doc *d, const yaml_node_t *n, const char *s,
                   char **out) {
  if ((*out = strdup(s)) == NULL)
    return fail_at(d, n, "out of memory");
  return 0;
}

/* Checks every key of a mapping against `allowed` (space-separated). */
static int check_keys(struct doc *d, const yaml_node_t *map, const char *where,
                      const char *allowed) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(d, p->key);
    const char *key = scalar(k);
    if (key == NULL)
      return fail_at(d, k, "keys of %s must be scalars, found %s", where,
                     kind_name(k));
    char buf[256];
    snprintf(buf, sizeof(buf), " %s ", allowed);
    char needle[128];
    snprintf(needle, sizeof(needle), " %s ", key);
    if (strstr(buf, needle) == NULL) {
      char list[256];
      snprintf(list, sizeof(list), "%s", allowed);
      for (char *c = list; *c; c++)
        if (*c == ' ')
          *c = ',';
      char pretty[512] = "";
      for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        snprintf(pretty + strlen(pretty), sizeof(pretty) - strlen(pretty),
                 "%s%s", pretty[0] ? ", " : "", tok);
      return fail_at(d, k, "unknown key '%s' in %s (allowed: %s)", key, where,
                     pretty);
    }
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
      const char *prev = scalar(node(d, q->key));
      if (prev && strcmp(prev, key) == 0)
        return fail_at(d, k, "duplicate key '%s' in %s", key, where);
    }
  }
  return 0;
}

static yaml_node_t *get(struct doc *d, const yaml_node_t *map,
                        const char *key) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    const char *k = scalar(node(d, p->key));
    if (k && strcmp(k, key) == 0)
      return node(d, p->value);
  }
  return NULL;
}

/* "250ms", "2s", "1.5s", "1m", or a bare number of seconds. */
static int parse_duration_str(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno != 0 || !isfinite(v) || v < 0)
    return -1;
  if (strcmp(end, "ms") == 0)
    v /= 1000.0;
  else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
    v *= 60.0;
  else if (strcmp(end, "s") != 0 && *end != '\0')
    return -1;
  *out = v;
  return 0;
}

static int get_duration(struct doc *d, const yaml_node_t *n, const char *what,
                        double *out) {
  const char *s;
  int rc = want_scalar(d, n, what, &s);
  if (rc != 0)
    return rc;
  if (parse_duration_str(s, out) != 0)
    return fail_at(d, n,
                   "bad duration '%s' for %s (allowed: a number with ms, s or "
                   "m, e.g. 250ms, 2s, 1m)",
                   s, what);
  return 0;
}

static int get_positive(struct doc *d, const yaml_node_t *n, const char *what,
                        double *out) {
  const char *s;
  int rc = want_scalar(d, n, what, &s);
  if (rc != 0)
    return rc;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || (*end != '\0' && strcmp(end, "/s") != 0) || errno != 0 ||
      !isfinite(v) || v <= 0 || v > 100000)
    return fail_at(d, n, "bad %s '%s' (allowed: a number above 0, e.g. 50)",
                   what, s);
  *out = v;
  return 0;
}

static int load_doc(const char *path, struct doc *d, char *err, size_t errlen) {
  memset(d, 0, sizeof(*d));
  d->file = path;
  d->err = err;
  d->errlen = errlen;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
    return -e;
  }
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  int ok = yaml_parser_load(&p, &d->yd);
  if (!ok) {
    snprintf(err, errlen, "%s:%zu:%zu: not valid YAML: %s", path,
             p.problem_mark.line + 1, p.problem_mark.column + 1,
             p.problem ? p.problem : "parse error");
    yaml_parser_delete(&p);
    fclose(f);
    return FL_EBADSCENARIO;
  }
  yaml_parser_delete(&p);
  fclose(f);
  yaml_node_t *root = yaml_document_get_root_node(&d->yd);
  if (root == NULL) {
    yaml_document_delete(&d->yd);
    snprintf(err, errlen,
             "%s:1:1: empty file (expected a mapping with "
             "'scenario:' or 'service:')",
             path);
    return FL_EBADSCENARIO;
  }
  if (root->type != YAML_MAPPING_NODE) {
    int rc = fail_at(d, root, "the file must be a mapping, found %s",
                     kind_name(root));
    yaml_document_delete(&d->yd);
    return rc;
  }
  return 0;
}

/* An absolute path for `rel`, relative to the folder of `file`. */
static char *relative_to(const char *file, const char *rel) {
  char *out = NULL;
  if (rel[0] == '/')
    return strdup(rel);
  char dir[PATH_MAX];
  if (realpath(file, dir) == NULL)
    return NULL;
  char *slash = strrchr(dir, '/');
  if (slash != NULL)
    *slash = '\0';
  if (asprintf(&out, "%s/%s", dir, rel) < 0)
    return NULL;
  return out;
}

int fl_yaml_kind(const char *path) {
  char err[FL_ERRLEN];
  struct doc d;
  int rc = load_doc(path, &d, err, sizeof(err));
  if (rc != 0)
    return rc;
  yaml_node_t *root = yaml_document_get_root_node(&d.yd);
  int kind = get(&d, root, "service") != NULL && !get(&d, root, "scenario");
  yaml_document_delete(&d.yd);
  return kind;
}

/* ---- service files ---- */

static int load_deps(struct doc *d, const yaml_node_t *n,
                     struct fl_service *s) {
  int rc = want_kind(d, n, YAML_MAPPING_NODE, "dependencies");
  if (rc != 0)
    return rc;
  size_t cnt =
      (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  s->deps = calloc(cnt + 1, sizeof(*s->deps));
  if (s->deps == NULL)
    return fail_at(d, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
    const char *name;
    if ((rc = want_scalar(d, k, "a dependency name", &name)) != 0)
      return rc;
    for (const char *c = name; *c; c++)
      if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '_')
        return fail_at(d, k,
                       "bad dependency name '%s' (allowed: lower-case "
                       "letters, digits and _)",
                       name);
    struct fl_dep_decl *dep = &s->deps[s->ndeps++];
    dep->pos = pos_of(k);
    if ((rc = dup_str(d, k, name, &dep->name)) != 0)
      return rc;
    if ((rc = want_kind(d, v, YAML_MAPPING_NODE, "a dependency")) != 0 ||
        (rc = check_keys(d, v, "a dependency", "type address")) != 0)
      return rc;
    yaml_node_t *t = get(d, v, "type");
    const char *type;
    if (t == NULL)
      return fail_at(d, v,
                     "dependency '%s' needs a type (allowed: postgres, "
                     "redis, external)",
                     name);
    if ((rc = want_scalar(d, t, "type", &type)) != 0)
      return rc;
    if (strcmp(type, "postgres") == 0)
      dep->type = FL_DEP_POSTGRES;
    else if (strcmp(type, "redis") == 0)
      dep->type = FL_DEP_REDIS;
    else if (strcmp(type, "external") == 0)
      dep->type = FL_DEP_EXTERNAL;
    else
      return fail_at(d, t,
                     "unknown dependency type '%s' (allowed: postgres, redis, "
                     "external)",
                     type);
    yaml_node_t *a = get(d, v, "address");
    if (dep->type == FL_DEP_EXTERNAL) {
      const char *addr;
      if (a == NULL)
        return fail_at(d, v,
                       "external dependency '%s' needs an address "
                       "(host:port)",
                       name);
      if ((rc = want_scalar(d, a, "address", &addr)) != 0 ||
          (rc = dup_str(d, a, addr, &dep->address)) != 0)
        return rc;
      const char *colon = strrchr(addr, ':');
      if (colon == NULL || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
        return fail_at(d, a, "bad address '%s' (allowed: host:port)", addr);
    } else if (a != NULL) {
      return fail_at(d, a,
                     "a managed dependency gets its address from faultline; "
                     "'address' is only for type external");
    }
  }
  return 0;
}

static int load_command(struct doc *d, const yaml_node_t *n,
                        struct fl_service *s) {
  int rc;
  if (n->type == YAML_SCALAR_NODE) {
    s->argv = calloc(4, sizeof(char *));
    if (s->argv == NULL || (s->argv[0] = strdup("/bin/sh")) == NULL ||
        (s->argv[1] = strdup("-c")) == NULL ||
        (s->argv[2] = strdup(scalar(n))) == NULL)
      return fail_at(d, n, "out of memory");
    if (s->argv[2][0] == '\0')
      return fail_at(d, n, "command is empty");
    return 0;
  }
  if ((rc = want_kind(d, n, YAML_SEQUENCE_NODE, "command")) != 0)
    return rc;
  size_t cnt =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cnt == 0)
    return fail_at(d, n, "command is an empty list");
  s->argv = calloc(cnt + 1, sizeof(char *));
  if (s->argv == NULL)
    return fail_at(d, n, "out of memory");
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start;
       it < n->data.sequence.items.top; it++) {
    yaml_node_t *a = node(d, *it);
    const char *v;
    if ((rc = want_scalar(d, a, "each command word", &v)) != 0 ||
        (rc = dup_str(d, a, v, &s->argv[i++])) != 0)
      return rc;
  }
  return 0;
}

static int load_service(struct doc *d, struct fl_service *s) {
  yaml_node_t *root = yaml_document_get_root_node(&d->yd), *n;
  const char *v;
  int rc = check_keys(d, root, "a service file",
                      "service description command dir env ready "
                      "dependencies");
  if (rc != 0)
    return rc;
  if ((n = get(d, root, "service")) == NULL)
    return fail_at(d, root, "a service file needs 'service: NAME'");
  if ((rc = want_scalar(d, n, "service", &v)) != 0 ||
      (rc = dup_str(d, n, v, &s->name)) != 0)
    return rc;
  if ((n = get(d, root, "command")) == NULL)
    return fail_at(d, root, "service '%s' needs a command", s->name);
  if ((rc = load_command(d, n, s)) != 0)
    return rc;
  n = get(d, root, "dir");
  if (n != NULL && (rc = want_scalar(d, n, "dir", &v)) != 0)
    return rc;
  if ((s->dir = relative_to(d->file, n ? v : ".")) == NULL)
    return fail_at(d, n ? n : root, "cannot resolve dir: %s", strerror(errno));
  if ((n = get(d, root, "env")) != NULL) {
    if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "env")) != 0)
      return rc;
    size_t cnt =
        (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    s->env = calloc(cnt + 1, sizeof(*s->env));
    if (s->env == NULL)
      return fail_at(d, n, "out of memory");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = node(d, p->key), *val = node(d, p->value);
      const char *key, *value;
      if ((rc = want_scalar(d, k, "an env name", &key)) != 0 ||
          (rc = want_scalar(d, val, "an env value", &value)) != 0)
        return rc;
      struct fl_kv *kv = &s->env[s->nenv++];
      kv->pos = pos_of(val);
      if ((rc = dup_str(d, k, key, &kv->key)) != 0 ||
          (rc = dup_str(d, val, value, &kv->value)) != 0)
        return rc;
      char e[128];
      char *x = fl_expand(value, NULL, NULL, e, sizeof(e));
      if (x == NULL)
        return fail_at(d, val, "%s", e);
      free(x);
    }
  }
  s->ready_timeout = 30;
  if ((n = get(d, root, "ready")) != NULL) {
    if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "ready")) != 0 ||
        (rc = check_keys(d, n, "ready", "http tcp timeout")) != 0)
      return rc;
    yaml_node_t *h = get(d, n, "http"), *t = get(d, n, "tcp"),
                *to = get(d, n, "timeout");
    if (h != NULL && t != NULL)
      return fail_at(d, t, "ready takes http or tcp, not both");
    if (h != NULL) {
      if ((rc = want_scalar(d, h, "ready.http", &v)) != 0)
        return rc;
      if (v[0] != '/')
        return fail_at(d, h,
                       "bad ready.http '%s' (allowed: a path such as "
                       "/health)",
                       v);
      if ((rc = dup_str(d, h, v, &s->ready_http)) != 0)
        return rc;
    }
    if (to != NULL &&
        (rc = get_duration(d, to, "ready.timeout", &s->ready_timeout)) != 0)
      return rc;
  }
  if ((n = get(d, root, "dependencies")) != NULL &&
      (rc = load_deps(d, n, s)) != 0)
    return rc;
  return 0;
}

int fl_service_load(const char *path, struct fl_service **out, char *err,
                    size_t errlen) {
  struct doc d;
  *out = NULL;
  int rc = load_doc(path, &d, err, errlen);
  if (rc != 0)
    return rc;
  struct fl_service *s = calloc(1, sizeof(*s));
  if (s == NULL || (s->file = strdup(path)) == NULL)
    rc = fail_at(&d, NULL, "out of memory");
  else
    rc = load_service(&d, s);
  yaml_document_delete(&d.yd);
  if (rc != 0) {
    fl_service_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void fl_service_free(struct fl_service *s) {
  if (s == NULL)
    return;
  free(s->file);
  free(s->name);
  for (size_t i = 0; s->argv && s->argv[i]; i++)
    free(s->argv[i]);
  free(s->argv);
  free(s->dir);
  for (size_t i = 0; i < s->nenv; i++) {
    free(s->env[i].key);
    free(s->env[i].value);
  }
  free(s->env);
  free(s->ready_http);
  for (size_t i = 0; i < s->ndeps; i++) {
    free(s->deps[i].name);
    free(s->deps[i].address);
  }
  free(s->deps);
  free(s);
}

/* ---- scenario files ---- */

static const struct {
  const char *name;
  int fault;
} process_faults[] = {
    {"kill", FL_DEP_KILL},         {"stop", FL_DEP_STOP},
    {"pause", FL_DEP_PAUSE},       {"restart", FL_DEP_RESTART},
    {"saturate", FL_DEP_SATURATE},
};

/* Rule actions a scenario may name (redirect is the runner's own). */
static int fl_action_by_name(const char *name) {
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++)
    if (a != FL_ACT_REDIRECT && strcmp(fl_action_name(a), name) == 0)
      return a;
  return -1;
}

static const char *fl_action_list(void) {
  static char list[512];
  if (list[0] == '\0')
    for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++)
      if (a != FL_ACT_REDIRECT)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 list[0] ? ", " : "", fl_action_name(a));
  return list;
}

static int process_fault(const char *name) {
  for (size_t i = 0; i < sizeof(process_faults) / sizeof(process_faults[0]);
       i++)
    if (strcmp(process_faults[i].name, name) == 0)
      return process_faults[i].fault;
  return -1;
}

static int load_endpoint(struct doc *d, yaml_node_t *k, yaml_node_t *v,
                         struct fl_endpoint_decl *e) {
  const char *name, *s;
  int rc;
  if ((rc = want_scalar(d, k, "an endpoint name", &name)) != 0 ||
      (rc = dup_str(d, k, name, &e->name)) != 0)
    return rc;
  e->pos = pos_of(k);
  if ((rc = want_kind(d, v, YAML_MAPPING_NODE, "an endpoint")) != 0 ||
      (rc = check_keys(d, v, "an endpoint",
                       "request rate timeout body headers")) != 0)
    return rc;
  yaml_node_t *n = get(d, v, "request");
  if (n == NULL)
    return fail_at(d, v, "endpoint '%s' needs 'request: METHOD /path'", name);
  if ((rc = want_scalar(d, n, "request", &s)) != 0)
    return rc;
  char method[16], path[1024];
  if (sscanf(s, "%15s %1023s", method, path) != 2 || path[0] != '/')
    return fail_at(d, n,
                   "bad request '%s' (allowed: METHOD /path, e.g. GET "
                   "/api/items)",
                   s);
  static const char *const methods[] = {"GET",   "POST", "PUT",     "DELETE",
                                        "PATCH", "HEAD", "OPTIONS", NULL};
  int known = 0;
  for (int i = 0; methods[i]; i++)
    known |= strcmp(methods[i], method) == 0;
  if (!known)
    return fail_at(d, n,
                   "unknown method '%s' (allowed: GET, POST, PUT, DELETE, "
                   "PATCH, HEAD, OPTIONS)",
                   method);
  if ((rc = dup_str(d, n, method, &e->method)) != 0 ||
      (rc = dup_str(d, n, path, &e->path)) != 0)
    return rc;
  if ((n = get(d, v, "rate")) == NULL)
    return fail_at(d, v, "endpoint '%s' needs a rate (requests per second)",
                   name);
  if ((rc = get_positive(d, n, "rate", &e->rate)) != 0)
    return rc;
  e->timeout = 2.0;
  if ((n = get(d, v, "timeout")) != NULL &&
      (rc = get_duration(d, n, "timeout", &e->timeout)) != 0)
    return rc;
  if (e->timeout <= 0)
    return fail_at(d, n, "timeout must be above 0");
  if ((n = get(d, v, "body")) != NULL &&
      ((rc = want_scalar(d, n, "body", &s)) != 0 ||
       (rc = dup_str(d, n, s, &e->body)) != 0))
    return rc;
  if ((n = get(d, v, "headers")) != NULL) {
    if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "headers")) != 0)
      return rc;
    size_t cnt =
        (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    e->headers = calloc(cnt + 1, sizeof(char *));
    if (e->headers == NULL)
      return fail_at(d, n, "out of memory");
    size_t i = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
      const char *hk, *hv;
      if ((rc = want_scalar(d, node(d, p->key), "a header name", &hk)) != 0 ||
          (rc = want_scalar(d, node(d, p->value), "a header value", &hv)) != 0)
        return rc;
      if (asprintf(&e->headers[i++], "%s: %s", hk, hv) < 0)
        return fail_at(d, n, "out of memory");
    }
  }
  return 0;
}

static int load_fault(struct doc *d, yaml_node_t *n, struct fl_fault_decl *f) {
  int rc;
  f->pos = pos_of(n);
  f->until = -1;
  if (n->type == YAML_SCALAR_NODE)
    return fail_at(d, n,
                   "a fault is a mapping such as '{ refuse: postgres }' or "
                   "'{ kill: redis }', found '%s'",
                   scalar(n));
  if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "a fault")) != 0)
    return rc;
  char opts[512] = "";
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
    const char *key, *val;
    if ((rc = want_scalar(d, k, "a fault key", &key)) != 0 ||
        (rc = want_scalar(d, v, key, &val)) != 0)
      return rc;
    if (strcmp(key, "at") == 0 && strcmp(val, "start") == 0) {
      f->at = -1; /* before the target starts (first phase only) */
    } else if (strcmp(key, "at") == 0) {
      if ((rc = get_duration(d, v, "at", &f->at)) != 0)
        return rc;
    } else if (strcmp(key, "until") == 0) {
      if ((rc = get_duration(d, v, "until", &f->until)) != 0)
        return rc;
    } else if (strcmp(key, "every") == 0) {
      if ((rc = get_duration(d, v, "every", &f->every)) != 0)
        return rc;
      if (f->every < 0.1)
        return fail_at(d, v, "every must be at least 100ms");
    } else if (f->action == NULL &&
               (process_fault(key) >= 0 || fl_action_by_name(key) >= 0)) {
      if ((rc = dup_str(d, k, key, &f->action)) != 0 ||
          (rc = dup_str(d, v, val, &f->target)) != 0)
        return rc;
      f->pos = pos_of(k);
      if (process_fault(key) >= 0) {
        f->kind = FL_FAULT_PROCESS;
        f->process = process_fault(key);
      }
    } else if (f->action == NULL &&
               (strchr(key, '=') || !isalpha(*key) || strlen(key) > 3)) {
      return fail_at(d, k,
                     "unknown fault '%s' (allowed: %s, kill, stop, pause, "
                     "restart, saturate)",
                     key, fl_action_list());
    } else {
      size_t at = strlen(opts);
      snprintf(opts + at, sizeof(opts) - at, ",%s=%s", key, val);
    }
  }
  if (f->action == NULL)
    return fail_at(d, n,
                   "a fault needs an action aimed at a target, e.g. '{ "
                   "refuse: postgres }' (actions: %s, kill, stop, pause, "
                   "restart, saturate)",
                   fl_action_list());
  if (f->kind == FL_FAULT_PROCESS && opts[0] != '\0')
    return fail_at(d, n,
                   "process fault '%s' takes no options besides at, "
                   "until and every (found '%s')",
                   f->action, opts + 1);
  if (f->at < 0 && f->kind == FL_FAULT_PROCESS)
    return fail_at(d, n,
                   "'at: start' is for rule faults; a process fault "
                   "starts with the first phase");
  if (f->until >= 0 && f->until <= f->at)
    return fail_at(d, n, "until (%gs) must come after at (%gs)", f->until,
                   f->at);
  if ((f->options = strdup(opts)) == NULL)
    return fail_at(d, n, "out of memory");
  if (f->kind == FL_FAULT_SHIM) {
    /* Check the options now with a stand-in target of the right kind. */
    char spec[1024], e[512];
    const char *stand_in = f->target;
    if (strcmp(f->action, "dns") != 0 && strcmp(f->action, "enospc") != 0 &&
        strcmp(f->action, "eio") != 0 && strcmp(f->action, "exhaust") != 0 &&
        strchr(f->target, ':') == NULL && strchr(f->target, '/') == NULL)
      stand_in = "127.0.0.1:1";
    else if (strstr(f->target, "${") != NULL)
      stand_in = strcmp(f->action, "dns") == 0 ? "example.invalid" : "/x/*";
    snprintf(spec, sizeof(spec), "%s@%s%s", f->action, stand_in, opts);
    struct fl_rule r;
    if (fl_spec_parse(spec, &r, e, sizeof(e)) != 0) {
      const char *msg = strstr(e, "': ");
      return fail_at(d, n, "bad fault: %s", msg ? msg + 3 : e);
    }
  }
  return 0;
}

static int load_phase(struct doc *d, yaml_node_t *n, struct fl_phase *ph,
                      const struct fl_phase *sc_first_phase) {
  int rc;
  const char *s;
  ph->pos = pos_of(n);
  if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "a phase")) != 0 ||
      (rc = check_keys(d, n, "a phase", "phase duration faults")) != 0)
    return rc;
  yaml_node_t *v = get(d, n, "phase");
  if (v == NULL)
    return fail_at(d, n, "a phase needs 'phase: NAME'");
  if ((rc = want_scalar(d, v, "phase", &s)) != 0 ||
      (rc = dup_str(d, v, s, &ph->name)) != 0)
    return rc;
  if (strcmp(s, "always") == 0)
    return fail_at(d, v,
                   "'always' is reserved for expectations over the "
                   "whole run; choose another phase name");
  if ((v = get(d, n, "duration")) == NULL)
    return fail_at(d, n, "phase '%s' needs a duration", ph->name);
  if ((rc = get_duration(d, v, "duration", &ph->duration)) != 0)
    return rc;
  if (ph->duration <= 0 || ph->duration > 3600)
    return fail_at(d, v,
                   "bad duration for phase '%s' (allowed: above 0, at "
                   "most 1h)",
                   ph->name);
  if ((v = get(d, n, "faults")) == NULL)
    return 0;
  if ((rc = want_kind(d, v, YAML_SEQUENCE_NODE, "faults")) != 0)
    return rc;
  size_t cnt =
      (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  ph->faults = calloc(cnt + 1, sizeof(*ph->faults));
  if (ph->faults == NULL)
    return fail_at(d, v, "out of memory");
  for (yaml_node_item_t *it = v->data.sequence.items.start;
       it < v->data.sequence.items.top; it++) {
    struct fl_fault_decl *f = &ph->faults[ph->nfaults++];
    if ((rc = load_fault(d, node(d, *it), f)) != 0)
      return rc;
    if (f->at < 0 && ph != sc_first_phase)
      return fail_at(d, node(d, *it),
                     "'at: start' is allowed in the first "
                     "phase only");
    if (f->at >= ph->duration)
      return fail_at(d, node(d, *it),
                     "at (%gs) is not inside phase '%s' "
                     "(%gs long)",
                     f->at, ph->name, ph->duration);
    if (f->until > ph->duration)
      return fail_at(d, node(d, *it),
                     "until (%gs) is past the end of phase "
                     "'%s' (%gs long)",
                     f->until, ph->name, ph->duration);
  }
  return 0;
}

static int add_expect(struct doc *d, struct fl_scenario *sc, yaml_node_t *n,
                      const char *phase, const char *endpoint) {
  const char *text;
  int rc = want_scalar(d, n, "an expectation", &text);
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
    return fail_at(d, &at, "%s", e);
  }
  if (endpoint != NULL && !fl_expect_is_endpoint(&x->e))
    return fail_at(d, n,
                   "'%s' is about the target, not an endpoint: put it "
                   "directly under the phase (or always)",
                   text);
  if (endpoint == NULL && fl_expect_is_endpoint(&x->e))
    return fail_at(d, n,
                   "'%s' needs an endpoint: put it under "
                   "PHASE: { ENDPOINT: [...] }",
                   text);
  x->pos = pos_of(n);
  if ((rc = dup_str(d, n, phase, &x->phase)) != 0 ||
      (endpoint && (rc = dup_str(d, n, endpoint, &x->endpoint)) != 0))
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
      c += count_scalars(d, node(d, *it));
  if (n->type == YAML_MAPPING_NODE)
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++)
      c += count_scalars(d, node(d, p->value));
  return c;
}

static int find_endpoint(const struct fl_scenario *sc, const char *name) {
  for (size_t i = 0; i < sc->nendpoints; i++)
    if (strcmp(sc->endpoints[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int find_phase(const struct fl_scenario *sc, const char *name) {
  for (size_t i = 0; i < sc->nphases; i++)
    if (strcmp(sc->phases[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* expect: { PHASE|always: [TARGET-EXPECT...] | { ENDPOINT: [...], ... } } */
static int load_expects(struct doc *d, yaml_node_t *n, struct fl_scenario *sc) {
  int rc = want_kind(d, n, YAML_MAPPING_NODE, "expect");
  if (rc != 0)
    return rc;
  sc->expects = calloc((size_t)count_scalars(d, n) + 1, sizeof(*sc->expects));
  if (sc->expects == NULL)
    return fail_at(d, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
    const char *phase;
    if ((rc = want_scalar(d, k, "a phase name", &phase)) != 0)
      return rc;
    if (strcmp(phase, "always") != 0 && find_phase(sc, phase) < 0)
      return fail_at(d, k,
                     "expectations for phase '%s', which the timeline "
                     "does not define",
                     phase);
    if (v->type == YAML_SEQUENCE_NODE) {
      for (yaml_node_item_t *it = v->data.sequence.items.start;
           it < v->data.sequence.items.top; it++)
        if ((rc = add_expect(d, sc, node(d, *it), phase, NULL)) != 0)
          return rc;
      continue;
    }
    if (v->type != YAML_MAPPING_NODE)
      return fail_at(d, v,
                     "expectations of '%s' must be a list or a mapping "
                     "of endpoint to list, found %s",
                     phase, kind_name(v));
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
         q < v->data.mapping.pairs.top; q++) {
      yaml_node_t *ek = node(d, q->key), *ev = node(d, q->value);
      const char *ep;
      if ((rc = want_scalar(d, ek, "an endpoint name", &ep)) != 0)
        return rc;
      int target = strcmp(ep, "target") == 0;
      if (!target && find_endpoint(sc, ep) < 0)
        return fail_at(d, ek,
                       "expectations for endpoint '%s', which traffic "
                       "does not define",
                       ep);
      if (ev->type == YAML_SCALAR_NODE) {
        if ((rc = add_expect(d, sc, ev, phase, target ? NULL : ep)) != 0)
          return rc;
        continue;
      }
      if ((rc = want_kind(d, ev, YAML_SEQUENCE_NODE, "expectations")) != 0)
        return rc;
      for (yaml_node_item_t *it = ev->data.sequence.items.start;
           it < ev->data.sequence.items.top; it++)
        if ((rc = add_expect(d, sc, node(d, *it), phase, target ? NULL : ep)) !=
            0)
          return rc;
    }
  }
  return 0;
}

static int load_scenario(struct doc *d, struct fl_scenario *sc) {
  yaml_node_t *root = yaml_document_get_root_node(&d->yd), *n;
  const char *s;
  int rc = check_keys(d, root, "a scenario file",
                      "scenario description service seed traffic timeline "
                      "expect");
  if (rc != 0)
    return rc;
  if ((n = get(d, root, "scenario")) == NULL)
    return fail_at(d, root, "a scenario file needs 'scenario: NAME'");
  if ((rc = want_scalar(d, n, "scenario", &s)) != 0 ||
      (rc = dup_str(d, n, s, &sc->name)) != 0)
    return rc;
  if ((n = get(d, root, "description")) != NULL &&
      ((rc = want_scalar(d, n, "description", &s)) != 0 ||
       (rc = dup_str(d, n, s, &sc->description)) != 0))
    return rc;
  if ((n = get(d, root, "service")) != NULL) {
    if ((rc = want_scalar(d, n, "service", &s)) != 0)
      return rc;
    if ((sc->service_file = relative_to(d->file, s)) == NULL)
      return fail_at(d, n, "cannot resolve %s: %s", s, strerror(errno));
  }
  sc->seed = 1;
  if ((n = get(d, root, "seed")) != NULL) {
    char *end;
    if ((rc = want_scalar(d, n, "seed", &s)) != 0)
      return rc;
    errno = 0;
    sc->seed = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0' || s[0] == '-' || s[0] == '\0')
      return fail_at(d, n, "bad seed '%s' (allowed: a whole number)", s);
  }
  if ((n = get(d, root, "traffic")) == NULL)
    return fail_at(d, root,
                   "scenario '%s' needs traffic (endpoints to "
                   "request)",
                   sc->name);
  if ((rc = want_kind(d, n, YAML_MAPPING_NODE, "traffic")) != 0)
    return rc;
  size_t cnt =
      (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (cnt == 0)
    return fail_at(d, n, "traffic has no endpoint");
  sc->endpoints = calloc(cnt, sizeof(*sc->endpoints));
  if (sc->endpoints == NULL)
    return fail_at(d, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    struct fl_endpoint_decl *e = &sc->endpoints[sc->nendpoints++];
    if ((rc = load_endpoint(d, node(d, p->key), node(d, p->value), e)) != 0)
      return rc;
    if (strcmp(e->name, "target") == 0)
      return fail_at(d, node(d, p->key),
                     "'target' is reserved for target "
                     "expectations; choose another endpoint name");
  }
  if ((n = get(d, root, "timeline")) == NULL)
    return fail_at(d, root,
                   "scenario '%s' needs a timeline (a list of "
                   "phases)",
                   sc->name);
  if ((rc = want_kind(d, n, YAML_SEQUENCE_NODE, "timeline")) != 0)
    return rc;
  cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cnt == 0)
    return fail_at(d, n, "the timeline has no phase");
  sc->phases = calloc(cnt, sizeof(*sc->phases));
  if (sc->phases == NULL)
    return fail_at(d, n, "out of memory");
  for (yaml_node_item_t *it = n->data.sequence.items.start;
       it < n->data.sequence.items.top; it++) {
    /* Counted before loading, so that a half-loaded phase is freed. */
    struct fl_phase *ph = &sc->phases[sc->nphases++];
    if ((rc = load_phase(d, node(d, *it), ph, &sc->phases[0])) != 0)
      return rc;
    int first = find_phase(sc, ph->name);
    if (first >= 0 && &sc->phases[first] != ph)
      return fail_at(d, node(d, *it), "phase '%s' is defined twice", ph->name);
  }
  if ((n = get(d, root, "expect")) != NULL && (rc = load_expects(d, n, sc)))
    return rc;
  return 0;
}

int fl_scenario_load(const char *path, struct fl_scenario **out, char *err,
                     size_t errlen) {
  struct doc d;
  *out = NULL;
  int rc = load_doc(path, &d, err, errlen);
  if (rc != 0)
    return rc;
  struct fl_scenario *sc = calloc(1, sizeof(*sc));
  if (sc == NULL || (sc->file = strdup(path)) == NULL)
    rc = fail_at(&d, NULL, "out of memory");
  else
    rc = load_scenario(&d, sc);
  yaml_document_delete(&d.yd);
  if (rc != 0) {
    fl_scenario_free(sc);
    return rc;
  }
  *out = sc;
  return 0;
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
      int literal = strchr(f->target, ':') || strchr(f->target, '/') ||
                    strchr(f->target, '$') || strcmp(f->action, "dns") == 0 ||
                    strcmp(f->action, "exhaust") == 0;
      if (f->kind == FL_FAULT_PROCESS &&
          (dep == NULL || dep->type == FL_DEP_EXTERNAL)) {
        snprintf(err, errlen,
                 "%s:%d:%d: %s needs a managed dependency of service '%s', "
                 "found '%s'",
                 sc->file, f->pos.line, f->pos.col, f->action, sv->name,
                 f->target);
        return FL_EBADSCENARIO;
      }
      if (f->kind == FL_FAULT_PROCESS && f->process == FL_DEP_SATURATE &&
          dep->type != FL_DEP_POSTGRES) {
        snprintf(err, errlen,
                 "%s:%d:%d: saturate works on postgres only, "
                 "'%s' is not one",
                 sc->file, f->pos.line, f->pos.col, f->target);
        return FL_EBADSCENARIO;
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

char *fl_expand(const char *in,
                const char *(*lookup)(const char *name, void *arg), void *arg,
                char *err, size_t errlen) {
  size_t cap = strlen(in) + 64, len = 0;
  char *out = malloc(cap);
  if (out == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (const char *p = in; *p;) {
    const char *val = NULL;
    char one[2] = {0, 0};
    if (p[0] == '$' && p[1] == '$') {
      val = "$";
      p += 2;
    } else if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr(p + 2, '}');
      char name[128];
      size_t n = end ? (size_t)(end - p - 2) : 0;
      if (end == NULL || n == 0 || n >= sizeof(name)) {
        snprintf(err, errlen, "unterminated or empty ${...} in '%s'", in);
        free(out);
        return NULL;
      }
      memcpy(name, p + 2, n);
      name[n] = '\0';
      for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_') {
          snprintf(err, errlen,
                   "bad variable name '%s' in '%s' (allowed: "
                   "letters, digits and _)",
                   name, in);
          free(out);
          return NULL;
        }
      val = lookup ? lookup(name, arg) : "";
      if (val == NULL)
        val = getenv(name);
      if (val == NULL) {
        snprintf(err, errlen,
                 "unknown variable ${%s} (not provided by "
                 "faultline and not set in the environment)",
                 name);
        free(out);
        return NULL;
      }
      p = end + 1;
    } else {
      one[0] = *p++;
      val = one;
    }
    size_t vl = strlen(val);
    if (len + vl + 1 > cap) {
      cap = (len + vl + 1) * 2;
      char *bigger = realloc(out, cap);
      if (bigger == NULL) {
        free(out);
        snprintf(err, errlen, "out of memory");
        return NULL;
      }
      out = bigger;
    }
    memcpy(out + len, val, vl);
    len += vl;
  }
  out[len] = '\0';
  return out;
}
