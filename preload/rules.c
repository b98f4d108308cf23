/*
 * Rule evaluation. Called only when the fast-path gate says some active rule
 * covers the operation class, so everything here is off the idle hot path.
 * Still: no allocation, no locks, no logging, errno untouched.
 *
 * Rules are read under their sequence lock (see control.h): a rule is used
 * only if its seq was even before and unchanged after the fields were read.
 * Counters live in the writable stats region and are updated atomically, so
 * every thread and every forked worker shares them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

extern FL_HIDDEN struct fl_ctl_stats *fl_stats;

static int default_err(int action) {
  switch (action) {
  case FL_ACT_REFUSE:
    return ECONNREFUSED;
  case FL_ACT_RESET:
    return ECONNRESET;
  case FL_ACT_LIMIT:
    return ECONNREFUSED;
  case FL_ACT_EXHAUST:
    return EMFILE;
  case FL_ACT_DNS:
    return EAI_AGAIN;
  case FL_ACT_ENOSPC:
    return ENOSPC;
  case FL_ACT_EIO:
    return EIO;
  default:
    return 0;
  }
}

static int rule_begin(const struct fl_rule *r, uint32_t *seq) {
  uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
  if ((s & 1u) != 0 || !r->active)
    return 0;
  *seq = s;
  return 1;
}

static int rule_end(const struct fl_rule *r, uint32_t seq) {
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(&r->seq, memory_order_relaxed) == seq;
}

/* Decides from after=, p= and times= whether matching call number n gets
 * the fault, and counts the injection. */
static int should_inject(const struct fl_ctl_header *h, int i,
                         const struct fl_rule *r, uint64_t n) {
  _Atomic uint64_t *injected = &fl_stats->rules[i].injected;
  if (n < r->after)
    return 0;
  if (r->p_threshold < (UINT64_C(1) << 32)) {
    uint64_t x = fl_mix64(h->seed ^ ((uint64_t)r->id << 40) ^ n);
    if ((x >> 32) >= r->p_threshold)
      return 0;
  }
  if (r->times == 0) {
    atomic_fetch_add_explicit(injected, 1, memory_order_relaxed);
    return 1;
  }
  uint64_t done = atomic_load_explicit(injected, memory_order_relaxed);
  do {
    if (done >= r->times)
      return 0;
  } while (!atomic_compare_exchange_weak_explicit(
      injected, &done, done + 1, memory_order_relaxed, memory_order_relaxed));
  return 1;
}

static void fill(struct fl_verdict *v, const struct fl_rule *r, int i,
                 uint32_t seq) {
  v->action = r->action;
  v->err = r->err != 0 ? r->err : default_err(r->action);
  v->ms = r->ms;
  v->rule = i;
  v->seq = seq;
  v->rule_id = r->id;
  memset(&v->to, 0, sizeof(v->to));
  if (r->action == FL_ACT_REDIRECT)
    v->to = r->redirect;
}

/* Is the holder of a limit place still holding it? Its socket must still
 * be open in its process: /proc/PID/fd/FD leads to the same inode. A holder
 * that died or exec'd (close-on-exec) without our close() fails this. */
static int holder_alive(uint64_t owner, uint64_t ino) {
  if (ino == 0)
    return 1; /* being claimed right now */
  char path[64] = "/proc/";
  size_t at = 6;
  at += fl_utoa((uint32_t)(owner >> 32), path + at);
  memcpy(path + at, "/fd/", 4);
  at += 4;
  at += fl_utoa((uint32_t)(owner & 0xffffffffu) - 1u, path + at);
  path[at] = '\0';
  struct stat st;
  if (stat(path, &st) == 0)
    return (uint64_t)st.st_ino == ino;
  /* Not ours to look at (another user): trust it while the pid lives. */
  return errno != ENOENT && errno != ESRCH;
}

