/*
 * The stream-fault proxy (see proxy.h). One listener per dependency; each
 * accepted connection gets a connection to the dependency and two pipes:
 * UP reads the client and writes the dependency, DOWN the reverse.
 *
 * With no fault acting on a connection, a chunk read is written at once
 * with uv_try_write from one shared read buffer (the loop reads one stream
 * at a time), and only what the kernel did not take is copied. A fault
 * that holds bytes back (latency, bandwidth, slicer, stall) sends chunks
 * through the pipe's queue instead, each with the time it may leave.
 *
 * Rules are decided per connection: when a proxy fault appears (or a
 * connection is accepted while one is on), each connection counts as
 * matched once and is affected or not from after=, toxicity= (hashed from
 * the segment's seed, the rule and the connection's number: reproducible)
 * and times=. A rule cleared stops acting at once.
 */
#define _GNU_SOURCE
#include "proxy_priv.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultspec.h"
#include "match.h"

/* What waits for one side (our queue plus libuv's write queue) before the
 * other side is no longer read, and when reading resumes. */
#define HIGH_WATER (256u * 1024u)
#define LOW_WATER (64u * 1024u)
#define TICK_MS 5 /* how often an idle proxy looks at the generation */
/* How long an ending connection (reset_peer or limit_data reached) may
 * take to hand over the bytes before the cut, when the peer reads none. */
#define END_GRACE_MS 1000

static void conn_close(struct conn *c, enum end how);
static void pump(struct pipe *pp);
static void conn_apply(struct conn *c, uint64_t now);
static void refresh(fl_proxy_t *p);

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- counters ---------------------------------------------------- */

/* Counts one injection of the rule in `slot` (bounded by times=) and
 * records it in the event ring; 0 when times= ran out. */
static int inject(fl_proxy_t *p, int slot, int err) {
  const struct prule *r = &p->rules[slot];
  if (!fl_control_take(p->ctl, slot, r->id, r->times))
    return 0;
  fl_control_record(p->ctl, r->id, FL_OP_PROXY, err);
  return 1;
}

static void count_bytes(fl_proxy_t *p, uint64_t mask, size_t n) {
  for (int s = 0; mask != 0; s++, mask >>= 1)
    if (mask & 1u)
      fl_control_count(p->ctl, s, p->rules[s].id, FL_COUNT_BYTES, n);
}

/* ---- effects ----------------------------------------------------- */

static const struct prule *hit_rule(const struct conn *c, const struct hit *h) {
  return &c->p->rules[h->slot];
}

/* Merges the connection's hits into per-direction effects; faults of one
 * kind add up (latency) or the strictest wins (bandwidth, slicer). */
static void merge_effects(struct conn *c) {
  for (int d = 0; d < 2; d++)
    memset(&c->pipes[d].fx, 0, sizeof(c->pipes[d].fx));
  for (int i = 0; i < c->nhits; i++) {
    const struct prule *r = hit_rule(c, &c->hits[i]);
    for (int d = 0; d < 2; d++) {
      struct effects *fx = &c->pipes[d].fx;
      if (!(r->dir & (1u << d)))
        continue;
      uint64_t bit = UINT64_C(1) << c->hits[i].slot;
      switch (r->action) {
      case FL_ACT_LATENCY:
        fx->latency_ns += r->ms * MS;
        fx->jitter_ns += r->jitter * MS;
        fx->delay_mask |= bit;
        break;
      case FL_ACT_BANDWIDTH:
        if (fx->rate == 0 || r->rate < fx->rate)
          fx->rate = r->rate;
        fx->delay_mask |= bit;
        break;
      case FL_ACT_SLICER:
        if (fx->slice_size == 0 || r->size < fx->slice_size)
          fx->slice_size = r->size;
        if (r->ms * MS > fx->slice_ns)
          fx->slice_ns = r->ms * MS;
        fx->delay_mask |= bit;
        break;
      case FL_ACT_STALL:
        fx->stall = 1;
        break;
      case FL_ACT_SLOW_CLOSE:
        if (r->ms * MS > fx->slow_close_ns)
          fx->slow_close_ns = r->ms * MS;
        break;
      }
    }
  }
}

