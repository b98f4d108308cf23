/*
 * One WebSocket connection of an endpoint (see ws.c): a TCP stream on
 * libuv, the Upgrade handshake (ws_handshake.c), then frames through
 * wslay's event API. wslay pulls its input through recv_callback: libuv
 * pushes what it reads into `in`, and wslay_event_recv() drains it;
 * what wslay sends goes out with uv_try_write, the rest queued.
 *
 * Each attempt is a record (fl_ws_record_conn); an attempt that ends
 * before the stop is an unexpected close and, with reconnect, followed by
 * another after the backoff.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "ws_int.h"

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DONE };

/* A peer that reads nothing makes writes queue up: past this many bytes
 * queued, wslay is told to wait (its messages stay in its own queue). */
#define WRITE_QUEUE_MAX (1 << 20)
/* Unanswered messages remembered per connection for round-trip times
 * (a peer that answers nothing forgets the oldest first). */
#define PENDING_MAX 256

struct ws_conn {
  struct ws_ep *w;
  int slot, slow, attempt, state, stopped;
  long rec; /* its record, or -1 */
  uv_tcp_t tcp;
  int tcp_open; /* tcp initialised and not yet closed */
  uv_connect_t creq;
  uv_timer_t tick;  /* the handshake's deadline, then the next message */
  uv_timer_t retry; /* the reconnect's backoff, or a slow reader's pause */
  int handles;      /* of these three, not closed yet */
  int freeing;
  int again; /* an attempt waits for the last socket to close */
  char key[25];
  char *hs; /* the handshake answer so far */
  size_t hslen;
  wslay_event_context_ptr ctx;
  uint8_t *in; /* read, not yet taken by wslay */
  size_t inlen, inoff, incap;
  double pending[PENDING_MAX]; /* send times of unanswered messages */
  size_t phead, pcount;
  double backoff;
  double next_due; /* when the next message is due (seconds) */
  int peer_code;   /* the peer's close code, once its close frame came */
  uint8_t frame_op, nclose, close_hdr[2]; /* the close code, as it comes */
};

struct wreq {
  uv_write_t req;
  char data[];
};

static void conn_end(struct ws_conn *c, int code, int error);
static void conn_attempt(struct ws_conn *c);

static struct fl_ws_conn *rec(struct ws_conn *c) {
  return c->rec >= 0 ? &c->w->conns[c->rec] : NULL;
}

static void maybe_free(struct ws_conn *c) {
  if (!c->freeing || c->handles > 0 || c->tcp_open)
    return;
  struct glue *g = c->w->g;
  free(c->hs);
  free(c->in);
  free(c);
  /* Its two timers were counted on the glue (the tcp handles are counted
   * one by one as they close). */
  fl_glue_count_off(g);
  fl_glue_count_off(g);
}

static void on_timer_closed(uv_handle_t *h) {
  struct ws_conn *c = h->data;
  c->handles--;
  maybe_free(c);
}

static void on_tcp_closed(uv_handle_t *h) {
  struct ws_conn *c = h->data;
  struct glue *g = c->w->g;
  c->tcp_open = 0;
  /* Counted off first: c's timers keep the glue open until maybe_free. */
  fl_glue_count_off(g);
  if (c->again && !c->freeing && !c->stopped) {
    c->again = 0;
    conn_attempt(c);
  }
  maybe_free(c);
}

static int xfer_class(int status) {
  switch (status) {
  case UV_ECONNREFUSED:
    return FL_XFER_REFUSED;
  case UV_ECONNRESET:
  case UV_EPIPE:
  case UV_ECONNABORTED:
    return FL_XFER_RESET;
  case UV_ETIMEDOUT:
    return FL_XFER_TIMEOUT;
  default:
    return FL_XFER_OTHER;
  }
}

static void on_written(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a failed read too */
  free(req);
}

/* Sends data on the stream: what the kernel takes now, the rest queued.
 * 0, or a libuv error. */
static int conn_write(struct ws_conn *c, const void *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0)
    return n;
  if ((size_t)n == len)
    return 0;
  struct wreq *r = malloc(sizeof(*r) + len - (size_t)n);
  if (r == NULL)
    return UV_ENOMEM;
  memcpy(r->data, (const char *)data + n, len - (size_t)n);
  b = uv_buf_init(r->data, (unsigned)(len - (size_t)n));
  int rc = uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc != 0)
    free(r);
  return rc;
}

