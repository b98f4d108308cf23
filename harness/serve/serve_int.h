/*
 * The control server's own state (see serve.h), shared by its files:
 * http.c (libmicrohttpd on the libuv loop, auth, replies), routes.c (which
 * handler a request reaches), proxies.c (the proxies by name), toxics.c
 * (Toxiproxy's toxics as faultline proxy rules), shim.c (the /shim
 * extension) and addr.c (addresses).
 */
#ifndef FL_SERVE_INT_H
#define FL_SERVE_INT_H

#include <jansson.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "control/control.h"
#include "proxy/proxy.h"
#include "serve.h"

#define NAME_MAX_LEN 128
#define ADDR_MAX_LEN 300
#define TOXIC_ATTRS 3

struct toxic_type;

/* A toxic as Toxiproxy shows it, and the rule that makes it (rule_id 0:
 * its attributes do nothing, e.g. latency 0, so no rule is installed). */
struct toxic {
  struct toxic *next;
  char name[NAME_MAX_LEN];
  char stream[16]; /* as the client wrote it: "upstream", "downstream" */
  const struct toxic_type *type;
  int dir; /* FL_DIR_UP or FL_DIR_DOWN */
  double toxicity;
  long long attrs[TOXIC_ATTRS]; /* by the type's attribute order */
  uint32_t rule_id;
};

/* A proxy by name: faultline's proxy, its toxics, and what was delivered
 * by rules now gone (removed or replaced toxics). */
struct sproxy {
  struct sproxy *next;
  struct fl_serve *s;
  char name[NAME_MAX_LEN];
  char upstream[ADDR_MAX_LEN]; /* as the client wrote it */
  char listen[ADDR_MAX_LEN];   /* the address bound, "127.0.0.1:26379" */
  struct sockaddr_storage up;
  fl_proxy_t *proxy;
  int enabled;
  uint32_t down_id; /* the `down` rule while disabled */
  struct toxic *toxics;
  uint64_t retired; /* faults delivered by rules cleared since */
};

struct fl_serve {
  uv_loop_t *loop;
  fl_control_t *ctl;
  struct MHD_Daemon *mhd;
  uv_poll_t poll;
  uv_timer_t timer;
  int handles, closing, port;
  char *token;
  struct sproxy *proxies;
};

/* A reply: a status and a JSON body (NULL: none), which http.c sends and
 * frees. */
struct reply {
  int status;
  json_t *body;
};

/* A request as the handlers see it. */
struct request {
  const char *method;
  const char *path;
  json_t *body;           /* parsed JSON, NULL when the body was empty */
  const char *body_error; /* the JSON parser's complaint, or NULL */
  struct MHD_Connection *conn;
};

/* ---- http.c ------------------------------------------------------ */

/* Sets r to Toxiproxy's error body {"error": MESSAGE, "status": STATUS}. */
void fl_reply_error(struct reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The query argument `key` of the request, or NULL. */
const char *fl_request_arg(const struct request *q, const char *key);

/* ---- routes.c ---------------------------------------------------- */

void fl_serve_route(fl_serve_t *s, const struct request *q, struct reply *r);

/* ---- proxies.c --------------------------------------------------- */

struct sproxy *fl_sproxy_find(fl_serve_t *s, const char *name);
/* The proxy as Toxiproxy shows it, with its toxics and our counters. */
json_t *fl_sproxy_json(struct sproxy *p);
void fl_sproxies_index(fl_serve_t *s, struct reply *r);
void fl_sproxy_create(fl_serve_t *s, json_t *body, struct reply *r);
void fl_sproxy_update(struct sproxy *p, json_t *body, struct reply *r);
void fl_sproxy_delete(struct sproxy *p);
void fl_sproxies_populate(fl_serve_t *s, json_t *body, struct reply *r);
void fl_sproxies_reset(fl_serve_t *s);
/* Closes and frees every proxy (the server is closing). */
void fl_sproxies_close_all(fl_serve_t *s);

/* ---- toxics.c ---------------------------------------------------- */

struct toxic *fl_toxic_find(struct sproxy *p, const char *name);
json_t *fl_toxic_json(const struct toxic *t);
/* The toxics in Toxiproxy's order: upstream ones first. */
json_t *fl_toxics_json(struct sproxy *p);
void fl_toxic_create(struct sproxy *p, json_t *body, struct reply *r);
void fl_toxic_update(struct sproxy *p, struct toxic *t, json_t *body,
                     struct reply *r);
void fl_toxic_delete(struct sproxy *p, struct toxic *t);
/* Clears a rule of the proxy, adding what it delivered to p->retired. */
void fl_sproxy_clear_rule(struct sproxy *p, uint32_t *id);
/* Per-toxic counters and their sum: the "faultline" member of a proxy. */
json_t *fl_toxics_counters(struct sproxy *p);

/* ---- shim.c ------------------------------------------------------ */

void fl_shim_add(const struct request *q, struct reply *r);
void fl_shim_list(const struct request *q, struct reply *r);
void fl_shim_delete(const struct request *q, const char *id, struct reply *r);

/* ---- addr.c ------------------------------------------------------ */

/* "127.0.0.1:26379" or "[::1]:26379". */
void fl_addr_text(const struct sockaddr *sa, char *out, size_t size);

#endif