/* The earliest time-based event among the hits (reset_peer ms=, stall
 * ms=), or 0. */
static uint64_t next_deadline(const struct conn *c) {
  uint64_t at = 0;
  for (int i = 0; i < c->nhits; i++) {
    const struct hit *h = &c->hits[i];
    const struct prule *r = hit_rule(c, h);
    uint64_t t = 0;
    if (h->spent)
      continue;
    if (r->action == FL_ACT_RESET_PEER && (r->has_ms || r->bytes == 0))
      t = h->since_ns + r->ms * MS;
    else if (r->action == FL_ACT_STALL && r->ms > 0)
      t = h->since_ns + r->ms * MS;
    if (t != 0 && (at == 0 || t < at))
      at = t;
  }
  return at;
}

static void arm(uv_timer_t *t, uv_timer_cb cb, uint64_t at, uint64_t now) {
  uint64_t ms = at > now ? (at - now + MS - 1) / MS : 0;
  uv_timer_start(t, cb, ms, 0);
}

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
    conn_close(c, END_RESET);
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
    conn_close(pp->c, END_RESET);
    return;
  }
  pump(pp);
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
    conn_close(pp->c, END_RESET);
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
    conn_close(pp->c, END_RESET);
    return;
  }
  size_t done = w > 0 ? (size_t)w : 0;
  struct chunk *ch = chunk_new(pp, data + done, n - done);
  if (ch == NULL) {
    conn_close(pp->c, END_RESET);
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
    conn_close(pp->c, END_RESET);
    return;
  }
  int64_t delay = (int64_t)pp->fx.latency_ns;
  if (pp->fx.jitter_ns > 0)
    delay += jitter_draw(pp);
  ch->due_ns = now + (uint64_t)(delay > 0 ? delay : 0);
  if (ch->due_ns < pp->last_due_ns) /* jitter never reorders */
    ch->due_ns = pp->last_due_ns;
  pp->last_due_ns = ch->due_ns;
  if (pp->tail != NULL)
    pp->tail->next = ch;
  else
    pp->head = ch;
  pp->tail = ch;
  pp->queued += n;
  count_bytes(pp->c->p, pp->fx.delay_mask, n);
}

static void on_pipe_timer(uv_timer_t *t) { pump(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct pipe *pp = req->data;
  struct conn *c = pp->c;
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c, END_RESET);
    return;
  }
  pp->shut_done = 1;
  if (c->pipes[UP].shut_done && c->pipes[DOWN].shut_done)
    conn_close(c, END_CLOSE);
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
    conn_close(pp->c, END_RESET);
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
static void pump(struct pipe *pp) {
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
        conn_close(c, END_RESET);
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

/* ---- limits and endings ------------------------------------------ */

static void on_conn_timer(uv_timer_t *t);

/* The bytes the hit's rule counts (its directions, since it began). */
static uint64_t hit_bytes(const struct conn *c, const struct hit *h) {
  const struct prule *r = hit_rule(c, h);
  uint64_t n = 0;
  for (int d = 0; d < 2; d++)
    if (r->dir & (1u << d))
      n += c->pipes[d].passed - h->base[d];
  return n;
}

/* Stops reading and ends the connection once what was read before the
 * cut has been written (END_GRACE_MS at most). */
static void conn_end(struct conn *c, enum end how) {
  if (c->closing || c->ending != END_NONE)
    return;
  c->ending = how;
  for (int d = 0; d < 2; d++)
    update_reading(&c->pipes[d]);
  uv_timer_start(&c->timer, on_conn_timer, END_GRACE_MS, 0);
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
  conn_close(c, c->ending);
}

/* How many of n bytes read in direction d may pass before a reset_peer
 * or limit_data count is reached; *end says what follows the cut. */
static size_t limit_bytes(struct conn *c, int d, size_t n, enum end *end) {
  *end = END_NONE;
  for (int i = 0; i < c->nhits; i++) {
    struct hit *h = &c->hits[i];
    const struct prule *r = hit_rule(c, h);
    if (h->spent || r->bytes == 0 || !(r->dir & (1u << d)) ||
        (r->action != FL_ACT_RESET_PEER && r->action != FL_ACT_LIMIT_DATA))
      continue;
    uint64_t used = hit_bytes(c, h);
    uint64_t left = r->bytes > used ? r->bytes - used : 0;
    if (left > n)
      continue;
    h->spent = 1;
    int reset = r->action == FL_ACT_RESET_PEER;
    if (!inject(c->p, h->slot, reset ? ECONNRESET : 0))
      continue; /* times= ran out: this connection is spared */
    n = (size_t)left;
    if (*end != END_RESET)
      *end = reset ? END_RESET : END_CLOSE;
  }
  return n;
}

/* Time-based faults: reset_peer ms= and stall ms=. */
static void on_conn_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  if (c->closing)
    return;
  if (c->ending != END_NONE) { /* the grace ran out */
    conn_close(c, c->ending);
    return;
  }
  uint64_t now = now_ns();
  enum end how = END_NONE;
  for (int i = 0; i < c->nhits; i++) {
    struct hit *h = &c->hits[i];
    const struct prule *r = hit_rule(c, h);
    int due_reset = r->action == FL_ACT_RESET_PEER &&
                    (r->has_ms || r->bytes == 0) &&
                    h->since_ns + r->ms * MS <= now;
    int due_stall = r->action == FL_ACT_STALL && r->ms > 0 &&
                    h->since_ns + r->ms * MS <= now;
    if (h->spent || !(due_reset || due_stall))
      continue;
    h->spent = 1;
    if (due_reset && inject(c->p, h->slot, ECONNRESET))
      how = END_RESET;
    else if (due_stall && how == END_NONE)
      how = END_CLOSE;
  }
  if (how != END_NONE) {
    conn_close(c, how);
    return;
  }
  uint64_t at = next_deadline(c);
  if (at != 0)
    arm(&c->timer, on_conn_timer, at, now);
}

