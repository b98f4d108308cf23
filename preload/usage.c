/*
 * Usage recording for audit discovery: which destinations, names and
 * paths the target used (the tables of struct fl_usage in the segment).
 *
 * Called from the wrappers' slow paths only, and only while the runner has
 * recording on. No allocation, no lock: a slot is claimed by a CAS of its
 * key from 0, and a table with no slot left counts the key as overflow.
 * The functions take the table so that a test can drive them alone.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "shim.h"

static uint64_t nonzero(uint64_t h) { return h != 0 ? h : 1; }

/* Claims the key h in `key` when free. Returns 1 when the slot is h's
 * (claimed now: *fresh set, or earlier), 0 when it holds another key. */
static int take(_Atomic uint64_t *key, uint64_t h, int *fresh) {
  uint64_t k = atomic_load_explicit(key, memory_order_acquire);
  if (k == 0 && atomic_compare_exchange_strong_explicit(
                    key, &k, h, memory_order_acq_rel, memory_order_acquire)) {
    *fresh = 1;
    return 1;
  }
  return k == h; /* a failed CAS left the winner's key in k */
}

/* Linear probing from h over the whole table: recording is rare and the
 * tables small. NULL when every slot holds another key. */
static struct fl_use_dest *dest_slot(struct fl_usage *u, uint64_t h,
                                     int *fresh) {
  for (size_t i = 0; i < FL_USE_DESTS; i++) {
    struct fl_use_dest *s = &u->dests[(h + i) % FL_USE_DESTS];
    if (take(&s->key, h, fresh))
      return s;
  }
  return NULL;
}

static struct fl_use_text *text_slot(struct fl_use_text *t, size_t n,
                                     uint64_t h, int *fresh) {
  for (size_t i = 0; i < n; i++) {
    struct fl_use_text *s = &t[(h + i) % n];
    if (take(&s->key, h, fresh))
      return s;
  }
  return NULL;
}

static uint64_t dest_key(const struct fl_addr *a) {
  uint64_t h = fl_hash_bytes(&a->family, 1, FL_HASH_SEED);
  h = fl_hash_bytes(&a->port, sizeof(a->port), h);
  return nonzero(fl_hash_bytes(a->addr, a->family == AF_INET ? 4 : 16, h));
}

FL_HIDDEN void fl_usage_dest(struct fl_usage *u, const struct fl_addr *a,
                             int connect) {
  if (a->family == 0)
    return;
  uint64_t h = dest_key(a);
  int fresh = 0;
  struct fl_use_dest *s = dest_slot(u, h, &fresh);
  if (s == NULL) {
    atomic_fetch_add_explicit(&u->overflow_dests, 1, memory_order_relaxed);
    return;
  }
  if (fresh) {
    s->addr = *a;
    s->addr.prefix = 0;
    atomic_store_explicit(&s->ready, 1, memory_order_release);
  }
  atomic_fetch_add_explicit(connect ? &s->connects : &s->ios, 1,
                            memory_order_relaxed);
}

/* Stores text (already normalised by the caller) in a table of n slots. */
static void add_text(struct fl_use_text *t, size_t n, _Atomic uint64_t *over,
                     const char *text, uint32_t flags) {
  size_t len = strnlen(text, FL_USE_TEXT - 1);
  uint64_t h = nonzero(fl_hash_bytes(text, len, FL_HASH_SEED));
  int fresh = 0;
  struct fl_use_text *s = text_slot(t, n, h, &fresh);
  if (s == NULL) {
    atomic_fetch_add_explicit(over, 1, memory_order_relaxed);
    return;
  }
  if (fresh) {
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    atomic_store_explicit(&s->ready, 1, memory_order_release);
  }
  if (flags != 0)
    atomic_fetch_or_explicit(&s->flags, flags, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* Names are recorded lower-case: DNS names are case-insensitive. */
FL_HIDDEN void fl_usage_name(struct fl_usage *u, const char *name) {
  char low[FL_USE_TEXT];
  size_t i = 0;
  for (; name[i] != '\0' && i < FL_USE_TEXT - 1; i++)
    low[i] =
        (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
  low[i] = '\0';
  add_text(u->names, FL_USE_NAMES, &u->overflow_names, low, 0);
}

FL_HIDDEN void fl_usage_path(struct fl_usage *u, const char *path,
                             uint32_t flags) {
  add_text(u->paths, FL_USE_PATHS, &u->overflow_paths, path, flags);
}
