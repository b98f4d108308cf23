/*
 * Open-loop HTTP traffic with libcurl's multi interface on a libuv loop
 * (curl_multi_socket_action with poll handles and a timer). Each endpoint
 * sends requests at its rate (constant, or one per piece of the run) on a
 * fixed schedule, whether or not earlier ones finished: no coordinated
 * omission. Every request is recorded.
 *
 * Request k of an endpoint (k = 0, 1, ...) is due k / rate seconds after
 * fl_traffic_start(); with a rate per piece, when the piecewise rate's
 * running count of requests reaches k (so the rate changes exactly at a
 * piece's start, and no request is lost or added there). A loop that was
 * late sends every request that fell due meanwhile, none skipped; each
 * record keeps both the due time and the actual start, so lateness is
 * visible. Connections are kept and reused; when every open one is busy a
 * request opens another rather than wait.
 *
 * An endpoint may cap its requests in flight (k6's "virtual users"): a
 * request that falls due while the cap is reached waits for a slot, and
 * both its latency and its timeout count from its scheduled time, so the
 * wait shows as latency instead of vanishing (no coordinated omission
 * either). One that waited its whole timeout is not sent: it is recorded
 * as a timeout.
 */
#ifndef FL_TRAFFIC_H
#define FL_TRAFFIC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Transport failures, by class. */
enum fl_xfer_error {
  FL_XFER_OK = 0,
  FL_XFER_REFUSED, /* connection refused */
  FL_XFER_RESET,   /* connection reset / closed before a response */
  FL_XFER_TIMEOUT, /* the endpoint's timeout expired */
  FL_XFER_DNS,
  FL_XFER_OTHER,
};
const char *fl_xfer_error_name(int e); /* "refused", "reset", "timeout"... */

struct fl_request {
  double sched;   /* scheduled start, seconds since fl_traffic_start() */
  double start;   /* actual start, same clock */
  double latency; /* seconds from actual start (from the scheduled time
                     for an endpoint with a concurrency cap) to completion
                     or failure; negative while the request is in flight */
  int status;     /* HTTP status; 0 on a transport error (or in flight) */
  int error;      /* enum fl_xfer_error */
  /* Values of the endpoint's captured response headers by slot (see
   * fl_traffic_header_slot(); read them with fl_request_header()), NULL
   * when absent, trimmed of surrounding blanks; owned by the traffic
   * object. The array is made when the first captured header arrives:
   * until then headers is NULL and nheaders 0. */
  char **headers;
  int nheaders;
  /* Wall-clock time (seconds since the epoch) when the final response's
   * status line arrived; 0 without a response. What an HTTP-date in the
   * response (Retry-After) is measured from. */
  double received;
  /* The path requested, placeholders drawn; owned by the traffic (NULL
   * only when out of memory). */
  const char *path;
};

/* The value of captured header `slot` of r, or NULL when absent. */
static inline const char *fl_request_header(const struct fl_request *r,
                                            int slot) {
  return slot >= 0 && slot < r->nheaders ? r->headers[slot] : NULL;
}

struct fl_ws_spec;

struct fl_endpoint_spec {
  const char *name;
  const char *method; /* GET, POST, ...; NULL: GET */
  /* "/api/items"; placeholders are drawn per request: {A..B} a whole
   * number from A to B ({001..050} zero-padded), {x,y,...} one of the
   * items, each uniformly (see fl_path_check()). */
  const char *path;
  const char *body;           /* NULL: none */
  const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
  double rate;                /* requests per second, > 0 (unless nrates) */
  /* A rate per piece of the run: rates[i] requests per second (> 0) from
   * starts[i] seconds after the start until starts[i + 1], the last until
   * the end; starts[0] is 0 and starts increase. nrates 0: `rate`. */
  const double *rates, *starts;
  size_t nrates;
  /* > 0: at most this many requests in flight (see above); 0: none. */
  int concurrency;
  /* With the endpoint's name, chooses the paths drawn: the same seed
   * draws the same path for request k in every run. */
  uint64_t seed;
  double timeout; /* seconds, > 0 */
  /* Response headers to record (case-insensitive), NULL-terminated, may
   * be NULL; as many as given. "Retry-After" is always recorded, in slot
   * 0; the others take slots 1, 2, ... in the order given (naming
   * Retry-After, or a name twice, changes nothing). */
  const char *const *capture;
  /* Not NULL: a WebSocket endpoint (see below) at path; method, body,
   * rates, concurrency and capture are not used; headers go with the
   * Upgrade request, timeout is the handshake's. */
  const struct fl_ws_spec *ws;
};

typedef struct fl_traffic fl_traffic_t;

/* base_url: "http://127.0.0.1:PORT"; each request goes to base_url + path.
 * Returns 0 or a negative code (nothing allocated then). */
int fl_traffic_new(uv_loop_t *loop, const char *base_url, fl_traffic_t **out);
/* Adds an endpoint (copied); returns its index >= 0 or a negative code:
 * -EINVAL for a bad spec (rate or timeout not > 0, no path, a bad path
 * template, bad pieces), -EBUSY once started. */
int fl_traffic_add(fl_traffic_t *t, const struct fl_endpoint_spec *e);
/* Starts every endpoint's schedule now; time 0 for the records. Returns
 * 0, or -EBUSY when already started or stopped. */
int fl_traffic_start(fl_traffic_t *t);
/* Sends every request already due (a late loop catches up first, so the
 * records hold the whole schedule up to now), then stops scheduling;
 * requests in flight complete (or time out). done is called once none is
 * left in flight, always from the loop, never from inside this call: so
 * also when nothing was in flight or the traffic never started. It is not
 * called if fl_traffic_free() comes first. */
