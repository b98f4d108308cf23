/* The proxy's RESP reader (harness/proxy/resp.c) on hostile bytes, both
 * sides. The first byte picks the side (bit 0) and how the rest is cut
 * into pieces; the events and where they fall must not depend on the
 * cuts (a reader that did would rewrite a different stream when the
 * kernel hands the bytes over differently). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "resp.h"

#define MAX_EVENTS 4096

struct trace {
  size_t n;
  size_t at[MAX_EVENTS];
  int ev[MAX_EVENTS];
  char name[MAX_EVENTS][FL_RESP_WORD];
};

static struct trace whole, cut;

/* Feeds data in pieces of at most `piece` bytes (0: all at once). */
static void run(struct trace *t, int client, const uint8_t *data, size_t n,
                unsigned seed) {
  struct fl_resp r;
  fl_resp_init(&r, client);
  t->n = 0;
  size_t off = 0;
  while (off < n) {
    size_t len = n - off;
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      size_t want = 1 + (seed >> 16) % 7;
      len = want < len ? want : len;
    }
    size_t end = off + len;
    while (off < end) {
      int ev;
      size_t k = fl_resp_feed(&r, (const char *)data + off, end - off, &ev);
      if (k > end - off || (k == 0 && ev == 0))
        abort(); /* overran the piece, or no progress */
      off += k;
      if (ev != 0 && t->n < MAX_EVENTS) {
        t->at[t->n] = off;
        t->ev[t->n] = ev;
        memcpy(t->name[t->n], r.word[0], FL_RESP_WORD);
        t->n++;
      }
      if (ev & FL_RESP_BAD)
        return;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n == 0)
    return 0;
  int client = data[0] & 1;
  unsigned seed = data[0] | 1u;
  run(&whole, client, data + 1, n - 1, 0);
  run(&cut, client, data + 1, n - 1, seed);
  if (whole.n != cut.n)
    abort();
  for (size_t i = 0; i < whole.n; i++)
    if (whole.at[i] != cut.at[i] || whole.ev[i] != cut.ev[i] ||
        ((whole.ev[i] & FL_RESP_NAME) &&
         strcmp(whole.name[i], cut.name[i]) != 0))
      abort();
  return 0;
}
