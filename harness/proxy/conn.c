/*
 * One connection of the stream-fault proxy (see proxy_priv.h): its two
 * pipes, from reading one side to writing the other, and its ending and
 * closing. toxics.c says which faults act on each pipe.
 *
 * With no fault acting on a connection, a chunk read is written at once
 * with uv_try_write from one shared read buffer (the loop reads one stream
 * at a time), and only what the kernel did not take is copied. A fault
 * that holds bytes back (latency, bandwidth, slicer, stall) sends chunks
 * through the pipe's queue instead, each with the time it may leave.
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match.h"

/* What waits for one side (our queue plus libuv's write queue) before the
 * other side is no longer read, and when reading resumes. */
#define HIGH_WATER (256u * 1024u)
#define LOW_WATER (64u * 1024u)
/* How long an ending connection (reset_peer or limit_data reached) may
 * take to hand over the bytes before the cut, when the peer reads none. */
#define END_GRACE_MS 1000

/* ---- reading ----------------------------------------------------- */

static size_t waiting(const struct pipe *pp) {
  return pp->queued + uv_stream_get_write_queue_size(pp->dst);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct conn *c = h->data;
  (void)hint;
  *buf = uv_buf_init(c->p->buf, READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Reads src exactly while something may be forwarded and the other side
 * keeps up: connected, not ending, no EOF yet, not stalled, not full. */
static void update_reading(struct pipe *pp) {
  struct conn *c = pp->c;
  size_t w = waiting(pp);
  if (w > HIGH_WATER)
    pp->full = 1;
  else if (w < LOW_WATER)
    pp->full = 0;
  int want = c->connected && !c->closing && c->ending == END_NONE && !pp->eof &&
             !pp->fx.stall && !pp->full;
  if (want == pp->reading)
    return;
  int rc =
      want ? uv_read_start(pp->src, on_alloc, on_read) : uv_read_stop(pp->src);
  if (rc != 0)
    fl_conn_close(c, END_RESET);
  else
    pp->reading = want;
}

/* ---- writing ----------------------------------------------------- */

static void conn_check_end(struct conn *c);

static void on_write(uv_write_t *req, int status) {
  struct chunk *ch = req->data;
  struct pipe *pp = ch->pp;
  free(ch);
  if (pp->c->closing)
    return;
  if (status < 0) {
    fl_conn_close(pp->c, END_RESET);
    return;
  }
  fl_conn_pump(pp);
}

static struct chunk *chunk_new(struct pipe *pp, const char *data, size_t n) {
  struct chunk *ch = malloc(sizeof(*ch) + n);
  if (ch == NULL)
    return NULL;
  memset(ch, 0, sizeof(*ch));
  ch->pp = pp;
  ch->len = n;
  memcpy(ch->data, data, n);
  return ch;
}

/* Hands a chunk (from its offset) to libuv, which owns it until
 * on_write. Returns 0 or closes the connection. */
static int write_chunk(struct pipe *pp, struct chunk *ch) {
  uv_buf_t b = uv_buf_init(ch->data + ch->off, (unsigned)(ch->len - ch->off));
  ch->req.data = ch;
  int rc = uv_write(&ch->req, pp->dst, &b, 1, on_write);
  if (rc != 0) {
    free(ch);
    fl_conn_close(pp->c, END_RESET);
  }
  return rc;
}

/* The idle path: write now, copy only what the kernel did not take. */
static void write_now(struct pipe *pp, const char *data, size_t n) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
  int w = uv_try_write(pp->dst, &b, 1);
  if (w == (int)n)
    return;
  if (w < 0 && w != UV_EAGAIN) {
    fl_conn_close(pp->c, END_RESET);
    return;
  }
  size_t done = w > 0 ? (size_t)w : 0;
  struct chunk *ch = chunk_new(pp, data + done, n - done);
  if (ch == NULL) {
    fl_conn_close(pp->c, END_RESET);
    return;
  }
  write_chunk(pp, ch);
}

/* A draw in [-jitter, +jitter] for the pipe's next chunk: reproducible
 * from the seed, the connection and the chunk's number. */
static int64_t jitter_draw(const struct pipe *pp) {
  const struct conn *c = pp->c;
  uint64_t span = pp->fx.jitter_ns / MS;
  uint64_t x = fl_mix64(c->p->seed ^ (c->num << 24) ^ (pp->chunks << 1) ^
                        (uint64_t)(pp == &c->pipes[DOWN]));
  return ((int64_t)(x % (2 * span + 1)) - (int64_t)span) * (int64_t)MS;
}

/* The held-back path: queue the chunk with the time it may leave. */
static void enqueue(struct pipe *pp, const char *data, size_t n, uint64_t now) {
  struct chunk *ch = chunk_new(pp, data, n);
  if (ch == NULL) {
    fl_conn_close(pp->c, END_RESET);
    return;
  }
  int64_t delay = (int64_t)pp->fx.latency_ns;
  if (pp->fx.jitter_ns > 0)
    delay += jitter_draw(pp);
  ch->due_ns = now + (uint64_t)(delay > 0 ? delay : 0);
  if (ch->due_ns < pp->hold_ns)
    ch->due_ns = pp->hold_ns;
  if (ch->due_ns < pp->last_due_ns) /* jitter never reorders */
    ch->due_ns = pp->last_due_ns;
  pp->last_due_ns = ch->due_ns;
  if (pp->tail != NULL)
    pp->tail->next = ch;
  else
    pp->head = ch;
  pp->tail = ch;
  pp->queued += n;
  fl_toxics_count_bytes(pp->c->p, pp->fx.delay_mask, n);
}

static void on_pipe_timer(uv_timer_t *t) { fl_conn_pump(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct pipe *pp = req->data;
  struct conn *c = pp->c;
  if (c->closing)
    return;
  if (status < 0) {
    fl_conn_close(c, END_RESET);
    return;
  }
  pp->shut_done = 1;
  if (c->pipes[UP].shut_done && c->pipes[DOWN].shut_done)
    fl_conn_close(c, END_CLOSE);
}

/* Passes the EOF on once everything before it left (slow_close: late). */
static void pass_eof(struct pipe *pp, uint64_t now) {
  if (!pp->eof || pp->shut || pp->head != NULL)
    return;
  if (pp->eof_at_ns == 0)
    pp->eof_at_ns = now + pp->fx.slow_close_ns;
  if (pp->eof_at_ns > now) {
    arm(&pp->timer, on_pipe_timer, pp->eof_at_ns, now);
    return;
  }
  pp->shut = 1;
  pp->shutdown_req.data = pp;
  if (uv_shutdown(&pp->shutdown_req, pp->dst, on_shutdown) != 0)
    fl_conn_close(pp->c, END_RESET);
}

/* How much of the head chunk may leave now; sets *gap to the pause due
 * after it (bandwidth, slicer). */
static size_t piece_size(const struct pipe *pp, const struct chunk *ch,
                         uint64_t *gap) {
  size_t n = ch->len - ch->off;
  *gap = 0;
  if (pp->fx.slice_size > 0 && n > pp->fx.slice_size)
    n = pp->fx.slice_size;
  if (pp->fx.rate > 0) {
    /* Pieces of about 20 ms of the rate keep the pace smooth. */
    uint64_t most = pp->fx.rate / 50 > 0 ? pp->fx.rate / 50 : 1;
    if (n > most)
      n = (size_t)most;
    *gap = (uint64_t)n * 1000000000ull / pp->fx.rate;
  }
  if (pp->fx.slice_size > 0 && pp->fx.slice_ns > *gap)
    *gap = pp->fx.slice_ns;
  return n;
}

/* Moves queued chunks whose time has come to libuv, as fast as the
 * faults and the other side allow, then passes on an EOF. */
void fl_conn_pump(struct pipe *pp) {
  struct conn *c = pp->c;
  if (c->closing)
    return;
  uint64_t now = now_ns();
  while (pp->head != NULL && !pp->fx.stall) {
    struct chunk *ch = pp->head;
    if (uv_stream_get_write_queue_size(pp->dst) > HIGH_WATER)
      break; /* on_write pumps again */
    uint64_t at = ch->due_ns > pp->next_ns ? ch->due_ns : pp->next_ns;
    if (at > now) {
      arm(&pp->timer, on_pipe_timer, at, now);
      break;
    }
    uint64_t gap;
    size_t n = piece_size(pp, ch, &gap);
    struct chunk *out = ch;
    if (n < ch->len - ch->off) {
      out = chunk_new(pp, ch->data + ch->off, n);
      ch->off += n;
    } else {
      pp->head = ch->next;
      if (pp->head == NULL)
        pp->tail = NULL;
    }
    pp->queued -= n;
    if (out == NULL || write_chunk(pp, out) != 0) {
      if (out == NULL)
        fl_conn_close(c, END_RESET);
      return;
    }
    if (gap > 0) {
      /* Keep the pace from the planned time when the timer was a little
       * late, so a long transfer does not drift below the rate. */
      uint64_t base = now < pp->next_ns + 50 * MS ? pp->next_ns : now;
      pp->next_ns = base + gap;
    }
  }
  pass_eof(pp, now);
  update_reading(pp);
  if (c->ending != END_NONE)
    conn_check_end(c);
}

/* ---- endings ----------------------------------------------------- */

/* Stops reading and ends the connection once what was read before the
 * cut has been written (END_GRACE_MS at most). */
void fl_conn_end(struct conn *c, enum end how) {
  if (c->closing || c->ending != END_NONE)
    return;
  c->ending = how;
  for (int d = 0; d < 2; d++)
    update_reading(&c->pipes[d]);
  uv_timer_start(&c->timer, fl_toxics_on_timer, END_GRACE_MS, 0);
  conn_check_end(c);
}

static void conn_check_end(struct conn *c) {
  if (c->closing)
    return;
  for (int d = 0; d < 2; d++) {
    struct pipe *pp = &c->pipes[d];
    if (pp->head != NULL && !pp->fx.stall)
      return;
    if (uv_stream_get_write_queue_size(pp->dst) > 0)
      return;
  }
  fl_conn_close(c, c->ending);
}

/* ---- the two sides ----------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  fl_proxy_t *p = c->p;
  int d = s == (uv_stream_t *)&c->client ? UP : DOWN;
  struct pipe *pp = &c->pipes[d];
  if (fl_control_generation(p->ctl) != p->gen) {
    fl_proxy_refresh(p);
    if (c->closing)
      return;
  }
  if (nread == UV_EOF) {
    pp->eof = 1;
    fl_conn_pump(pp);
    return;
  }
  if (nread < 0) {
    /* A reset from one side is passed on as a reset to the other. */
    fl_conn_close(c, END_RESET);
    return;
  }
  if (nread == 0 || c->ending != END_NONE)
    return;
  size_t n = (size_t)nread;
  enum end end = END_NONE;
  if (c->nhits > 0)
    n = fl_toxics_limit_bytes(c, d, n, &end);
  pp->passed += n;
  pp->chunks++;
  if (n > 0 && p->codec != NULL) {
    int rc = p->codec->feed(c, c->codec_state, d, buf->base, n);
    if (rc != 0)
      fl_conn_close(c, END_RESET);
  } else if (n > 0) {
    fl_conn_send(c, d, buf->base, n);
  }
  if (c->closing)
    return;
  if (end != END_NONE)
    fl_conn_end(c, end);
}

