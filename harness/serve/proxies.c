/*
 * The proxies by name, as Toxiproxy keeps them: create, show, update
 * (enabled, listen, upstream), delete, populate and reset. Each is one of
 * faultline's proxies (proxy/) listening where the client asked; a
 * disabled proxy keeps its port but holds a `down` rule, so new
 * connections are refused and open ones closed, as when Toxiproxy stops
 * listening.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "faults/faults.h"
#include "serve_int.h"

struct sproxy *fl_sproxy_find(fl_serve_t *s, const char *name) {
  for (struct sproxy *p = s->proxies; p != NULL; p = p->next)
    if (strcmp(p->name, name) == 0)
      return p;
  return NULL;
}

json_t *fl_sproxy_json(struct sproxy *p) {
  return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "name", p->name, "listen",
                   p->listen, "upstream", p->upstream, "enabled", p->enabled,
                   "toxics", fl_toxics_json(p), "faultline",
                   fl_toxics_counters(p));
}

void fl_sproxies_index(fl_serve_t *s, struct reply *r) {
  json_t *all = json_object();
  for (struct sproxy *p = s->proxies; p != NULL; p = p->next)
    json_object_set_new(all, p->name, fl_sproxy_json(p));
  *r = (struct reply){200, all};
}

/* The proxy's rules are its toxics' and its `down` rule. */
static int owns(void *arg, const struct fl_rule *rule) {
  struct sproxy *p = arg;
  if (rule->id == p->down_id)
    return 1;
  for (struct toxic *t = p->toxics; t != NULL; t = t->next)
    if (t->rule_id == rule->id)
      return 1;
  return 0;
}

/* Installs or clears the `down` rule that makes a disabled proxy. */
static int set_enabled(struct sproxy *p, int enabled, struct reply *r) {
  p->enabled = enabled;
  if (enabled) {
    fl_sproxy_clear_rule(p, &p->down_id);
    return 0;
  }
  if (p->down_id != 0)
    return 0;
  struct fl_rule_draft d;
  char err[256];
  fl_draft_init(&d, fl_fault_of_action(FL_ACT_DOWN));
  fl_draft_finish(&d, err, sizeof(err));
  d.rule.target = FL_TGT_INET; /* aimed by owns(), not by address */
  snprintf(d.rule.spec, sizeof(d.rule.spec),
           "down@%.100s (proxy %.100s disabled)", p->upstream, p->name);
  int e = fl_control_add(p->s->ctl, &d.rule, &p->down_id);
  if (e != 0) {
    fl_reply_error(r, 500, "cannot disable proxy %s: %s", p->name,
                   fl_strerror(e));
    return -1;
  }
  if (p->proxy != NULL)
    fl_proxy_refresh(p->proxy);
  return 0;
}

/* Starts faultline's proxy for p at `listen` (text; "" is loopback with a
 * free port) and fills p->listen with the address bound. */
static int start_proxy(struct sproxy *p, const char *listen, struct reply *r) {
  struct sockaddr_storage at;
  char err[300];
  if (fl_serve_parse_addr(*listen ? listen : "127.0.0.1:0", &at, err,
                          sizeof(err)) != 0) {
    fl_reply_error(r, 400, "bad listen: %s", err);
    return -1;
  }
  struct fl_proxy_opts o = {(struct sockaddr *)&at, owns, p};
  int rc = fl_proxy_start_with(p->s->loop, p->s->ctl, (struct sockaddr *)&p->up,
                               &o, &p->proxy);
  if (rc != 0) {
    fl_reply_error(r, 500, "listen tcp %s: %s", listen, strerror(-rc));
    return -1;
  }
  if (at.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&at)->sin6_port = htons(fl_proxy_port(p->proxy));
  else
    ((struct sockaddr_in *)&at)->sin_port = htons(fl_proxy_port(p->proxy));
  fl_addr_text((struct sockaddr *)&at, p->listen, sizeof(p->listen));
  return 0;
}

