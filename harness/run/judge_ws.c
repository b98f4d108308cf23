/*
 * Judging WebSocket endpoints: their expectations over the connection
 * and message records (expect/ws.c evaluates), and the "websocket"
 * figures of the result (result/ws.c writes them). judge.c calls here
 * for every endpoint whose request is WS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "run_int.h"

int fl_judge_ws_expectation(const struct srun *r, int ep,
                            const struct fl_expect *e, double from, double to,
                            struct fl_result_expectation *o) {
  struct fl_ws_records recs = {0};
  if (r->traffic != NULL)
    fl_traffic_ws_records(r->traffic, ep, &recs);
  return fl_expect_eval_ws(e, &recs, from, to, o->expected, sizeof(o->expected),
                           o->observed, sizeof(o->observed));
}

/* p50, p99 and max of v[0..n) (sorted here) into out[3]; NAN when n is
 * 0. */
static void quantiles(double *v, size_t n, double out[3]) {
  if (n == 0) {
    out[0] = out[1] = out[2] = NAN;
    return;
  }
  fl_sort_values(v, n);
  out[0] = fl_percentile(v, n, 50);
  out[1] = fl_percentile(v, n, 99);
  out[2] = v[n - 1];
}

static void count_code(struct fl_result_ws *w, int code) {
  w->closes++;
  for (size_t i = 0; i < w->ncodes; i++)
    if (w->codes[i] == code) {
      w->code_counts[i]++;
      return;
    }
  if (w->ncodes < FL_RESULT_WS_CODES) {
    w->codes[w->ncodes] = code;
    w->code_counts[w->ncodes++] = 1;
  }
}

static void count_error(struct fl_result_ws *w, int error) {
  const char *name = fl_xfer_error_name(error);
  for (size_t i = 0; i < w->nerrors; i++)
    if (strcmp(w->error_names[i], name) == 0) {
      w->error_counts[i]++;
      return;
    }
  if (w->nerrors < FL_RESULT_WS_ERRORS) {
    w->error_names[w->nerrors] = name;
    w->error_counts[w->nerrors++] = 1;
  }
}

/* The records' figures into w; 0 or -ENOMEM. */
static int figures(const struct fl_ws_records *q, struct fl_result_ws *w) {
  size_t n = q->nconns > q->nmsgs ? q->nconns : q->nmsgs;
  double *v = malloc((n > 0 ? n : 1) * sizeof(double)), qs[3];
  if (v == NULL)
    return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < q->nconns; i++) {
    const struct fl_ws_conn *c = &q->conns[i];
    w->attempts++;
    w->opened += c->opened != 0;
    w->reconnects += c->attempt > 0;
    w->sent += c->sent;
    w->received += c->received;
    if (c->opened)
      v[k++] = c->handshake;
    if (c->close_code != 0)
      count_code(w, c->close_code);
    if (c->error != 0)
      count_error(w, c->error);
  }
  quantiles(v, k, qs);
  w->handshake_p50 = qs[0];
  w->handshake_p99 = qs[1];
  w->handshake_max = qs[2];
  k = 0;
  for (size_t i = 0; i < q->nmsgs; i++)
    if (q->msgs[i].rtt >= 0)
      v[k++] = q->msgs[i].rtt;
  w->replies = k;
  quantiles(v, k, qs);
  w->rtt_p50 = qs[0];
  w->rtt_p99 = qs[1];
  w->rtt_max = qs[2];
  free(v);
  return 0;
}

/* Second by second over `total` seconds: attempts by start, closes by
 * end, messages by arrival, connections open at each second's end. 0 or
 * -ENOMEM. */
static int seconds(const struct fl_ws_records *q, double total,
                   struct fl_result_ws *w) {
  size_t n = (size_t)ceil(total);
  w->series = calloc(n > 0 ? n : 1, sizeof(*w->series));
  double *v = malloc((q->nmsgs > 0 ? q->nmsgs : 1) * sizeof(double));
  if (w->series == NULL || v == NULL) {
    free(v);
    return -ENOMEM;
  }
  w->nseries = n;
  for (size_t i = 0; i < q->nconns; i++) {
    const struct fl_ws_conn *c = &q->conns[i];
    size_t b = (size_t)c->start;
    if (b < n) {
      w->series[b].attempts++;
      w->series[b].opened += c->opened != 0;
    }
    if (c->close_code != 0 && c->closed >= 0 && (size_t)c->closed < n)
      w->series[(size_t)c->closed].closes++;
    for (size_t s = 0; c->opened && s < n; s++) {
      double end = (double)(s + 1), up = c->start + c->handshake;
      w->series[s].open += up < end && (c->closed < 0 || c->closed >= end);
    }
  }
  size_t m = 0;
  for (size_t s = 0; s < n; s++) {
    size_t k = 0;
    for (; m < q->nmsgs && q->msgs[m].t < (double)(s + 1); m++) {
      w->series[s].received++;
      if (q->msgs[m].rtt >= 0)
        v[k++] = q->msgs[m].rtt;
    }
    w->series[s].replies = (long)k;
    double qs[3];
    quantiles(v, k, qs);
    w->series[s].rtt_p50 = qs[0];
    w->series[s].rtt_p99 = qs[1];
  }
  free(v);
  return 0;
}

long fl_judge_ws_endpoint(const struct srun *r, int ep,
                          struct fl_result_endpoint *e) {
  const struct fl_endpoint_decl *d = &r->sc->endpoints[ep];
  struct fl_result_ws *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  e->ws = w;
  w->connections = d->wspec.connections;
  w->connect_rate = d->wspec.connect_rate;
  w->message_rate = d->message != NULL ? d->wspec.message_rate : 0;
  w->slow_readers =
      d->wspec.slow_count > 0
          ? d->wspec.slow_count
          : (int)ceil(d->wspec.slow_share * d->wspec.connections - 1e-9);
  struct fl_ws_records q = {0};
  if (r->traffic != NULL)
    fl_traffic_ws_records(r->traffic, ep, &q);
  if (figures(&q, w) != 0 || seconds(&q, r->total, w) != 0)
    return -ENOMEM;
  return (long)w->attempts;
}
