/*
 * Toxiproxy's toxics as faultline proxy rules: one row per toxic type
 * with Toxiproxy's attribute names (and units: ms, KB/s, bytes, µs), and
 * the faultline fault each becomes. A toxic is one rule in the server's
 * control segment, built through the faults room's typed drafts and aimed
 * at the proxy's upstream; the proxy takes the rules whose ids are its
 * toxics' (proxies.c: owns), so two proxies to one upstream stay apart.
 *
 * Toxiproxy decides toxicity once per connection, as faultline's proxy
 * does. An update replaces the rule: connections decide it afresh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "faults/faults.h"
#include "serve_int.h"

/* A faultline fault with its options, from a toxic's attributes. */
struct fault_opts {
  int action; /* enum fl_action: a proxy fault of the vocabulary */
  int n;
  char key[3][12];
  char val[3][32];
};

static void opt(struct fault_opts *o, const char *key, long long v) {
  snprintf(o->key[o->n], sizeof(o->key[0]), "%s", key);
  snprintf(o->val[o->n], sizeof(o->val[0]), "%lld", v);
  o->n++;
}

/* Each fills o from the attributes: 1, or 0 when the toxic does nothing
 * (no rule), or -1 with err for what faultline cannot do. */
typedef int to_fault_fn(const long long *a, struct fault_opts *o, char *err,
                        size_t errlen);

static int latency(const long long *a, struct fault_opts *o, char *e,
                   size_t n) {
  (void)e, (void)n;
  if (a[0] == 0 && a[1] == 0)
    return 0;
  o->action = FL_ACT_LATENCY; /* jitter alone: 1 ms, our least latency */
  opt(o, "ms", a[0] > 0 ? a[0] : 1);
  if (a[1] > 0)
    opt(o, "jitter", a[1]);
  return 1;
}

static int bandwidth(const long long *a, struct fault_opts *o, char *e,
                     size_t n) {
  (void)e, (void)n;
  if (a[0] == 0) /* Toxiproxy: no limit */
    return 0;
  o->action = FL_ACT_BANDWIDTH;
  opt(o, "rate", a[0] * 1000); /* KB/s, KB = 1000 bytes */
  return 1;
}

static int slow_close(const long long *a, struct fault_opts *o, char *e,
                      size_t n) {
  (void)e, (void)n;
  if (a[0] == 0)
    return 0;
  o->action = FL_ACT_SLOW_CLOSE;
  opt(o, "ms", a[0]);
  return 1;
}

static int timeout(const long long *a, struct fault_opts *o, char *e,
                   size_t n) {
  (void)e, (void)n;
  o->action = FL_ACT_STALL; /* timeout 0: no data, never closed */
  if (a[0] > 0)
    opt(o, "ms", a[0]);
  return 1;
}

static int reset_peer(const long long *a, struct fault_opts *o, char *e,
                      size_t n) {
  (void)e, (void)n;
  o->action = FL_ACT_RESET_PEER;
  opt(o, "ms", a[0]);
  return 1;
}

static int slicer(const long long *a, struct fault_opts *o, char *e, size_t n) {
  (void)e, (void)n;
  if (a[0] == 0)
    return 0;
  o->action =
      FL_ACT_SLICER; /* size_variation is not applied: pieces are even */
  opt(o, "size", a[0]);
  opt(o, "ms", (a[2] + 999) / 1000); /* µs, rounded up to whole ms */
  return 1;
}

static int limit_data(const long long *a, struct fault_opts *o, char *e,
                      size_t n) {
  if (a[0] == 0) {
    snprintf(e, n,
             "limit_data with bytes 0 is not supported (use 1 or "
             "more, or a reset_peer or timeout toxic)");
    return -1;
  }
  o->action = FL_ACT_LIMIT_DATA;
  opt(o, "bytes", a[0]);
  return 1;
}

struct toxic_type {
  const char *name;
  const char *attrs[TOXIC_ATTRS]; /* Toxiproxy's names; NULL past the last */
  to_fault_fn *to_fault;
};