/* ---- wslay's callbacks ----------------------------------------------- */

static ssize_t on_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *arg) {
  struct ws_conn *c = arg;
  (void)flags;
  size_t have = c->inlen - c->inoff;
  if (have == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = have < len ? have : len;
  memcpy(buf, c->in + c->inoff, n);
  c->inoff += n;
  return (ssize_t)n;
}

static ssize_t on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *arg) {
  struct ws_conn *c = arg;
  (void)flags;
  if (c->tcp.write_queue_size > WRITE_QUEUE_MAX) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (conn_write(c, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int on_ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         void *arg) {
  (void)ctx;
  (void)arg;
  /* Masking keeps proxies from mistaking frames for HTTP; it needs no
   * cryptographic strength here. */
  static uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (uint8_t)x;
  }
  return 0;
}

/* Close codes wslay 1.1 takes for protocol errors (1012-1014, registered
 * after it) would never reach on_ws_msg: read off the frame itself. */
static void
on_ws_frame_start(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_start_arg *a,
                  void *user) {
  struct ws_conn *c = user;
  (void)ctx;
  c->frame_op = a->opcode;
  c->nclose = 0;
}

static void
on_ws_frame_chunk(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_chunk_arg *a,
                  void *user) {
  struct ws_conn *c = user;
  (void)ctx;
  for (size_t i = 0; c->frame_op == WSLAY_CONNECTION_CLOSE && c->nclose < 2 &&
                     i < a->data_length;
       i++)
    c->close_hdr[c->nclose++] = a->data[i];
  if (c->frame_op == WSLAY_CONNECTION_CLOSE && c->nclose == 2 &&
      c->peer_code == 0)
    c->peer_code = c->close_hdr[0] << 8 | c->close_hdr[1];
}

static void on_ws_msg(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg,
                      void *user) {
  struct ws_conn *c = user;
  (void)ctx;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    if (c->peer_code == 0)
      c->peer_code = arg->status_code != 0 ? arg->status_code : 1005;
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return; /* wslay answers pings itself */
  double rtt = -1;
  if (c->pcount > 0) {
    rtt = fl_ws_now(c->w) - c->pending[c->phead];
    c->phead = (c->phead + 1) % PENDING_MAX;
    c->pcount--;
  }
  fl_ws_record_msg(c->w, (size_t)c->rec, rtt);
}

/* Runs wslay over what was read, and sends what it queued; ends the
 * connection when the close handshake is over or the stream failed. */
static void conn_pump(struct ws_conn *c) {
  if (wslay_event_recv(c->ctx) != 0 || wslay_event_send(c->ctx) != 0) {
    conn_end(c, c->peer_code != 0 ? c->peer_code : 1006, FL_XFER_OTHER);
    return;
  }
  if (c->inoff == c->inlen)
    c->inoff = c->inlen = 0;
  if (c->peer_code != 0)
    conn_end(c, c->peer_code, 0);
}

/* ---- The connection's life ------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct ws_conn *c = h->data;
  (void)hint;
  /* Small to begin with: thousands of idle connections each hold one. */
  if (c->incap - c->inlen < 2048) {
    size_t cap = c->incap ? c->incap * 2 : 4096;
    uint8_t *in = realloc(c->in, cap);
    if (in == NULL) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    c->in = in;
    c->incap = cap;
  }
  *buf = uv_buf_init((char *)c->in + c->inlen, (unsigned)(c->incap - c->inlen));
}

static void on_tick(uv_timer_t *t);