static int set_upstream(struct sproxy *p, const char *upstream,
                        struct reply *r) {
  char err[300];
  if (strlen(upstream) >= sizeof(p->upstream) ||
      fl_serve_parse_addr(upstream, &p->up, err, sizeof(err)) != 0) {
    fl_reply_error(r, 400, "bad upstream: %s", err);
    return -1;
  }
  snprintf(p->upstream, sizeof(p->upstream), "%s", upstream);
  return 0;
}

static void free_sproxy(struct sproxy *p) {
  while (p->toxics != NULL)
    fl_toxic_delete(p, p->toxics);
  fl_sproxy_clear_rule(p, &p->down_id);
  fl_proxy_close(p->proxy);
  free(p);
}

/* Makes a proxy from name, listen, upstream and enabled; NULL with the
 * error in r. */
static struct sproxy *make(fl_serve_t *s, const char *name, const char *listen,
                           const char *upstream, int enabled, struct reply *r) {
  struct sproxy *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    fl_reply_error(r, 500, "out of memory");
    return NULL;
  }
  p->s = s;
  p->enabled = 1;
  if (snprintf(p->name, sizeof(p->name), "%s", name) >= (int)sizeof(p->name))
    fl_reply_error(r, 400, "bad request body: name over %d bytes",
                   NAME_MAX_LEN - 1);
  else if (set_upstream(p, upstream, r) == 0 &&
           start_proxy(p, listen, r) == 0 && set_enabled(p, enabled, r) == 0)
    return p;
  if (p->proxy == NULL)
    free(p);
  else
    free_sproxy(p);
  return NULL;
}

/* Reads {name, listen, upstream, enabled}; `where` names the item in a
 * populate list ("" for a single proxy). 0 or -1 with 400 in r. */
static int read_proxy(json_t *body, const char *where, const char **name,
                      const char **listen, const char **upstream, int *enabled,
                      struct reply *r) {
  json_error_t e;
  if (!json_is_object(body) ||
      json_unpack_ex(body, &e, 0, "{s?s, s?s, s?s, s?b}", "name", name,
                     "listen", listen, "upstream", upstream, "enabled",
                     enabled) != 0) {
    fl_reply_error(r, 400, "bad request body: %s%s",
                   json_is_object(body) ? e.text : "not a JSON object", where);
    return -1;
  }
  if (**name == '\0' || **upstream == '\0') {
    fl_reply_error(r, 400, "missing required field: %s%s",
                   **name == '\0' ? "name" : "upstream", where);
    return -1;
  }
  return 0;
}

static void add(fl_serve_t *s, struct sproxy *p) {
  struct sproxy **end = &s->proxies;
  while (*end != NULL)
    end = &(*end)->next;
  *end = p;
}

static void unlink_proxy(fl_serve_t *s, struct sproxy *p) {
  for (struct sproxy **at = &s->proxies; *at != NULL; at = &(*at)->next)
    if (*at == p) {
      *at = p->next;
      return;
    }
}

void fl_sproxy_create(fl_serve_t *s, json_t *body, struct reply *r) {
  const char *name = "", *listen = "", *upstream = "";
  int enabled = 1;
  if (read_proxy(body, "", &name, &listen, &upstream, &enabled, r) != 0)
    return;
  if (fl_sproxy_find(s, name) != NULL) {
    fl_reply_error(r, 409, "proxy already exists");
    return;
  }
  struct sproxy *p = make(s, name, listen, upstream, enabled, r);
  if (p == NULL)
    return;
  add(s, p);
  *r = (struct reply){201, fl_sproxy_json(p)};
}

/* Does `listen` name the address p is bound to (port 0: any port)? */
static int same_listen(struct sproxy *p, const char *listen) {
  struct sockaddr_storage a;
  char err[300], text[ADDR_MAX_LEN];
  if (*listen == '\0')
    listen = "127.0.0.1:0";
  if (fl_serve_parse_addr(listen, &a, err, sizeof(err)) != 0)
    return 0;
  int any = a.ss_family == AF_INET6
                ? ((struct sockaddr_in6 *)&a)->sin6_port == 0
                : ((struct sockaddr_in *)&a)->sin_port == 0;
  fl_addr_text((struct sockaddr *)&a, text, sizeof(text));
  if (!any)
    return strcmp(text, p->listen) == 0;
  return strncmp(text, p->listen, strlen(text) - 1) == 0; /* ends ":0" */
}

