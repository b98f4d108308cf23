/*
 * Which handler a request reaches: Toxiproxy's routes (POST and PATCH
 * both update, as in Toxiproxy 2.x), then faultline's /shim. A path that
 * exists with another method gets 405, one that does not 404.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "serve_int.h"

#define TOXIPROXY_VERSION "2.12.0" /* the API we answer to */

/* Splits path into at most max segments (in buf); returns how many, or
 * -1 for a path with an empty segment or too many. */
static int segments(const char *path, char *buf, size_t size, char **seg,
                    int max) {
  if (snprintf(buf, size, "%s", path) >= (int)size || buf[0] != '/')
    return -1;
  int n = 0;
  for (char *at = buf + 1; *at != '\0';) {
    char *slash = strchr(at, '/');
    if (slash != NULL)
      *slash = '\0';
    if (*at == '\0' || n == max)
      return -1;
    seg[n++] = at;
    if (slash == NULL)
      break;
    at = slash + 1;
  }
  return n;
}

static int is(const struct request *q, const char *method) {
  return strcmp(q->method, method) == 0;
}

static int is_update(const struct request *q) {
  return is(q, "POST") || is(q, "PATCH");
}

static void no_method(const struct request *q, struct reply *r) {
  fl_reply_error(r, 405, "method %s not allowed on %s", q->method, q->path);
}

/* A request that must carry a JSON body: 0, or 400 already set. */
static int need_body(const struct request *q, struct reply *r) {
  if (q->body != NULL)
    return 0;
  fl_reply_error(r, 400, "bad request body: %s",
                 q->body_error ? q->body_error : "EOF");
  return -1;
}

static void toxic_route(struct sproxy *p, const struct request *q,
                        const char *name, struct reply *r) {
  struct toxic *t = fl_toxic_find(p, name);
  if (t == NULL && (is(q, "GET") || is_update(q) || is(q, "DELETE"))) {
    fl_reply_error(r, 404, "toxic not found");
  } else if (is(q, "GET")) {
    *r = (struct reply){200, fl_toxic_json(t)};
  } else if (is_update(q)) {
    if (need_body(q, r) == 0)
      fl_toxic_update(p, t, q->body, r);
  } else if (is(q, "DELETE")) {
    fl_toxic_delete(p, t);
    *r = (struct reply){204, NULL};
  } else {
    no_method(q, r);
  }
}

static void proxy_route(fl_serve_t *s, const struct request *q, char **seg,
                        int n, struct reply *r) {
  struct sproxy *p = fl_sproxy_find(s, seg[1]);
  if (p == NULL) {
    fl_reply_error(r, 404, "proxy not found");
  } else if (n == 2 && is(q, "GET")) {
    *r = (struct reply){200, fl_sproxy_json(p)};
  } else if (n == 2 && is_update(q)) {
    if (need_body(q, r) == 0)
      fl_sproxy_update(p, q->body, r);
  } else if (n == 2 && is(q, "DELETE")) {
    fl_sproxy_delete(p);
    *r = (struct reply){204, NULL};
  } else if (n == 3 && is(q, "GET")) {
    *r = (struct reply){200, fl_toxics_json(p)};
  } else if (n == 3 && is(q, "POST")) {
    if (need_body(q, r) == 0)
      fl_toxic_create(p, q->body, r);
  } else if (n == 4) {
    toxic_route(p, q, seg[3], r);
  } else {
    no_method(q, r);
  }
}

/* /version, /reset, /populate, /proxies */
static void top_route(fl_serve_t *s, const struct request *q, const char *top,
                      struct reply *r) {
  if (strcmp(top, "version") == 0 && is(q, "GET")) {
    *r = (struct reply){200,
                        json_pack("{s:s, s:s}", "version", TOXIPROXY_VERSION,
                                  "faultline", FL_VERSION)};
  } else if (strcmp(top, "reset") == 0 && is(q, "POST")) {
    fl_sproxies_reset(s);
    *r = (struct reply){204, NULL};
  } else if (strcmp(top, "populate") == 0 && is(q, "POST")) {
    if (need_body(q, r) == 0)
      fl_sproxies_populate(s, q->body, r);
  } else if (strcmp(top, "proxies") == 0 && is(q, "GET")) {
    fl_sproxies_index(s, r);
  } else if (strcmp(top, "proxies") == 0 && is(q, "POST")) {
    if (need_body(q, r) == 0)
      fl_sproxy_create(s, q->body, r);
  } else if (strcmp(top, "shim") == 0 && is(q, "POST")) {
    if (need_body(q, r) == 0)
      fl_shim_add(q, r);
  } else if (strcmp(top, "shim") == 0 && is(q, "GET")) {
    fl_shim_list(q, r);
  } else {
    no_method(q, r);
  }
}

void fl_serve_route(fl_serve_t *s, const struct request *q, struct reply *r) {
  static const char *const tops[] = {"version", "reset", "populate", "proxies",
                                     "shim"};
  char buf[1024], *seg[4];
  int n = segments(q->path, buf, sizeof(buf), seg, 4), known = 0;
  for (size_t i = 0; n >= 1 && i < sizeof(tops) / sizeof(tops[0]); i++)
    known |= strcmp(seg[0], tops[i]) == 0;
  if (n == 1 && known)
    top_route(s, q, seg[0], r);
  else if (n >= 2 && strcmp(seg[0], "proxies") == 0 &&
           (n == 2 || strcmp(seg[2], "toxics") == 0))
    proxy_route(s, q, seg, n, r);
  else if (n == 2 && strcmp(seg[0], "shim") == 0 && is(q, "DELETE"))
    fl_shim_delete(q, seg[1], r);
  else if (n == 2 && strcmp(seg[0], "shim") == 0)
    no_method(q, r);
  else
    fl_reply_error(r, 404, "404 page not found: %s", q->path);
}
