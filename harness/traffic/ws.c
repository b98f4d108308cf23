/*
 * WebSocket endpoints (see traffic.h): an opener timer starts connection
 * k at k / connect_rate seconds, each connection (ws_conn.c) lives on its
 * own, and this file keeps the records: one per attempt, one per message
 * received. Messages are drawn from their template here, as paths are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_int.h"

double fl_ws_now(const struct ws_ep *w) {
  return w->started ? (double)(uv_hrtime() - w->t0) / 1e9 : 0;
}

/* Grows *arr (of *cap elements of `size`) to hold n + 1; 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 64;
  void *a = realloc(*arr, c * size);
  if (a == NULL)
    return -ENOMEM;
  *arr = a;
  *cap = c;
  return 0;
}

long fl_ws_record_conn(struct ws_ep *w, int slot, int attempt, int slow) {
  if (grow((void **)&w->conns, &w->capconns, w->nconns, sizeof(*w->conns)))
    return -ENOMEM;
  struct fl_ws_conn *r = &w->conns[w->nconns];
  *r = (struct fl_ws_conn){.slot = slot,
                           .attempt = attempt,
                           .slow = slow,
                           .start = fl_ws_now(w),
                           .handshake = -1,
                           .closed = -1};
  return (long)w->nconns++;
}

void fl_ws_record_msg(struct ws_ep *w, size_t rec, double rtt) {
  w->conns[rec].received++;
  if (grow((void **)&w->msgs, &w->capmsgs, w->nmsgs, sizeof(*w->msgs)))
    return;
  w->msgs[w->nmsgs++] = (struct fl_ws_msg){
      .t = fl_ws_now(w), .rtt = (float)rtt, .conn = (uint32_t)rec};
}

/* ---- Message templates ----------------------------------------------- */

/* Rewrites path.c's error about placeholder open..close (the "}}") of
 * msg: "in path '{5..1}'" becomes "in message 'id {{5..1}}'"; a
 * placeholder that is no placeholder ({{}}, {{a}}) is said so. */
static void message_error(char *err, size_t errlen, const char *msg,
                          const char *open, const char *close) {
  char hole[256];
  snprintf(hole, sizeof(hole), "in path '%.*s'", (int)(close - open), open + 1);
  char *at = strstr(err, hole);
  if (at == NULL) {
    snprintf(err, errlen,
             "bad placeholder '%.*s' in message '%s' (allowed: {{A..B}} with "
             "whole numbers A <= B, or {{x,y,...}} with two or more "
             "non-empty items)",
             (int)(close + 2 - open), open, msg);
    return;
  }
  char tail[512];
  snprintf(tail, sizeof(tail), "%s", at + strlen(hole));
  snprintf(at, errlen - (size_t)(at - err), "in message '%s'%s", msg, tail);
}

/* Splits msg at its {{...}} placeholders: nparts literals around nparts -
 * 1 placeholders, each parsed as the path placeholder {...}. 0, or
 * -EINVAL with err and *col (1-based, in msg) as fl_path_check. */
static int template_parse(const char *msg, char ***lits,
                          struct fl_path_tmpl ***holes, size_t *nparts,
                          int *col, char *err, size_t errlen) {
  size_t n = 1;
  for (const char *s = msg; (s = strstr(s, "{{")) != NULL; s += 2)
    n++;
  *lits = calloc(n, sizeof(char *));
  *holes = calloc(n, sizeof(struct fl_path_tmpl *));
  *nparts = 0;
  if (*lits == NULL || *holes == NULL)
    return -ENOMEM;
  const char *at = msg;
  for (;;) {
    const char *open = strstr(at, "{{");
    size_t lit = open != NULL ? (size_t)(open - at) : strlen(at);
    if (((*lits)[(*nparts)++] = strndup(at, lit)) == NULL)
      return -ENOMEM;
    if (open == NULL)
      return 0;
    const char *close = strstr(open + 2, "}}");
    if (close == NULL) {
      if (col != NULL)
        *col = (int)(open - msg) + 1;
      if (err != NULL)
        snprintf(err, errlen,
                 "unclosed '{{' in message '%s' (allowed: {{A..B}} or "
                 "{{x,y,...}} placeholders)",
                 msg);
      return -EINVAL;
    }
    /* {{1..5}} is the path placeholder {1..5}, with its errors. */
    char *hole = strndup(open + 1, (size_t)(close - open));
    if (hole == NULL)
      return -ENOMEM;
    int hcol = 1;
    int rc = fl_path_parse(hole, &(*holes)[*nparts - 1], &hcol, err, errlen);
    free(hole);
    if (rc == 0 && fl_path_is_fixed((*holes)[*nparts - 1]))
      rc = -EINVAL; /* {{}} and the like: no placeholder inside */
    if (rc != 0) {
      /* At the placeholder's "{{", and said of the message, not a path. */
      if (col != NULL)
        *col = (int)(open - msg) + (hcol > 1 ? hcol + 1 : 1);
      if (err != NULL && rc == -EINVAL)
        message_error(err, errlen, msg, open, close);
      return rc;
    }
    at = close + 2;
  }
}

