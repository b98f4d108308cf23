#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "control_int.h"

static int map(int fd, const char *path, fl_control_t **out) {
  void *m =
      mmap(NULL, FL_CTL_TOTAL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED)
    return -errno;
  fl_control_t *c = calloc(1, sizeof(*c));
  char *p = strdup(path);
  if (c == NULL || p == NULL) {
    free(c);
    free(p);
    munmap(m, FL_CTL_TOTAL_SIZE);
    return -ENOMEM;
  }
  c->fd = fd;
  c->path = p;
  for (int i = 0; i < 2; i++)
    c->blackholes[i].listen_fd = c->blackholes[i].fill_fd = -1;
  c->hdr = m;
  c->stats = (struct fl_ctl_stats *)((char *)m + FL_CTL_STATS_OFFSET);
  *out = c;
  return 0;
}

int fl_control_create(const char *path, uint64_t seed, fl_control_t **out) {
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  int rc = 0;
  /* fchmod: the umask could only have narrowed 0600, but be explicit. */
  if (fchmod(fd, 0600) != 0 || ftruncate(fd, FL_CTL_TOTAL_SIZE) != 0)
    rc = -errno;
  if (rc == 0)
    rc = map(fd, path, out);
  if (rc != 0) {
    close(fd);
    unlink(path);
    return rc;
  }
  struct fl_ctl_header *h = (*out)->hdr;
  h->version = FL_CTL_VERSION;
  h->header_size = sizeof(*h);
  h->stats_offset = FL_CTL_STATS_OFFSET;
  h->total_size = FL_CTL_TOTAL_SIZE;
  h->max_rules = FL_MAX_RULES;
  h->ring_size = FL_RING_SIZE;
  h->seed = seed;
  h->owner_pid = (uint32_t)getpid();
  atomic_thread_fence(memory_order_release);
  h->magic = FL_CTL_MAGIC; /* last: a half-made segment is foreign */
  return 0;
}

int fl_control_open(const char *path, fl_control_t **out) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (size_t)st.st_size != FL_CTL_TOTAL_SIZE) {
    close(fd);
    return FL_EBADCTL;
  }
  int rc = map(fd, path, out);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  const struct fl_ctl_header *h = (*out)->hdr;
  if (h->magic != FL_CTL_MAGIC || h->version != FL_CTL_VERSION ||
      h->header_size != sizeof(*h) || h->total_size != FL_CTL_TOTAL_SIZE ||
      h->max_rules != FL_MAX_RULES || h->ring_size != FL_RING_SIZE) {
    fl_control_close(*out);
    *out = NULL;
    return FL_EBADCTL;
  }
  return 0;
}

void fl_control_close(fl_control_t *c) {
  if (c == NULL)
    return;
  munmap(c->hdr, FL_CTL_TOTAL_SIZE);
  close(c->fd);
  fl_blackhole_close(&c->blackholes[0]);
  fl_blackhole_close(&c->blackholes[1]);
  free(c->path);
  free(c);
}

void fl_control_remove(fl_control_t *c) {
  if (c != NULL)
    unlink(c->path);
  fl_control_close(c);
}

const char *fl_control_path(const fl_control_t *c) { return c->path; }
uint64_t fl_control_seed(const fl_control_t *c) { return c->hdr->seed; }

void fl_control_set_blackholes(fl_control_t *c, const struct fl_addr *v4,
                               const struct fl_addr *v6) {
  flock(c->fd, LOCK_EX);
  memset(&c->hdr->blackhole4, 0, sizeof(struct fl_addr));
  memset(&c->hdr->blackhole6, 0, sizeof(struct fl_addr));
  if (v4 != NULL)
    c->hdr->blackhole4 = *v4;
  if (v6 != NULL)
    c->hdr->blackhole6 = *v6;
  flock(c->fd, LOCK_UN);
}