/* ---- the two sides ----------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  fl_proxy_t *p = c->p;
  int d = s == (uv_stream_t *)&c->client ? UP : DOWN;
  struct pipe *pp = &c->pipes[d];
  if (fl_control_generation(p->ctl) != p->gen) {
    refresh(p);
    if (c->closing)
      return;
  }
  if (nread == UV_EOF) {
    pp->eof = 1;
    pump(pp);
    return;
  }
  if (nread < 0) {
    /* A reset from one side is passed on as a reset to the other. */
    conn_close(c, END_RESET);
    return;
  }
  if (nread == 0 || c->ending != END_NONE)
    return;
  size_t n = (size_t)nread;
  enum end end = END_NONE;
  if (c->nhits > 0)
    n = limit_bytes(c, d, n, &end);
  pp->passed += n;
  pp->chunks++;
  if (n > 0 && pp->head == NULL && pp->fx.delay_mask == 0 && !pp->fx.stall) {
    write_now(pp, buf->base, n);
    if (!c->closing)
      update_reading(pp);
  } else if (n > 0) {
    enqueue(pp, buf->base, n, now_ns());
    if (!c->closing)
      pump(pp);
  }
  if (c->closing)
    return;
  if (end != END_NONE)
    conn_end(c, end);
}

static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  if (c->closing)
    return;
  if (status < 0) {
    /* The dependency refused: the client learns it as a reset, the
     * nearest a proxy that already accepted can come to a refusal. */
    conn_close(c, END_RESET);
    return;
  }
  c->connected = 1;
  for (int d = 0; d < 2; d++)
    pump(&c->pipes[d]);
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

static void proxy_maybe_free(fl_proxy_t *p) {
  if (p->closing && p->handles == 0 && p->conns == NULL)
    free(p);
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
  free(c->hits);
  free(c);
  proxy_maybe_free(p);
}

/* Closing with SO_LINGER 0 makes the kernel send an RST. */
static void close_handle(uv_handle_t *h, enum end how) {
  uv_os_fd_t fd;
  if (how == END_RESET && h->type == UV_TCP && uv_fileno(h, &fd) == 0) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  uv_close(h, on_conn_handle_closed);
}

/* Closes both sides (with resets when how is END_RESET), dropping what
 * is still queued; libuv cancels pending writes before the handles'
 * close callbacks, and the last of those frees the connection. */