void fl_conn_send(struct conn *c, int d, const char *data, size_t n) {
  struct pipe *pp = &c->pipes[d];
  if (c->closing || n == 0)
    return;
  if (pp->head == NULL && pp->fx.delay_mask == 0 && !pp->fx.stall &&
      (pp->hold_ns == 0 || pp->hold_ns <= now_ns())) {
    write_now(pp, data, n);
    if (!c->closing)
      update_reading(pp);
  } else {
    enqueue(pp, data, n, now_ns());
    if (!c->closing)
      fl_conn_pump(pp);
  }
}

void fl_conn_hold(struct conn *c, int d, uint64_t until_ns) {
  struct pipe *pp = &c->pipes[d];
  if (until_ns > pp->hold_ns)
    pp->hold_ns = until_ns;
}

static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  if (c->closing)
    return;
  if (status < 0) {
    /* The dependency refused: the client learns it as a reset, the
     * nearest a proxy that already accepted can come to a refusal. */
    fl_conn_close(c, END_RESET);
    return;
  }
  c->connected = 1;
  for (int d = 0; d < 2; d++)
    fl_conn_pump(&c->pipes[d]);
}

/* ---- connection life --------------------------------------------- */

static void conn_free_queues(struct conn *c) {
  for (int d = 0; d < 2; d++) {
    struct pipe *pp = &c->pipes[d];
    while (pp->head != NULL) {
      struct chunk *ch = pp->head;
      pp->head = ch->next;
      free(ch);
    }
    pp->tail = NULL;
    pp->queued = 0;
  }
}

