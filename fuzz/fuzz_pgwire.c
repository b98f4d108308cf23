/*
 * The PostgreSQL codec (harness/proxy/pgwire.c) on hostile bytes, both
 * ways, with pg_error hitting as the input says. The proxy around it is
 * stubbed: what the codec hands on is read byte by byte (so ASan sees a
 * read out of bounds), its ending stops the feeding as on_read would.
 *
 * Input: byte 0 the fault (bits 0-1: stage any/startup/query, bit 2:
 * close=yes, bits 3-4: severity, bit 5: the code, bit 6: match=), byte 1 which
 * messages it hits (message number mod 8), then chunks: a tag (bit 7: from the
 * server; bits 0-6: length) and that many bytes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pgwire.h"
#include "proxy/proxy_int.h"

static struct prule rule;
static uint8_t hit_mask;
static volatile uint8_t sink;

void fl_conn_send(struct conn *c, int d, const char *data, size_t n) {
  (void)c, (void)d;
  for (size_t i = 0; i < n; i++)
    sink ^= (uint8_t)data[i];
}

void fl_conn_end(struct conn *c, enum end how) {
  if (c->ending == END_NONE)
    c->ending = how;
}

const struct prule *
fl_toxics_proto_hit(struct conn *c, uint64_t actions, uint64_t msg,
                    int (*filter)(const struct prule *r, void *arg),
                    void *arg) {
  (void)c, (void)actions;
  if (filter != NULL && !filter(&rule, arg))
    return NULL;
  return (hit_mask >> (msg % 8)) & 1 ? &rule : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  memset(&rule, 0, sizeof(rule));
  rule.action = FL_ACT_PG_ERROR;
  rule.proto.stage = data[0] & 3u;
  rule.proto.close = data[0] & 4u ? 1 : 0;
  rule.proto.severity = (data[0] >> 3) & 3u;
  memcpy(rule.proto.code, data[0] & 0x20 ? "53300" : "40001", 6);
  if (data[0] & 0x40)
    memcpy(rule.proto.match, "select|$1", 10);
  hit_mask = data[1];
  struct conn c;
  memset(&c, 0, sizeof(c));
  c.nhits = 1;
  const struct fl_codec *codec = &fl_codec_postgres;
  void *state = calloc(1, codec->state_size);
  if (state == NULL)
    return 0;
  size_t at = 2;
  while (at < size && c.ending == END_NONE) {
    int d = data[at] & 0x80 ? DOWN : UP;
    size_t n = data[at] & 0x7f;
    at++;
    if (n > size - at)
      n = size - at;
    if (n == 0)
      continue;
    /* A copy exactly n long, as the proxy's read buffer holds no more. */
    char *chunk = malloc(n);
    if (chunk == NULL)
      break;
    memcpy(chunk, data + at, n);
    int rc = codec->feed(&c, state, d, chunk, n);
    free(chunk);
    at += n;
    if (rc != 0)
      break;
  }
  codec->fini(state);
  free(state);
  return 0;
}
