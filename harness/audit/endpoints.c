/*
 * Where discovery's endpoints come from when given: an --endpoints file, a
 * small YAML list of requests, read with libyaml's node marks so that a
 * mistake is reported as FILE:LINE:COL like the scenario loader's.
 *
 *   - { method: GET, path: /api/items }
 *   - method: POST
 *     path: /api/items
 *     body: '{"name": "a"}'
 *     headers: { X-Token: abc }     # or a list of "Name: value"
 *     name: create                  # optional: else made from the path
 *
 * Also the endpoints' names, and the lists of uses.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "audit_int.h"
#include "base/base.h"

struct ydoc {
  const char *file;
  yaml_document_t d;
  char *err;
  size_t errlen;
};

static int fail(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...) {
  int k = snprintf(y->err, y->errlen, "%s:%zu:%zu: ", y->file,
                   n ? n->start_mark.line + 1 : 1,
                   n ? n->start_mark.column + 1 : 1);
  if (k > 0 && (size_t)k < y->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(y->err + k, y->errlen - (size_t)k, fmt, ap);
    va_end(ap);
  }
  return FL_EBADSCENARIO;
}

static const char *scalar(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                     : NULL;
}

static int want_string(struct ydoc *y, const yaml_node_t *n, const char *what,
                       char **out) {
  const char *s = scalar(n);
  if (s == NULL)
    return fail(y, n, "%s must be a string", what);
  if ((*out = strdup(s)) == NULL)
    return -ENOMEM;
  return 0;
}

static const char *const methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                      "DELETE", "HEAD", "OPTIONS"};

static int read_method(struct ydoc *y, const yaml_node_t *n, char **out) {
  const char *s = scalar(n);
  for (size_t i = 0; s != NULL && i < sizeof(methods) / sizeof(*methods); i++)
    if (strcasecmp(s, methods[i]) == 0)
      return (*out = strdup(methods[i])) ? 0 : -ENOMEM;
  return fail(y, n,
              "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, "
              "OPTIONS, found '%s'",
              s ? s : "(not a string)");
}

/* headers: a mapping Name: value, or a list of "Name: value". */
static int read_headers(struct ydoc *y, const yaml_node_t *n, char ***out) {
  size_t count = 0;
  if (n->type == YAML_MAPPING_NODE)
    count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  else if (n->type == YAML_SEQUENCE_NODE)
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  else
    return fail(y, n, "headers must be a mapping (Name: value) or a list");
  char **h = calloc(count + 1, sizeof(*h));
  if (h == NULL)
    return -ENOMEM;
  *out = h;
  for (size_t i = 0; i < count; i++) {
    if (n->type == YAML_MAPPING_NODE) {
      yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
      const yaml_node_t *k = yaml_document_get_node(&y->d, p->key);
      const yaml_node_t *v = yaml_document_get_node(&y->d, p->value);
      if (scalar(k) == NULL || scalar(v) == NULL)
        return fail(y, v, "a header's name and value must be strings");
      if (asprintf(&h[i], "%s: %s", scalar(k), scalar(v)) < 0)
        return -ENOMEM;
    } else {
      const yaml_node_t *v =
          yaml_document_get_node(&y->d, n->data.sequence.items.start[i]);
      const char *s = scalar(v);
      if (s == NULL || strchr(s, ':') == NULL || s[0] == ':')
        return fail(y, v, "a header must be \"Name: value\"");
      if ((h[i] = strdup(s)) == NULL)
        return -ENOMEM;
    }
  }
  return 0;
}

static int read_entry(struct ydoc *y, const yaml_node_t *n,
                      struct fl_audit_endpoint *e) {
  if (n->type != YAML_MAPPING_NODE)
    return fail(y, n, "an endpoint must be a mapping with method and path");
  int rc = 0;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       rc == 0 && p < n->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(&y->d, p->key);
    const yaml_node_t *v = yaml_document_get_node(&y->d, p->value);
    const char *key = scalar(k) ? scalar(k) : "";
    if (strcmp(key, "method") == 0)
      rc = read_method(y, v, &e->method);
    else if (strcmp(key, "path") == 0) {
      rc = want_string(y, v, "path", &e->path);
      if (rc == 0 && e->path[0] != '/')
        rc = fail(y, v, "path must start with '/', found '%s'", e->path);
    } else if (strcmp(key, "body") == 0)
      rc = want_string(y, v, "body", &e->body);
    else if (strcmp(key, "name") == 0)
      rc = want_string(y, v, "name", &e->name);
    else if (strcmp(key, "headers") == 0)
      rc = read_headers(y, v, &e->headers);
    else
      rc = fail(y, k,
                "unknown key '%s' (an endpoint has method, path, body, "
                "headers, name)",
                key);
  }
  if (rc == 0 && (e->method == NULL || e->path == NULL))
    rc = fail(y, n, "an endpoint needs both method and path");
  return rc;
}