/* Publishes the union of the active rules' classes: the shim's gate. */
static void publish(struct fl_ctl_header *h) {
  uint32_t ops = 0;
  for (int i = 0; i < FL_MAX_RULES; i++)
    if (h->rules[i].active)
      ops |= h->rules[i].ops;
  if (atomic_load_explicit(&h->record, memory_order_relaxed))
    ops |= FL_OPC_RECORD;
  atomic_store_explicit(&h->ops, ops, memory_order_release);
  atomic_fetch_add_explicit(&h->generation, 1, memory_order_release);
}

int fl_control_set_recording(fl_control_t *c, int on) {
  if (flock(c->fd, LOCK_EX) != 0)
    return -errno;
  atomic_store_explicit(&c->hdr->record, on ? 1u : 0u, memory_order_release);
  publish(c->hdr);
  flock(c->fd, LOCK_UN);
  return 0;
}

/* Sequence lock, writer side: readers skip the rule while seq is odd. */
static void write_begin(struct fl_rule *r) {
  atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

static void write_end(struct fl_rule *r) {
  atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
}

int fl_control_add(fl_control_t *c, const struct fl_rule *rule, uint32_t *id) {
  struct fl_ctl_header *h = c->hdr;
  flock(c->fd, LOCK_EX);
  int slot = -1;
  for (int i = 0; i < FL_MAX_RULES && slot < 0; i++)
    if (!h->rules[i].active)
      slot = i;
  if (slot < 0) {
    flock(c->fd, LOCK_UN);
    return FL_ERULESFULL;
  }
  struct fl_rule *r = &h->rules[slot];
  struct fl_rule_stats *st = &c->stats->rules[slot];
  write_begin(r);
  memcpy((char *)r + sizeof(r->seq), (const char *)rule + sizeof(rule->seq),
         sizeof(*r) - sizeof(r->seq));
  r->id = ++h->next_id;
  r->active = 1;
  atomic_store(&st->matched, 0);
  atomic_store(&st->injected, 0);
  atomic_store(&st->bytes, 0);
  for (int k = 0; k < FL_LIMIT_SLOTS; k++) {
    atomic_store(&st->held[k].ino, 0);
    atomic_store(&st->held[k].owner, 0);
  }
  write_end(r);
  publish(h);
  if (id != NULL)
    *id = r->id;
  flock(c->fd, LOCK_UN);
  return 0;
}

int fl_control_clear(fl_control_t *c, uint32_t id) {
  struct fl_ctl_header *h = c->hdr;
  int found = 0;
  flock(c->fd, LOCK_EX);
  for (int i = 0; i < FL_MAX_RULES; i++) {
    struct fl_rule *r = &h->rules[i];
    if (!r->active || (id != 0 && r->id != id) ||
        (id == 0 && (r->flags & FL_RULE_PINNED)))
      continue;
    write_begin(r);
    r->active = 0;
    write_end(r);
    found = 1;
  }
  publish(h);
  flock(c->fd, LOCK_UN);
  return found || id == 0 ? 0 : FL_ENORULE;
}

static int copy_rule(fl_control_t *c, int i, struct fl_rule_view *v) {
  const struct fl_rule *r = &c->hdr->rules[i];
  for (int tries = 0; tries < 100; tries++) {
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (s & 1u)
      continue;
    memcpy(&v->rule, r, sizeof(*r));
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s)
      continue;
    const struct fl_rule_stats *st = &c->stats->rules[i];
    v->matched = atomic_load(&st->matched);
    v->injected = atomic_load(&st->injected);
    v->bytes = atomic_load(&st->bytes);
    v->open = 0;
    for (int k = 0; k < FL_LIMIT_SLOTS; k++)
      v->open += atomic_load(&st->held[k].owner) != 0;
    return v->rule.active ? 1 : 0;
  }
  return 0;
}

int fl_control_rules(fl_control_t *c, struct fl_rule_view *out, int max) {
  int n = 0;
  for (int i = 0; i < FL_MAX_RULES && n < max; i++)
    n += copy_rule(c, i, &out[n]);
  return n;
}

int fl_control_rule(fl_control_t *c, uint32_t id, struct fl_rule_view *out) {
  for (int i = 0; i < FL_MAX_RULES; i++)
    if (copy_rule(c, i, out) && out->rule.id == id)
      return 0;
  return FL_ENORULE;
}