static void on_conn_handle_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  if (--c->handles > 0)
    return;
  fl_proxy_t *p = c->p;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    p->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  if (c->codec_state != NULL && p->codec->fini != NULL)
    p->codec->fini(c->codec_state);
  free(c->codec_state);
  free(c->hits);
  free(c);
  fl_proxy_maybe_free(p);
}

/* Closing with SO_LINGER 0 makes the kernel send an RST. A plain close
 * first drops what the peer sent and we never read: closing a socket with
 * unread input also sends an RST, and the peer would see "connection
 * reset" or "server closed" by the luck of a few microseconds. */
static void close_handle(uv_handle_t *h, enum end how) {
  uv_os_fd_t fd;
  if (h->type == UV_TCP && uv_fileno(h, &fd) == 0) {
    if (how == END_RESET) {
      struct linger l = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    } else {
      char sink[4096];
      for (int i = 0; i < 64; i++)
        if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
          break;
    }
  }
  uv_close(h, on_conn_handle_closed);
}

/* Closes both sides (with resets when how is END_RESET), dropping what
 * is still queued; libuv cancels pending writes before the handles'
 * close callbacks, and the last of those frees the connection. */
void fl_conn_close(struct conn *c, enum end how) {
  if (c->closing)
    return;
  c->closing = 1;
  conn_free_queues(c);
  close_handle((uv_handle_t *)&c->client, how);
  close_handle((uv_handle_t *)&c->server, how);
  for (int d = 0; d < 2; d++) {
    c->pipes[d].timer.data = c; /* what on_conn_handle_closed expects */
    close_handle((uv_handle_t *)&c->pipes[d].timer, how);
  }
  close_handle((uv_handle_t *)&c->timer, how);
}