static int read_list(struct ydoc *y, struct fl_audit_endpoint **out,
                     size_t *n) {
  const yaml_node_t *root = yaml_document_get_root_node(&y->d);
  if (root == NULL || root->type != YAML_SEQUENCE_NODE)
    return fail(y, root,
                "an endpoints file is a list of {method, path} mappings");
  yaml_node_item_t *it = root->data.sequence.items.start;
  size_t count = (size_t)(root->data.sequence.items.top - it);
  if (count == 0)
    return fail(y, root, "the list of endpoints is empty");
  *out = calloc(count, sizeof(**out));
  if (*out == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < count; i++) {
    *n = i + 1;
    int rc = read_entry(y, yaml_document_get_node(&y->d, it[i]), &(*out)[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void free_list(struct fl_audit_endpoint *e, size_t n) {
  for (size_t i = 0; e != NULL && i < n; i++)
    fl_audit_endpoint_free(&e[i]);
  free(e);
}

int fl_audit_endpoints_load(const char *path, struct fl_audit_endpoint **out,
                            size_t *n, char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int rc = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return rc;
  }
  yaml_parser_t p;
  struct ydoc y = {.file = path, .err = err, .errlen = errlen};
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  int rc;
  if (!yaml_parser_load(&p, &y.d)) {
    snprintf(err, errlen, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
             p.problem_mark.column + 1, p.problem ? p.problem : "bad YAML");
    rc = FL_EBADSCENARIO;
  } else {
    rc = read_list(&y, out, n);
    yaml_document_delete(&y.d);
  }
  yaml_parser_delete(&p);
  fclose(f);
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  if (rc == 0)
    rc = fl_audit_name_endpoints(*out, *n);
  if (rc != 0) {
    free_list(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

/* The last segment of the path that is not a number or a {parameter},
 * lower-case, with anything but [a-z0-9_] as '_'; "root" for "/". */
static void base_name(const char *path, char *out, size_t len) {
  const char *best = NULL;
  size_t best_n = 0;
  for (const char *s = path; *s != '\0';) {
    while (*s == '/')
      s++;
    size_t n = strcspn(s, "/?");
    int numeric = n > 0 && strspn(s, "0123456789") == n;
    if (n > 0 && !numeric && s[0] != '{') {
      best = s;
      best_n = n;
    }
    s += n;
    if (*s == '?')
      break;
  }
  if (best == NULL) {
    snprintf(out, len, "root");
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < best_n && k + 1 < len; i++) {
    unsigned char c = (unsigned char)best[i];
    out[k++] = isalnum(c) ? (char)tolower(c) : '_';
  }
  out[k] = '\0';
}

static int name_taken(const struct fl_audit_endpoint *e, size_t n,
                      const char *name) {
  for (size_t i = 0; i < n; i++)
    if (e[i].name != NULL && strcmp(e[i].name, name) == 0)
      return 1;
  return 0;
}

int fl_audit_name_endpoints(struct fl_audit_endpoint *e, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (e[i].name != NULL)
      continue;
    char base[64], name[96], low[16];
    base_name(e[i].path, base, sizeof(base));
    size_t k = 0;
    for (; e[i].method[k] != '\0' && k + 1 < sizeof(low); k++)
      low[k] = (char)tolower((unsigned char)e[i].method[k]);
    low[k] = '\0';
    if (strcmp(low, "get") == 0)
      snprintf(name, sizeof(name), "%s", base);
    else
      snprintf(name, sizeof(name), "%s_%s", low, base);
    char try[112];
    snprintf(try, sizeof(try), "%s", name);
    for (int j = 2; name_taken(e, n, try); j++)
      snprintf(try, sizeof(try), "%s_%d", name, j);
    if ((e[i].name = strdup(try)) == NULL)
      return -ENOMEM;
  }
  return 0;
}

void fl_audit_endpoint_free(struct fl_audit_endpoint *e) {
  free(e->name);
  free(e->method);
  free(e->path);
  free(e->body);
  for (size_t i = 0; e->headers != NULL && e->headers[i] != NULL; i++)
    free(e->headers[i]);
  free(e->headers);
  for (size_t i = 0; i < e->nuses; i++)
    free(e->uses[i].name);
  free(e->uses);
  memset(e, 0, sizeof(*e));
}

int fl_audit_add_use(struct fl_use **uses, size_t *n, enum fl_use_kind kind,
                     const char *name) {
  for (size_t i = 0; i < *n; i++)
    if ((*uses)[i].kind == kind && strcmp((*uses)[i].name, name) == 0)
      return 0;
  struct fl_use *bigger = realloc(*uses, (*n + 1) * sizeof(**uses));
  if (bigger == NULL)
    return -ENOMEM;
  *uses = bigger;
  if ((bigger[*n].name = strdup(name)) == NULL)
    return -ENOMEM;
  bigger[(*n)++].kind = kind;
  return 0;
}
