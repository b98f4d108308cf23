/* The WebSocket traffic's reading of a server's Upgrade answer
 * (harness/traffic/ws_handshake.c) on hostile bytes: it must never read
 * past what it was given, say "incomplete" for every proper prefix of a
 * complete header, and give the same answer whatever follows it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "traffic/ws_int.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 32768)
    return 0;
  /* An exact-size copy: ASan sees any read past the end. */
  char *buf = malloc(size ? size : 1);
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  int status = 0, accepted = 0;
  int n = fl_ws_answer(buf, size, KEY, &status, &accepted);
  if (n > (int)size)
    abort();
  if (n > 0) {
    if (status < 100 || status > 599 || (accepted && status != 101))
      abort();
    /* The header alone gives the same answer. */
    int s2 = 0, a2 = 0;
    if (fl_ws_answer(buf, (size_t)n, KEY, &s2, &a2) != n || s2 != status ||
        a2 != accepted)
      abort();
    /* A proper prefix of it is incomplete (or not HTTP at all). */
    int s3 = 0, a3 = 0;
    int k = fl_ws_answer(buf, (size_t)n - 1, KEY, &s3, &a3);
    if (k != 0 && k != -EPROTO)
      abort();
  }
  free(buf);
  return 0;
}
