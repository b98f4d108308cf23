/*
 * The proxy's HTTP/1.1 codec (row "http" of codec.c): requests and
 * responses are followed with http1.c in both directions, and a queue of
 * the requests still owed a response pairs each response with its request
 * (pipelining included). With no protocol fault on the connection, bytes
 * are handed on as they came. The faults:
 *   http_error  a request is answered by us instead of forwarded; the
 *               answer waits behind responses still owed, so order holds;
 *   http_delay  a response is held ms= from its first byte;
 *   http_cut    a response ends after bytes= of its body, the connection
 *               closed as by an upstream that died.
 * Upgrade and CONNECT, or bytes it cannot follow: it stops following and
 * passes everything on untouched.
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "match.h"

#define QMAX 64              /* requests owed a response, at most */
#define HOLD_MAX (64 * 1024) /* a request head held for a decision */
#define BIT(a) (UINT64_C(1) << (a))

struct entry {
  char method[16];
  char path[128];
  uint8_t head, connect;
  char *ours; /* our answer, or NULL: the upstream owes it */
  size_t ours_len;
};

/* What is waiting to be handed on in one direction: a run of the bytes
 * being fed, sent in one piece. */
struct run {
  const char *at;
  size_t len;
};

struct http_state {
  struct fl_h1 req, resp;
  struct entry q[QMAX];
  unsigned qhead, qlen;
  uint64_t nreq, nresp;
  int inited;
  int tunnel;      /* no longer followed: everything passes */
  int holding;     /* the request head is held in hold[] */
  int swallow;     /* the request's bytes are dropped (we answer it) */
  int close_after; /* our answer ends the connection */
  int cutting;     /* http_cut: cut_left body bytes may still pass */
  uint64_t cut_left;
  char *hold;
  size_t hold_len;
};

/* ---- helpers ------------------------------------------------------ */

static int armed(const struct conn *c, int action) {
  for (int i = 0; i < c->nhits; i++)
    if (c->p->rules[c->hits[i].slot].action == action)
      return 1;
  return 0;
}

static void flush(struct conn *c, int d, struct run *r) {
  if (r->len > 0)
    fl_conn_send(c, d, r->at, r->len);
  r->len = 0;
}

static void add(struct conn *c, int d, struct run *r, const char *p, size_t n) {
  if (n == 0)
    return;
  if (r->len > 0 && r->at + r->len != p)
    flush(c, d, r);
  if (r->len == 0)
    r->at = p;
  r->len += n;
}

static struct entry *front(struct http_state *st) {
  return st->qlen > 0 ? &st->q[st->qhead] : NULL;
}

static void pop(struct http_state *st) {
  struct entry *e = front(st);
  free(e->ours);
  memset(e, 0, sizeof(*e));
  st->qhead = (st->qhead + 1) % QMAX;
  st->qlen--;
}

/* Sends our answers that are next in order (every response before them
 * has passed). */
static void flush_ours(struct conn *c, struct http_state *st) {
  struct entry *e;
  while (!c->closing && fl_h1_at_start(&st->resp) && (e = front(st)) != NULL &&
         e->ours != NULL) {
    fl_conn_send(c, DOWN, e->ours, e->ours_len);
    pop(st);
    if (st->close_after && st->qlen == 0)
      fl_conn_end(c, END_CLOSE);
  }
}

/* "METHOD PATH-GLOB", "PATH-GLOB" or "METHOD"; empty: every request. */
static int matches(const char *m, const struct entry *e) {
  if (m[0] == '\0')
    return 1;
  const char *sp = strchr(m, ' ');
  const char *glob = m;
  if (m[0] != '/') {
    size_t ml = sp ? (size_t)(sp - m) : strlen(m);
    if (!(ml == 1 && m[0] == '*') &&
        !(strlen(e->method) == ml && strncasecmp(m, e->method, ml) == 0))
      return 0;
    if (sp == NULL)
      return 1;
    glob = sp + 1 + strspn(sp + 1, " ");
  }
  return fl_glob_match(glob, e->path, 0);
}

struct pick {
  const struct entry *e;
  uint64_t body; /* http_cut: the body's length, UINT64_MAX if unknown */
};

static int pick_filter(const struct prule *r, void *arg) {
  const struct pick *pk = arg;
  if (!matches(r->proto.match, pk->e))
    return 0;
  /* A cut must leave part of the body untold, or it is no fault. */
  return r->action != FL_ACT_HTTP_CUT || pk->body > r->bytes;
}

static const char *reason(unsigned s) {
  switch (s) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Content Too Large";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return s < 300 ? "OK" : s < 400 ? "Redirect" : "Error";
  }
}

/* header=: "Name: value" lines separated by '|' (or CRLF), as CRLF lines
 * in out; parts without a colon are left out. *ctype: one was given. */
