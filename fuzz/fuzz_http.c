/*
 * The HTTP codec (harness/proxy/http.c, with its HTTP/1.1 framing
 * http1.c) on hostile bytes, both ways: requests, pipelined, and their
 * responses, with http_error, http_delay and http_cut acting as the input
 * says, set and cleared mid-stream, and the connection cut where it says
 * (fuzz_proxy.h: the stream's steps; the proxy around the codec is
 * stubbed there).
 *
 * Input: byte 0 the rules (bit 0: http_error, bit 1: http_delay, bit 2:
 * http_cut; bits 3-4: their match=; bit 5: http_error's reply=, JSON, bit
 * 6: its header=, bit 7: a reply= as long as may be), byte 1 which
 * messages they hit (message number mod 8), byte 2 http_cut's bytes= (and
 * http_delay's ms=), byte 3 http_error's status= (mod 20), then the
 * steps.
 *
 * Besides ASan and UBSan: with no fault hitting, what went out must be
 * what came in (less a request head held back at the end).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_proxy.h"

extern const struct fl_codec fl_codec_http; /* http.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const matches[4] = {"", "GET /a*", "POST", "* /v1/[a-c]*"};
  static const uint32_t statuses[20] = {0,   100, 101, 200, 204, 304, 400,
                                        401, 403, 404, 408, 409, 413, 422,
                                        429, 500, 502, 503, 504, 599};
  if (size < 4)
    return 0;
  fuzz_proxy_reset(&fl_codec_http, data[1]);
  const char *match = matches[(data[0] >> 3) & 3];
  if (data[0] & 1) {
    struct prule *r = fuzz_proxy_rule(5, FL_ACT_HTTP_ERROR, FL_DIR_BOTH);
    strcpy(r->proto.match, match);
    r->proto.status = statuses[data[3] % 20];
    if (data[0] & 0x20)
      strcpy(r->proto.reply, "{\"error\":\"injected\"}");
    if (data[0] & 0x40)
      strcpy(r->proto.headers,
             "Retry-After: 1| X-A: b |no colon\r\nContent-Type: text/x");
    if (data[0] & 0x80) {
      memset(r->proto.reply, 'b', sizeof(r->proto.reply) - 1);
      r->proto.reply[sizeof(r->proto.reply) - 1] = '\0';
    }
  }
  if (data[0] & 2) {
    struct prule *r = fuzz_proxy_rule(40, FL_ACT_HTTP_DELAY, FL_DIR_DOWN);
    strcpy(r->proto.match, match);
    r->ms = (uint32_t)data[2] + 1;
  }
  if (data[0] & 4) {
    struct prule *r = fuzz_proxy_rule(63, FL_ACT_HTTP_CUT, FL_DIR_DOWN);
    strcpy(r->proto.match, match);
    r->bytes = data[2];
  }
  fuzz_proxy_run(data + 4, size - 4);
  if (fuzz.hits == 0) {
    for (int d = 0; d < 2; d++)
      if (!fuzz_proxy_prefix(d))
        abort(); /* rewritten with no fault hitting */
    if (!fuzz.c.closing && fuzz.in[DOWN].len != fuzz.out[DOWN].len)
      abort(); /* a response's bytes lost */
  }
  return 0;
}