int fl_control_events(fl_control_t *c, uint64_t *since,
                      struct fl_event_view *out, int max) {
  uint64_t head =
      atomic_load_explicit(&c->stats->ring_head, memory_order_acquire);
  uint64_t from = *since;
  if (head > FL_RING_SIZE && from < head - FL_RING_SIZE)
    from = head - FL_RING_SIZE; /* older entries were overwritten */
  int n = 0;
  for (uint64_t i = from; i < head && n < max; i++) {
    const struct fl_event *e = &c->stats->ring[i & (FL_RING_SIZE - 1)];
    if (atomic_load_explicit(&e->seq, memory_order_acquire) != i + 1)
      continue; /* still being written, or overwritten */
    struct fl_event_view *v = &out[n];
    v->index = i;
    v->time_ns = atomic_load_explicit(&e->time_ns, memory_order_relaxed);
    v->pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
    v->rule_id = atomic_load_explicit(&e->rule_id, memory_order_relaxed);
    v->op = atomic_load_explicit(&e->op, memory_order_relaxed);
    v->err = atomic_load_explicit(&e->err, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) == i + 1)
      n++;
    *since = i + 1;
  }
  return n;
}

uint32_t fl_control_generation(const fl_control_t *c) {
  return atomic_load_explicit(&c->hdr->generation, memory_order_acquire);
}

int fl_control_slot(fl_control_t *c, int slot, struct fl_rule_view *out) {
  if (slot < 0 || slot >= FL_MAX_RULES)
    return 0;
  return copy_rule(c, slot, out);
}

/* The counter, or NULL when the slot no longer holds rule `id`. A rule
 * cleared and replaced between this check and the update can still get
 * one stray count: counters are statistics, not locks. */
static _Atomic uint64_t *counter(fl_control_t *c, int slot, uint32_t id,
                                 enum fl_counter which) {
  if (slot < 0 || slot >= FL_MAX_RULES)
    return NULL;
  const struct fl_rule *r = &c->hdr->rules[slot];
  if (atomic_load_explicit(&r->seq, memory_order_acquire) & 1u || r->id != id ||
      !r->active)
    return NULL;
  struct fl_rule_stats *st = &c->stats->rules[slot];
  switch (which) {
  case FL_COUNT_MATCHED:
    return &st->matched;
  case FL_COUNT_INJECTED:
    return &st->injected;
  case FL_COUNT_BYTES:
    return &st->bytes;
  }
  return NULL;
}

uint64_t fl_control_count(fl_control_t *c, int slot, uint32_t id,
                          enum fl_counter which, uint64_t n) {
  _Atomic uint64_t *v = counter(c, slot, id, which);
  return v == NULL ? 0 : atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

int fl_control_take(fl_control_t *c, int slot, uint32_t id, uint64_t times) {
  _Atomic uint64_t *v = counter(c, slot, id, FL_COUNT_INJECTED);
  if (v == NULL)
    return 0;
  uint64_t done = atomic_load_explicit(v, memory_order_relaxed);
  do {
    if (times != 0 && done >= times)
      return 0;
  } while (!atomic_compare_exchange_weak_explicit(
      v, &done, done + 1, memory_order_relaxed, memory_order_relaxed));
  return 1;
}

void fl_control_record(fl_control_t *c, uint32_t id, int op, int err) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t idx =
      atomic_fetch_add_explicit(&c->stats->ring_head, 1, memory_order_relaxed);
  struct fl_event *e = &c->stats->ring[idx & (FL_RING_SIZE - 1)];
  /* The same protocol as the shim's: incomplete while rewritten. */
  atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(
      &e->time_ns, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
      memory_order_relaxed);
  atomic_store_explicit(&e->pid, (int32_t)getpid(), memory_order_relaxed);
  atomic_store_explicit(&e->rule_id, id, memory_order_relaxed);
  atomic_store_explicit(&e->op, (uint16_t)op, memory_order_relaxed);
  atomic_store_explicit(&e->err, err, memory_order_relaxed);
  atomic_store_explicit(&e->seq, idx + 1, memory_order_release);
}