static const struct toxic_type types[] = {
    {"latency", {"latency", "jitter"}, latency},
    {"bandwidth", {"rate"}, bandwidth},
    {"slow_close", {"delay"}, slow_close},
    {"timeout", {"timeout"}, timeout},
    {"reset_peer", {"timeout"}, reset_peer},
    {"slicer", {"average_size", "size_variation", "delay"}, slicer},
    {"limit_data", {"bytes"}, limit_data},
};

static const struct toxic_type *find_type(const char *name) {
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(types[i].name, name) == 0)
      return &types[i];
  return NULL;
}

struct toxic *fl_toxic_find(struct sproxy *p, const char *name) {
  for (struct toxic *t = p->toxics; t != NULL; t = t->next)
    if (strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

/* ---- rules ------------------------------------------------------- */

/* Builds the rule of toxic t into *rule: 1, 0 for a toxic that does
 * nothing, or -1 with err. */
static int build_rule(struct sproxy *p, const struct toxic *t,
                      struct fl_rule *rule, char *err, size_t errlen) {
  struct fault_opts o = {0};
  int rc = t->type->to_fault(t->attrs, &o, err, errlen);
  if (rc <= 0)
    return rc;
  struct fl_rule_draft d;
  char tox[32], spec[FL_SPEC_MAX], ip[INET6_ADDRSTRLEN];
  const struct fl_fault_type *type = fl_fault_of_action(o.action);
  fl_draft_init(&d, type);
  int n = snprintf(spec, sizeof(spec), "%s@%s", type->name, p->upstream);
  for (int i = 0; i < o.n && rc == 1; i++) {
    n += snprintf(spec + n, sizeof(spec) - (size_t)n, ",%s=%s", o.key[i],
                  o.val[i]);
    rc = fl_draft_option(&d, o.key[i], o.val[i], err, errlen) == 0 ? 1 : -1;
  }
  snprintf(tox, sizeof(tox), "%.6f", t->toxicity);
  const char *dir = t->dir == FL_DIR_UP ? "up" : "down";
  const struct sockaddr *up = (const struct sockaddr *)&p->up;
  int port = ntohs(up->sa_family == AF_INET6
                       ? ((const struct sockaddr_in6 *)up)->sin6_port
                       : ((const struct sockaddr_in *)up)->sin_port);
  inet_ntop(up->sa_family,
            up->sa_family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)up)->sin6_addr
                : (const void *)&((const struct sockaddr_in *)up)->sin_addr,
            ip, sizeof(ip));
  if (rc != 1 || fl_draft_option(&d, "dir", dir, err, errlen) != 0 ||
      fl_draft_option(&d, "toxicity", tox, err, errlen) != 0 ||
      fl_draft_finish(&d, err, errlen) != 0 ||
      fl_rule_aim_host(&d.rule, ip, port, err, errlen) != 0)
    return -1;
  *rule = d.rule;
  snprintf(rule->spec, sizeof(rule->spec), "%.120s,dir=%s (toxic %.50s/%.50s)",
           spec, dir, p->name, t->name);
  return 1;
}

void fl_sproxy_clear_rule(struct sproxy *p, uint32_t *id) {
  struct fl_rule_view v;
  if (*id == 0)
    return;
  if (fl_control_rule(p->s->ctl, *id, &v) == 0)
    p->retired += v.injected;
  fl_control_clear(p->s->ctl, *id);
  *id = 0;
  if (p->proxy != NULL)
    fl_proxy_refresh(p->proxy);
}

/* Installs what build_rule made (rc 1) as t's rule; 0 or 500 in r. */
static int install(struct sproxy *p, struct toxic *t, struct fl_rule *rule,
                   int rc, struct reply *r) {
  if (rc == 0)
    return 0;
  int e = fl_control_add(p->s->ctl, rule, &t->rule_id);
  if (e != 0) {
    fl_reply_error(r, 500, "cannot install toxic %s: %s", t->name,
                   fl_strerror(e));
    return -1;
  }
  if (p->proxy != NULL)
    fl_proxy_refresh(p->proxy);
  return 0;
}

