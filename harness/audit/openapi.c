/*
 * Endpoints from the OpenAPI document the service serves (FastAPI serves
 * one at /openapi.json): every path and method, path parameters filled
 * from the document's examples or else a small integer (1), required
 * query parameters likewise, and a JSON body built from the request
 * body's schema (examples first, else a value of each property's type).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit_int.h"
#include "base/base.h"

#define MAX_DEPTH 6 /* $refs may recurse; a sample need not */

static const char *const verbs[] = {"get", "post", "put", "patch", "delete"};

/* Follows "#/components/schemas/X" within the document. */
static json_t *deref(json_t *doc, json_t *schema) {
  const char *ref = json_string_value(json_object_get(schema, "$ref"));
  if (ref == NULL || strncmp(ref, "#/", 2) != 0)
    return schema;
  json_t *at = doc;
  char *copy = strdup(ref + 2), *save = NULL;
  for (char *p = copy ? strtok_r(copy, "/", &save) : NULL; p && at;
       p = strtok_r(NULL, "/", &save))
    at = json_object_get(at, p);
  free(copy);
  return at != NULL ? at : schema;
}

static json_t *first_example(json_t *o) {
  json_t *ex = json_object_get(o, "example");
  if (ex != NULL)
    return json_incref(ex);
  json_t *exs = json_object_get(o, "examples");
  if (json_is_array(exs) && json_array_size(exs) > 0)
    return json_incref(json_array_get(exs, 0));
  if (json_is_object(exs)) { /* OpenAPI's {name: {value: ...}} */
    const char *k;
    json_t *v;
    json_object_foreach(exs, k, v) {
      json_t *val = json_object_get(v, "value");
      return json_incref(val != NULL ? val : v);
    }
  }
  return NULL;
}

/* A value the schema accepts: its example, its first enum value, else one
 * of its type (every property of an object). */
static json_t *sample(json_t *doc, json_t *schema, int depth) {
  schema = deref(doc, schema);
  json_t *ex = first_example(schema);
  if (ex != NULL || depth > MAX_DEPTH)
    return ex != NULL ? ex : json_null();
  json_t *en = json_object_get(schema, "enum");
  if (json_is_array(en) && json_array_size(en) > 0)
    return json_incref(json_array_get(en, 0));
  json_t *any = json_object_get(schema, "anyOf");
  if (!json_is_array(any))
    any = json_object_get(schema, "allOf");
  if (json_is_array(any) && json_array_size(any) > 0)
    return sample(doc, json_array_get(any, 0), depth + 1);
  const char *type = json_string_value(json_object_get(schema, "type"));
  if (type == NULL)
    type = json_object_get(schema, "properties") ? "object" : "string";
  if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
    return json_integer(1);
  if (strcmp(type, "boolean") == 0)
    return json_true();
  if (strcmp(type, "array") == 0) {
    json_t *a = json_array();
    json_array_append_new(
        a, sample(doc, json_object_get(schema, "items"), depth + 1));
    return a;
  }
  if (strcmp(type, "object") == 0) {
    json_t *o = json_object(), *v;
    const char *k;
    json_object_foreach(json_object_get(schema, "properties"), k, v)
        json_object_set_new(o, k, sample(doc, v, depth + 1));
    return o;
  }
  return json_string("faultline");
}

