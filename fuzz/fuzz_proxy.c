/* The proxy around one codec, stubbed: see fuzz_proxy.h. */
#define _GNU_SOURCE
#include "fuzz_proxy.h"

#include <stdlib.h>
#include <string.h>

#define OUT_MAX (1u << 20) /* a transcript past this is not kept */

struct fuzz_proxy fuzz;
static struct hit hits[FL_MAX_RULES];
static const struct fl_codec *codec;
static uint32_t next_id;
static volatile uint8_t sink;

/* Appends n bytes, read one by one; past OUT_MAX only read. */
static void keep(struct fuzz_bytes *b, const char *data, size_t n) {
  if (n == 0)
    return;
  for (size_t i = 0; i < n; i++)
    sink ^= (uint8_t)data[i];
  if (b->len + n > OUT_MAX) {
    b->len = OUT_MAX + 1; /* marks it cut */
    return;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
      abort();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

/* ---- what the codecs call (conn.c, toxics.c) ---------------------- */

void fl_conn_send(struct conn *c, int d, const char *data, size_t n) {
  if (c->closing || n == 0)
    return;
  if (fuzz.fail_send) { /* write_now's failure: a reset */
    fl_conn_close(c, END_RESET);
    return;
  }
  keep(&fuzz.out[d], data, n);
}

void fl_conn_close(struct conn *c, enum end how) {
  if (c->closing)
    return;
  c->closing = 1;
  if (c->ending == END_NONE)
    c->ending = how;
}

void fl_conn_end(struct conn *c, enum end how) {
  if (c->closing || c->ending != END_NONE)
    return;
  c->ending = how;
  if (fuzz.end_now) /* conn_check_end: nothing is queued */
    fl_conn_close(c, how);
}

void fl_conn_hold(struct conn *c, int d, uint64_t until_ns) {
  if (until_ns > c->pipes[d].hold_ns)
    c->pipes[d].hold_ns = until_ns;
  fuzz.holds++;
}

/* As toxics.c's, but the input says which messages are hit. */
const struct prule *
fl_toxics_proto_hit(struct conn *c, uint64_t actions, uint64_t msg,
                    int (*filter)(const struct prule *r, void *arg),
                    void *arg) {
  for (int i = 0; i < c->nhits; i++) {
    int slot = c->hits[i].slot;
    const struct prule *r = &c->p->rules[slot];
    if (!(actions & (UINT64_C(1) << r->action)) ||
        (filter != NULL && !filter(r, arg)))
      continue;
    if ((fuzz.hit_mask >> ((msg + (uint64_t)slot) & 7)) & 1) {
      fuzz.hits++;
      return r;
    }
  }
  return NULL;
}

/* ---- the driver --------------------------------------------------- */

void fuzz_proxy_reset(const struct fl_codec *cd, uint8_t hit_mask) {
  codec = cd;
  memset(fuzz.p.rules, 0, sizeof(fuzz.p.rules));
  fuzz.p.codec = cd;
  memset(&fuzz.c, 0, sizeof(fuzz.c));
  fuzz.c.p = &fuzz.p;
  fuzz.c.hits = hits;
  fuzz.c.cap = FL_MAX_RULES;
  fuzz.c.fresh = 1;
  for (int d = 0; d < 2; d++) {
    fuzz.c.pipes[d].c = &fuzz.c;
    fuzz.in[d].len = 0;
    fuzz.out[d].len = 0;
  }
  fuzz.hits = 0;
  fuzz.holds = 0;
  fuzz.hit_mask = hit_mask;
  fuzz.nrules = 0;
  fuzz.end_now = 0;
  fuzz.fail_send = 0;
}

static void add_hit(int slot) {
  struct hit *h = &fuzz.c.hits[fuzz.c.nhits++];
  memset(h, 0, sizeof(*h));
  h->slot = slot;
}

struct prule *fuzz_proxy_rule(int slot, int action, uint8_t dir) {
  struct prule *r = &fuzz.p.rules[slot];
  memset(r, 0, sizeof(*r));
  r->id = ++next_id;
  r->action = (uint8_t)action;
  r->dir = dir;
  if (fuzz.nrules < 8)
    fuzz.slots[fuzz.nrules++] = slot;
  add_hit(slot);
  return r;
}

/* Clears the rule in slot if it acts (fl_toxics_forget), or sets it
 * again as a new rule; then the codec hears of it. */
static void toggle(int slot) {
  struct conn *c = &fuzz.c;
  int k = 0, found = 0;
  for (int i = 0; i < c->nhits; i++)
    if (c->hits[i].slot == slot)
      found = 1;
    else
      c->hits[k++] = c->hits[i];
  c->nhits = k;
  if (!found) {
    fuzz.p.rules[slot].id = ++next_id;
    add_hit(slot);
  }
  if (!c->closing && codec->apply != NULL)
    codec->apply(c, c->codec_state);
}

/* One chunk read in direction d: as on_read feeds it, cut where a byte
 * limit (*limit bytes more, SIZE_MAX: none) is reached. */
static void feed(int d, const uint8_t *data, size_t n, size_t *limit) {
  struct conn *c = &fuzz.c;
  enum end end = END_NONE;
  if (*limit <= n) {
    n = *limit;
    end = END_CLOSE;
  } else if (*limit != SIZE_MAX) {
    *limit -= n;
  }
  if (n > 0) {
    /* A copy exactly n long, as the read buffer holds no more. */
    char *chunk = malloc(n);
    if (chunk == NULL)
      abort();
    memcpy(chunk, data, n);
    keep(&fuzz.in[d], chunk, n);
    int rc = codec->feed(c, c->codec_state, d, chunk, n);
    free(chunk);
    if (rc != 0)
      fl_conn_close(c, END_RESET);
  }
  if (!c->closing && end != END_NONE)
    fl_conn_end(c, end);
}

void fuzz_proxy_run(const uint8_t *data, size_t size) {
  struct conn *c = &fuzz.c;
  c->codec_state = calloc(1, codec->state_size);
  if (c->codec_state == NULL)
    abort();
  /* The connection is accepted with the rules in force. */
  if (codec->apply != NULL)
    codec->apply(c, c->codec_state);
  size_t at = 0, limit = SIZE_MAX;
  while (at < size && !c->closing) {
    uint8_t t = data[at++];
    size_t n = t & 0x7f;
    if (n == 0) {
      if (at == size)
        break;
      uint8_t k = data[at++];
      if (t == 0x00 && fuzz.nrules > 0)
        toggle(fuzz.slots[k % fuzz.nrules]);
      else if (t == 0x80 && (k & 3) == 0)
        fuzz.end_now = 1;
      else if (t == 0x80 && (k & 3) == 1)
        fuzz.fail_send = 1;
      else if (t == 0x80 && (k & 3) == 2)
        limit = k >> 2;
      else if (t == 0x80)
        fl_conn_end(c, END_CLOSE);
      continue;
    }
    if (n > size - at)
      n = size - at;
    if (c->ending == END_NONE) /* on_read reads no more */
      feed(t & 0x80 ? DOWN : UP, data + at, n, &limit);
    at += n;
  }
  if (codec->fini != NULL)
    codec->fini(c->codec_state);
  free(c->codec_state);
  c->codec_state = NULL;
}

int fuzz_proxy_prefix(int d) {
  const struct fuzz_bytes *in = &fuzz.in[d], *out = &fuzz.out[d];
  if (out->len > OUT_MAX || in->len > OUT_MAX)
    return 1; /* not kept */
  if (out->len == 0)
    return 1;
  return out->len <= in->len && memcmp(out->p, in->p, out->len) == 0;
}
