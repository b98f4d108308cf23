/* The proxy's HTTP/1.1 framing (harness/proxy/http1.c): byte 0 picks
 * requests or responses and a piece size; the rest is fed whole, then in
 * pieces. Both feeds must see the same events at the same offsets, and
 * every call must make progress or report an event. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "proxy/http1.h"

#define MAX_EVENTS 4096

struct trace {
  size_t n;
  size_t at[MAX_EVENTS];
  int ev[MAX_EVENTS];
};

static void run(const uint8_t *data, size_t n, int response, size_t piece,
                struct trace *t) {
  static struct fl_h1 h;
  fl_h1_init(&h, response);
  t->n = 0;
  size_t off = 0;
  while (off < n && t->n < MAX_EVENTS) {
    size_t end = piece && off + piece < n ? off + piece : n;
    /* The piece's own copy: the parser must not read past its end. */
    size_t len = end - off;
    char *p = malloc(len ? len : 1);
    if (p == NULL)
      return;
    memcpy(p, data + off, len);
    size_t done = 0;
    for (;;) {
      enum fl_h1_event ev;
      size_t k = fl_h1_feed(&h, p + done, len - done, &ev);
      if (k > len - done)
        abort();
      done += k;
      if (ev == FL_H1_MORE) {
        if (done != len)
          abort(); /* MORE means every byte was taken */
        break;
      }
      if (t->n < MAX_EVENTS) {
        t->at[t->n] = off + done;
        t->ev[t->n++] = ev;
      }
      if (ev == FL_H1_BAD || t->n == MAX_EVENTS)
        break;
    }
    free(p);
    if (t->n > 0 && t->ev[t->n - 1] == FL_H1_BAD)
      return;
    off = end;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n == 0)
    return 0;
  static struct trace whole, split;
  int response = data[0] & 1;
  size_t piece = (size_t)(data[0] >> 1) + 1;
  run(data + 1, n - 1, response, 0, &whole);
  run(data + 1, n - 1, response, piece, &split);
  if (whole.n == MAX_EVENTS || split.n == MAX_EVENTS)
    return 0;
  /* A head line cut across pieces is the same line. */
  if (whole.n != split.n)
    abort();
  for (size_t i = 0; i < whole.n; i++)
    if (whole.ev[i] != split.ev[i] ||
        (whole.ev[i] != FL_H1_BAD && whole.at[i] != split.at[i]))
      abort();
  return 0;
}