void fl_sproxy_update(struct sproxy *p, json_t *body, struct reply *r) {
  const char *name = p->name, *listen = p->listen, *upstream = p->upstream;
  int enabled = p->enabled;
  if (read_proxy(body, "", &name, &listen, &upstream, &enabled, r) != 0)
    return;
  if (p->proxy == NULL || !same_listen(p, listen) ||
      strcmp(upstream, p->upstream) != 0) {
    /* Toxiproxy restarts a proxy that moves; its toxics stay. */
    char keep_up[ADDR_MAX_LEN], keep_listen[ADDR_MAX_LEN];
    snprintf(keep_up, sizeof(keep_up), "%s", upstream);
    snprintf(keep_listen, sizeof(keep_listen), "%s", listen);
    fl_proxy_close(p->proxy);
    p->proxy = NULL;
    if (set_upstream(p, keep_up, r) != 0 ||
        start_proxy(p, keep_listen, r) != 0) {
      /* Toxiproxy leaves such a proxy stopped: so do we, as disabled. */
      p->enabled = 0;
      return;
    }
    fl_proxy_refresh(p->proxy);
  }
  if (set_enabled(p, enabled, r) == 0)
    *r = (struct reply){200, fl_sproxy_json(p)};
}

void fl_sproxy_delete(struct sproxy *p) {
  unlink_proxy(p->s, p);
  free_sproxy(p);
}

void fl_sproxies_reset(fl_serve_t *s) {
  struct reply ignored = {0};
  for (struct sproxy *p = s->proxies; p != NULL; p = p->next) {
    while (p->toxics != NULL)
      fl_toxic_delete(p, p->toxics);
    if (p->proxy != NULL)
      set_enabled(p, 1, &ignored);
  }
  json_decref(ignored.body);
}

void fl_sproxies_close_all(fl_serve_t *s) {
  while (s->proxies != NULL) {
    struct sproxy *p = s->proxies;
    s->proxies = p->next;
    free_sproxy(p);
  }
}

/* One item of a populate list: kept when it names the same listen and
 * upstream as the proxy of that name, else made (replacing that proxy). */
static struct sproxy *populate_one(fl_serve_t *s, json_t *item, int i,
                                   struct reply *r) {
  const char *name = "", *listen = "", *upstream = "";
  int enabled = 1;
  char where[32];
  snprintf(where, sizeof(where), " at proxy %d", i + 1);
  if (read_proxy(item, where, &name, &listen, &upstream, &enabled, r) != 0)
    return NULL;
  struct sproxy *old = fl_sproxy_find(s, name);
  if (old != NULL && same_listen(old, listen) &&
      strcmp(old->upstream, upstream) == 0)
    return old;
  if (old != NULL)
    fl_sproxy_delete(old); /* its port is free again for the new one */
  struct sproxy *p = make(s, name, listen, upstream, enabled, r);
  if (p != NULL)
    add(s, p);
  return p;
}

void fl_sproxies_populate(fl_serve_t *s, json_t *body, struct reply *r) {
  if (!json_is_array(body)) {
    fl_reply_error(r, 400, "bad request body: not a JSON array of proxies");
    return;
  }
  /* Every item is checked before any proxy is made, as Toxiproxy does. */
  size_t i;
  json_t *item;
  json_array_foreach(body, i, item) {
    const char *name = "", *listen = "", *upstream = "";
    int enabled = 1;
    char where[32];
    snprintf(where, sizeof(where), " at proxy %zu", i + 1);
    if (read_proxy(item, where, &name, &listen, &upstream, &enabled, r) != 0)
      return;
  }
  json_t *made = json_array();
  struct reply err = {0};
  json_array_foreach(body, i, item) {
    struct sproxy *p = populate_one(s, item, (int)i, &err);
    if (p == NULL)
      break;
    json_array_append_new(made, fl_sproxy_json(p));
  }
  if (err.body != NULL) {
    json_object_set_new(err.body, "proxies", made);
    *r = err;
    return;
  }
  *r = (struct reply){201, json_pack("{s:o}", "proxies", made)};
}
