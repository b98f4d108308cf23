/*
 * WebSocket endpoint expectations, judged over an endpoint's connection
 * and message records (traffic.h): connect rate, rtt percentiles,
 * unexpected closes by code, messages per connection, and the recovery
 * of the connect rate. The grammar is parse.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "expect_int.h"

int fl_expect_is_ws(const struct fl_expect *e) {
  return e->kind >= FL_EXP_WS_CONNECT && e->kind <= FL_EXP_WS_RECOVERS;
}

static void fmt_duration(char *buf, size_t len, double s) {
  if (s >= 0 && s < 1)
    snprintf(buf, len, "%.3gms", s * 1000);
  else
    snprintf(buf, len, "%.3gs", s);
}

struct out {
  char *exp;
  size_t elen;
  char *obs;
  size_t olen;
};

/* Does attempt c's handshake fall in CLASS? An opened connection is a
 * 101; one without an answer (or with a 101 that was no WebSocket) is
 * its transport failure. Attempts under way have no outcome. */
static int connect_match(const struct fl_status_class *cls,
                         const struct fl_ws_conn *c) {
  if (cls->xfer >= 0)
    return !c->opened && c->error != 0 &&
           (cls->xfer == 0 || c->error == cls->xfer) &&
           (c->status == 0 || c->status == 101);
  return c->status >= cls->lo && c->status <= cls->hi &&
         (c->status != 101 || c->opened);
}

static int attempt_done(const struct fl_ws_conn *c) {
  return !(c->handshake < 0);
}

static int eval_connect(const struct fl_expect *e,
                        const struct fl_ws_records *r, double from, double to,
                        struct out *o) {
  fl_expect_put(o->exp, o->elen, "connect rate(%s) %s %g%%", e->cls.text,
                fl_expect_op_str(e->op), e->value);
  size_t n = 0, hit = 0, opened = 0, refused = 0, status = 0;
  for (size_t i = 0; i < r->nconns; i++) {
    const struct fl_ws_conn *c = &r->conns[i];
    if (c->start < from || c->start >= to || !attempt_done(c))
      continue;
    n++;
    hit += connect_match(&e->cls, c);
    opened += c->opened;
    refused += !c->opened && c->status == 0;
    status += !c->opened && c->status != 0;
  }
  if (n == 0) {
    fl_expect_put(o->obs, o->olen, "no connections");
    return 0;
  }
  double pct = 100.0 * (double)hit / (double)n;
  fl_expect_put(o->obs, o->olen,
                "%.1f%% (%zu of %zu attempts; %zu opened, %zu answered without "
                "opening, %zu with no answer)",
                pct, hit, n, opened, status, refused);
  return fl_expect_cmp(pct, e->op, e->value);
}

