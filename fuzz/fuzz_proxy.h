/*
 * The proxy around one codec, stubbed for the codec targets (fuzz_ws.c,
 * fuzz_redis.c, fuzz_http.c): one connection, no libuv loop, no socket.
 * What the codec hands on with fl_conn_send() is copied byte by byte (so
 * ASan sees a read out of bounds) into a transcript per direction; rules
 * live in the proxy's slots and act through the connection's hits, as in
 * toxics.c, and a protocol fault hits the messages the input says.
 *
 * The stream, after a target's own header bytes, is a list of steps:
 *   T, then T & 0x7f bytes (T & 0x7f != 0): a chunk read in direction
 *       T & 0x80 ? DOWN (from the server) : UP (from the client), fed as
 *       an exact-size copy, as on_read feeds the read buffer;
 *   0x00 K: the rule K % nrules is cleared if it acts, or (again, as a new
 *       rule) set if not; then the codec's apply, as fl_toxics_apply does
 *       after a generation change;
 *   0x80 K: a cut, by K & 3: 0 an end from now on closes at once (nothing
 *       queued), 1 the next send fails (a reset writing), 2 the
 *       connection ends once K >> 2 more bytes are read, the chunk that
 *       reaches it cut there (limit_data, reset_peer bytes=), 3 the
 *       connection ends now (a timer).
 * As in conn.c, nothing is fed once the connection is ending.
 */
#ifndef FL_FUZZ_PROXY_H
#define FL_FUZZ_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy_int.h"

/* What passed one way: the bytes fed, and the bytes handed on. */
struct fuzz_bytes {
  char *p;
  size_t len, cap;
};

struct fuzz_proxy {
  fl_proxy_t p;
  struct conn c;
  struct fuzz_bytes in[2], out[2];
  uint64_t hits;        /* protocol faults that hit a message */
  uint8_t hit_mask;     /* message number mod 8: hit or not */
  int slots[8], nrules; /* the rules the input made, by slot */
  uint64_t holds;       /* fl_conn_hold calls */
  unsigned end_now : 1, fail_send : 1;
};

extern struct fuzz_proxy fuzz;

/* A fresh proxy and connection for codec; rules hit as hit_mask says. */
void fuzz_proxy_reset(const struct fl_codec *codec, uint8_t hit_mask);

/* A new rule in the proxy's slot (0 to FL_MAX_RULES - 1), zeroed but for
 * its id, action and dir, acting on the connection. */
struct prule *fuzz_proxy_rule(int slot, int action, uint8_t dir);

/* Runs the steps of data[0..n) through the codec (state zeroed first),
 * then its fini. */
void fuzz_proxy_run(const uint8_t *data, size_t n);

/* Is what went out in direction d what came in, or a prefix of it? */
int fuzz_proxy_prefix(int d);

#endif
