/*
 * The stream-fault proxy's own state (see proxy.h for what it does), shared
 * by the files that make it up: proxy.c (the listener, the rules, the
 * public API), toxics.c (which faults hit a connection, and what
 * they do) and conn.c (a connection's pipes). A proxy holds the
 * listener and the proxy faults aimed at its dependency; each accepted
 * connection holds a connection to the dependency and two pipes: UP reads
 * the client and writes the dependency, DOWN the reverse.
 */
#ifndef FL_PROXY_PRIV_H
#define FL_PROXY_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "control/control.h"
#include "proxy.h"

/* The read buffer all of a proxy's connections share, and a millisecond
 * in nanoseconds. */
#define READ_BUF (64u * 1024u)
#define MS 1000000ull

enum { UP = 0, DOWN = 1 };
enum end { END_NONE, END_CLOSE, END_RESET };

/* A proxy fault aimed at our dependency, as of the last generation. */
struct prule {
  uint32_t id; /* 0: no proxy fault of ours in this slot */
  uint8_t action, dir, has_ms;
  uint32_t ms, jitter, size;
  uint64_t rate, bytes, threshold, after, times;
  struct fl_proto proto; /* protocol faults (FL_ACT_IS_PROTO) */
};

struct conn;

/* A protocol the proxy follows (codec.c holds the table, one file per
 * protocol holds its ops). A proxy that speaks one runs its codec on every
 * connection from the first byte, in both directions, so that a protocol
 * fault switched on at any moment acts on whole messages: the codec sees
 * every byte read and hands on what passes with fl_conn_send(). With no
 * protocol fault on the connection it only follows the framing (skipping
 * by lengths), and hands bytes on as they came. */
struct fl_codec {
  const char *name;  /* as in a service file: "redis", "postgres", "http" */
  size_t state_size; /* per connection, zeroed, freed with it */
  /* Bytes read in direction d (UP: from the client). Returns 0, or a
   * negative errno to close the connection with a reset (bytes the
   * codec cannot follow: it must then stop rewriting, not guess). */
  int (*feed)(struct conn *c, void *state, int d, const char *data, size_t n);
  /* Frees what the state holds (may be NULL). */
  void (*fini)(void *state);
  /* The rules on the connection changed (may be NULL): for faults that
   * act on an idle connection, not on the bytes it reads. */
  void (*apply)(struct conn *c, void *state);
};

/* A rule acting on a connection, since when and from which byte counts. */
struct hit {
  int slot;
  int spent; /* reset_peer/limit_data fired, or times= ran out */
  uint64_t since_ns;
  uint64_t base[2];
};

/* What acts on one direction, merged from the connection's hits. */
struct effects {
  uint64_t delay_mask; /* slots whose held-back bytes we count */
  uint64_t latency_ns, jitter_ns;
  uint64_t rate;
  uint32_t slice_size;
  uint64_t slice_ns;
  uint64_t slow_close_ns;
  int stall;
};

/* Bytes on their way: queued in a pipe, then handed to uv_write. */
struct chunk {
  struct chunk *next;
  struct pipe *pp;
  uint64_t due_ns;
  size_t len, off;
  uv_write_t req;
  char data[];
};

struct pipe {
  struct conn *c;
  uv_stream_t *src, *dst;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  struct chunk *head, *tail;
  size_t queued;   /* bytes in our queue */
  uint64_t passed; /* bytes read from src */
  uint64_t chunks; /* chunks read: numbers jitter draws */
  uint64_t next_ns, last_due_ns;
  uint64_t eof_at_ns; /* slow_close: EOF passes on not before this */
  uint64_t hold_ns;   /* a codec's hold: nothing leaves before this */
  struct effects fx;
  unsigned reading : 1, full : 1, eof : 1, shut : 1, shut_done : 1;
};

struct conn {
  fl_proxy_t *p;
  struct conn *prev, *next;
  uint64_t num; /* accepted connections before this one */
  uv_tcp_t client, server;
  uv_connect_t connect_req;
  uv_timer_t timer; /* reset_peer ms=, stall ms=, END_GRACE_MS */
  struct pipe pipes[2];
  uint64_t decided; /* slots whose current rule this connection saw */
  struct hit *hits;
  int nhits, cap;
  void *codec_state; /* the proxy's codec's, or NULL */
  int handles;       /* open libuv handles; freed at 0 */
  enum end ending;
  unsigned connected : 1, closing : 1, fresh : 1;
};