static size_t header_lines(const char *h, char *out, size_t size, int *ctype) {
  size_t at = 0;
  *ctype = 0;
  while (*h != '\0') {
    size_t n = strcspn(h, "|\r\n");
    const char *p = h;
    while (n > 0 && (*p == ' ' || *p == '\t'))
      p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
      n--;
    if (n > 0 && memchr(p, ':', n) != NULL && at + n + 2 < size) {
      memcpy(out + at, p, n);
      memcpy(out + at + n, "\r\n", 2);
      at += n + 2;
      *ctype |= n > 13 && strncasecmp(p, "content-type:", 13) == 0;
    }
    h += strcspn(h, "|\r\n");
    h += strspn(h, "|\r\n");
  }
  out[at] = '\0';
  return at;
}

/* Our answer to request e, from the rule. NULL: out of memory. */
static char *answer(const struct prule *r, const struct entry *e, int close,
                    size_t *len) {
  unsigned status = r->proto.status ? r->proto.status : 503;
  char dflt[96], hdrs[600];
  const char *body = r->proto.reply;
  if (body[0] == '\0') {
    snprintf(dflt, sizeof(dflt), "faultline: %u %s\n", status, reason(status));
    body = dflt;
  }
  if (status == 204 || status == 304 || status < 200)
    body = "";
  int ctype;
  header_lines(r->proto.headers, hdrs, sizeof(hdrs), &ctype);
  const char *type = ctype ? ""
                     : body[0] == '{' || body[0] == '['
                         ? "Content-Type: application/json\r\n"
                         : "Content-Type: text/plain\r\n";
  size_t blen = strlen(body);
  char *out = NULL;
  int n =
      asprintf(&out, "HTTP/1.1 %u %s\r\n%s%sContent-Length: %zu\r\n%s\r\n%s",
               status, reason(status), hdrs, type, blen,
               close ? "Connection: close\r\n" : "", e->head ? "" : body);
  if (n < 0)
    return NULL;
  *len = (size_t)n;
  return out;
}

/* Stops following: what is held passes, then everything as it comes. */
static void go_tunnel(struct conn *c, struct http_state *st) {
  st->tunnel = 1;
  if (st->holding && st->hold_len > 0)
    fl_conn_send(c, UP, st->hold, st->hold_len);
  st->holding = 0;
  st->hold_len = 0;
  /* Answers of ours still waiting go now: nothing will order them. */
  for (struct entry *e; (e = front(st)) != NULL; pop(st))
    if (e->ours != NULL && !c->closing)
      fl_conn_send(c, DOWN, e->ours, e->ours_len);
}

static int hold_bytes(struct http_state *st, const char *p, size_t n) {
  if (st->hold_len + n > HOLD_MAX)
    return -1;
  if (st->hold == NULL && (st->hold = malloc(HOLD_MAX)) == NULL)
    return -ENOMEM;
  memcpy(st->hold + st->hold_len, p, n);
  st->hold_len += n;
  return 0;
}

/* ---- requests (UP) ------------------------------------------------ */

/* The request head in st->req ended. */
static void request_head(struct conn *c, struct http_state *st,
                         struct run *out) {
  if (st->qlen == QMAX || st->req.upgrade) {
    flush(c, UP, out);
    go_tunnel(c, st);
    return;
  }
  struct entry *e = &st->q[(st->qhead + st->qlen++) % QMAX];
  memset(e, 0, sizeof(*e));
  snprintf(e->method, sizeof(e->method), "%s", st->req.method);
  size_t pl = strcspn(st->req.target, "?#");
  if (pl >= sizeof(e->path))
    pl = sizeof(e->path) - 1;
  memcpy(e->path, st->req.target, pl);
  e->head = strcmp(e->method, "HEAD") == 0;
  e->connect = strcmp(e->method, "CONNECT") == 0;
  uint64_t num = st->nreq++;
  if (!st->holding)
    return;
  st->holding = 0;
  struct pick pk = {e, UINT64_MAX};
  const struct prule *r =
      fl_toxics_proto_hit(c, BIT(FL_ACT_HTTP_ERROR), num, pick_filter, &pk);
  if (r == NULL) {
    fl_conn_send(c, UP, st->hold, st->hold_len);
    st->hold_len = 0;
    return;
  }
  /* A client waiting for 100 Continue may never send the body we would
   * have to skip: end the connection after the answer, as servers do. */
  int close = st->req.expect && (st->req.has_len || st->req.chunked);
  e->ours = answer(r, e, close, &e->ours_len);
  st->hold_len = 0;
  st->swallow = 1;
  st->close_after |= close;
  if (e->ours == NULL)
    fl_conn_close(c, END_RESET);
  else
    flush_ours(c, st);
}