static int limit_claim(struct fl_limit_slot *held, uint32_t max, uint64_t me,
                       uint64_t ino) {
  for (uint32_t k = 0; k < max; k++) {
    uint64_t expect = 0;
    if (atomic_load_explicit(&held[k].owner, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong(&held[k].owner, &expect, me)) {
      atomic_store_explicit(&held[k].ino, ino, memory_order_release);
      return (int)k;
    }
  }
  return -1;
}

/* Frees the places of holders that are gone; returns how many. */
static int limit_reap(struct fl_limit_slot *held, uint32_t max) {
  int freed = 0;
  for (uint32_t k = 0; k < max; k++) {
    uint64_t owner = atomic_load_explicit(&held[k].owner, memory_order_acquire);
    uint64_t ino = atomic_load_explicit(&held[k].ino, memory_order_acquire);
    if (owner == 0 || holder_alive(owner, ino) ||
        atomic_load_explicit(&held[k].ino, memory_order_acquire) != ino)
      continue;
    atomic_store_explicit(&held[k].ino, 0, memory_order_relaxed);
    if (atomic_compare_exchange_strong(&held[k].owner, &owner, 0))
      freed++;
  }
  return freed;
}

/* A limit rule admits a connection (holding a place until close) while
 * fewer than max are open; beyond that, after=/p=/times= decide the
 * failure. Returns 1 to fail the connect; 0 when admitted. */
static int decide_limit(const struct fl_ctl_header *h, int i,
                        const struct fl_rule *r, uint32_t seq, uint64_t n,
                        const struct fl_dest *d, struct fl_verdict *v) {
  if (v->hold.rule >= 0 || d->fd < 0)
    return 0; /* one limit per connection: the first rule counts it */
  int saved = errno;
  struct stat st;
  uint64_t ino = fstat(d->fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
  uint64_t me =
      (uint64_t)(uint32_t)atomic_load(&fl_pid) << 32 | (uint32_t)(d->fd + 1);
  uint32_t max = r->max < FL_LIMIT_SLOTS ? r->max : FL_LIMIT_SLOTS;
  struct fl_limit_slot *held = fl_stats->rules[i].held;
  int slot = limit_claim(held, max, me, ino);
  if (slot < 0 && limit_reap(held, max) > 0)
    slot = limit_claim(held, max, me, ino);
  errno = saved;
  if (slot >= 0) {
    v->hold = (struct fl_limit_hold){.rule = i, .seq = seq, .slot = slot};
    return 0;
  }
  return should_inject(h, i, r, n);
}

/* The part of a rule that decisions use: all but seq, pattern and spec. */
#define RULE_HEAD_FROM (offsetof(struct fl_rule, seq) + sizeof(uint32_t))
#define RULE_HEAD_LEN (offsetof(struct fl_rule, pattern) - RULE_HEAD_FROM)

typedef int (*target_hit_fn)(const struct fl_rule *r, const void *what);

/* The one loop over the rules: the first active rule covering opc whose
 * target `hit` accepts and that decides to inject wins. `dest` is the
 * connection for destination decisions, NULL for names, paths and fds: a
 * limit rule counts connections only, whatever a segment says. */
static int decide(uint32_t opc, target_hit_fn hit, const void *what,
                  const struct fl_dest *dest, struct fl_verdict *v) {
  const struct fl_ctl_header *h = fl_header();
  v->action = FL_ACT_NONE;
  v->rule = -1;
  v->hold = FL_NO_HOLD;
  if (h == NULL)
    return 0;
  for (int i = 0; i < FL_MAX_RULES; i++) {
    const struct fl_rule *live = &h->rules[i];
    uint32_t seq;
    if (!rule_begin(live, &seq) || (live->ops & opc) == 0 || !hit(live, what))
      continue;
    /* Everything used below is read from a copy taken inside the seqlock
     * window: the rule may be replaced right after it. */
    struct fl_rule copy;
    memcpy((char *)&copy + RULE_HEAD_FROM, (const char *)live + RULE_HEAD_FROM,
           RULE_HEAD_LEN);
    if (!rule_end(live, seq))
      continue;
    const struct fl_rule *r = &copy;
    if (r->action == FL_ACT_LIMIT && dest == NULL)
      continue;
    uint64_t n = atomic_fetch_add_explicit(&fl_stats->rules[i].matched, 1,
                                           memory_order_relaxed);
    if (r->action == FL_ACT_LIMIT ? decide_limit(h, i, r, seq, n, dest, v)
                                  : should_inject(h, i, r, n)) {
      fill(v, r, i, seq);
      return 1;
    }
  }
  return 0;
}

static int addr_hit(const struct fl_rule *r, const struct fl_dest *d) {
  if (r->target == FL_TGT_INET) {
    if (d->inet.family == 0)
      return 0;
    for (int k = 0; k < r->naddrs && k < FL_MAX_ADDRS; k++)
      if (fl_addr_match(&r->addrs[k], &d->inet))
        return 1;
    return 0;
  }
  if (r->target == FL_TGT_UNIX) {
    if (d->unix_hash == 0)
      return 0;
    size_t n = strnlen(r->pattern, FL_PATTERN_MAX);
    return fl_hash_bytes(r->pattern, n, FL_HASH_SEED) == d->unix_hash;
  }
  return 0;
}

/* The syscalls that make a match certain run only once the address
 * matched, so connections elsewhere pay nothing for them. */
static int dest_hit(const struct fl_rule *r, const void *what) {
  struct fl_dest *d = (struct fl_dest *)what; /* the caller's, writable */
  if (!addr_hit(r, d))
    return 0;
  d->addr_seen = 1;
  if (d->fd >= 0 && r->action == FL_ACT_DELAY)
    return fl_fd_blocking(d->fd, d->msg_flags);
  if (d->fd >= 0 && r->action == FL_ACT_RESET)
    return fl_fd_verify(d->fd);
  return 1;
}

static int name_hit(const struct fl_rule *r, const void *what) {
  return r->target == FL_TGT_NAME && fl_glob_match(r->pattern, what, 1);
}

static int path_hit(const struct fl_rule *r, const void *what) {
  return r->target == FL_TGT_PATH && fl_glob_match(r->pattern, what, 0);
}

static int exhaust_hit(const struct fl_rule *r, const void *what) {
  (void)what;
  return r->action == FL_ACT_EXHAUST;
}

FL_HIDDEN int fl_decide_dest(uint32_t opc, const struct fl_dest *d,
                             struct fl_verdict *v) {
  return decide(opc, dest_hit, d, d, v);
}

FL_HIDDEN int fl_decide_name(const char *name, struct fl_verdict *v) {
  v->action = FL_ACT_NONE;
  v->rule = -1;
  v->hold = FL_NO_HOLD;
  return name != NULL && decide(FL_OPC_DNS, name_hit, name, NULL, v);
}

FL_HIDDEN int fl_decide_path(uint32_t opc, const char *path,
                             struct fl_verdict *v) {
  v->action = FL_ACT_NONE;
  v->rule = -1;
  v->hold = FL_NO_HOLD;
  return path != NULL && decide(opc, path_hit, path, NULL, v);
}

FL_HIDDEN int fl_decide_exhaust(uint32_t opc, struct fl_verdict *v) {
  return decide(opc, exhaust_hit, NULL, NULL, v);
}

FL_HIDDEN int fl_rule_still_active(const struct fl_verdict *v) {
  const struct fl_ctl_header *h = fl_header();
  if (h == NULL || v->rule < 0)
    return 0;
  const struct fl_rule *r = &h->rules[v->rule];
  return atomic_load_explicit(&r->seq, memory_order_acquire) == v->seq &&
         r->active;
}

FL_HIDDEN void fl_limit_release(struct fl_limit_hold *hold) {
  const struct fl_ctl_header *h = fl_header();
  int rule = hold->rule, slot = hold->slot;
  uint32_t seq = hold->seq;
  *hold = FL_NO_HOLD;
  if (h == NULL || rule < 0 || rule >= FL_MAX_RULES || slot < 0 ||
      slot >= FL_LIMIT_SLOTS)
    return;
  /* A rule replaced since the connection was counted has a fresh table. */
  if (atomic_load_explicit(&h->rules[rule].seq, memory_order_acquire) != seq)
    return;
  struct fl_limit_slot *s = &fl_stats->rules[rule].held[slot];
  atomic_store_explicit(&s->ino, 0, memory_order_relaxed);
  atomic_store_explicit(&s->owner, 0, memory_order_release);
}

FL_HIDDEN void fl_record(const struct fl_verdict *v, int op) {
  if (fl_stats == NULL || v->rule < 0)
    return;
  int saved = errno;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t idx =
      atomic_fetch_add_explicit(&fl_stats->ring_head, 1, memory_order_relaxed);
  struct fl_event *e = &fl_stats->ring[idx & (FL_RING_SIZE - 1)];
  /* Mark the entry incomplete while it is rewritten. */
  atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(
      &e->time_ns, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
      memory_order_relaxed);
  atomic_store_explicit(&e->pid, (int32_t)syscall(SYS_getpid),
                        memory_order_relaxed);
  atomic_store_explicit(&e->rule_id, v->rule_id, memory_order_relaxed);
  atomic_store_explicit(&e->op, (uint16_t)op, memory_order_relaxed);
  atomic_store_explicit(&e->err, v->err, memory_order_relaxed);
  atomic_store_explicit(&e->seq, idx + 1, memory_order_release);
  errno = saved;
}
