/*
 * The stream-fault proxy (see proxy.h): the listener, one per dependency,
 * the proxy faults aimed at the dependency as read from the control
 * segment, and the public API. Each accepted connection is handed to
 * proxy_conn.c, which moves its bytes.
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

#define TICK_MS 5 /* how often an idle proxy looks at the generation */

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
    if (!inject(c->p, h->slot, reset ? ECONNRESET : 0))
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
    if (due_reset && inject(c->p, h->slot, ECONNRESET))
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

/* ---- the listener ------------------------------------------------ */

static void on_listen_ready(uv_poll_t *h, int status, int events) {
  fl_proxy_t *p = h->data;
  (void)events;
  if (status < 0 || p->closing || !p->listening)
    return;
  if (fl_control_generation(p->ctl) != p->gen) {
    fl_proxy_refresh(p);
    if (!p->listening)
      return;
  }
  /* A bounded batch per wake-up, so a flood cannot starve the rest. */
  for (int i = 0; i < 64; i++) {
    int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fl_conn_start(p, fd);
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
void fl_proxy_refresh(fl_proxy_t *p) {
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
    fl_toxics_apply(c, now);
  }
}

static void on_tick(uv_timer_t *t) {
  fl_proxy_t *p = t->data;
  if (fl_control_generation(p->ctl) != p->gen)
    fl_proxy_refresh(p);
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
  fl_proxy_refresh(p);
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

void fl_proxy_maybe_free(fl_proxy_t *p) {
  if (p->closing && p->handles == 0 && p->conns == NULL)
    free(p);
}

static void on_proxy_handle_closed(uv_handle_t *h) {
  fl_proxy_t *p = h->data;
  p->handles--;
  fl_proxy_maybe_free(p);
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
    fl_conn_close(c, END_CLOSE);
}