static int feed_up(struct conn *c, struct http_state *st, const char *data,
                   size_t n) {
  struct run out = {0};
  size_t off = 0;
  while (!c->closing) {
    if (st->tunnel || st->close_after) {
      add(c, UP, &out, data + off, st->close_after ? 0 : n - off);
      break;
    }
    if (off < n && fl_h1_at_start(&st->req) && !st->holding &&
        armed(c, FL_ACT_HTTP_ERROR)) {
      flush(c, UP, &out);
      st->holding = 1;
      st->hold_len = 0;
    }
    enum fl_h1_event ev;
    size_t k = fl_h1_feed(&st->req, data + off, n - off, &ev);
    if (st->holding) {
      if (hold_bytes(st, data + off, k) != 0) {
        /* Too long a head to hold: it passes, and is not answered. */
        fl_conn_send(c, UP, st->hold, st->hold_len);
        st->hold_len = 0;
        st->holding = 0;
        add(c, UP, &out, data + off, k);
      }
    } else if (!st->swallow) {
      add(c, UP, &out, data + off, k);
    }
    off += k;
    if (ev == FL_H1_MORE)
      break;
    if (ev == FL_H1_BAD) {
      flush(c, UP, &out);
      go_tunnel(c, st);
    } else if (ev == FL_H1_HEAD) {
      request_head(c, st, &out);
    } else if (ev == FL_H1_DONE) {
      st->swallow = 0;
    }
  }
  flush(c, UP, &out);
  return 0;
}

/* ---- responses (DOWN) --------------------------------------------- */

/* The first byte of a response from the upstream is here. */
static void response_start(struct conn *c, struct http_state *st,
                           struct run *out) {
  flush(c, DOWN, out);
  flush_ours(c, st);
  struct entry *e = front(st);
  st->resp.no_body = e != NULL && e->head;
  if (e == NULL || !armed(c, FL_ACT_HTTP_DELAY))
    return;
  struct pick pk = {e, UINT64_MAX};
  const struct prule *r = fl_toxics_proto_hit(c, BIT(FL_ACT_HTTP_DELAY),
                                              st->nresp, pick_filter, &pk);
  if (r != NULL) {
    flush(c, DOWN, out);
    fl_conn_hold(c, DOWN, now_ns() + (uint64_t)r->ms * MS);
  }
}

static void response_head(struct conn *c, struct http_state *st,
                          struct run *out) {
  const struct fl_h1 *h = &st->resp;
  struct entry *e = front(st);
  if (h->status == 101 ||
      (e != NULL && e->connect && h->status >= 200 && h->status < 300)) {
    flush(c, DOWN, out);
    go_tunnel(c, st);
    return;
  }
  int bodyless = h->status < 200 || h->status == 204 || h->status == 304 ||
                 (e != NULL && e->head);
  if (e == NULL || bodyless || !armed(c, FL_ACT_HTTP_CUT))
    return;
  struct pick pk = {e, h->chunked || !h->has_len ? UINT64_MAX : h->length};
  const struct prule *r =
      fl_toxics_proto_hit(c, BIT(FL_ACT_HTTP_CUT), st->nresp, pick_filter, &pk);
  if (r != NULL) {
    st->cutting = 1;
    st->cut_left = r->bytes;
  }
}

static int feed_down(struct conn *c, struct http_state *st, const char *data,
                     size_t n) {
  struct run out = {0};
  size_t off = 0;
  while (!c->closing) {
    if (st->tunnel) {
      add(c, DOWN, &out, data + off, n - off);
      break;
    }
    if (off < n && fl_h1_at_start(&st->resp))
      response_start(c, st, &out);
    enum fl_h1_event ev;
    size_t k = fl_h1_feed(&st->resp, data + off, n - off, &ev);
    if (st->cutting &&
        (k > st->cut_left || (k == st->cut_left && ev != FL_H1_DONE))) {
      add(c, DOWN, &out, data + off, (size_t)st->cut_left);
      flush(c, DOWN, &out);
      fl_conn_end(c, END_CLOSE);
      return 0;
    }
    if (st->cutting)
      st->cut_left -= k;
    add(c, DOWN, &out, data + off, k);
    off += k;
    if (ev == FL_H1_MORE)
      break;
    if (ev == FL_H1_BAD) {
      flush(c, DOWN, &out);
      go_tunnel(c, st);
    } else if (ev == FL_H1_HEAD) {
      response_head(c, st, &out);
    } else if (ev == FL_H1_DONE && st->resp.status >= 200) {
      /* A final response: its request is answered (1xx are not). */
      st->cutting = 0;
      st->nresp++;
      if (front(st) != NULL)
        pop(st);
      flush(c, DOWN, &out);
      flush_ours(c, st);
    }
  }
  flush(c, DOWN, &out);
  return 0;
}

/* ---- the codec ---------------------------------------------------- */

static int http_feed(struct conn *c, void *state, int d, const char *data,
                     size_t n) {
  struct http_state *st = state;
  if (!st->inited) {
    fl_h1_init(&st->req, 0);
    fl_h1_init(&st->resp, 1);
    st->inited = 1;
  }
  return d == UP ? feed_up(c, st, data, n) : feed_down(c, st, data, n);
}

static void http_fini(void *state) {
  struct http_state *st = state;
  while (st->qlen > 0)
    pop(st);
  free(st->hold);
}

const struct fl_codec fl_codec_http = {
    .name = "http",
    .state_size = sizeof(struct http_state),
    .feed = http_feed,
    .fini = http_fini,
};
