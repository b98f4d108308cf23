/*
 * The WebSocket codec (row "ws" of codec.c): lets the HTTP Upgrade
 * handshake pass, then follows RFC 6455 frames both ways, and applies
 *   ws_close   a Close frame of ours (code=, reply= as its reason) sent
 *              to the client (dir=down) or the server (dir=up), then the
 *              connection ends; p=, after=, times= count connections;
 *   ws_nopong  Pong frames going dir= (down: the server's answers to the
 *              client's Pings) are dropped; the connection stays open;
 *   ws_drop    a share p= of the data messages going dir= are dropped,
 *              whole: their first frame and every continuation frame.
 * Control frames inside a fragmented message are frames of their own.
 * A compressed message (permessage-deflate, RSV1) in a direction that
 * keeps its compression context is never dropped: the peer's inflater
 * would lose its dictionary and fail the connection with 1002, a fault of
 * ours that no real relay makes. Such a message passes, uncounted.
 *
 * Framing only: a frame's header (2 to 14 bytes) is read for its opcode
 * and length, its payload skipped by length. Masking needs no work: a
 * frame is dropped or passed whole, and each carries its own key.
 *
 * Idle cost. With no ws fault on the connection, chunks are handed on as
 * they came. With one acting on a direction, a frame's header is held
 * until it is whole (at most 14 bytes), then passed on or dropped.
 *
 * The handshake: the response head is read for its status; a 101 opens
 * the frames (the client sends none before it has that answer). Any other
 * answer leaves the connection alone from then on (plain HTTP).
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <string.h>

#define BIT(a) (UINT64_C(1) << (a))
#define MAX_DECIDED 8

/* One direction's frames. */
struct wdir {
  uint8_t hdr[14];
  size_t nhdr;    /* header bytes read of the frame to come */
  uint64_t left;  /* payload bytes left of the current frame */
  uint64_t msgs;  /* data messages begun: numbers them for p= */
  uint64_t pongs; /* pongs read */
  unsigned in_frame : 1, dropping : 1, msg_drop : 1, hold : 1, closed : 1;
};

struct wstate {
  /* Handshake: "\r\n\r\n" matched so far, the status line's start, the
   * last bytes of the head (lower case) for the extension it agreed. */
  int head_match;
  size_t nline;
  char line[16];
  char tail[32];
  uint8_t deflate; /* permessage-deflate agreed; then the directions */
  uint8_t fresh;   /* whose context is reset per message (FL_DIR_* bits) */
  unsigned open : 1, blind : 1;
  uint8_t closing; /* FL_DIR_* bits still owed a Close frame of ours */
  uint16_t close_code;
  char reason[124];
  uint32_t decided[MAX_DECIDED]; /* ws_close rules this connection saw */
  int ndecided;
  struct wdir dir[2];
};

static uint8_t dir_bit(int d) { return d == UP ? FL_DIR_UP : FL_DIR_DOWN; }

static int armed(const struct conn *c, int d) {
  for (int i = 0; i < c->nhits; i++) {
    const struct prule *r = &c->p->rules[c->hits[i].slot];
    if ((r->action == FL_ACT_WS_NOPONG || r->action == FL_ACT_WS_DROP) &&
        (r->dir & dir_bit(d)))
      return 1;
  }
  return 0;
}

struct pick {
  struct wstate *st;
  int d;
};

static int is_decided(const struct wstate *st, uint32_t id) {
  for (int i = 0; i < st->ndecided; i++)
    if (st->decided[i] == id)
      return 1;
  return 0;
}

static int pick_filter(const struct prule *r, void *arg) {
  const struct pick *k = arg;
  if (r->action == FL_ACT_WS_CLOSE)
    return !is_decided(k->st, r->id);
  return (r->dir & dir_bit(k->d)) != 0;
}

/* ---- our Close frames -------------------------------------------- */

/* The reason real servers give with each code, when reply= gives none. */
static const char *default_reason(unsigned code) {
  switch (code) {
  case 1001:
    return "going away";
  case 1012:
    return "service restart";
  case 1013:
    return "try again later";
  default:
    return "internal error";
  }
}