static void template_free(char **lits, struct fl_path_tmpl **holes,
                          size_t nparts) {
  for (size_t i = 0; lits != NULL && i < nparts; i++)
    free(lits[i]);
  for (size_t i = 0; holes != NULL && i < nparts; i++)
    fl_path_free(holes[i]);
  free(lits);
  free(holes);
}

int fl_ws_message_check(const char *msg, int *col, char *err, size_t errlen) {
  char **lits;
  struct fl_path_tmpl **holes;
  size_t n;
  int rc = template_parse(msg, &lits, &holes, &n, col, err, errlen);
  template_free(lits, holes, n);
  return rc;
}

char *fl_ws_draw_message(struct ws_ep *w) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  if (f == NULL)
    return NULL;
  uint64_t k = w->nmsg++;
  for (size_t i = 0; i < w->nparts; i++) {
    fputs(w->lits[i], f);
    char buf[4096];
    /* Each placeholder its own stream, so two of them are independent. */
    if (i + 1 < w->nparts &&
        fl_path_draw(w->holes[i], w->key + i * 0x9e3779b97f4a7c15ull, k, buf,
                     sizeof(buf)) == 0)
      fputs(buf, f);
  }
  if (fclose(f) != 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* ---- The endpoint ---------------------------------------------------- */

/* http://HOST:PORT (or ws://; [v6] in brackets) into w's host, port and
 * address; 0 or -EINVAL. */
static int parse_base(struct ws_ep *w, const char *base) {
  const char *s = strstr(base, "://");
  s = s != NULL ? s + 3 : base;
  const char *hend, *colon;
  if (*s == '[') {
    hend = strchr(s, ']');
    colon = hend != NULL ? hend + 1 : NULL;
    s++;
  } else {
    hend = colon = strrchr(s, ':');
  }
  if (hend == NULL || colon == NULL || *colon != ':' ||
      (w->host = strndup(s, (size_t)(hend - s))) == NULL)
    return -EINVAL;
  w->port = atoi(colon + 1);
  if (w->port <= 0 || w->port > 65535)
    return -EINVAL;
  if (strcmp(w->host, "localhost") == 0 &&
      uv_ip4_addr("127.0.0.1", w->port, (struct sockaddr_in *)&w->addr) == 0)
    return 0;
  if (uv_ip4_addr(w->host, w->port, (struct sockaddr_in *)&w->addr) == 0 ||
      uv_ip6_addr(w->host, w->port, (struct sockaddr_in6 *)&w->addr) == 0)
    return 0;
  return -EINVAL;
}

/* The endpoint's headers as request lines; 0, -EINVAL for one with a
 * line break (it would make a header of its own), -ENOMEM. */
static int copy_headers(struct ws_ep *w, const char *const *h) {
  size_t len = 1;
  for (size_t i = 0; h != NULL && h[i] != NULL; i++) {
    if (strpbrk(h[i], "\r\n") != NULL)
      return -EINVAL;
    len += strlen(h[i]) + 2;
  }
  if ((w->headers = malloc(len)) == NULL)
    return -ENOMEM;
  w->headers[0] = '\0';
  for (size_t i = 0; h != NULL && h[i] != NULL; i++) {
    strcat(w->headers, h[i]);
    strcat(w->headers, "\r\n");
  }
  return 0;
}

static int spec_ok(const struct fl_ws_spec *s) {
  return s->connections >= 1 && s->connect_rate > 0 &&
         (s->message == NULL || s->message_rate > 0) && s->reconnect >= 0 &&
         s->slow_share >= 0 && s->slow_share <= 1 && s->slow_count >= 0 &&
         s->slow_for >= 0;
}

int fl_ws_ep_new(struct glue *g, const char *base_url,
                 const struct fl_endpoint_spec *e, struct ws_ep **out) {
  const struct fl_ws_spec *s = e->ws;
  if (!spec_ok(s) || e->path == NULL || !(e->timeout > 0))
    return -EINVAL;
  struct ws_ep *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  w->g = g;
  w->spec = *s;
  w->spec.message = NULL;
  if (w->spec.reconnect_max < w->spec.reconnect)
    w->spec.reconnect_max = w->spec.reconnect;
  w->timeout = e->timeout;
  int rc = parse_base(w, base_url);
  if (rc == 0)
    rc = copy_headers(w, e->headers);
  if (rc == 0 &&
      ((w->name = strdup(e->name ? e->name : e->path)) == NULL ||
       (w->path = strdup(e->path)) == NULL ||
       (w->slots = calloc((size_t)s->connections, sizeof(*w->slots))) == NULL))
    rc = -ENOMEM;
  if (rc == 0 && s->message != NULL &&
      (rc = template_parse(s->message, &w->lits, &w->holes, &w->nparts, NULL,
                           NULL, 0)) == 0)
    w->spec.message = w->lits[0]; /* only tested against NULL from here */
  if (rc != 0) {
    fl_ws_ep_release(w);
    return rc;
  }
  w->key = fl_path_key(e->seed, w->name);
  uv_timer_init(g->loop, &w->opener);
  w->opener.data = w;
  g->handles++;
  *out = w;
  return 0;
}

/* Opens the connections due by now, and sets the timer for the next. */
static void on_opener(uv_timer_t *t) {
  struct ws_ep *w = t->data;
  double now = fl_ws_now(w);
  while (w->opened < w->spec.connections && !w->stopping &&
         (double)w->opened / w->spec.connect_rate <= now) {
    int slot = w->opened++;
    if (fl_ws_conn_new(w, slot, &w->slots[slot]) != 0)
      w->slots[slot] = NULL;
  }
  if (w->opened < w->spec.connections && !w->stopping) {
    double next = (double)w->opened / w->spec.connect_rate - now;
    uv_timer_start(&w->opener, on_opener,
                   next > 0 ? (uint64_t)(next * 1000) + 1 : 0, 0);
  }
}

void fl_ws_ep_start(struct ws_ep *w, uint64_t t0) {
  w->t0 = t0;
  w->started = 1;
  on_opener(&w->opener);
}

void fl_ws_ep_stop(struct ws_ep *w) {
  w->stopping = 1;
  uv_timer_stop(&w->opener);
  for (int i = 0; i < w->opened; i++)
    if (w->slots[i] != NULL)
      fl_ws_conn_stop(w->slots[i]);
}

void fl_ws_ep_close(struct ws_ep *w) {
  if (w->closing)
    return;
  w->closing = w->stopping = 1;
  for (int i = 0; i < w->opened; i++)
    if (w->slots[i] != NULL)
      fl_ws_conn_close(w->slots[i]);
  w->opener.data = w->g;
  uv_close((uv_handle_t *)&w->opener, fl_glue_on_handle_closed);
}

void fl_ws_ep_release(struct ws_ep *w) {
  if (w == NULL)
    return;
  template_free(w->lits, w->holes, w->nparts);
  free(w->name);
  free(w->path);
  free(w->host);
  free(w->headers);
  free(w->slots);
  free(w->conns);
  free(w->msgs);
  free(w);
}

void fl_ws_ep_records(const struct ws_ep *w, struct fl_ws_records *out) {
  *out = (struct fl_ws_records){w->conns, w->nconns, w->msgs, w->nmsgs};
}