/* ---- JSON -------------------------------------------------------- */

json_t *fl_toxic_json(const struct toxic *t) {
  json_t *attrs = json_object();
  for (int i = 0; i < TOXIC_ATTRS && t->type->attrs[i] != NULL; i++)
    json_object_set_new(attrs, t->type->attrs[i], json_integer(t->attrs[i]));
  return json_pack("{s:o, s:s, s:s, s:s, s:f}", "attributes", attrs, "name",
                   t->name, "type", t->type->name, "stream", t->stream,
                   "toxicity", t->toxicity);
}

json_t *fl_toxics_json(struct sproxy *p) {
  json_t *a = json_array();
  for (int dir = FL_DIR_UP; dir <= FL_DIR_DOWN; dir <<= 1)
    for (struct toxic *t = p->toxics; t != NULL; t = t->next)
      if (t->dir == dir)
        json_array_append_new(a, fl_toxic_json(t));
  return a;
}

json_t *fl_toxics_counters(struct sproxy *p) {
  json_t *per = json_object();
  uint64_t delivered = p->retired;
  struct fl_rule_view v;
  for (struct toxic *t = p->toxics; t != NULL; t = t->next) {
    memset(&v, 0, sizeof(v));
    if (t->rule_id != 0 && fl_control_rule(p->s->ctl, t->rule_id, &v) != 0)
      memset(&v, 0, sizeof(v));
    delivered += v.injected;
    json_object_set_new(
        per, t->name,
        json_pack("{s:I, s:I, s:I, s:I}", "rule", (json_int_t)t->rule_id,
                  "matched", (json_int_t)v.matched, "delivered",
                  (json_int_t)v.injected, "bytes_held", (json_int_t)v.bytes));
  }
  uint64_t refused = 0;
  if (p->down_id != 0 && fl_control_rule(p->s->ctl, p->down_id, &v) == 0)
    refused = v.injected;
  return json_pack("{s:I, s:I, s:o}", "delivered",
                   (json_int_t)(delivered + refused), "refused_while_disabled",
                   (json_int_t)refused, "toxics", per);
}

/* ---- reading a request ------------------------------------------- */

/* Reads the attributes object into t->attrs (given keys only). */
static int read_attrs(struct toxic *t, json_t *attrs, struct reply *r) {
  if (attrs == NULL || json_is_null(attrs))
    return 0;
  if (!json_is_object(attrs)) {
    fl_reply_error(r, 400, "bad request body: attributes must be an object");
    return -1;
  }
  for (int i = 0; i < TOXIC_ATTRS && t->type->attrs[i] != NULL; i++) {
    json_t *v = json_object_get(attrs, t->type->attrs[i]);
    if (v == NULL)
      continue;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > INT32_MAX) {
      fl_reply_error(r, 400,
                     "bad request body: attribute %s of %s must be a whole "
                     "number from 0 to %d",
                     t->type->attrs[i], t->type->name, INT32_MAX);
      return -1;
    }
    t->attrs[i] = json_integer_value(v);
  }
  return 0;
}

static int read_toxicity(struct toxic *t, json_t *v, struct reply *r) {
  if (v == NULL)
    return 0;
  if (!json_is_number(v)) {
    fl_reply_error(r, 400, "bad request body: toxicity must be a number");
    return -1;
  }
  double x = json_number_value(v);
  t->toxicity = x < 0 ? 0 : x > 1 ? 1 : x; /* Toxiproxy: <0 never, >1 always */
  return 0;
}

