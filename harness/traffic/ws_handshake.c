/*
 * The WebSocket opening handshake (RFC 6455 section 4): the client's
 * Upgrade request with a random key, and the check of the server's
 * answer, whose Sec-WebSocket-Accept must be base64(SHA-1(key + GUID)).
 * SHA-1 and base64 are nettle's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "ws_int.h"

static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void fl_ws_accept_of(const char *key, char out[29]) {
  struct sha1_ctx ctx;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&ctx);
  sha1_update(&ctx, strlen(key), (const uint8_t *)key);
  sha1_update(&ctx, sizeof(guid) - 1, (const uint8_t *)guid);
  sha1_digest(&ctx, sizeof(digest), digest);
  base64_encode_raw(out, sizeof(digest), digest);
  out[28] = '\0';
}

void fl_ws_new_key(char key[25]) {
  uint8_t raw[16];
  /* The key only has to differ between connections (it is no secret):
   * when the kernel has no entropy to give, the clock's does. */
  if (getrandom(raw, sizeof(raw), GRND_NONBLOCK) != (ssize_t)sizeof(raw)) {
    uint64_t t = uv_hrtime();
    for (size_t i = 0; i < sizeof(raw); i++)
      raw[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)i;
  }
  base64_encode_raw(key, sizeof(raw), raw);
  key[24] = '\0';
}

int fl_ws_request(char *buf, size_t size, const char *host, int port,
                  const char *path, const char *key, const char *extra) {
  int n = snprintf(buf, size,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s:%d\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "User-Agent: faultline/" FL_VERSION "\r\n"
                   "%s"
                   "\r\n",
                   path, host, port, key, extra);
  return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

/* The value of header `name` in the header block h[0..len), trimmed, into
 * out; 1 when found. */
static int header(const char *h, size_t len, const char *name, char *out,
                  size_t size) {
  size_t nlen = strlen(name);
  const char *end = h + len;
  for (const char *line = h; line < end;) {
    const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
    if (eol == NULL)
      eol = end;
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      const char *ve = eol;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      snprintf(out, size, "%.*s", (int)(ve - v), v);
      return 1;
    }
    line = eol + 2;
  }
  return 0;
}

int fl_ws_answer(const char *buf, size_t len, const char *key, int *status,
                 int *accepted) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  *accepted = 0;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
    return -EPROTO;
  if (end == NULL)
    return len > 16384 ? -EPROTO : 0; /* a header that never ends */
  /* The status line alone, terminated: buf is not, and sscanf's %d would
   * skip the blank line's CR LFs and read on past it. */
  char line[64];
  const char *eol = memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2);
  snprintf(line, sizeof(line), "%.*s", (int)(eol - buf), buf);
  int code = 0;
  if (sscanf(line, "HTTP/%*d.%*d %3d", &code) != 1 || code < 100 || code > 599)
    return -EPROTO;
  *status = code;
  size_t hlen = (size_t)(end - buf) + 4;
  char want[29], got[64], upgrade[32];
  fl_ws_accept_of(key, want);
  *accepted = code == 101 &&
              header(buf, hlen, "Upgrade", upgrade, sizeof(upgrade)) &&
              strcasecmp(upgrade, "websocket") == 0 &&
              header(buf, hlen, "Sec-WebSocket-Accept", got, sizeof(got)) &&
              strcmp(got, want) == 0;
  return (int)hlen;
}