static void conn_close(struct conn *c, enum end how) {
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

static int add_hit(struct conn *c, int slot, uint64_t now) {
  if (c->nhits == c->cap) {
    int cap = c->cap ? c->cap * 2 : 4;
    struct hit *h = realloc(c->hits, (size_t)cap * sizeof(*h));
    if (h == NULL)
      return -ENOMEM;
    c->hits = h;
    c->cap = cap;
  }
  struct hit *h = &c->hits[c->nhits++];
  memset(h, 0, sizeof(*h));
  h->slot = slot;
  h->since_ns = now;
  for (int d = 0; d < 2; d++)
    h->base[d] = c->pipes[d].passed;
  return 0;
}

/* Is the connection affected by the rule in `slot`? Counts it matched,
 * then after=, toxicity= and (for faults that act at once) times=. */
static int decide(struct conn *c, int slot) {
  fl_proxy_t *p = c->p;
  const struct prule *r = &p->rules[slot];
  uint64_t n = fl_control_count(p->ctl, slot, r->id, FL_COUNT_MATCHED, 1);
  if (n < r->after)
    return 0;
  if (r->threshold < (UINT64_C(1) << 32)) {
    uint64_t x = fl_mix64(p->seed ^ ((uint64_t)r->id << 40) ^ c->num);
    if ((x >> 32) >= r->threshold)
      return 0;
  }
  /* reset_peer and limit_data count when they fire. */
  if (r->action == FL_ACT_RESET_PEER || r->action == FL_ACT_LIMIT_DATA)
    return 1;
  return inject(p, slot, r->action == FL_ACT_DOWN ? ECONNREFUSED : 0);
}

/* Decides the rules this connection has not seen yet, then applies what
 * acts on it: merged effects, reading, pumping, deadlines. */
static void conn_apply(struct conn *c, uint64_t now) {
  fl_proxy_t *p = c->p;
  uint64_t todo = p->active & ~c->decided;
  int down = 0;
  for (int s = 0; todo != 0; s++, todo >>= 1) {
    if (!(todo & 1u))
      continue;
    c->decided |= UINT64_C(1) << s;
    if (!decide(c, s))
      continue;
    if (p->rules[s].action == FL_ACT_DOWN) {
      down = 1;
      continue;
    }
    if (add_hit(c, s, now) != 0) {
      conn_close(c, END_RESET);
      return;
    }
  }
  if (down) {
    /* A new connection is refused as nearly as an accepted one can be;
     * an established one is closed, as by a server going away. */
    conn_close(c, c->fresh ? END_RESET : END_CLOSE);
    return;
  }
  merge_effects(c);
  uint64_t at = next_deadline(c);
  if (c->ending == END_NONE && at != 0 && at <= now) {
    /* Due already (reset_peer at once): before any more bytes pass. */
    on_conn_timer(&c->timer);
    if (c->closing)
      return;
    at = next_deadline(c);
  }
  if (c->ending == END_NONE) {
    if (at != 0)
      arm(&c->timer, on_conn_timer, at, now);
    else
      uv_timer_stop(&c->timer);
  }
  for (int d = 0; d < 2 && !c->closing; d++)
    pump(&c->pipes[d]);
}

/* Forgets the rules of the slots in `mask` (cleared or replaced). */
static void conn_forget(struct conn *c, uint64_t mask) {
  c->decided &= ~mask;
  int k = 0;
  for (int i = 0; i < c->nhits; i++)
    if (!(mask & (UINT64_C(1) << c->hits[i].slot)))
      c->hits[k++] = c->hits[i];
  c->nhits = k;
}

static void conn_start(fl_proxy_t *p, int fd) {
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
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
    conn_close(c, END_CLOSE);
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  uv_tcp_nodelay(&c->server, 1);
  conn_apply(c, now_ns());
  c->fresh = 0;
  if (c->closing)
    return;
  c->connect_req.data = c;
  if (uv_tcp_connect(&c->connect_req, &c->server,
                     (const struct sockaddr *)&p->upstream, on_connect) != 0)
    conn_close(c, END_RESET);
}

/* ---- the listener ------------------------------------------------ */

static void on_listen_ready(uv_poll_t *h, int status, int events) {
  fl_proxy_t *p = h->data;
  (void)events;
  if (status < 0 || p->closing || !p->listening)
    return;
  if (fl_control_generation(p->ctl) != p->gen) {
    refresh(p);
    if (!p->listening)
      return;
  }
  /* A bounded batch per wake-up, so a flood cannot starve the rest. */
  for (int i = 0; i < 64; i++) {
    int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_start(p, fd);
      continue;
    }
    if (errno == ECONNABORTED || errno == EINTR)
      continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      /* Out of descriptors: wait for the tick rather than spin. */
      uv_poll_stop(&p->poll);
      p->accept_paused = 1;
    }
    break;
  }
}

