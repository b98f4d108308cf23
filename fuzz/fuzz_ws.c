/*
 * The WebSocket codec (harness/proxy/ws.c) on hostile bytes, both ways:
 * the Upgrade request and its answer (a 101 opens the frames), then RFC
 * 6455 frames, with ws_close, ws_nopong and ws_drop acting as the input
 * says, set and cleared mid-stream, and the connection cut where it says
 * (fuzz_proxy.h: the stream's steps; the proxy around the codec is
 * stubbed there).
 *
 * Input: byte 0 the rules (bits 0-1: ws_close's dir=, 0 none; bits 2-3
 * ws_nopong's; bits 4-5 ws_drop's; bit 6: ws_close has a reply=), byte 1
 * which messages they hit (message number mod 8), byte 2 ws_close's
 * code= (bits 0-2) and its reply='s length (bits 3-7, times 8), then the
 * steps.
 *
 * Besides ASan and UBSan, what went out must be what came in: with no
 * fault hitting, the same bytes (less a frame header held back at the
 * end); with some, the same frames less those dropped, then perhaps a
 * Close frame of ours.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_proxy.h"

extern const struct fl_codec fl_codec_ws; /* ws.c */

/* Is out[0..n) what is left of in[0..m) once some bytes are taken out? */
static int subsequence(const char *out, size_t n, const char *in, size_t m) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    while (j < m && in[j] != out[i])
      j++;
    if (j == m)
      return 0;
    j++;
  }
  return 1;
}

/* The length of a Close frame of ours ending out[0..n) (send_close's:
 * masked with its fixed key towards the server), or 0. */
static size_t our_close(const uint8_t *out, size_t n, int d) {
  static const uint8_t key[4] = {0x5a, 0x17, 0xc3, 0x81};
  size_t head = d == UP ? 6 : 2;
  for (size_t len = 2; len <= 125; len++) {
    if (n < head + len)
      break;
    const uint8_t *f = out + n - head - len;
    if (f[0] == 0x88 && f[1] == ((d == UP ? 0x80 : 0) | len) &&
        (d != UP || memcmp(f + 2, key, 4) == 0))
      return head + len;
  }
  return 0;
}

static void check(int close_rule) {
  for (int d = 0; d < 2; d++) {
    const struct fuzz_bytes *in = &fuzz.in[d], *out = &fuzz.out[d];
    if (fuzz.hits == 0) {
      if (!fuzz_proxy_prefix(d))
        abort(); /* rewritten with no fault hitting */
      /* What is held back: at most a frame header's first 13 bytes. */
      if (!fuzz.c.closing && in->len - out->len > 13)
        abort();
      continue;
    }
    if (out->len == 0 || in->len > (1u << 20) || out->len > (1u << 20))
      continue;
    if (subsequence(out->p, out->len, in->p, in->len))
      continue;
    size_t ours =
        close_rule ? our_close((const uint8_t *)out->p, out->len, d) : 0;
    if (ours == 0 || !subsequence(out->p, out->len - ours, in->p, in->len))
      abort(); /* bytes that came from neither side nor us */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint16_t codes[8] = {0,    1000, 1001, 1011,
                                    1012, 1013, 3000, 4999};
  if (size < 3)
    return 0;
  fuzz_proxy_reset(&fl_codec_ws, data[1]);
  uint8_t close_dir = data[0] & 3, nopong_dir = (data[0] >> 2) & 3,
          drop_dir = (data[0] >> 4) & 3;
  if (close_dir) {
    struct prule *r = fuzz_proxy_rule(3, FL_ACT_WS_CLOSE, close_dir);
    r->proto.status = codes[data[2] & 7];
    if (data[0] & 0x40) { /* longer than a Close frame's reason may be */
      size_t n = (size_t)(data[2] >> 3) * 8;
      memset(r->proto.reply, 'r', n);
      r->proto.reply[n] = '\0';
    }
  }
  if (nopong_dir)
    fuzz_proxy_rule(17, FL_ACT_WS_NOPONG, nopong_dir);
  if (drop_dir)
    fuzz_proxy_rule(63, FL_ACT_WS_DROP, drop_dir);
  fuzz_proxy_run(data + 3, size - 3);
  check(close_dir != 0);
  return 0;
}