/* The handshake's answer is whole: open, or ended with its status. */
static void conn_opened(struct ws_conn *c, size_t hlen, int status,
                        int accepted) {
  struct fl_ws_conn *r = rec(c);
  struct ws_ep *w = c->w;
  r->handshake = fl_ws_now(w) - r->start;
  r->status = status;
  if (!accepted) {
    conn_end(c, 0, status == 101 ? FL_XFER_OTHER : 0);
    return;
  }
  static const struct wslay_event_callbacks cbs = {
      on_ws_recv,        on_ws_send, on_ws_genmask, on_ws_frame_start,
      on_ws_frame_chunk, NULL,       on_ws_msg};
  if (wslay_event_context_client_init(&c->ctx, &cbs, c) != 0) {
    conn_end(c, 0, FL_XFER_OTHER);
    return;
  }
  c->state = C_OPEN;
  r->opened = 1;
  c->backoff = w->spec.reconnect;
  /* What followed the header is frames. */
  if (c->incap < c->hslen - hlen) {
    uint8_t *in = realloc(c->in, c->hslen - hlen);
    if (in == NULL) {
      conn_end(c, 0, FL_XFER_OTHER);
      return;
    }
    c->in = in;
    c->incap = c->hslen - hlen;
  }
  memcpy(c->in, c->hs + hlen, c->hslen - hlen);
  c->inlen = c->hslen - hlen;
  c->inoff = 0;
  uv_timer_stop(&c->tick);
  c->next_due = fl_ws_now(w);
  if (w->spec.message != NULL)
    uv_timer_start(&c->tick, on_tick, 0, 0);
  if (c->slow) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->retry, on_tick, (uint64_t)(w->spec.slow_for * 1000), 0);
  }
  if (c->inlen > 0)
    conn_pump(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct ws_conn *c = s->data;
  (void)buf;
  if (nread < 0) {
    int code = c->state == C_OPEN ? (c->peer_code ? c->peer_code : 1006) : 0;
    conn_end(c, code,
             nread == UV_EOF ? (c->state == C_OPEN ? 0 : FL_XFER_RESET)
                             : xfer_class((int)nread));
    return;
  }
  c->inlen += (size_t)nread;
  if (c->state == C_OPEN) {
    conn_pump(c);
    return;
  }
  /* The handshake's answer: kept apart until whole (in is reused). */
  char *hs = realloc(c->hs, c->hslen + (size_t)nread + 1);
  if (hs == NULL) {
    conn_end(c, 0, FL_XFER_OTHER);
    return;
  }
  c->hs = hs;
  memcpy(c->hs + c->hslen, c->in, (size_t)nread);
  c->hslen += (size_t)nread;
  c->inlen = 0;
  int status = 0, accepted = 0;
  int n = fl_ws_answer(c->hs, c->hslen, c->key, &status, &accepted);
  if (n < 0)
    conn_end(c, 0, FL_XFER_OTHER);
  else if (n > 0)
    conn_opened(c, (size_t)n, status, accepted);
}

static void on_connect(uv_connect_t *req, int status) {
  struct ws_conn *c = req->data;
  if (c->state != C_CONNECTING)
    return; /* ended meanwhile (timeout, stop): its close cancelled us */
  if (status < 0) {
    conn_end(c, 0, xfer_class(status));
    return;
  }
  char buf[16384];
  fl_ws_new_key(c->key);
  int n = fl_ws_request(buf, sizeof(buf), c->w->host, c->w->port, c->w->path,
                        c->key, c->w->headers);
  c->state = C_HANDSHAKE;
  if (n < 0 || conn_write(c, buf, (size_t)n) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_end(c, 0, FL_XFER_OTHER);
}

/* Sends the next message and sets the tick for the one after. */
static void send_message(struct ws_conn *c) {
  struct ws_ep *w = c->w;
  /* A peer that reads nothing: messages are not piled up without end. */
  char *text = wslay_event_get_queued_msg_count(c->ctx) < 1024
                   ? fl_ws_draw_message(w)
                   : NULL;
  if (text != NULL) {
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text,
                                strlen(text)};
    if (wslay_event_queue_msg(c->ctx, &m) == 0) {
      rec(c)->sent++;
      if (c->pcount == PENDING_MAX) { /* the oldest is forgotten */
        c->phead = (c->phead + 1) % PENDING_MAX;
        c->pcount--;
      }
      c->pending[(c->phead + c->pcount++) % PENDING_MAX] = fl_ws_now(w);
    }
    free(text);
  }
  /* Open loop: message k is due k / rate after the handshake, whatever
   * the timer's lateness; a late loop catches up at once. */
  c->next_due += 1 / w->spec.message_rate;
  double wait = c->next_due - fl_ws_now(w);
  uv_timer_start(&c->tick, on_tick, wait > 0 ? (uint64_t)(wait * 1000) : 0, 0);
  conn_pump(c);
}

/* tick: the handshake's deadline or the next message; retry: the end of
 * a backoff or of a slow reader's pause. */