/* Is every connection refused (down without toxicity, after or times)?
 * Then the listener stops listening, so connects get ECONNREFUSED. */
static int down_for_all(const fl_proxy_t *p) {
  for (int s = 0; s < FL_MAX_RULES; s++) {
    const struct prule *r = &p->rules[s];
    if ((p->active & (UINT64_C(1) << s)) && r->action == FL_ACT_DOWN &&
        r->threshold >= (UINT64_C(1) << 32) && r->after == 0 && r->times == 0)
      return 1;
  }
  return 0;
}

/* Stops or resumes listening. shutdown(SHUT_RD) on a listening socket
 * takes it out of LISTEN but keeps its explicit bind, so the port stays
 * ours and listen() brings it back; connects meanwhile are refused. */
static void update_listener(fl_proxy_t *p, uint64_t newly_active) {
  int down = down_for_all(p);
  if (down && p->listening) {
    uv_poll_stop(&p->poll);
    shutdown(p->fd, SHUT_RD);
    p->listening = 0;
  } else if (!down && !p->listening) {
    if (listen(p->fd, SOMAXCONN) != 0)
      return; /* the tick tries again */
    p->listening = 1;
    p->accept_paused = 0;
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  }
  /* A down rule that just appeared counts the outage once, even with no
   * connection to close. */
  for (int s = 0; down && newly_active != 0 && s < FL_MAX_RULES; s++)
    if ((newly_active & (UINT64_C(1) << s)) &&
        p->rules[s].action == FL_ACT_DOWN)
      inject(p, s, ECONNREFUSED);
}

static int aimed_at_us(const fl_proxy_t *p, const struct fl_rule *r) {
  if (!FL_ACT_IS_PROXY(r->action) || r->target != FL_TGT_INET)
    return 0;
  for (int k = 0; k < r->naddrs && k < FL_MAX_ADDRS; k++)
    if (fl_addr_match(&r->addrs[k], &p->up_addr))
      return 1;
  return 0;
}

/* Re-reads the rules after the generation moved: slots whose rule
 * changed are forgotten by every connection and decided afresh. */
static void refresh(fl_proxy_t *p) {
  if (p->closing)
    return;
  p->gen = fl_control_generation(p->ctl); /* before reading: no change lost */
  uint64_t changed = 0, active = 0;
  for (int s = 0; s < FL_MAX_RULES; s++) {
    struct fl_rule_view v;
    struct prule *pr = &p->rules[s];
    uint32_t id = 0;
    if (fl_control_slot(p->ctl, s, &v) && aimed_at_us(p, &v.rule))
      id = v.rule.id;
    if (id != 0)
      active |= UINT64_C(1) << s;
    if (id == pr->id)
      continue;
    changed |= UINT64_C(1) << s;
    memset(pr, 0, sizeof(*pr));
    if (id == 0)
      continue;
    const struct fl_rule *r = &v.rule;
    *pr = (struct prule){.id = id,
                         .action = r->action,
                         .dir = r->toxic.dir ? r->toxic.dir : FL_DIR_BOTH,
                         .has_ms = r->toxic.has_ms,
                         .ms = r->ms,
                         .jitter = r->toxic.jitter,
                         .size = r->toxic.size,
                         .rate = r->toxic.rate,
                         .bytes = r->toxic.bytes,
                         .threshold = r->p_threshold,
                         .after = r->after,
                         .times = r->times};
  }
  p->active = active;
  if (changed == 0)
    return;
  update_listener(p, changed & active);
  uint64_t now = now_ns();
  for (struct conn *c = p->conns, *next; c != NULL; c = next) {
    next = c->next;
    if (c->closing)
      continue;
    conn_forget(c, changed);
    conn_apply(c, now);
  }
}