/* The name, type and stream of a new toxic, with Toxiproxy's defaults. */
static int read_head(struct toxic *t, json_t *body, struct reply *r) {
  const char *name = NULL, *type = "", *stream = "downstream";
  json_error_t e;
  if (!json_is_object(body) ||
      json_unpack_ex(body, &e, 0, "{s?s, s?s, s?s}", "name", &name, "type",
                     &type, "stream", &stream) != 0) {
    fl_reply_error(r, 400, "bad request body: %s",
                   json_is_object(body) ? e.text : "not a JSON object");
    return -1;
  }
  if (strcasecmp(stream, "upstream") != 0 &&
      strcasecmp(stream, "downstream") != 0) {
    fl_reply_error(r, 400,
                   "stream was invalid, can be either upstream or downstream");
    return -1;
  }
  t->dir = strcasecmp(stream, "upstream") == 0 ? FL_DIR_UP : FL_DIR_DOWN;
  snprintf(t->stream, sizeof(t->stream), "%s", stream);
  if ((t->type = find_type(type)) == NULL) {
    fl_reply_error(r, 400, "invalid toxic type");
    return -1;
  }
  int n = name != NULL && *name
              ? snprintf(t->name, sizeof(t->name), "%s", name)
              : snprintf(t->name, sizeof(t->name), "%s_%s", type, stream);
  if (n >= (int)sizeof(t->name)) {
    fl_reply_error(r, 400, "bad request body: name over %d bytes",
                   NAME_MAX_LEN - 1);
    return -1;
  }
  return 0;
}

/* A toxic's toxicity and attributes from a request body, and the rule
 * they make: what build_rule returns, or -1 after answering 400. */
static int read_rule(struct sproxy *p, struct toxic *tmp, const json_t *body,
                     struct fl_rule *rule, struct reply *r) {
  char err[512];
  if (read_toxicity(tmp, json_object_get(body, "toxicity"), r) != 0 ||
      read_attrs(tmp, json_object_get(body, "attributes"), r) != 0)
    return -1;
  int rc = build_rule(p, tmp, rule, err, sizeof(err));
  if (rc < 0)
    fl_reply_error(r, 400, "%s", err);
  return rc < 0 ? -1 : rc;
}

/* ---- the handlers ------------------------------------------------ */

void fl_toxic_create(struct sproxy *p, json_t *body, struct reply *r) {
  struct toxic tmp = {.toxicity = 1.0}, *t;
  struct fl_rule rule;
  if (read_head(&tmp, body, r) != 0)
    return;
  if (fl_toxic_find(p, tmp.name) != NULL) {
    fl_reply_error(r, 409, "toxic already exists");
    return;
  }
  int rc = read_rule(p, &tmp, body, &rule, r);
  if (rc < 0)
    return;
  if ((t = malloc(sizeof(*t))) == NULL) {
    fl_reply_error(r, 500, "out of memory");
    return;
  }
  *t = tmp;
  /* Listed before its rule is installed: the proxy's owns() reads the
   * list when fl_proxy_refresh takes the rule. */
  struct toxic **end = &p->toxics;
  while (*end != NULL)
    end = &(*end)->next;
  *end = t;
  if (install(p, t, &rule, rc, r) != 0) {
    *end = NULL;
    free(t);
    return;
  }
  /* Toxiproxy answers a new toxic with 200, not 201. */
  *r = (struct reply){200, fl_toxic_json(t)};
}

void fl_toxic_update(struct sproxy *p, struct toxic *t, json_t *body,
                     struct reply *r) {
  struct toxic tmp = *t;
  struct fl_rule rule;
  if (!json_is_object(body)) {
    fl_reply_error(r, 400, "bad request body: not a JSON object");
    return;
  }
  int rc = read_rule(p, &tmp, body, &rule, r);
  if (rc < 0)
    return;
  fl_sproxy_clear_rule(p, &t->rule_id);
  tmp.rule_id = 0;
  struct toxic *next = t->next;
  *t = tmp;
  t->next = next;
  if (install(p, t, &rule, rc, r) == 0)
    *r = (struct reply){200, fl_toxic_json(t)};
}

void fl_toxic_delete(struct sproxy *p, struct toxic *t) {
  fl_sproxy_clear_rule(p, &t->rule_id);
  for (struct toxic **at = &p->toxics; *at != NULL; at = &(*at)->next)
    if (*at == t) {
      *at = t->next;
      break;
    }
  free(t);
}
