/*
 * WebSocket endpoints of a scenario's traffic (`request: WS /path`):
 * connections, connect_rate, message, message_rate, reconnect,
 * slow_reader and slow_for, read into the endpoint's fl_ws_spec (headers
 * and timeout as HTTP endpoints have them, for the Upgrade request). The
 * HTTP keys rate, body and concurrency are not theirs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "scenario_int.h"
#include "traffic/traffic.h"

#define WS_KEYS                                                                \
  "request timeout headers connections connect_rate message message_rate "     \
  "reconnect slow_reader slow_for"

int fl_sc_is_ws_request(const yaml_node_t *n) {
  const char *s = fl_yaml_scalar(n);
  return s != NULL && strncmp(s, "WS ", 3) == 0;
}

/* A whole number from lo to hi into *out. */
static int load_whole(struct doc *d, yaml_node_t *n, const char *what,
                      const char *unit, long lo, long hi, long *out) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, what, &s);
  if (rc != 0)
    return rc;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    return fl_yaml_fail(d, n,
                        "bad %s '%s' (allowed: a whole number of %s, %ld to "
                        "%ld)",
                        what, s, unit, lo, hi);
  *out = v;
  return 0;
}

/* message: TEXT, with {{A..B}} and {{x,y}} placeholders. */
/* A plain scalar that JSON takes as it is: a number, true, false, null. */
static int json_bare(const yaml_node_t *n, const char *s) {
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0 ||
      strcmp(s, "null") == 0)
    return 1;
  char *end;
  errno = 0;
  strtod(s, &end);
  return *s != '\0' && *end == '\0' && errno == 0 && strchr(s, 'x') == NULL &&
         strpbrk(s, "nN") == NULL; /* not 0x10, nan, inf */
}

/* The JSON text of YAML node n into f: mappings and lists as objects and
 * arrays, scalars as strings unless json_bare. */
static void to_json(struct doc *d, const yaml_node_t *n, FILE *f) {
  if (n->type == YAML_SCALAR_NODE) {
    const char *s = fl_yaml_scalar(n);
    if (json_bare(n, s)) {
      fputs(s, f);
      return;
    }
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
      if (*c == '"' || *c == '\\')
        fprintf(f, "\\%c", *c);
      else if (*c < 0x20)
        fprintf(f, "\\u%04x", *c);
      else
        fputc(*c, f);
    fputc('"', f);
  } else if (n->type == YAML_SEQUENCE_NODE) {
    fputc('[', f);
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++) {
      if (it > n->data.sequence.items.start)
        fputc(',', f);
      to_json(d, fl_yaml_node(d, *it), f);
    }
    fputc(']', f);
  } else if (n->type == YAML_MAPPING_NODE) {
    fputc('{', f);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
      if (p > n->data.mapping.pairs.start)
        fputc(',', f);
      yaml_node_t *k = fl_yaml_node(d, p->key);
      yaml_node_t key = *k;
      key.data.scalar.style = YAML_DOUBLE_QUOTED_SCALAR_STYLE; /* a string */
      to_json(d, k->type == YAML_SCALAR_NODE ? &key : k, f);
      fputc(':', f);
      to_json(d, fl_yaml_node(d, p->value), f);
    }
    fputc('}', f);
  }
}

/* message: TEXT, or a mapping or list sent as its JSON text. */
static int load_message(struct doc *d, yaml_node_t *n,
                        struct fl_endpoint_decl *e) {
  if (n->type != YAML_SCALAR_NODE) {
    size_t len = 0;
    FILE *f = open_memstream(&e->message, &len);
    if (f == NULL)
      return fl_yaml_fail(d, n, "out of memory");
    to_json(d, n, f);
    if (fclose(f) != 0)
      return fl_yaml_fail(d, n, "out of memory");
  }
  const char *s = e->message;
  int rc = s != NULL ? 0 : fl_yaml_want_scalar(d, n, "message", &s);
  if (rc != 0)
    return rc;
  char why[512];
  int col = 1;
  if (fl_ws_message_check(s, &col, why, sizeof(why)) != 0) {
    if (n->type != YAML_SCALAR_NODE)
      return fl_yaml_fail(d, n, "%s", why);
    yaml_node_t where = *n;
    where.start_mark.column +=
        (size_t)(col - 1 +
                 (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                  n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE));
    return fl_yaml_fail(d, &where, "%s", why);
  }
  return e->message != NULL ? 0 : fl_yaml_dup(d, n, s, &e->message);
}

/* reconnect: no | DURATION (the first backoff, doubling up to 5 s) |
 * { backoff: DURATION, max: DURATION } */
static int load_reconnect(struct doc *d, yaml_node_t *n, struct fl_ws_spec *w) {
  const char *s = fl_yaml_scalar(n);
  int rc;
  if (s != NULL && (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
                    strcmp(s, "off") == 0))
    return 0;
  if (n->type == YAML_MAPPING_NODE) {
    yaml_node_t *b = fl_yaml_get(d, n, "backoff"),
                *m = fl_yaml_get(d, n, "max");
    if ((rc = fl_yaml_check_keys(d, n, "reconnect", "backoff max")) != 0)
      return rc;
    if (b == NULL)
      return fl_yaml_fail(d, n, "reconnect needs 'backoff: DURATION'");
    if ((rc = fl_yaml_duration(d, b, "backoff", &w->reconnect)) != 0 ||
        (m != NULL &&
         (rc = fl_yaml_duration(d, m, "max", &w->reconnect_max)) != 0))
      return rc;
  } else if (s == NULL ||
             fl_parse_duration(s, strlen(s), 0, &w->reconnect) != 0) {
    return fl_yaml_fail(d, n,
                        "bad reconnect '%s' (allowed: no, a first backoff "
                        "such as 100ms, or { backoff: 100ms, max: 5s })",
                        s != NULL ? s : fl_yaml_kind_name(n));
  }
  if (!(w->reconnect > 0))
    return fl_yaml_fail(d, n, "reconnect's backoff must be above 0");
  if (w->reconnect_max == 0)
    w->reconnect_max = w->reconnect > 5 ? w->reconnect : 5;
  if (w->reconnect_max < w->reconnect)
    return fl_yaml_fail(d, n, "reconnect's max is below its backoff");
  return 0;
}