struct fl_proxy {
  uv_loop_t *loop;
  fl_control_t *ctl;
  struct sockaddr_storage upstream;
  struct fl_addr up_addr;
  int (*owns)(void *arg, const struct fl_rule *rule); /* NULL: by address */
  const struct fl_codec *codec; /* the protocol it follows, or NULL */
  void *owns_arg;
  uint64_t seed;
  int fd, port;
  /* A spare descriptor (/dev/null), given up for a moment when accept()
   * fails for want of descriptors, to accept and close the waiting
   * connection: it is refused at once instead of hanging in the backlog,
   * and the listener does not wake up for it again and again. */
  int reserve;
  uint64_t shed; /* connections closed that way */
  uv_poll_t poll;
  uv_timer_t tick;
  int handles;
  unsigned listening : 1, accept_paused : 1, closing : 1;
  uint32_t gen;
  uint64_t active; /* slots holding a proxy fault of ours */
  struct prule rules[FL_MAX_RULES];
  struct conn *conns;
  uint64_t accepted;
  char buf[READ_BUF];
};

static inline uint64_t now_ns(void) { return uv_hrtime(); }

/* Starts the one-shot timer t for the time `at` (ns, from now_ns),
 * rounded up to the next millisecond. */
static inline void arm(uv_timer_t *t, uv_timer_cb cb, uint64_t at,
                       uint64_t now) {
  uint64_t ms = at > now ? (at - now + MS - 1) / MS : 0;
  uv_timer_start(t, cb, ms, 0);
}

/* ---- proxy.c: the listener and the rules ------------------------- */

/* Frees a closing proxy once its handles and connections are gone. */
void fl_proxy_maybe_free(fl_proxy_t *p);

/* ---- toxics.c: which faults hit a connection --------------- */

/* Counts one injection of the rule in `slot` (bounded by times=) and
 * records it in the event ring, with err; 0 when times= ran out. */
int fl_toxics_inject(fl_proxy_t *p, int slot, int err);

/* Decides the rules the connection has not seen yet, then applies what
 * acts on it. May close the connection. */
void fl_toxics_apply(struct conn *c, uint64_t now);

/* Forgets the rules of the slots in mask (cleared or replaced), so that
 * the next fl_toxics_apply decides them afresh. */
void fl_toxics_forget(struct conn *c, uint64_t mask);

/* How many of n bytes read in direction d may pass before a reset_peer
 * or limit_data count is reached; *end says what follows the cut. */
size_t fl_toxics_limit_bytes(struct conn *c, int d, size_t n, enum end *end);

/* Adds n held-back bytes to the byte counts of the slots in mask. */
void fl_toxics_count_bytes(fl_proxy_t *p, uint64_t mask, size_t n);

/* The connection timer's callback: reset_peer ms=, stall ms=, and the
 * end of an ending connection's grace. */
void fl_toxics_on_timer(uv_timer_t *t);

/* ---- conn.c: one connection's pipes ------------------------ */

/* Starts a connection for the accepted socket fd: applies the rules in
 * force, then connects to the dependency. An error closes it, fd too. */
void fl_conn_start(fl_proxy_t *p, int fd);

/* Moves what may leave of the pipe's queue to libuv, then passes on an
 * EOF and updates reading. May close the connection. */
void fl_conn_pump(struct pipe *pp);

/* Closes both sides (with resets when how is END_RESET); the connection
 * is freed once libuv has closed its handles. Safe more than once. */
void fl_conn_close(struct conn *c, enum end how);

/* Hands n bytes to pipe d (UP: towards the dependency, DOWN: towards the
 * client), through the stream faults acting on it. A codec's way out, for
 * bytes it passes on and for replies of its own (d the other way). May
 * close the connection: check c->closing after. */
void fl_conn_send(struct conn *c, int d, const char *data, size_t n);

/* Holds what is handed to pipe d from now on until `until_ns` (now_ns
 * time): a codec's delay of one message, keeping the order. */
void fl_conn_hold(struct conn *c, int d, uint64_t until_ns);

/* Ends the connection once what was handed on has left (a codec's "then
 * close", as after PostgreSQL's FATAL). */
void fl_conn_end(struct conn *c, enum end how);

/* ---- codec.c: the protocols -------------------------------------- */

/* The codec of that name, or NULL. */
const struct fl_codec *fl_codec_find(const char *name);

/* ---- toxics.c, for codecs: protocol faults on one message -------- */

/* Is message number msg (the codec's count of messages of its kind on
 * this connection) hit by a protocol fault with one of the actions in
 * `actions` (bits 1 << action) whose match the codec accepts (filter
 * NULL: any)? Applies p=, after= and times= per message, counts the
 * injection, and returns its rule (NULL: pass the message on). */
const struct prule *
fl_toxics_proto_hit(struct conn *c, uint64_t actions, uint64_t msg,
                    int (*filter)(const struct prule *r, void *arg), void *arg);

#endif