void fl_traffic_stop(fl_traffic_t *t, void (*done)(void *arg), void *arg);
/* Seconds since fl_traffic_start(), on the records' clock (0 before). */
double fl_traffic_now(const fl_traffic_t *t);
/* The records of endpoint i so far, in schedule order; 0 and NULL for an
 * unknown index. The array moves when records are added: do not keep the
 * pointer across a turn of the loop. */
size_t fl_traffic_records(const fl_traffic_t *t, int endpoint,
                          const struct fl_request **out);
/* Which fl_request.headers slot holds response header `name` of endpoint
 * i (case-insensitive): 0 for Retry-After, 1, 2, ... for the others in
 * the order captured; -ENOENT when it is not captured. */
int fl_traffic_header_slot(const fl_traffic_t *t, int endpoint,
                           const char *name);
/* Requests sent and not yet complete, over all endpoints. */
int fl_traffic_in_flight(const fl_traffic_t *t);
/* Frees everything (after stop's done, or at any time to abort: in-flight
 * transfers are cancelled). Its libuv handles close asynchronously; done
 * (may be NULL) is called when the last one has, after which the loop
 * holds nothing of the traffic's. */
void fl_traffic_free(fl_traffic_t *t, void (*done)(void *arg), void *arg);

/* Checks a path template: 0, or -EINVAL with one sentence in err (what
 * was found, what is allowed) and in *col the 1-based column in `path`
 * where the fault is: an unclosed '{', a '}' without '{', an empty or
 * reversed range ({5..1}), a placeholder that is neither {A..B} nor a
 * list of two or more non-empty items ({}, {x}, {a,,b}). A path without
 * braces is always right. */
int fl_path_check(const char *path, int *col, char *err, size_t errlen);

/* One GET for readiness probes, on its own connection. cb(status, arg)
 * with the HTTP status, or a negative code: -ECONNREFUSED, -ECONNRESET,
 * -ETIMEDOUT (timeout seconds expired), -EHOSTUNREACH (name not
 * resolved), -EIO (any other transport failure). cb is called once, after
 * the probe's libuv handles have all closed. Returns 0, or a negative
 * code and cb is never called. */
int fl_http_probe(uv_loop_t *loop, const char *url, double timeout,
                  void (*cb)(int status, void *arg), void *arg);

/* ---- WebSocket endpoints (ws.c, ws_conn.c, ws_handshake.c) ----------
 *
 * A WebSocket endpoint opens `connections` connections to base_url's host
 * and the endpoint's path (HTTP Upgrade, RFC 6455), connection k at
 * k / connect_rate seconds after the start. Each one, once open, sends
 * `message` as a text frame every 1 / message_rate seconds and reads what
 * comes back: a reply is matched to the oldest message of its connection
 * still unanswered (its round-trip time). A connection that ends before
 * the traffic stops (the peer's close frame, a reset, a failed handshake)
 * is recorded and, with `reconnect`, opened again after a backoff that
 * doubles on each failure in a row up to reconnect_max (and starts again
 * from `reconnect` after a handshake succeeds). A slow reader reads
 * nothing for slow_for seconds after its handshake (it still sends): the
 * one stuck client whose peer must not let it block the others. At the
 * stop every open connection is closed with 1000 (not counted as a
 * close). */
struct fl_ws_spec {
  int connections;      /* >= 1 */
  double connect_rate;  /* connections opened per second, > 0 */
  const char *message;  /* NULL: none sent; {{A..B}} and {{x,y}} drawn per
                           message as path placeholders are */
  double message_rate;  /* per connection per second; > 0 with a message */
  double reconnect;     /* first backoff in seconds; 0: never reconnect */
  double reconnect_max; /* the backoff's cap (>= reconnect) */
  double slow_share;    /* this share (0..1) of the connections are slow
                           readers, rounded up... */
  int slow_count;       /* ...or this many (used when > 0) */
  double slow_for;      /* seconds a slow reader reads nothing */
};

/* One connection (an attempt: a reconnect is a new record). Times are
 * seconds since fl_traffic_start(). */
struct fl_ws_conn {
  int slot;         /* which of the endpoint's connections, 0.. */
  int attempt;      /* 0 the first, then one per reconnect */
  int slow;         /* a slow reader */
  double start;     /* the TCP connect began */
  double handshake; /* seconds from start to the handshake's answer (or its
                       failure); negative while under way */
  int status;       /* the handshake answer's HTTP status (101 when open);
                       0 without one */
  int opened;       /* 1 when the handshake succeeded (101, right accept) */
  int error;        /* enum fl_xfer_error of a transport failure, or 0 */
  int close_code;   /* an unexpected end: the peer's close code (1005 when
                       it gave none), 1006 when the connection dropped
                       without a close frame; 0 when open or closed by
                       us at the stop */
  double closed;    /* when it ended; negative while open */
  uint64_t sent, received; /* data messages */
};

/* One data message received. */
struct fl_ws_msg {
  double t;      /* when */
  float rtt;     /* seconds since the oldest unanswered message of its
                    connection was sent; negative when none was */
  uint32_t conn; /* its connection's index in the records' conns */
};

struct fl_ws_records {
  const struct fl_ws_conn *conns; /* by start */
  size_t nconns;
  const struct fl_ws_msg *msgs; /* by t */
  size_t nmsgs;
};

/* The records of WebSocket endpoint i so far (valid until the next turn
 * of the loop): 0, or -ENOENT when i is not a WebSocket endpoint. */
int fl_traffic_ws_records(const fl_traffic_t *t, int endpoint,
                          struct fl_ws_records *out);
/* Checks a message template ({{A..B}}, {{x,y}}): as fl_path_check. */
int fl_ws_message_check(const char *msg, int *col, char *err, size_t errlen);

#endif