/* slow_reader: N% of the connections, or N of them. */
static int load_slow(struct doc *d, yaml_node_t *n, struct fl_ws_spec *w) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, "slow_reader", &s);
  if (rc != 0)
    return rc;
  double pct;
  if (strchr(s, '%') != NULL && fl_parse_percent(s, strlen(s), 0, &pct) == 0 &&
      pct > 0) {
    w->slow_share = pct / 100;
    return 0;
  }
  long v = 0;
  char *end;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 1 || v > w->connections)
    return fl_yaml_fail(d, n,
                        "bad slow_reader '%s' (allowed: a share such as 10%% "
                        "or a whole number of connections, 1 to %d)",
                        s, w->connections);
  w->slow_count = (int)v;
  return 0;
}

/* The keys a WebSocket endpoint does not take, said as such. */
static int http_only(struct doc *d, yaml_node_t *v) {
  static const char *const keys[] = {"rate", "body", "concurrency"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    yaml_node_t *n = fl_yaml_get(d, v, keys[i]);
    if (n != NULL)
      return fl_yaml_fail(
          d, n,
          "'%s' is for HTTP endpoints; a WebSocket endpoint (request: WS "
          "/path) takes connections, connect_rate, message, message_rate, "
          "reconnect, slow_reader, slow_for, headers and timeout",
          keys[i]);
  }
  return 0;
}

int fl_sc_load_ws(struct doc *d, yaml_node_t *v, yaml_node_t *req,
                  struct fl_endpoint_decl *e) {
  int rc;
  const char *s = fl_yaml_scalar(req);
  char path[1024];
  if (sscanf(s, "WS %1023s", path) != 1 || path[0] != '/' ||
      strchr(s + 3, ' ') != NULL)
    return fl_yaml_fail(d, req,
                        "bad request '%s' (allowed: WS /path, e.g. WS /ws)", s);
  if ((rc = http_only(d, v)) != 0 ||
      (rc = fl_yaml_check_keys(d, v, "a WebSocket endpoint", WS_KEYS)) != 0 ||
      (rc = fl_yaml_dup(d, req, "WS", &e->method)) != 0 ||
      (rc = fl_yaml_dup(d, req, path, &e->path)) != 0)
    return rc;
  e->ws = 1;
  struct fl_ws_spec *w = &e->wspec;
  yaml_node_t *n;
  long conns = 1;
  if ((n = fl_yaml_get(d, v, "connections")) == NULL)
    return fl_yaml_fail(d, v, "WebSocket endpoint '%s' needs 'connections: N'",
                        e->name);
  if ((rc = load_whole(d, n, "connections", "connections", 1, 100000,
                       &conns)) != 0)
    return rc;
  w->connections = (int)conns;
  w->connect_rate = 100;
  if ((n = fl_yaml_get(d, v, "connect_rate")) != NULL &&
      (rc = fl_yaml_positive(d, n, "connect_rate", &w->connect_rate)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, v, "message")) != NULL &&
      (rc = load_message(d, n, e)) != 0)
    return rc;
  w->message_rate = 1;
  if ((n = fl_yaml_get(d, v, "message_rate")) != NULL) {
    if (e->message == NULL)
      return fl_yaml_fail(d, n, "message_rate without a message to send");
    if ((rc = fl_yaml_positive(d, n, "message_rate", &w->message_rate)) != 0)
      return rc;
  }
  if ((n = fl_yaml_get(d, v, "reconnect")) != NULL &&
      (rc = load_reconnect(d, n, w)) != 0)
    return rc;
  yaml_node_t *slow = fl_yaml_get(d, v, "slow_reader");
  yaml_node_t *slow_for = fl_yaml_get(d, v, "slow_for");
  if (slow != NULL && (rc = load_slow(d, slow, w)) != 0)
    return rc;
  if (slow != NULL && slow_for == NULL)
    return fl_yaml_fail(d, slow,
                        "slow_reader needs 'slow_for: DURATION' (how long "
                        "they read nothing)");
  if (slow_for != NULL && slow == NULL)
    return fl_yaml_fail(d, slow_for,
                        "slow_for without slow_reader (a share or a count "
                        "of connections)");
  if (slow_for != NULL &&
      ((rc = fl_yaml_duration(d, slow_for, "slow_for", &w->slow_for)) != 0 ||
       !(w->slow_for > 0)))
    return rc != 0 ? rc : fl_yaml_fail(d, slow_for, "slow_for must be above 0");
  e->timeout = 2.0;
  if ((n = fl_yaml_get(d, v, "timeout")) != NULL &&
      (rc = fl_yaml_duration(d, n, "timeout", &e->timeout)) != 0)
    return rc;
  if (e->timeout <= 0)
    return fl_yaml_fail(d, n, "timeout must be above 0");
  return 0;
}
