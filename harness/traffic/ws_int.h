/*
 * What the WebSocket files of the traffic module share: ws_handshake.c
 * (the HTTP Upgrade: request, answer, Sec-WebSocket-Accept), ws_conn.c
 * (one connection: TCP on libuv, frames through wslay) and ws.c (an
 * endpoint's connections, their schedule and records). Nothing outside
 * the traffic module includes it.
 */
#ifndef FL_TRAFFIC_WS_H
#define FL_TRAFFIC_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "traffic_int.h"

/* ---- ws_handshake.c ---- */

/* The Sec-WebSocket-Accept of key: base64(SHA-1(key + the RFC's GUID)),
 * 28 characters and a NUL into out[29]. */
void fl_ws_accept_of(const char *key, char out[29]);
/* A fresh Sec-WebSocket-Key (16 random bytes, base64) into key[25]. */
void fl_ws_new_key(char key[25]);
/* The Upgrade request for host:port and path with key and the extra
 * header lines ("Name: value\r\n"..., may be ""), into buf: its
 * length, or -ENAMETOOLONG when it does not fit. */
int fl_ws_request(char *buf, size_t size, const char *host, int port,
                  const char *path, const char *key, const char *extra);
/* Reads the answer in buf[0..len): 0 while its header is incomplete;
 * once whole, its length (what follows is frames), *status its HTTP
 * status and *accepted 1 when it is a 101 with the right
 * Sec-WebSocket-Accept for key; -EPROTO when it is not HTTP. */
int fl_ws_answer(const char *buf, size_t len, const char *key, int *status,
                 int *accepted);

/* ---- ws.c and ws_conn.c ---- */

struct ws_conn;
struct fl_path_tmpl;

/* A WebSocket endpoint. */
struct ws_ep {
  struct glue *g;
  char *name, *path, *host;
  char *headers; /* the endpoint's own, "Name: value\r\n"... ("" none) */
  int port;
  struct sockaddr_storage addr;
  struct fl_ws_spec spec;
  double timeout;
  /* The message template: literal texts and the placeholders between
   * them (nparts literals, nparts - 1 placeholders). */
  char **lits;
  struct fl_path_tmpl **holes;
  size_t nparts;
  uint64_t key, nmsg; /* the draws' stream; messages drawn so far */
  uint64_t t0;
  int started, stopping, closing;
  uv_timer_t opener; /* the next connection due */
  int opened;        /* connections opened so far */
  struct ws_conn **slots;
  struct fl_ws_conn *conns;
  size_t nconns, capconns;
  struct fl_ws_msg *msgs;
  size_t nmsgs, capmsgs;
};

/* ws.c: the endpoint. new copies the spec (0, -EINVAL for a bad one or
 * a base URL that is not http://HOST:PORT, -ENOMEM); start opens its
 * connections on schedule from t0 (uv_hrtime); stop closes them (1000)
 * and opens no more; close closes its libuv handles (each counted off the
 * glue as it closes); release frees it, once they all have. */
int fl_ws_ep_new(struct glue *g, const char *base_url,
                 const struct fl_endpoint_spec *e, struct ws_ep **out);
void fl_ws_ep_start(struct ws_ep *w, uint64_t t0);
void fl_ws_ep_stop(struct ws_ep *w);
void fl_ws_ep_close(struct ws_ep *w);
void fl_ws_ep_release(struct ws_ep *w);
void fl_ws_ep_records(const struct ws_ep *w, struct fl_ws_records *out);

/* Seconds since the start. */
double fl_ws_now(const struct ws_ep *w);
/* A new record for slot's next attempt: its index, or -ENOMEM. */
long fl_ws_record_conn(struct ws_ep *w, int slot, int attempt, int slow);
/* Records a data message received on conn record `rec`. */
void fl_ws_record_msg(struct ws_ep *w, size_t rec, double rtt);
/* The next message's text (owned by the caller), or NULL. */
char *fl_ws_draw_message(struct ws_ep *w);

/* ws_conn.c: slot's connection. new makes it (its timers counted on the
 * glue) and opens its first attempt; stop closes an open one with 1000
 * and reconnects no more; close closes its handles, freeing it when the
 * last has (counted off the glue). */
int fl_ws_conn_new(struct ws_ep *w, int slot, struct ws_conn **out);
void fl_ws_conn_stop(struct ws_conn *c);
void fl_ws_conn_close(struct ws_conn *c);

#endif
