/*
 * Expectations: the one-line checks of a scenario's `expect:` section,
 * parsed once (with the column of any error) and evaluated over recorded
 * requests or over facts about the target.
 *
 * Endpoint expectations (apply to the requests of one endpoint whose
 * *scheduled* start falls in a phase window):
 *   rate(CLASS) OP N%            share of requests in CLASS
 *   header(NAME) on CLASS        every response in CLASS carries a valid
 *                                NAME (Retry-After: delta-seconds or an
 *                                HTTP-date; other names: non-empty); fails
 *                                when there is no response in CLASS
 *   header(NAME) OP VALUE on CLASS
 *                                and its value compares so with VALUE: a
 *                                number (numeric comparison; a
 *                                Retry-After HTTP-date counts as seconds
 *                                from the response's arrival) or a
 *                                "string" in double quotes (exact, with
 *                                == or != only; \" and \\ escape)
 *   header(...) on CLASS if any  likewise, but no response in CLASS passes
 *   p(N) OP DURATION             latency percentile (N in (0,100]),
 *                                nearest rank, transport errors included
 *   max OP DURATION              slowest request
 *   within timeout               no request outlived the endpoint timeout
 *                                (latency <= timeout + 0.5 s slack)
 *   requests OP N                how many were sent
 *   recovers(rate(CLASS) OP N%) within DURATION
 *                                from the window's start, the per-second
 *                                rate condition holds for every full second
 *                                from some time T <= start + DURATION to
 *                                the window's end
 * WebSocket endpoint expectations (see fl_expect_eval_ws):
 *   connect rate(CLASS) OP N%    share of connection attempts started in
 *                                the window whose handshake ended in
 *                                CLASS (101 when it opened; a transport
 *                                failure class when there was no answer)
 *   rtt p(N) OP DURATION         round-trip times of the replies
 *                                received in the window
 *   closes(CODE) OP N            unexpected closes in the window with
 *   closes(any) OP N             close code CODE (1000-4999; 1006: the
 *                                connection dropped without a close
 *                                frame), or with any code
 *   messages OP N per connection the fewest messages received in the
 *                                window by a connection that was open in
 *                                it
 *   recovers(connect rate(CLASS) OP N%) within DURATION
 *                                as recovers(rate(...)), over connection
 *                                attempts by their start
 * Target expectations:
 *   no restart | no crash | alive
 *   starts                       the target started and became ready with
 *                                the scenario's start faults (`at: start`)
 *                                on; when it did not, the runner judges
 *                                this (failed) and nothing else, and adds
 *                                it to a scenario that does not name it
 *   fds OP baseline [+ N]        the service's own fds (all but inbound
 *                                connections): the most in the window vs
 *                                the mean of the first phase ("baseline")
 *   conns(NAME) OP baseline [+ N]
 *                                connections out to dependency NAME
 *                                (conns(other): to anything else)
 *   inbound OP baseline [+ N]    connections accepted on the target's port
 *   files OP baseline [+ N]      fds open on paths of the file system
 *   rss OP baseline [+ SIZE]     SIZE like 50MB, 512kB
 *   settles(COUNT OP baseline [+ N]) within DURATION
 *                                COUNT one of the five above: the condition
 *                                holds at every sample from some time T <=
 *                                window start + DURATION to the window's
 *                                end, the last sample included (T: just
 *                                after the last sample that failed)
 *   fault(NAME) hit [OP N]       the named fault was delivered N times;
 *                                without OP N: at least once (>= 1)
 * CLASS: a status (503), a class (1xx-5xx), or a transport failure
 * (error = any, refused, reset, timeout, dns, other; not for header).
 * OP: < <= > >= == !=. N%: 0-100 with the % sign (95%, 99.5%).
 * DURATION: a number with ms, s or m: 250ms, 2s, 1.5s, 1m.
 * SIZE: a number with B, kB, MB, GB (or KiB, MiB, GiB), powers of 1024
 * as in /proc. Counts are whole numbers.
 * Keywords are lower case. Spaces between tokens are optional, but a
 * number and its unit or % are one token (95%, 2s; not 95 %, 2 s).
 *
 * An error's column is that of the token where parsing stopped (one past
 * the end when the text ended too soon); messages name what was found and
 * what is allowed, e.g. "expected a comparison (<, <=, >, >=, ==, !=)
 * after 'rate(503)', found '=>'".
 */
#ifndef FL_EXPECT_H
#define FL_EXPECT_H

#include <stddef.h>

#include "traffic/traffic.h"

enum fl_expect_kind {
  FL_EXP_RATE,
  FL_EXP_HEADER,
  FL_EXP_PERCENTILE,
  FL_EXP_MAX,
  FL_EXP_WITHIN_TIMEOUT,
  FL_EXP_REQUESTS,
  FL_EXP_RECOVERS,
  /* WebSocket endpoints' (ws.c) */
  FL_EXP_WS_CONNECT,
  FL_EXP_WS_RTT,
  FL_EXP_WS_CLOSES,
  FL_EXP_WS_MESSAGES,
  FL_EXP_WS_RECOVERS,
  /* target expectations from here on */
  FL_EXP_NO_RESTART,
  FL_EXP_NO_CRASH,
  FL_EXP_ALIVE,
  FL_EXP_STARTS,
  FL_EXP_FDS,
  FL_EXP_RSS,
  FL_EXP_FAULT_HIT,
  FL_EXP_SETTLES,
};