/* A Close frame towards direction d: a client's (UP) is masked. */
static void send_close(struct conn *c, struct wstate *st, int d) {
  uint8_t f[2 + 4 + 2 + sizeof(st->reason)];
  size_t rlen = strlen(st->reason), at = 0;
  uint8_t key[4] = {0x5a, 0x17, 0xc3, 0x81};
  f[at++] = 0x88; /* FIN, Close */
  f[at++] = (uint8_t)((d == UP ? 0x80 : 0) | (2 + rlen));
  if (d == UP) {
    memcpy(f + at, key, 4);
    at += 4;
  }
  size_t start = at;
  f[at++] = (uint8_t)(st->close_code >> 8);
  f[at++] = (uint8_t)(st->close_code & 0xff);
  memcpy(f + at, st->reason, rlen);
  at += rlen;
  if (d == UP)
    for (size_t i = start; i < at; i++)
      f[i] ^= key[(i - start) & 3];
  fl_conn_send(c, d, (const char *)f, at);
  st->dir[d].closed = 1;
  st->closing &= (uint8_t)~dir_bit(d);
  if (st->closing == 0 && !c->closing)
    fl_conn_end(c, END_CLOSE);
}

/* Sends the Close frames owed to directions at a frame boundary. */
static void close_ready(struct conn *c, struct wstate *st) {
  for (int d = 0; d < 2 && !c->closing; d++)
    if ((st->closing & dir_bit(d)) && st->open && !st->dir[d].in_frame &&
        st->dir[d].nhdr == 0)
      send_close(c, st, d);
}

/* Decides the ws_close rules this connection has not seen yet. */
static void decide_close(struct conn *c, struct wstate *st) {
  if (st->closing != 0 || st->dir[UP].closed || st->dir[DOWN].closed)
    return;
  struct pick k = {st, DOWN};
  const struct prule *r =
      fl_toxics_proto_hit(c, BIT(FL_ACT_WS_CLOSE), c->num, pick_filter, &k);
  for (int i = 0; i < c->nhits && st->ndecided < MAX_DECIDED; i++) {
    const struct prule *h = &c->p->rules[c->hits[i].slot];
    if (h->action == FL_ACT_WS_CLOSE && !is_decided(st, h->id))
      st->decided[st->ndecided++] = h->id;
  }
  if (r == NULL)
    return;
  st->close_code = (uint16_t)(r->proto.status ? r->proto.status : 1011);
  const char *why =
      r->proto.reply[0] ? r->proto.reply : default_reason(st->close_code);
  size_t n = strnlen(why, sizeof(st->reason) - 1);
  memcpy(st->reason, why, n);
  st->reason[n] = '\0';
  st->closing = r->dir;
}

static void ws_apply(struct conn *c, void *state) {
  struct wstate *st = state;
  if (!st->open || st->blind)
    return;
  decide_close(c, st);
  close_ready(c, st);
}

/* ---- frames -------------------------------------------------------- */