void fl_conn_start(fl_proxy_t *p, int fd) {
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd);
    return;
  }
  if (p->codec != NULL &&
      (c->codec_state = calloc(1, p->codec->state_size)) == NULL) {
    free(c);
    close(fd);
    return;
  }
  c->p = p;
  c->num = p->accepted++;
  c->fresh = 1;
  uv_tcp_init(p->loop, &c->client);
  uv_tcp_init(p->loop, &c->server);
  uv_timer_init(p->loop, &c->timer);
  c->handles = 5;
  c->client.data = c->server.data = c->timer.data = c;
  for (int d = 0; d < 2; d++) {
    struct pipe *pp = &c->pipes[d];
    pp->c = c;
    uv_timer_init(p->loop, &pp->timer);
    pp->timer.data = pp;
  }
  c->pipes[UP].src = c->pipes[DOWN].dst = (uv_stream_t *)&c->client;
  c->pipes[UP].dst = c->pipes[DOWN].src = (uv_stream_t *)&c->server;
  c->next = p->conns;
  if (p->conns != NULL)
    p->conns->prev = c;
  p->conns = c;
  if (uv_tcp_open(&c->client, fd) != 0) {
    close(fd); /* not the handle's: closing it leaves the fd alone */
    fl_conn_close(c, END_CLOSE);
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  uv_tcp_nodelay(&c->server, 1);
  fl_toxics_apply(c, now_ns());
  c->fresh = 0;
  if (c->closing)
    return;
  c->connect_req.data = c;
  if (uv_tcp_connect(&c->connect_req, &c->server,
                     (const struct sockaddr *)&p->upstream, on_connect) != 0)
    fl_conn_close(c, END_RESET);
}
