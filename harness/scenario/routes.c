/*
 * An http dependency's routes, as the stub that faultline runs for it
 * (`faultline-run stub`) reads them: the service file's
 *   routes:
 *     "POST /v1/charge": { status: 200, headers: { X-Id: "1" },
 *                          body: { id: ch_1 }, latency: 50ms }
 * becomes the JSON {"routes":[{"match":"POST /v1/charge","status":200,
 * "headers":{...},"body":{...},"latency_ms":50}]}.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_int.h"

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

/* A plain scalar that JSON reads as it is: a number, true, false, null. */
static int bare(const yaml_node_t *n) {
  const char *s = fl_yaml_scalar(n);
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || s[0] == '\0')
    return 0;
  if (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "null"))
    return 1;
  char *end;
  strtod(s, &end);
  return *end == '\0' && strspn(s, "-0123456789.eE+") == strlen(s);
}

static void json_node(struct doc *d, FILE *f, const yaml_node_t *n, int depth) {
  if (depth > 32) {
    fputs("null", f);
    return;
  }
  if (n->type == YAML_SCALAR_NODE) {
    if (bare(n))
      fputs(fl_yaml_scalar(n), f);
    else
      json_string(f, fl_yaml_scalar(n));
  } else if (n->type == YAML_SEQUENCE_NODE) {
    fputc('[', f);
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++) {
      if (it != n->data.sequence.items.start)
        fputc(',', f);
      json_node(d, f, fl_yaml_node(d, *it), depth + 1);
    }
    fputc(']', f);
  } else if (n->type == YAML_MAPPING_NODE) {
    fputc('{', f);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
      if (p != n->data.mapping.pairs.start)
        fputc(',', f);
      const yaml_node_t *k = fl_yaml_node(d, p->key);
      json_string(f, k->type == YAML_SCALAR_NODE ? fl_yaml_scalar(k) : "?");
      fputc(':', f);
      json_node(d, f, fl_yaml_node(d, p->value), depth + 1);
    }
    fputc('}', f);
  } else {
    fputs("null", f);
  }
}

static int load_route(struct doc *d, FILE *f, yaml_node_t *k, yaml_node_t *v) {
  const char *match;
  int rc;
  if ((rc = fl_yaml_want_scalar(d, k, "a route", &match)) != 0)
    return rc;
  const char *sp = strchr(match, ' ');
  if (sp == NULL || sp[1] != '/')
    return fl_yaml_fail(d, k,
                        "bad route '%s' (allowed: \"METHOD /path\", the "
                        "path a glob such as /v1/*)",
                        match);
  if ((rc = fl_yaml_want_kind(d, v, YAML_MAPPING_NODE, "a route")) != 0 ||
      (rc = fl_yaml_check_keys(d, v, "a route",
                               "status headers body latency")) != 0)
    return rc;
  yaml_node_t *st = fl_yaml_get(d, v, "status"),
              *h = fl_yaml_get(d, v, "headers"), *b = fl_yaml_get(d, v, "body"),
              *l = fl_yaml_get(d, v, "latency");
  long status = 200;
  if (st != NULL) {
    const char *s;
    char *end;
    if ((rc = fl_yaml_want_scalar(d, st, "status", &s)) != 0)
      return rc;
    status = strtol(s, &end, 10);
    if (*end != '\0' || status < 100 || status > 599)
      return fl_yaml_fail(d, st, "bad status '%s' (allowed: 100-599)", s);
  }
  double latency = 0;
  if (l != NULL && (rc = fl_yaml_duration(d, l, "latency", &latency)) != 0)
    return rc;
  if (h != NULL &&
      (rc = fl_yaml_want_kind(d, h, YAML_MAPPING_NODE, "headers")) != 0)
    return rc;
  fputs("{\"match\":", f);
  json_string(f, match);
  fprintf(f, ",\"status\":%ld,\"latency_ms\":%.0f", status, latency * 1000);
  if (h != NULL) {
    fputs(",\"headers\":", f);
    json_node(d, f, h, 0);
  }
  if (b != NULL) {
    fputs(",\"body\":", f);
    json_node(d, f, b, 0);
  }
  fputc('}', f);
  return 0;
}

int fl_service_load_routes(struct doc *d, const yaml_node_t *v,
                           struct fl_dep_decl *dep) {
  yaml_node_t *r = fl_yaml_get(d, v, "routes");
  int rc;
  if (r == NULL)
    return 0;
  if (fl_dep_kind_managed(dep->kind) == 0 ||
      strcmp(fl_dep_kind_name(dep->kind), "http") != 0)
    return fl_yaml_fail(d, r, "'routes' is only for type http");
  if ((rc = fl_yaml_want_kind(d, r, YAML_MAPPING_NODE, "routes")) != 0)
    return rc;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return fl_yaml_fail(d, r, "out of memory");
  fputs("{\"routes\":[", f);
  for (yaml_node_pair_t *p = r->data.mapping.pairs.start;
       rc == 0 && p < r->data.mapping.pairs.top; p++) {
    if (p != r->data.mapping.pairs.start)
      fputc(',', f);
    rc = load_route(d, f, fl_yaml_node(d, p->key), fl_yaml_node(d, p->value));
  }
  fputs("]}", f);
  fclose(f);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  dep->config = buf;
  return 0;
}

/* A ws dependency's broadcast (`faultline-run wsstub` reads it):
 *   broadcast: { every: 500ms, message: tick }
 * becomes {"broadcast_ms":500,"message":"tick"}; with none it only echoes. */
int fl_service_load_broadcast(struct doc *d, const yaml_node_t *v,
                              struct fl_dep_decl *dep) {
  yaml_node_t *b = fl_yaml_get(d, v, "broadcast");
  int rc;
  if (b == NULL)
    return 0;
  if (strcmp(fl_dep_kind_name(dep->kind), "ws") != 0)
    return fl_yaml_fail(d, b, "'broadcast' is only for type ws");
  if ((rc = fl_yaml_want_kind(d, b, YAML_MAPPING_NODE, "broadcast")) != 0 ||
      (rc = fl_yaml_check_keys(d, b, "broadcast", "every message")) != 0)
    return rc;
  yaml_node_t *every = fl_yaml_get(d, b, "every");
  yaml_node_t *msg = fl_yaml_get(d, b, "message");
  double s = 1.0;
  const char *text = "tick";
  if ((every != NULL && (rc = fl_yaml_duration(d, every, "every", &s)) != 0) ||
      (msg != NULL &&
       (rc = fl_yaml_want_scalar(d, msg, "message", &text)) != 0))
    return rc;
  if (s < 0.01)
    return fl_yaml_fail(d, every, "bad every '%s' (allowed: 10ms or more)",
                        fl_yaml_scalar(every));
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return fl_yaml_fail(d, b, "out of memory");
  fprintf(f, "{\"broadcast_ms\":%.0f,\"message\":", s * 1000.0);
  json_string(f, text);
  fputc('}', f);
  fclose(f);
  dep->config = buf;
  return 0;
}