static void on_tick(uv_timer_t *t) {
  struct ws_conn *c = t->data;
  if (t == &c->retry && c->state == C_OPEN) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    return;
  }
  if (t == &c->retry) {
    conn_attempt(c);
    return;
  }
  if (c->state == C_OPEN)
    send_message(c);
  else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE)
    conn_end(c, 0, FL_XFER_TIMEOUT);
}

/* The attempt is over: recorded, its socket closed, and with reconnect
 * the next one planned. code: the close code of an unexpected close (0
 * for none); error: its transport failure. */
static void conn_end(struct ws_conn *c, int code, int error) {
  struct fl_ws_conn *r = rec(c);
  int was = c->state;
  if (was == C_IDLE || was == C_DONE)
    return;
  if (r != NULL) {
    double now = fl_ws_now(c->w);
    /* One still connecting at the stop has no outcome: it stays "under
     * way" rather than count as a failed handshake. */
    if (r->handshake < 0 && !c->stopped)
      r->handshake = now - r->start;
    r->closed = now;
    r->close_code = c->stopped ? 0 : code;
    r->error = c->stopped ? 0 : error;
  }
  c->state = C_IDLE;
  uv_timer_stop(&c->tick);
  uv_timer_stop(&c->retry);
  if (c->ctx != NULL) {
    wslay_event_context_free(c->ctx);
    c->ctx = NULL;
  }
  free(c->hs);
  c->hs = NULL;
  c->hslen = c->inlen = c->inoff = 0;
  c->phead = c->pcount = 0;
  c->peer_code = 0;
  if (c->tcp_open)
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
  if (c->stopped || c->freeing || c->w->spec.reconnect <= 0) {
    c->state = C_DONE;
    return;
  }
  double wait = c->backoff;
  c->backoff =
      wait * 2 < c->w->spec.reconnect_max ? wait * 2 : c->w->spec.reconnect_max;
  uv_timer_start(&c->retry, on_tick, (uint64_t)(wait * 1000), 0);
}

/* A new attempt: a record, a socket, a connect. */
static void conn_attempt(struct ws_conn *c) {
  struct ws_ep *w = c->w;
  if (c->tcp_open) {
    c->again = 1; /* the last socket is still closing: on_tcp_closed */
    return;
  }
  c->rec = fl_ws_record_conn(w, c->slot, c->attempt++, c->slow);
  if (c->rec < 0)
    return;
  if (uv_tcp_init(w->g->loop, &c->tcp) != 0) {
    w->conns[c->rec].error = FL_XFER_OTHER;
    w->conns[c->rec].closed = w->conns[c->rec].start;
    w->conns[c->rec].handshake = 0;
    return;
  }
  c->tcp.data = c;
  c->tcp_open = 1;
  w->g->handles++;
  c->creq.data = c;
  c->state = C_CONNECTING;
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&w->addr,
                          on_connect);
  if (rc != 0) {
    conn_end(c, 0, xfer_class(rc));
    return;
  }
  uv_timer_start(&c->tick, on_tick, (uint64_t)(w->timeout * 1000), 0);
}

int fl_ws_conn_new(struct ws_ep *w, int slot, struct ws_conn **out) {
  struct ws_conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->w = w;
  c->slot = slot;
  c->rec = -1;
  c->backoff = w->spec.reconnect;
  int nslow = w->spec.slow_count > 0
                  ? w->spec.slow_count
                  : (int)(w->spec.slow_share * w->spec.connections + 0.999);
  c->slow = slot < nslow && w->spec.slow_for > 0;
  uv_timer_init(w->g->loop, &c->tick);
  uv_timer_init(w->g->loop, &c->retry);
  c->tick.data = c->retry.data = c;
  c->handles = 2;
  w->g->handles += 2;
  *out = c;
  conn_attempt(c);
  return 0;
}

void fl_ws_conn_stop(struct ws_conn *c) {
  c->stopped = 1;
  uv_timer_stop(&c->retry);
  if (c->state == C_OPEN) {
    /* A polite end: the close frame goes out before the socket closes
     * (uv_try_write takes it at once on a live connection). */
    wslay_event_queue_close(c->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    wslay_event_send(c->ctx);
  }
  conn_end(c, 0, 0);
}

void fl_ws_conn_close(struct ws_conn *c) {
  c->freeing = 1;
  c->stopped = 1;
  conn_end(c, 0, 0);
  uv_close((uv_handle_t *)&c->tick, on_timer_closed);
  uv_close((uv_handle_t *)&c->retry, on_timer_closed);
}