/* What fds (FL_EXP_FDS), rss and settles count. */
enum fl_expect_count {
  FL_COUNT_FDS,     /* the service's own fds: all but inbound connections */
  FL_COUNT_CONNS,   /* connections out to dependency NAME */
  FL_COUNT_INBOUND, /* connections accepted on the target's port */
  FL_COUNT_FILES,   /* paths on the file system */
  FL_COUNT_RSS,     /* resident memory */
};

enum fl_expect_op {
  FL_CMP_LT,
  FL_CMP_LE,
  FL_CMP_GT,
  FL_CMP_GE,
  FL_CMP_EQ,
  FL_CMP_NE
};

/* Which responses a CLASS names. */
struct fl_status_class {
  int lo, hi; /* HTTP statuses lo..hi; 0..0 for none */
  int xfer;   /* -1: none; 0: any transport error; else enum fl_xfer_error */
  char text[16];
};

/* What a header expectation checks besides "present and valid". */
enum fl_header_check {
  FL_HDR_PRESENT, /* nothing more */
  FL_HDR_NUMBER,  /* the value as a number, OP value */
  FL_HDR_STRING,  /* the value, OP (== or !=) str */
};

struct fl_expect {
  int kind;                   /* enum fl_expect_kind */
  int op;                     /* enum fl_expect_op */
  double value;               /* percent (0..100), seconds, a count, bytes or a
                                 header's number: by kind */
  double percentile;          /* p(N) */
  double within;              /* recovers, settles: seconds */
  int count;                  /* fds, rss, settles: enum fl_expect_count */
  struct fl_status_class cls; /* rate, header, recovers */
  char name[64];              /* header name, fault name or conns' dependency */
  /* header: the slot of fl_request.headers that holds NAME. The parser
   * sets 0 for Retry-After (always captured first) and -1 for any other
   * name; the runner asks the traffic to capture every header an
   * expectation names and sets the slot from fl_traffic_header_slot(). */
  int header;
  int check;      /* header: enum fl_header_check (op, and value or str) */
  char str[64];   /* header: the string compared with, unescaped */
  char text[256]; /* as written */
  int if_any;     /* header ... on CLASS if any: no CLASS response passes */
};

/* Parses one expectation. On error returns FL_EBADSPEC (see errors.h) with
 * a one-sentence message (what was found, what is allowed) in err and the
 * 1-based column in the text where it went wrong in *errcol. */
int fl_expect_parse(const char *text, struct fl_expect *out, int *errcol,
                    char *err, size_t errlen);

/* 1 for kinds evaluated over an endpoint's requests. */
int fl_expect_is_endpoint(const struct fl_expect *e);

/* Evaluates an endpoint expectation over the requests scheduled in
 * [from, to) (reqs sorted by sched). Writes what was expected and what was
 * observed as short readable strings, e.g. ">= 95%" and "97.2% (243 of
 * 250)". Returns 1 pass, 0 fail. An empty window fails with observed
 * "no requests" (except `requests OP N`, which counts 0). Requests still
 * in flight (latency < 0) have no outcome and are left out of all but
 * `requests OP N`. */
int fl_expect_eval_endpoint(const struct fl_expect *e,
                            const struct fl_request *reqs, size_t n,
                            double from, double to, double timeout,
                            char *expected, size_t elen, char *observed,
                            size_t olen);

/* One sample of a count (rss: kB) at time t. */
struct fl_count_sample {
  double t, v;
};

/* 1 for the kinds of WebSocket endpoints (a subset of the endpoint
 * kinds). */
int fl_expect_is_ws(const struct fl_expect *e);

/* Evaluates a WebSocket endpoint expectation over the records, in the
 * window [from, to); same conventions as fl_expect_eval_endpoint. No
 * connection attempt in the window fails `connect rate` and recovers
 * with "no connections"; no reply fails rtt with "no replies". */
int fl_expect_eval_ws(const struct fl_expect *e, const struct fl_ws_records *r,
                      double from, double to, char *expected, size_t elen,
                      char *observed, size_t olen);

/* What the runner knows about the target and the faults. */
struct fl_target_facts {
  int restarts; /* times the target was seen to restart */
  int crashed;  /* ended by a signal */
  int exited;   /* ended at all before the end of the scenario */
  /* How it ended early, in words ("exited with status 3 at t=4.2s: <its
   * last log lines>"), for alive and no crash; NULL when it did not. */
  const char *ending;
  /* How its start failed ("exited with status 3 after 1.2s: ..."), for
   * starts; NULL when it started. */
  const char *start_failure;
  /* fds, rss, settles: what the expectation counts (fds_*: any count
   * but rss). baseline: the mean over the first phase. */
  double fds_baseline, fds_max;
  double rss_baseline_kb, rss_max_kb;
  const struct fl_count_sample *series; /* settles: the window's samples */
  size_t nseries;
  double from;     /* settles: the window's start */
  int no_such_dep; /* conns(NAME): no dependency is named NAME */
  /* delivered count of a fault by name; -1 if no fault has that name */
  long (*fault_delivered)(const char *name, void *arg);
  void *arg;
};

/* Evaluates a target expectation; same conventions as above. A negative
 * baseline or maximum means "never sampled" and fails fds/rss. */
int fl_expect_eval_target(const struct fl_expect *e,
                          const struct fl_target_facts *f, char *expected,
                          size_t elen, char *observed, size_t olen);

/* Parses an HTTP-date (RFC 9110 5.6.7: IMF-fixdate, RFC 850 or asctime;
 * case-sensitive, day name matching the date) into seconds since the
 * epoch. Returns 0, or -EINVAL when s is not one. */
int fl_http_date_parse(const char *s, long long *out);

#endif