static size_t header_len(const uint8_t *h) {
  size_t len7 = h[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

static uint64_t payload_len(const uint8_t *h) {
  uint64_t len = h[1] & 0x7f;
  size_t n = len == 126 ? 2 : len == 127 ? 8 : 0;
  if (n == 0)
    return len;
  len = 0;
  for (size_t i = 0; i < n; i++)
    len = len << 8 | h[2 + i];
  return len;
}

/* A whole header: is its frame dropped? */
static int frame_dropped(struct conn *c, struct wstate *st, int d) {
  struct wdir *w = &st->dir[d];
  int op = w->hdr[0] & 0x0f;
  struct pick k = {st, d};
  if (op == 0xA) {
    uint64_t msg = w->pongs++;
    return w->hold &&
           fl_toxics_proto_hit(c, BIT(FL_ACT_WS_NOPONG), msg << 1 | (uint64_t)d,
                               pick_filter, &k) != NULL;
  }
  if (op & 0x8) /* Ping, Close: never ours to drop */
    return 0;
  if (op != 0) { /* a message begins */
    uint64_t msg = w->msgs++;
    int inflated =
        (w->hdr[0] & 0x40) && st->deflate && !(st->fresh & dir_bit(d));
    w->msg_drop =
        w->hold && !inflated &&
        fl_toxics_proto_hit(c, BIT(FL_ACT_WS_DROP), msg << 1 | (uint64_t)d,
                            pick_filter, &k) != NULL;
  }
  return w->msg_drop;
}

/* Frames read in direction d; what passes is handed on as it came. */
static void feed_frames(struct conn *c, struct wstate *st, int d,
                        const char *data, size_t n) {
  struct wdir *w = &st->dir[d];
  size_t i = 0, from = 0;
  while (i < n && !c->closing && !w->closed) {
    if (w->in_frame) {
      uint64_t take = n - i < w->left ? n - i : w->left;
      i += (size_t)take;
      w->left -= take;
      if (w->dropping)
        from = i;
      if (w->left == 0)
        w->in_frame = 0;
      continue;
    }
    if (w->nhdr == 0) { /* a boundary */
      if (st->closing & dir_bit(d)) {
        fl_conn_send(c, d, data + from, i - from);
        send_close(c, st, d);
        return;
      }
      /* A message being dropped is dropped to its end. */
      w->hold = armed(c, d) || w->msg_drop;
      if (w->hold) {
        fl_conn_send(c, d, data + from, i - from);
        from = i;
      }
    }
    w->hdr[w->nhdr++] = (uint8_t)data[i++];
    if (w->nhdr < 2 || w->nhdr < header_len(w->hdr))
      continue;
    int drop = frame_dropped(c, st, d);
    if (w->hold && !drop)
      fl_conn_send(c, d, (const char *)w->hdr, w->nhdr);
    if (w->hold)
      from = i;
    w->left = payload_len(w->hdr);
    w->nhdr = 0;
    w->in_frame = w->left > 0;
    w->dropping = drop;
  }
  if (w->closed || c->closing)
    return;
  if (!(w->hold && w->nhdr > 0)) /* a held header part waits for the rest */
    fl_conn_send(c, d, data + from, n - from);
  if (!w->in_frame && w->nhdr == 0)
    close_ready(c, st);
}

/* ---- the handshake ------------------------------------------------- */

/* Has the head, read up to ch, just ended a token in st->tail? */
static int ends_with(const struct wstate *st, const char *token) {
  size_t n = strlen(token);
  return memcmp(st->tail + sizeof(st->tail) - n, token, n) == 0;
}

/* The response's extension parameters, as its bytes go by. The client's
 * ("client_no_context_takeover") is the UP direction's. */
static void watch_extensions(struct wstate *st, char ch) {
  memmove(st->tail, st->tail + 1, sizeof(st->tail) - 1);
  st->tail[sizeof(st->tail) - 1] =
      (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  if (ends_with(st, "permessage-deflate"))
    st->deflate = 1;
  else if (ends_with(st, "client_no_context_takeover"))
    st->fresh |= FL_DIR_UP;
  else if (ends_with(st, "server_no_context_takeover"))
    st->fresh |= FL_DIR_DOWN;
}

/* The response head, up to its end: the rest of the chunk is frames. */
static size_t feed_head(struct conn *c, struct wstate *st, const char *data,
                        size_t n) {
  static const char end[] = "\r\n\r\n";
  size_t i = 0;
  while (i < n && st->head_match < 4) {
    char ch = data[i++];
    if (st->nline < sizeof(st->line) - 1)
      st->line[st->nline++] = ch;
    watch_extensions(st, ch);
    st->head_match = ch == end[st->head_match] ? st->head_match + 1
                     : ch == '\r'              ? 1
                                               : 0;
  }
  fl_conn_send(c, DOWN, data, i);
  if (st->head_match == 4) {
    /* "HTTP/1.1 101 ..." */
    if (st->nline >= 12 && memcmp(st->line + 8, " 101", 4) == 0) {
      st->open = 1;
      ws_apply(c, st);
    } else {
      st->blind = 1;
    }
  }
  return i;
}

static int ws_feed(struct conn *c, void *state, int d, const char *data,
                   size_t n) {
  struct wstate *st = state;
  if (st->blind || (d == UP && !st->open)) {
    fl_conn_send(c, d, data, n);
    return 0;
  }
  if (d == DOWN && !st->open) {
    size_t k = feed_head(c, st, data, n);
    data += k;
    n -= k;
    if (n == 0 || c->closing)
      return 0;
    if (st->blind) {
      fl_conn_send(c, d, data, n);
      return 0;
    }
  }
  if (st->dir[d].closed) /* we closed that way: nothing more goes */
    return 0;
  feed_frames(c, st, d, data, n);
  return 0;
}

const struct fl_codec fl_codec_ws = {
    .name = "ws",
    .state_size = sizeof(struct wstate),
    .feed = ws_feed,
    .apply = ws_apply,
};
