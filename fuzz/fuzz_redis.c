/*
 * The Redis codec (harness/proxy/redis.c, with its RESP reader resp.c) on
 * hostile bytes, both ways: commands, pipelined and inside MULTI, and
 * replies, RESP2 and RESP3, with redis_error answering commands as the
 * input says, set and cleared mid-stream, and the connection cut where it
 * says (fuzz_proxy.h: the stream's steps; the proxy around the codec is
 * stubbed there).
 *
 * Input: byte 0 the rules (bits 0-1: a redis_error's match=, bits 2-4 its
 * reply=; bit 5: a second one, slot 63, bits 6-7 its match=), byte 1
 * which commands they hit (command number mod 8), byte 2 the first one's
 * slot (mod 63), then the steps.
 *
 * Besides ASan and UBSan: with no fault hitting, what went out must be
 * what came in (less a command held back at the end, at most 256 bytes).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_proxy.h"

extern const struct fl_codec fl_codec_redis; /* redis.c */

static const char *const matches[4] = {"", "GET|SET", "exec, INCR",
                                       "AUTH HELLO|client|Quit"};

static void rule(int slot, unsigned match, unsigned reply) {
  static const char *const replies[7] = {
      "LOADING", "oom", "-ERR custom", "", "two\r\nlines", "NOAUTH", "busy"};
  struct prule *r = fuzz_proxy_rule(slot, FL_ACT_REDIS_ERROR, FL_DIR_BOTH);
  strcpy(r->proto.match, matches[match & 3]);
  if ((reply & 7) < 7) {
    strcpy(r->proto.reply, replies[reply & 7]);
  } else { /* as long as reply= may be */
    memset(r->proto.reply, 'x', sizeof(r->proto.reply) - 1);
    r->proto.reply[sizeof(r->proto.reply) - 1] = '\0';
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  fuzz_proxy_reset(&fl_codec_redis, data[1]);
  rule(data[2] % 63, data[0], data[0] >> 2);
  if (data[0] & 0x20)
    rule(63, data[0] >> 6, 3);
  fuzz_proxy_run(data + 3, size - 3);
  if (fuzz.hits == 0) {
    for (int d = 0; d < 2; d++)
      if (!fuzz_proxy_prefix(d))
        abort(); /* rewritten with no fault hitting */
    if (!fuzz.c.closing && (fuzz.in[UP].len - fuzz.out[UP].len > 256 ||
                            fuzz.in[DOWN].len != fuzz.out[DOWN].len))
      abort(); /* bytes lost */
  }
  return 0;
}
