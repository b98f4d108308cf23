/*
 * Which of a proxy's faults hit a connection, and what they do to it (see
 * proxy_priv.h): the decisions, the effects merged per direction for
 * conn.c's pipes, the byte limits and the time-based faults, and
 * the counts in the control segment.
 *
 * Rules are decided per connection: when a proxy fault appears (or a
 * connection is accepted while one is on), each connection counts as
 * matched once and is affected or not from after=, toxicity= (hashed from
 * the segment's seed, the rule and the connection's number: reproducible)
 * and times=. A rule cleared stops acting at once.
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

/* ---- counters ---------------------------------------------------- */

/* Counts one injection of the rule in `slot` (bounded by times=) and
 * records it in the event ring; 0 when times= ran out. */
int fl_toxics_inject(fl_proxy_t *p, int slot, int err) {
  const struct prule *r = &p->rules[slot];
  if (!fl_control_take(p->ctl, slot, r->id, r->times))
    return 0;
  fl_control_record(p->ctl, r->id, FL_OP_PROXY, err);
  return 1;
}

void fl_toxics_count_bytes(fl_proxy_t *p, uint64_t mask, size_t n) {
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

/* ---- limits ------------------------------------------------------ */

/* The bytes the hit's rule counts (its directions, since it began). */
static uint64_t hit_bytes(const struct conn *c, const struct hit *h) {
  const struct prule *r = hit_rule(c, h);
  uint64_t n = 0;
  for (int d = 0; d < 2; d++)
    if (r->dir & (1u << d))
      n += c->pipes[d].passed - h->base[d];
  return n;
}

/* How many of n bytes read in direction d may pass before a reset_peer
 * or limit_data count is reached; *end says what follows the cut. */
size_t fl_toxics_limit_bytes(struct conn *c, int d, size_t n, enum end *end) {
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
    if (!fl_toxics_inject(c->p, h->slot, reset ? ECONNRESET : 0))
      continue; /* times= ran out: this connection is spared */
    n = (size_t)left;
    if (*end != END_RESET)
      *end = reset ? END_RESET : END_CLOSE;
  }
  return n;
}

/* Time-based faults: reset_peer ms= and stall ms=. */
void fl_toxics_on_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  if (c->closing)
    return;
  if (c->ending != END_NONE) { /* the grace ran out */
    fl_conn_close(c, c->ending);
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
    if (due_reset && fl_toxics_inject(c->p, h->slot, ECONNRESET))
      how = END_RESET;
    else if (due_stall && how == END_NONE)
      how = END_CLOSE;
  }
  if (how != END_NONE) {
    fl_conn_close(c, how);
    return;
  }
  uint64_t at = next_deadline(c);
  if (at != 0)
    arm(&c->timer, fl_toxics_on_timer, at, now);
}

/* ---- decisions --------------------------------------------------- */

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
  if (FL_ACT_IS_PROTO(r->action)) /* decided per message: proto_hit */
    return p->codec != NULL;
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
  return fl_toxics_inject(p, slot, r->action == FL_ACT_DOWN ? ECONNREFUSED : 0);
}

/* Decides the rules this connection has not seen yet, then applies what
 * acts on it: merged effects, reading, pumping, deadlines. */
void fl_toxics_apply(struct conn *c, uint64_t now) {
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
      fl_conn_close(c, END_RESET);
      return;
    }
  }
  if (down) {
    /* A new connection is refused as nearly as an accepted one can be;
     * an established one is closed, as by a server going away. */
    fl_conn_close(c, c->fresh ? END_RESET : END_CLOSE);
    return;
  }
  merge_effects(c);
  uint64_t at = next_deadline(c);
  if (c->ending == END_NONE && at != 0 && at <= now) {
    /* Due already (reset_peer at once): before any more bytes pass. */
    fl_toxics_on_timer(&c->timer);
    if (c->closing)
      return;
    at = next_deadline(c);
  }
  if (c->ending == END_NONE) {
    if (at != 0)
      arm(&c->timer, fl_toxics_on_timer, at, now);
    else
      uv_timer_stop(&c->timer);
  }
  for (int d = 0; d < 2 && !c->closing; d++)
    fl_conn_pump(&c->pipes[d]);
  if (!c->closing && p->codec != NULL && p->codec->apply != NULL)
    p->codec->apply(c, c->codec_state);
}

/* ---- protocol faults, per message ----------------------------- */

const struct prule *
fl_toxics_proto_hit(struct conn *c, uint64_t actions, uint64_t msg,
                    int (*filter)(const struct prule *r, void *arg),
                    void *arg) {
  fl_proxy_t *p = c->p;
  for (int i = 0; i < c->nhits; i++) {
    int slot = c->hits[i].slot;
    const struct prule *r = &p->rules[slot];
    if (!(actions & (UINT64_C(1) << r->action)) ||
        (filter != NULL && !filter(r, arg)))
      continue;
    uint64_t n = fl_control_count(p->ctl, slot, r->id, FL_COUNT_MATCHED, 1);
    if (n < r->after)
      continue;
    if (r->threshold < (UINT64_C(1) << 32)) {
      uint64_t x =
          fl_mix64(p->seed ^ ((uint64_t)r->id << 40) ^ (c->num << 20) ^ msg);
      if ((x >> 32) >= r->threshold)
        continue;
    }
    if (fl_toxics_inject(p, slot, 0))
      return r;
  }
  return NULL;
}

/* Forgets the rules of the slots in `mask` (cleared or replaced). */
void fl_toxics_forget(struct conn *c, uint64_t mask) {
  c->decided &= ~mask;
  int k = 0;
  for (int i = 0; i < c->nhits; i++)
    if (!(mask & (UINT64_C(1) << c->hits[i].slot)))
      c->hits[k++] = c->hits[i];
  c->nhits = k;
}