static size_t first_msg(const struct fl_ws_records *r, double t) {
  size_t lo = 0, hi = r->nmsgs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r->msgs[mid].t < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int eval_rtt(const struct fl_expect *e, const struct fl_ws_records *r,
                    double from, double to, struct out *o) {
  char lim[32], got[32];
  fmt_duration(lim, sizeof(lim), e->value);
  fl_expect_put(o->exp, o->elen, "rtt p(%g) %s %s", e->percentile,
                fl_expect_op_str(e->op), lim);
  size_t lo = first_msg(r, from), hi = first_msg(r, to), n = 0;
  double *v = malloc((hi > lo ? hi - lo : 1) * sizeof(double));
  if (v == NULL) {
    fl_expect_put(o->obs, o->olen, "out of memory");
    return 0;
  }
  for (size_t i = lo; i < hi; i++)
    if (r->msgs[i].rtt >= 0)
      v[n++] = r->msgs[i].rtt;
  if (n == 0) {
    free(v);
    fl_expect_put(o->obs, o->olen, "no replies (%zu messages received)",
                  hi - lo);
    return 0;
  }
  fl_sort_values(v, n);
  double p = fl_percentile(v, n, e->percentile), max = v[n - 1];
  free(v);
  char worst[32];
  fmt_duration(got, sizeof(got), p);
  fmt_duration(worst, sizeof(worst), max);
  fl_expect_put(o->obs, o->olen, "p(%g) = %s (%zu replies, slowest %s)",
                e->percentile, got, n, worst);
  return fl_expect_cmp(p, e->op, e->value);
}

static int eval_closes(const struct fl_expect *e, const struct fl_ws_records *r,
                       double from, double to, struct out *o) {
  fl_expect_put(o->exp, o->elen, "closes(%s) %s %g", e->cls.text,
                fl_expect_op_str(e->op), e->value);
  size_t n = 0, all = 0;
  int first_code = 0;
  double first_t = -1;
  for (size_t i = 0; i < r->nconns; i++) {
    const struct fl_ws_conn *c = &r->conns[i];
    if (c->close_code == 0 || c->closed < from || c->closed >= to)
      continue;
    all++;
    if (e->cls.lo != 0 && c->close_code != e->cls.lo)
      continue;
    if (n++ == 0 || c->closed < first_t) {
      first_t = c->closed;
      first_code = c->close_code;
    }
  }
  if (n == 0)
    fl_expect_put(o->obs, o->olen, "0 (%zu unexpected closes in all)", all);
  else
    fl_expect_put(
        o->obs, o->olen,
        "%zu (first at t=%.2fs, code %d; %zu unexpected closes in all)", n,
        first_t, first_code, all);
  return fl_expect_cmp((double)n, e->op, e->value);
}

/* The fewest messages a connection open in the window received in it. */
static int eval_messages(const struct fl_expect *e,
                         const struct fl_ws_records *r, double from, double to,
                         struct out *o) {
  fl_expect_put(o->exp, o->elen, "%s %g per connection",
                fl_expect_op_str(e->op), e->value);
  size_t *count = calloc(r->nconns ? r->nconns : 1, sizeof(size_t));
  if (count == NULL) {
    fl_expect_put(o->obs, o->olen, "out of memory");
    return 0;
  }
  for (size_t i = first_msg(r, from), hi = first_msg(r, to); i < hi; i++)
    count[r->msgs[i].conn]++;
  size_t conns = 0, least = 0, total = 0;
  long worst = -1;
  for (size_t i = 0; i < r->nconns; i++) {
    const struct fl_ws_conn *c = &r->conns[i];
    if (!c->opened || c->start + c->handshake >= to ||
        (c->closed >= 0 && c->closed < from))
      continue;
    if (conns++ == 0 || count[i] < least) {
      least = count[i];
      worst = (long)i;
    }
    total += count[i];
  }
  free(count);
  if (conns == 0) {
    fl_expect_put(o->obs, o->olen, "no connection was open");
    return 0;
  }
  fl_expect_put(
      o->obs, o->olen,
      "fewest %zu (connection %d%s, attempt %d); %zu connections, %.1f on "
      "average",
      least, r->conns[worst].slot,
      r->conns[worst].slow ? ", a slow reader" : "", r->conns[worst].attempt,
      conns, (double)total / (double)conns);
  return fl_expect_cmp((double)least, e->op, e->value);
}

/* As the HTTP recovers: per-second buckets of attempts by start; empty
 * seconds neither hold nor fail; a last second cut short with fewer than
 * 3 attempts is left out. */
static int eval_recovers(const struct fl_expect *e,
                         const struct fl_ws_records *r, double from, double to,
                         struct out *o) {
  char lim[32];
  fmt_duration(lim, sizeof(lim), e->within);
  fl_expect_put(
      o->exp, o->elen,
      "connect rate(%s) %s %g%% in every second from at most %s after "
      "t=%.2fs",
      e->cls.text, fl_expect_op_str(e->op), e->value, lim, from);
  size_t nb = (size_t)ceil(to - from - 1e-9);
  if (nb == 0)
    nb = 1;
  size_t *tot = calloc(2 * nb, sizeof(size_t));
  if (tot == NULL) {
    fl_expect_put(o->obs, o->olen, "out of memory");
    return 0;
  }
  size_t *hit = tot + nb;
  for (size_t i = 0; i < r->nconns; i++) {
    const struct fl_ws_conn *c = &r->conns[i];
    if (c->start < from || c->start >= to || !attempt_done(c))
      continue;
    size_t b = (size_t)floor(c->start - from);
    b = b >= nb ? nb - 1 : b;
    tot[b]++;
    hit[b] += connect_match(&e->cls, c);
  }
  size_t used = nb;
  if (from + (double)nb > to + 1e-9 && tot[nb - 1] < 3)
    used = nb - 1;
  size_t k = 0, held = 0, last_hit = 0, last_tot = 0;
  for (size_t b = 0; b < used; b++) {
    if (tot[b] == 0)
      continue;
    if (!fl_expect_cmp(100.0 * (double)hit[b] / (double)tot[b], e->op,
                       e->value)) {
      k = b + 1;
      held = 0;
      last_hit = hit[b];
      last_tot = tot[b];
    } else {
      held++;
    }
  }
  free(tot);
  if (held == 0 && k == 0) {
    fl_expect_put(o->obs, o->olen, "no connections");
    return 0;
  }
  if (held == 0) {
    fl_expect_put(
        o->obs, o->olen,
        "not recovered by the end (last failing second at t=%.2fs: %zu of "
        "%zu)",
        from + (double)(k - 1), last_hit, last_tot);
    return 0;
  }
  if (k == 0)
    fl_expect_put(o->obs, o->olen, "recovered after 0.0s (every second held)");
  else
    fl_expect_put(
        o->obs, o->olen,
        "recovered after %.1fs (last failing second at t=%.2fs: %zu of %zu)",
        (double)k, from + (double)(k - 1), last_hit, last_tot);
  return (double)k <= e->within + 1e-9;
}

int fl_expect_eval_ws(const struct fl_expect *e, const struct fl_ws_records *r,
                      double from, double to, char *expected, size_t elen,
                      char *observed, size_t olen) {
  struct out o = {expected, elen, observed, olen};
  fl_expect_put(expected, elen, "%s", e->text);
  fl_expect_put(observed, olen, "%s", "");
  switch (e->kind) {
  case FL_EXP_WS_CONNECT:
    return eval_connect(e, r, from, to, &o);
  case FL_EXP_WS_RTT:
    return eval_rtt(e, r, from, to, &o);
  case FL_EXP_WS_CLOSES:
    return eval_closes(e, r, from, to, &o);
  case FL_EXP_WS_MESSAGES:
    return eval_messages(e, r, from, to, &o);
  case FL_EXP_WS_RECOVERS:
    return eval_recovers(e, r, from, to, &o);
  default:
    fl_expect_put(
        observed, olen,
        "not a WebSocket expectation (allowed: connect rate, rtt p, closes, "
        "messages, recovers(connect rate ...))");
    return 0;
  }
}
