/*
 * A judged run, as structs, and the writer that turns it into the JSON of
 * docs/result.md. Judging (run/judge.c) fills these; nothing here decides
 * a verdict or reads a record, it only writes down what was decided.
 *
 * Strings are borrowed: they belong to the run that was judged, which
 * outlives its result. Arrays are owned and freed by fl_result_free().
 */
#ifndef FL_RESULT_H
#define FL_RESULT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Best to worst: a suite is as bad as its worst scenario. */
enum fl_verdict {
  FL_VERDICT_PASS,
  FL_VERDICT_INCONCLUSIVE,
  FL_VERDICT_FAIL,
  FL_VERDICT_ERROR,
  FL_VERDICT_COUNT
};

/* "PASS", "INCONCLUSIVE", "FAIL" or "ERROR". */
const char *fl_verdict_name(enum fl_verdict v);

struct fl_result_phase {
  const char *name;
  double start, end;
};

struct fl_result_fault {
  const char *name, *kind, *spec, *phase;
  const char *dependency; /* NULL: aimed at no dependency */
  double on, off;         /* < 0: never switched on / never off */
  uint64_t matched, delivered;
  int optional; /* its delivery was not required */
};

/* One second of an endpoint's traffic. */
struct fl_result_second {
  long requests, errors;
  long classes[5];           /* 1xx..5xx */
  double p50, p95, p99, max; /* seconds; NAN without requests */
};

/* A WebSocket endpoint's connections and messages over the whole run
 * (docs/result.md's "websocket"). */
#define FL_RESULT_WS_CODES 8
#define FL_RESULT_WS_ERRORS 8
/* One second of a WebSocket endpoint. */
struct fl_result_ws_second {
  long attempts, opened, closes; /* attempts started, of them opened;
                                    unexpected closes in the second */
  long open;                     /* connections open at its end */
  long received, replies;        /* messages received, of them replies */
  double rtt_p50, rtt_p99;       /* NAN without replies */
};

struct fl_result_ws {
  struct fl_result_ws_second *series; /* owned, one per second */
  size_t nseries;
  int connections, slow_readers;
  double connect_rate, message_rate;
  size_t attempts, opened, reconnects;
  double handshake_p50, handshake_p99, handshake_max; /* NAN: none */
  uint64_t sent, received;
  size_t replies;
  double rtt_p50, rtt_p99, rtt_max; /* NAN: no reply */
  size_t closes;                    /* unexpected, all codes */
  int codes[FL_RESULT_WS_CODES];    /* the first codes seen, with... */
  size_t code_counts[FL_RESULT_WS_CODES];
  size_t ncodes;
  const char *error_names[FL_RESULT_WS_ERRORS]; /* transport failures */
  size_t error_counts[FL_RESULT_WS_ERRORS];
  size_t nerrors;
};

struct fl_result_endpoint {
  const char *name, *method, *path;
  double rate, timeout;
  size_t requests;
  struct fl_result_second *series; /* owned */
  size_t nseries;
  struct fl_result_ws *ws; /* owned; NULL for an HTTP endpoint */
};

struct fl_result_expectation {
  const char *phase, *text;
  const char *endpoint; /* NULL: about the target */
  char expected[256], observed[512];
  int pass;
  /* Not judged (neither passed nor failed): the target did not start, so
   * there was nothing to judge it on. "NOT_JUDGED" in the JSON. */
  int not_judged;
};

/* Dependencies whose connections a sample counts one by one; the
 * connections to any further one count as outbound to others. */
#define FL_RESULT_CONNS 8

/* One sample of the target's processes (all those of its session). */
struct fl_result_sample {
  double t;
  int fds;                    /* every descriptor */
  int inbound;                /* connections accepted on the target's port */
  int files;                  /* paths on the file system */
  int conns[FL_RESULT_CONNS]; /* connections out to dependency i */
  int conns_other;            /* connections out to anything else */
  int other;                  /* listening sockets, pipes, unix sockets... */
  long rss_kb;
};

struct fl_result_target {
  const char *command, *log;
  long pid;           /* < 0: never started */
  int exited;         /* ended before the end of the run: */
  const char *signal; /* by this signal ("SEGV"), or NULL: */
  int64_t code;       /* with this exit code */
  int restarts;
  struct fl_result_sample *series; /* owned */
  size_t nseries;
  const char *conn_names[FL_RESULT_CONNS]; /* series' conns[i] go to */
  size_t nconns;
  char *log_tail; /* owned: the log's last bytes, as read (any encoding) */
  size_t log_tail_len;
};

struct fl_result_injection {
  double t;
  long pid;
  uint32_t rule;
  const char *op;
  const char *error; /* its name, or NULL: err is a bare number */
  int err;
};

struct fl_result_scenario {
  const char *name, *file, *description;
  const char *service, *service_file;
  const char *started; /* RFC 3339, UTC */
  double duration, setup;
  uint64_t seed;
  enum fl_verdict verdict;
  char reason[832]; /* an error message and a few words */

  /* All owned. */
  struct fl_result_phase *phases;
  size_t nphases;
  struct fl_result_fault *faults;
  size_t nfaults;
  struct fl_result_endpoint *endpoints;
  size_t nendpoints;
  struct fl_result_expectation *expectations;
  size_t nexpectations;
  struct fl_result_target target;
  struct fl_result_injection *injections; /* the most recent ones */
  size_t ninjections;
  uint64_t injections_total; /* the shim's count, kept or not */
};

struct fl_result_suite {
  const char *started;
  double duration;
  enum fl_verdict verdict;
  long counts[FL_VERDICT_COUNT];
  const struct fl_result_scenario *const *scenarios; /* borrowed */
  size_t nscenarios;
};

/* A new, empty scenario result (all zero, verdict ERROR), or NULL. */
struct fl_result_scenario *fl_result_new(void);
/* Frees s and the arrays it owns; NULL is a no-op. */
void fl_result_free(struct fl_result_scenario *s);
/* The verdict's name; "ERROR" for NULL (a run never judged). */
const char *fl_result_verdict(const struct fl_result_scenario *s);

/* The JSON objects of docs/result.md (new references), or NULL when out
 * of memory. */
json_t *fl_result_scenario_json(const struct fl_result_scenario *s);
json_t *fl_result_suite_json(const struct fl_result_suite *s);
/* The "websocket" object of an endpoint (ws.c). */
json_t *fl_result_ws_json(const struct fl_result_ws *w);

#endif