/* A parameter's value as text: its example, its schema's, else "1". */
static char *param_value(json_t *doc, json_t *param) {
  json_t *v = first_example(param);
  if (v == NULL)
    v = sample(doc, json_object_get(param, "schema"), 0);
  char *s = NULL;
  if (json_is_string(v))
    s = strdup(json_string_value(v));
  else if (json_is_integer(v) &&
           asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
    s = NULL;
  else if (!json_is_integer(v))
    s = strdup("1");
  json_decref(v);
  return s;
}

/* Replaces {name} in path (or appends ?name=value) for each parameter. */
static char *fill_path(json_t *doc, const char *tmpl, json_t *params) {
  char *path = strdup(tmpl);
  size_t i;
  json_t *p;
  json_array_foreach(params, i, p) {
    p = deref(doc, p);
    const char *in = json_string_value(json_object_get(p, "in"));
    const char *name = json_string_value(json_object_get(p, "name"));
    int query = in && strcmp(in, "query") == 0 &&
                json_is_true(json_object_get(p, "required"));
    if (path == NULL || name == NULL || in == NULL ||
        (strcmp(in, "path") != 0 && !query))
      continue;
    char *val = param_value(doc, p), *next = NULL, key[128];
    snprintf(key, sizeof(key), "{%s}", name);
    char *at = strstr(path, key);
    if (val == NULL) {
      free(path);
      return NULL;
    }
    int rc = 0;
    if (query)
      rc = asprintf(&next, "%s%c%s=%s", path, strchr(path, '?') ? '&' : '?',
                    name, val);
    else if (at != NULL)
      rc = asprintf(&next, "%.*s%s%s", (int)(at - path), path, val,
                    at + strlen(key));
    else
      next = strdup(path);
    if (rc < 0)
      next = NULL;
    free(val);
    free(path);
    path = next;
  }
  return path;
}

static char *json_body(json_t *doc, json_t *op) {
  json_t *content = json_object_get(
      deref(doc, json_object_get(op, "requestBody")), "content");
  json_t *media = json_object_get(content, "application/json");
  if (media == NULL)
    return NULL;
  json_t *v = first_example(media);
  if (v == NULL)
    v = sample(doc, json_object_get(media, "schema"), 0);
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(v);
  return s;
}

static int add_op(json_t *doc, const char *tmpl, const char *verb, json_t *op,
                  json_t *shared, struct fl_audit_endpoint **out, size_t *n) {
  struct fl_audit_endpoint *bigger = realloc(*out, (*n + 1) * sizeof(**out));
  if (bigger == NULL)
    return -ENOMEM;
  *out = bigger;
  struct fl_audit_endpoint *e = &bigger[*n];
  memset(e, 0, sizeof(*e));
  (*n)++;
  json_t *params = json_array();
  json_array_extend(params, shared);
  json_array_extend(params, json_object_get(op, "parameters"));
  e->path = fill_path(doc, tmpl, params);
  json_decref(params);
  e->method = strdup(verb);
  for (char *m = e->method; m != NULL && *m; m++)
    *m = (char)(*m - 32 * (*m >= 'a' && *m <= 'z'));
  e->body = json_body(doc, op);
  /* A POST the document gives no body (a raw request body): a small one. */
  int wants_body = strcmp(verb, "get") != 0 && strcmp(verb, "delete") != 0;
  if (e->body == NULL && wants_body)
    e->body = strdup("{}");
  int oom =
      e->path == NULL || e->method == NULL || (wants_body && e->body == NULL);
  return oom ? -ENOMEM : 0;
}

static int walk(json_t *doc, struct fl_audit_endpoint **out, size_t *n) {
  const char *tmpl;
  json_t *item;
  json_object_foreach(json_object_get(doc, "paths"), tmpl, item) {
    json_t *shared = json_object_get(item, "parameters");
    for (size_t v = 0; v < sizeof(verbs) / sizeof(*verbs); v++) {
      json_t *op = json_object_get(item, verbs[v]);
      if (!json_is_object(op))
        continue;
      int rc = add_op(doc, tmpl, verbs[v], op, shared, out, n);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

int fl_audit_endpoints_openapi(const char *text, const char *where,
                               struct fl_audit_endpoint **out, size_t *n,
                               char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  json_error_t je;
  json_t *doc = json_loads(text, 0, &je);
  if (doc == NULL || !json_is_object(json_object_get(doc, "paths"))) {
    snprintf(err, errlen, "%s: not an OpenAPI document (%s)", where,
             doc == NULL ? je.text : "no \"paths\" object");
    json_decref(doc);
    return FL_EBADSCENARIO;
  }
  int rc = walk(doc, out, n);
  json_decref(doc);
  if (rc == 0 && *n == 0) {
    snprintf(err, errlen, "%s: the OpenAPI document declares no endpoint",
             where);
    rc = FL_EBADSCENARIO;
  }
  if (rc == 0)
    rc = fl_audit_name_endpoints(*out, *n);
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  if (rc != 0) {
    for (size_t i = 0; i < *n; i++)
      fl_audit_endpoint_free(&(*out)[i]);
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}