static void on_tick(uv_timer_t *t) {
  fl_proxy_t *p = t->data;
  if (fl_control_generation(p->ctl) != p->gen)
    refresh(p);
  if (!p->listening && !down_for_all(p))
    update_listener(p, 0); /* listen() failed before: again */
  if (p->accept_paused && p->listening) {
    p->accept_paused = 0;
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  }
}

/* A loopback socket bound to a port of its own choosing, with the bind
 * made explicit: only an explicitly bound port survives the
 * shutdown(SHUT_RD) that `down` uses. Two sockets with SO_REUSEADDR may
 * share a port while neither listens: the first one picks it, the second
 * binds it by number, then the first goes. */
static int bind_loopback(int family, int *port) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof(*in6);
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*in);
  }
  int one = 1, rc = 0, fd = -1;
  int picker = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (picker < 0)
    return -errno;
  if (setsockopt(picker, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(picker, (struct sockaddr *)&ss, len) != 0 ||
      getsockname(picker, (struct sockaddr *)&ss, &len) != 0)
    rc = -errno;
  if (rc == 0) {
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0)
      rc = -errno;
  }
  close(picker);
  if (rc == 0 && listen(fd, SOMAXCONN) != 0)
    rc = -errno;
  if (rc != 0) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                   : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

int fl_proxy_start(uv_loop_t *loop, fl_control_t *ctl,
                   const struct sockaddr *upstream, fl_proxy_t **out) {
  socklen_t len = upstream->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in);
  if (upstream->sa_family != AF_INET && upstream->sa_family != AF_INET6)
    return -EAFNOSUPPORT;
  /* libuv writes with write(): a peer that reset would raise SIGPIPE,
   * whose default action ends the process. A handler of the caller's own
   * is left alone; uv_spawn resets dispositions in children. */
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  fl_proxy_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  p->loop = loop;
  p->ctl = ctl;
  p->seed = fl_control_seed(ctl);
  memcpy(&p->upstream, upstream, len);
  fl_addr_from_sockaddr(upstream, len, &p->up_addr);
  p->fd = bind_loopback(upstream->sa_family, &p->port);
  if (p->fd < 0) {
    int rc = p->fd;
    free(p);
    return rc;
  }
  int rc = uv_poll_init(loop, &p->poll, p->fd);
  if (rc != 0) {
    close(p->fd);
    free(p);
    return rc;
  }
  uv_timer_init(loop, &p->tick);
  p->poll.data = p->tick.data = p;
  p->handles = 2;
  p->listening = 1;
  p->gen = fl_control_generation(ctl) - 1; /* read the rules now */
  refresh(p);
  if (p->listening)
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
  *out = p;
  return 0;
}

int fl_proxy_port(const fl_proxy_t *p) { return p->port; }

int fl_proxy_redirect_rule(const fl_proxy_t *p, const char *target,
                           struct fl_rule *rule, char *err, size_t errlen) {
  char spec[FL_SPEC_MAX];
  int v6 = p->upstream.ss_family == AF_INET6;
  snprintf(spec, sizeof(spec), "redirect@%s,to=%s:%d", target,
           v6 ? "[::1]" : "127.0.0.1", p->port);
  int rc = fl_spec_parse(spec, rule, err, errlen);
  if (rc == 0)
    rule->flags |= FL_RULE_PINNED; /* `faultline clear` must not drop it */
  return rc;
}

static void on_proxy_handle_closed(uv_handle_t *h) {
  fl_proxy_t *p = h->data;
  p->handles--;
  proxy_maybe_free(p);
}

void fl_proxy_close(fl_proxy_t *p) {
  if (p == NULL || p->closing)
    return;
  p->closing = 1;
  /* Closing the poll handle stops watching the fd at once. */
  uv_close((uv_handle_t *)&p->poll, on_proxy_handle_closed);
  uv_close((uv_handle_t *)&p->tick, on_proxy_handle_closed);
  close(p->fd);
  p->fd = -1;
  for (struct conn *c = p->conns; c != NULL; c = c->next)
    conn_close(c, END_CLOSE);
}
