/*
 * Expectations, judged: the evaluation of each kind over a window of
 * recorded requests or over facts about the target (parse.c turns
 * the text into a struct fl_expect). Every observed string says enough to
 * act on: counts, the first offending time, the value seen.
 */
#define _GNU_SOURCE
#include "expect_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

int fl_expect_is_endpoint(const struct fl_expect *e) {
  return e->kind >= FL_EXP_RATE && e->kind < FL_EXP_NO_RESTART;
}

/* ---- Evaluation helpers ---------------------------------------------- */

__attribute__((format(printf, 3, 4))) void fl_expect_put(char *buf, size_t len,
                                                         const char *fmt, ...) {
  if (buf == NULL || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* Equality within 1e-9: shares and seconds are computed, not counted. */
int fl_expect_cmp(double a, int op, double b) {
  switch (op) {
  case FL_CMP_LT:
    return a < b;
  case FL_CMP_LE:
    return a <= b;
  case FL_CMP_GT:
    return a > b;
  case FL_CMP_GE:
    return a >= b;
  case FL_CMP_EQ:
    return fabs(a - b) < 1e-9;
  case FL_CMP_NE:
    return fabs(a - b) >= 1e-9;
  }
  return 0;
}

const char *fl_expect_op_str(int op) {
  return op >= 0 && op < (int)COUNT(fl_expect_op_text) ? fl_expect_op_text[op]
                                                       : "?";
}

/* v with the fewest decimals (at least min) that keep its comparison with
 * the limit as it really is: an observed "95.0%" never fails ">= 95%". */
static void fmt_fixed(char *buf, size_t len, double v, int min, int op,
                      double limit) {
  int want = fl_expect_cmp(v, op, limit);
  for (int d = min; d <= 6; d++) {
    snprintf(buf, len, "%.*f", d, v);
    if (fl_expect_cmp(strtod(buf, NULL), op, limit) == want)
      return;
  }
}

/* An observed latency: "812ms", "2.31s" (see fmt_fixed for op, limit). */
static void fmt_latency(char *buf, size_t len, double s, int op, double limit) {
  char num[40];
  if (s < 1) {
    fmt_fixed(num, sizeof(num), s * 1000, s < 0.01 ? 1 : 0, op, limit * 1000);
    snprintf(buf, len, "%sms", num);
  } else {
    fmt_fixed(num, sizeof(num), s, 2, op, limit);
    snprintf(buf, len, "%ss", num);
  }
}

/* A duration as one would write it: "250ms", "3s", "1.5s". */
static void fmt_duration(char *buf, size_t len, double s) {
  if (s > 0 && s < 1)
    snprintf(buf, len, "%gms", s * 1000);
  else
    snprintf(buf, len, "%gs", s);
}

/* Bytes in powers of 1024, named as /proc does: "50MB", "+62.1MB". */
static void fmt_size(char *buf, size_t len, double bytes, int sign) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  double a = fabs(bytes);
  size_t u = 0;
  while (u + 1 < COUNT(units) && a >= 1024) {
    a /= 1024;
    u++;
  }
  const char *s = bytes < 0 ? "-" : sign ? "+" : "";
  if (a == floor(a))
    snprintf(buf, len, "%s%.0f%s", s, a, units[u]);
  else
    snprintf(buf, len, "%s%.1f%s", s, a, units[u]);
}

static const char *plural(size_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

/* A header value fit to print: at most 40 bytes, control bytes as '?'. */
static void fmt_value(char *buf, size_t len, const char *v) {
  size_t i = 0;
  for (; v[i] != '\0' && i < 40 && i + 1 < len; i++)
    buf[i] = iscntrl((unsigned char)v[i]) ? '?' : v[i];
  buf[i] = '\0';
}

static int class_match(const struct fl_status_class *c,
                       const struct fl_request *r) {
  if (c->xfer >= 0)
    return c->xfer == 0 ? r->error != FL_XFER_OK : r->error == c->xfer;
  return r->error == FL_XFER_OK && r->status >= c->lo && r->status <= c->hi;
}

/* The first record scheduled at or after t. */
static size_t lower_bound(const struct fl_request *r, size_t n, double t) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].sched < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* ---- What a window held ------------------------------------------- */

/* An outcome: an HTTP status (0..599) or 600 + a transport failure. */
#define OUTCOMES (600 + FL_XFER_OTHER + 1)

static size_t outcome(const struct fl_request *r) {
  if (r->error > FL_XFER_OK && r->error <= FL_XFER_OTHER)
    return 600 + (size_t)r->error;
  return r->status > 0 && r->status < 600 ? (size_t)r->status : 0;
}

/* "503", "timeout", or "no status". */
static void fmt_outcome(char *buf, size_t len, size_t k) {
  if (k >= 600)
    snprintf(buf, len, "%s", fl_xfer_error_name((int)(k - 600)));
  else if (k > 0)
    snprintf(buf, len, "%zu", k);
  else
    snprintf(buf, len, "no status");
}

/* The outcome of one request, as words: "503", "timeout". */
static const char *outcome_text(const struct fl_request *r, char *buf,
                                size_t len) {
  fmt_outcome(buf, len, outcome(r));
  return buf;
}

/* How many items a breakdown names before "…". */
#define BREAKDOWN_ITEMS 4

/* Which requests a breakdown counts, by whether their outcome is in the
 * expectation's class. */
enum side { OUTSIDE, INSIDE, ALL };

/* The side that says what happened instead: a share below its limit
 * was taken by outcomes outside the class, one above it by those
 * inside; at the limit (a failed !=), everything. */
static enum side side_of(double pct, double limit) {
  return pct < limit ? OUTSIDE : pct > limit ? INSIDE : ALL;
}

/* ": 62 × 500, 18 × timeout" for the requests of w[0..n) on that side of
 * c, largest first, at most BREAKDOWN_ITEMS then "…"; "" when none. */
static void breakdown(const struct fl_request *w, size_t n,
                      const struct fl_status_class *c, enum side side,
                      char *buf, size_t len) {
  size_t count[OUTCOMES] = {0};
  for (size_t i = 0; i < n; i++)
    if (side == ALL || class_match(c, &w[i]) == (side == INSIDE))
      count[outcome(&w[i])]++;
  size_t used = 0;
  buf[0] = '\0';
  for (int item = 0;; item++) {
    size_t top = 0;
    for (size_t k = 1; k < OUTCOMES; k++)
      if (count[k] > count[top])
        top = k;
    if (count[top] == 0)
      return;
    char name[32];
    fmt_outcome(name, sizeof(name), top);
    const char *sep = item == 0 ? ": " : ", ";
    if (item == BREAKDOWN_ITEMS) {
      snprintf(buf + used, len - used, "%s\u2026", sep);
      return;
    }
    int wrote = snprintf(buf + used, len - used, "%s%zu \u00d7 %s", sep,
                         count[top], name);
    if (wrote < 0 || (size_t)wrote >= len - used)
      return;
    used += (size_t)wrote;
    count[top] = 0;
  }
}

/* Output buffers of one evaluation. */
struct out {
  char *exp;
  size_t elen;
  char *obs;
  size_t olen;
};

/* ---- Endpoint expectations ------------------------------------------ */

static int eval_rate(const struct fl_expect *e, const struct fl_request *w,
                     size_t n, struct out *o) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += class_match(&e->cls, &w[i]);
  double pct = 100.0 * (double)k / (double)n;
  int pass = fl_expect_cmp(pct, e->op, e->value);
  char num[48], held[256] = "";
  fmt_fixed(num, sizeof(num), pct, 1, e->op, e->value);
  if (!pass)
    breakdown(w, n, &e->cls, side_of(pct, e->value), held, sizeof(held));
  fl_expect_put(o->exp, o->elen, "%s %g%%", fl_expect_op_str(e->op), e->value);
  fl_expect_put(o->obs, o->olen, "%s%% %s (%zu of %zu)%s", num, e->cls.text, k,
                n, held);
  return pass;
}

/* ---- Header checks ------------------------------------------------- */

/* What one response's header says against the expectation. */
enum header_verdict { HDR_OK, HDR_MISSING, HDR_INVALID, HDR_WRONG };

/* A header value without the blanks around it (OWS): s[0..*n). */
static const char *trim(const char *v, size_t *n) {
  while (*v == ' ' || *v == '\t')
    v++;
  *n = strlen(v);
  while (*n > 0 && (v[*n - 1] == ' ' || v[*n - 1] == '\t'))
    (*n)--;
  return v;
}

static int is_retry_after(const struct fl_expect *e) {
  return strcasecmp(e->name, "Retry-After") == 0;
}

/* The number a value s[0..n) stands for. Retry-After: delta-seconds
 * (digits), or an HTTP-date as seconds from `received` (the response's
 * arrival); another header: a decimal number. 0; -EINVAL when it is
 * none of these; -ENODATA for a valid HTTP-date and no arrival time. */
static int header_number(int retry, const char *s, size_t n, double received,
                         double *out) {
  size_t d = 0;
  while (d < n && isdigit((unsigned char)s[d]))
    d++;
  if (n > 0 && (d == n || (!retry && fl_scan_number(s, n, out) == n))) {
    if (d == n)
      *out = strtod(s, NULL);
    return 0;
  }
  char buf[64];
  long long t;
  if (!retry || n == 0 || n >= sizeof(buf))
    return -EINVAL;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (fl_http_date_parse(buf, &t) != 0)
    return -EINVAL;
  if (!(received > 0))
    return -ENODATA;
  *out = (double)t - received;
  return 0;
}

/* Present, valid (Retry-After: delta-seconds or an HTTP-date; another
 * header: not empty) and, with a check, holding it. A string check asks
 * for the exact value and nothing else. */
static enum header_verdict header_judge(const struct fl_expect *e,
                                        const struct fl_request *r) {
  const char *v = fl_request_header(r, e->header);
  if (v == NULL)
    return HDR_MISSING;
  size_t n;
  const char *s = trim(v, &n);
  if (e->check == FL_HDR_STRING) {
    int eq = n == strlen(e->str) && memcmp(s, e->str, n) == 0;
    return eq == (e->op == FL_CMP_EQ) ? HDR_OK : HDR_WRONG;
  }
  int retry = is_retry_after(e);
  double x = 0;
  int rc = header_number(retry, s, n, r->received, &x);
  if (n == 0 || (retry && rc == -EINVAL))
    return HDR_INVALID;
  if (e->check == FL_HDR_PRESENT)
    return HDR_OK;
  if (rc != 0)
    return HDR_INVALID;
  return fl_expect_cmp(x, e->op, e->value) ? HDR_OK : HDR_WRONG;
}

/* "'miss'", "missing", or for a date "'Wed, ...' = 45s after the
 * response". */
static void fmt_header_of(const struct fl_expect *e, const struct fl_request *r,
                          char *buf, size_t len) {
  const char *v = fl_request_header(r, e->header);
  if (v == NULL) {
    snprintf(buf, len, "missing");
    return;
  }
  char clean[48];
  fmt_value(clean, sizeof(clean), v);
  size_t n;
  const char *s = trim(v, &n);
  double x;
  if (is_retry_after(e) && e->check == FL_HDR_NUMBER &&
      header_number(1, s, n, r->received, &x) == 0 &&
      !isdigit((unsigned char)s[0]))
    snprintf(buf, len, "'%s' = %.0fs after the response", clean, x);
  else
    snprintf(buf, len, "'%s'", clean);
}

/* The responses of a window that failed a header check. */
struct header_tally {
  size_t total, bad[HDR_WRONG + 1];
  const struct fl_request *first;   /* the first that failed */
  const struct fl_request *example; /* the first that failed with a value */
};

/* "missing on 3 and wrong value on 2 of 9 2xx responses (first at
 * t=3.02s: missing; e.g. 'miss' at t=4.00s)". */
static void header_failure(const struct fl_expect *e,
                           const struct header_tally *h, struct out *o) {
  static const char *const what[] = {[HDR_MISSING] = "missing",
                                     [HDR_INVALID] = "invalid",
                                     [HDR_WRONG] = "wrong value"};
  char parts[128] = "", first[128], eg[160] = "";
  size_t used = 0, left = 0;
  for (int k = HDR_MISSING; k <= HDR_WRONG; k++)
    left += h->bad[k] > 0;
  for (int k = HDR_MISSING; k <= HDR_WRONG; k++) {
    if (h->bad[k] == 0)
      continue;
    left--;
    used += (size_t)snprintf(parts + used, sizeof(parts) - used, "%s on %zu%s",
                             what[k], h->bad[k],
                             left > 1    ? ", "
                             : left == 1 ? " and "
                                         : "");
  }
  /* "missing" says nothing more when every failure was one. */
  if (fl_request_header(h->first, e->header) == NULL && h->example == NULL)
    first[0] = '\0';
  else
    fmt_header_of(e, h->first, first, sizeof(first));
  if (h->example != NULL && h->example != h->first) {
    char v[128];
    fmt_header_of(e, h->example, v, sizeof(v));
    snprintf(eg, sizeof(eg), "; e.g. %s at t=%.2fs", v, h->example->sched);
  }
  fl_expect_put(o->obs, o->olen, "%s of %zu %s %s (first at t=%.2fs%s%s%s)",
                parts, h->total, e->cls.text,
                plural(h->total, "response", "responses"), h->first->sched,
                first[0] ? ": " : "", first, eg);
}

static void header_expected(const struct fl_expect *e, struct out *o) {
  if (e->check == FL_HDR_STRING)
    fl_expect_put(o->exp, o->elen, "%s %s \"%s\" on every %s response", e->name,
                  fl_expect_op_str(e->op), e->str, e->cls.text);
  else if (e->check == FL_HDR_NUMBER)
    fl_expect_put(
        o->exp, o->elen, "%s %s %g on every %s response%s", e->name,
        fl_expect_op_str(e->op), e->value, e->cls.text,
        is_retry_after(e) ? " (seconds; an HTTP-date from the response)" : "");
  else
    fl_expect_put(
        o->exp, o->elen, "%s on every %s response (%s)", e->name, e->cls.text,
        is_retry_after(e) ? "delta-seconds or HTTP-date" : "not empty");
}

/* A value check judges the responses answered inside the window: a value
 * says what the service knew when it answered, and one answered after the
 * window closed (a dependency back by then) speaks of what came after. */
static int answered_after(const struct fl_expect *e, const struct fl_request *q,
                          double to) {
  return e->check != FL_HDR_PRESENT && q->start + q->latency > to;
}

static int eval_header(const struct fl_expect *e, const struct fl_request *w,
                       size_t n, double to, struct out *o) {
  header_expected(e, o);
  if (e->header < 0) {
    fl_expect_put(o->obs, o->olen, "header %s was not recorded", e->name);
    return 0;
  }
  struct header_tally h = {0};
  for (size_t i = 0; i < n; i++) {
    if (w[i].error != FL_XFER_OK || !class_match(&e->cls, &w[i]) ||
        answered_after(e, &w[i], to))
      continue;
    h.total++;
    enum header_verdict v = header_judge(e, &w[i]);
    h.bad[v]++;
    if (v != HDR_OK && h.first == NULL)
      h.first = &w[i];
    if (v != HDR_OK && h.example == NULL &&
        fl_request_header(&w[i], e->header) != NULL)
      h.example = &w[i];
  }
  if (h.total == 0) {
    fl_expect_put(o->obs, o->olen, "no %s responses", e->cls.text);
    return e->if_any;
  }
  if (h.first == NULL) {
    fl_expect_put(o->obs, o->olen, "%s on %zu of %zu %s %s",
                  e->check == FL_HDR_PRESENT ? "valid" : "held", h.total,
                  h.total, e->cls.text,
                  plural(h.total, "response", "responses"));
    return 1;
  }
  header_failure(e, &h, o);
  return 0;
}

/* The slowest request of w[0..n) (n > 0). */
static const struct fl_request *slowest(const struct fl_request *w, size_t n) {
  size_t worst = 0;
  for (size_t i = 1; i < n; i++)
    if (w[i].latency > w[worst].latency)
      worst = i;
  return &w[worst];
}

static int eval_percentile(const struct fl_expect *e,
                           const struct fl_request *w, size_t n,
                           struct out *o) {
  char lim[32], got[48], slow[48], what[32], worst[128] = "";
  fmt_duration(lim, sizeof(lim), e->value);
  fl_expect_put(o->exp, o->elen, "%s %s", fl_expect_op_str(e->op), lim);
  double *lat = malloc(n * sizeof(*lat));
  if (lat == NULL) {
    fl_expect_put(o->obs, o->olen, "out of memory");
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    lat[i] = w[i].latency;
  /* Nearest rank: the smallest value with at least N% of the samples at
   * or below it. */
  fl_sort_values(lat, n);
  double v = fl_percentile(lat, n, e->percentile);
  free(lat);
  int pass = fl_expect_cmp(v, e->op, e->value);
  fmt_latency(got, sizeof(got), v, e->op, e->value);
  if (!pass) {
    const struct fl_request *s = slowest(w, n);
    fmt_latency(slow, sizeof(slow), s->latency, e->op, e->value);
    snprintf(worst, sizeof(worst), "; slowest %s at t=%.2fs: %s", slow,
             s->sched, outcome_text(s, what, sizeof(what)));
  }
  fl_expect_put(o->obs, o->olen, "p(%g) = %s (%zu %s%s)", e->percentile, got, n,
                plural(n, "request", "requests"), worst);
  return pass;
}

static int eval_max(const struct fl_expect *e, const struct fl_request *w,
                    size_t n, struct out *o) {
  char lim[32], got[48], what[32];
  fmt_duration(lim, sizeof(lim), e->value);
  fl_expect_put(o->exp, o->elen, "%s %s", fl_expect_op_str(e->op), lim);
  const struct fl_request *s = slowest(w, n);
  fmt_latency(got, sizeof(got), s->latency, e->op, e->value);
  fl_expect_put(o->obs, o->olen, "max = %s at t=%.2fs: %s (%zu %s)", got,
                s->sched, outcome_text(s, what, sizeof(what)), n,
                plural(n, "request", "requests"));
  return fl_expect_cmp(s->latency, e->op, e->value);
}

static int eval_within(const struct fl_request *w, size_t n, double timeout,
                       struct out *o) {
  if (!(timeout > 0)) {
    fl_expect_put(o->exp, o->elen,
                  "every request within the endpoint's timeout");
    fl_expect_put(o->obs, o->olen, "the endpoint has no timeout");
    return 0;
  }
  double limit = timeout + 0.5;
  char lim[32], to[32], got[48];
  fmt_duration(lim, sizeof(lim), limit);
  fmt_duration(to, sizeof(to), timeout);
  fl_expect_put(o->exp, o->elen, "every latency <= %s (timeout %s + 0.5s)", lim,
                to);
  size_t over = 0, worst = 0;
  const struct fl_request *first = NULL;
  for (size_t i = 0; i < n; i++) {
    if (w[i].latency > w[worst].latency)
      worst = i;
    if (w[i].latency > limit) {
      over++;
      if (first == NULL)
        first = &w[i];
    }
  }
  if (first == NULL) {
    fmt_latency(got, sizeof(got), w[worst].latency, FL_CMP_LE, limit);
    fl_expect_put(o->obs, o->olen, "all %zu within %s (slowest %s)", n, lim,
                  got);
    return 1;
  }
  fmt_latency(got, sizeof(got), first->latency, FL_CMP_LE, limit);
  fl_expect_put(o->obs, o->olen, "%zu of %zu over %s (first at t=%.2fs: %s)",
                over, n, lim, first->sched, got);
  return 0;
}

static int eval_requests(const struct fl_expect *e, size_t n, struct out *o) {
  fl_expect_put(o->exp, o->elen, "%s %g", fl_expect_op_str(e->op), e->value);
  fl_expect_put(o->obs, o->olen, "%zu", n);
  return fl_expect_cmp((double)n, e->op, e->value);
}

/* Per-second buckets from the window's start. Recovery is at the start of
 * the bucket after the last one that fails the rate condition; a final
 * bucket cut short by the window's end with fewer than 3 requests says
 * too little and is left out, and empty seconds neither hold nor fail. */
#define RECOVER_MIN_LAST 3

/* A recovery window cut into seconds: requests in each, and those of the
 * class. tot and hit share one allocation (tot). */
struct seconds {
  size_t nb, used; /* seconds, and those judged */
  size_t *tot, *hit;
};

static int count_seconds(const struct fl_expect *e, const struct fl_request *w,
                         size_t n, double from, double to, struct seconds *s) {
  s->nb = (size_t)ceil(to - from - 1e-9);
  if (s->nb == 0)
    s->nb = 1;
  if ((s->tot = calloc(2 * s->nb, sizeof(*s->tot))) == NULL)
    return -ENOMEM;
  s->hit = s->tot + s->nb;
  for (size_t i = 0; i < n; i++) {
    double off = floor(w[i].sched - from);
    size_t b = off < 0 ? 0 : off >= (double)s->nb ? s->nb - 1 : (size_t)off;
    s->tot[b]++;
    s->hit[b] += class_match(&e->cls, &w[i]);
  }
  /* A last, partial second with few requests says little: skip it. */
  s->used = s->nb;
  if (from + (double)s->nb > to + 1e-9 && s->tot[s->nb - 1] < RECOVER_MIN_LAST)
    s->used = s->nb - 1;
  return 0;
}

/* One past the last failing second (0: none failed); *held counts the
 * seconds with requests after it. */
static size_t last_failure(const struct fl_expect *e, const struct seconds *s,
                           size_t *held) {
  size_t k = 0;
  *held = 0;
  for (size_t b = 0; b < s->used; b++) {
    if (s->tot[b] == 0)
      continue;
    if (!fl_expect_cmp(100.0 * (double)s->hit[b] / (double)s->tot[b], e->op,
                       e->value)) {
      k = b + 1;
      *held = 0;
    } else {
      (*held)++;
    }
  }
  return k;
}

/* "last failing second at t=12.00s: 40.0% 2xx (4 of 10): 6 × 503" for
 * second f of s (w sorted by schedule, bucketed as count_seconds does). */
static void fmt_last_second(const struct fl_expect *e,
                            const struct fl_request *w, size_t n, double from,
                            const struct seconds *s, size_t f, char *buf,
                            size_t len) {
  double pct = 100.0 * (double)s->hit[f] / (double)s->tot[f];
  size_t lo = f == 0 ? 0 : lower_bound(w, n, from + (double)f);
  size_t hi = f + 1 == s->nb ? n : lower_bound(w, n, from + (double)f + 1);
  char num[48], held[256];
  fmt_fixed(num, sizeof(num), pct, 1, e->op, e->value);
  breakdown(w + lo, hi - lo, &e->cls, side_of(pct, e->value), held,
            sizeof(held));
  snprintf(buf, len, "last failing second at t=%.2fs: %s%% %s (%zu of %zu)%s",
           from + (double)f, num, e->cls.text, s->hit[f], s->tot[f], held);
}

static int eval_recovers(const struct fl_expect *e, const struct fl_request *w,
                         size_t n, double from, double to, struct out *o) {
  char lim[32];
  fmt_duration(lim, sizeof(lim), e->within);
  fl_expect_put(
      o->exp, o->elen,
      "rate(%s) %s %g%% in every second from at most %s after t=%.2fs",
      e->cls.text, fl_expect_op_str(e->op), e->value, lim, from);
  struct seconds s;
  if (count_seconds(e, w, n, from, to, &s) != 0) {
    fl_expect_put(o->obs, o->olen, "out of memory");
    return 0;
  }
  size_t held;
  size_t k = last_failure(e, &s, &held);
  char last[384] = "";
  if (k > 0)
    fmt_last_second(e, w, n, from, &s, k - 1, last, sizeof(last));
  free(s.tot);
  if (held == 0 && k == 0) {
    fl_expect_put(o->obs, o->olen, "no full second of requests");
    return 0;
  }
  if (held == 0) {
    fl_expect_put(o->obs, o->olen, "not recovered by the end (%s)", last);
    return 0;
  }
  fl_expect_put(o->obs, o->olen, "recovered after %.1fs (%s)", (double)k,
                k ? last : "every second held");
  return (double)k <= e->within + 1e-9;
}

static int eval_window(const struct fl_expect *e, const struct fl_request *w,
                       size_t n, double from, double to, double timeout,
                       struct out *o) {
  switch ((enum fl_expect_kind)e->kind) {
  case FL_EXP_RATE:
    return eval_rate(e, w, n, o);
  case FL_EXP_HEADER:
    return eval_header(e, w, n, to, o);
  case FL_EXP_PERCENTILE:
    return eval_percentile(e, w, n, o);
  case FL_EXP_MAX:
    return eval_max(e, w, n, o);
  case FL_EXP_WITHIN_TIMEOUT:
    return eval_within(w, n, timeout, o);
  case FL_EXP_RECOVERS:
    return eval_recovers(e, w, n, from, to, o);
  default:
    return 0;
  }
}

int fl_expect_eval_endpoint(const struct fl_expect *e,
                            const struct fl_request *reqs, size_t n,
                            double from, double to, double timeout,
                            char *expected, size_t elen, char *observed,
                            size_t olen) {
  struct out o = {expected, elen, observed, olen};
  fl_expect_put(expected, elen, "%s", e->text);
  fl_expect_put(observed, olen, "%s", "");
  if (!fl_expect_is_endpoint(e)) {
    fl_expect_put(observed, olen, "not an endpoint expectation");
    return 0;
  }
  size_t lo = lower_bound(reqs, n, from), hi = lower_bound(reqs, n, to);
  size_t m = hi > lo ? hi - lo : 0;
  const struct fl_request *w = m > 0 ? reqs + lo : reqs;
  if (e->kind == FL_EXP_REQUESTS)
    return eval_requests(e, m, &o);
  /* A request still in flight has no outcome yet: it is left out of
   * everything but the count of requests sent. */
  size_t done = 0;
  for (size_t i = 0; i < m; i++)
    done += !(w[i].latency < 0);
  struct fl_request *copy = NULL;
  if (done > 0 && done < m) {
    if ((copy = malloc(done * sizeof(*copy))) == NULL) {
      fl_expect_put(observed, olen, "out of memory");
      return 0;
    }
    for (size_t i = 0, j = 0; i < m; i++)
      if (!(w[i].latency < 0))
        copy[j++] = w[i];
    w = copy;
  }
  if (done == 0) {
    fl_expect_put(observed, olen,
                  m > 0 ? "no completed requests" : "no requests");
    return 0;
  }
  int pass = eval_window(e, w, done, from, to, timeout, &o);
  free(copy);
  return pass;
}

/* ---- Target expectations --------------------------------------------- */

/* conns(NAME) of a NAME that is no dependency: 1 after saying so. */
static int unknown_dep(const struct fl_expect *e,
                       const struct fl_target_facts *f, struct out *o) {
  if (e->count != FL_COUNT_CONNS || !f->no_such_dep)
    return 0;
  fl_expect_put(
      o->obs, o->olen,
      "no dependency named '%s' (conns(other): connections to anything "
      "else)",
      e->name);
  return 1;
}

static int eval_fds(const struct fl_expect *e, const struct fl_target_facts *f,
                    struct out *o) {
  double limit = f->fds_baseline + e->value;
  if (unknown_dep(e, f, o)) {
    fl_expect_put(o->exp, o->elen, "%s baseline + %g", fl_expect_op_str(e->op),
                  e->value);
    return 0;
  }
  if (f->fds_baseline < 0 || f->fds_max < 0) {
    fl_expect_put(o->exp, o->elen, "%s baseline + %g", fl_expect_op_str(e->op),
                  e->value);
    fl_expect_put(o->obs, o->olen, "no fd samples");
    return 0;
  }
  fl_expect_put(o->exp, o->elen, "%s baseline + %g (%.1f)",
                fl_expect_op_str(e->op), e->value, limit);
  fl_expect_put(o->obs, o->olen, "max %.0f (baseline %.1f, %+.1f)", f->fds_max,
                f->fds_baseline, f->fds_max - f->fds_baseline);
  return fl_expect_cmp(f->fds_max, e->op, limit);
}

static int eval_rss(const struct fl_expect *e, const struct fl_target_facts *f,
                    struct out *o) {
  char add[32], lim[32], max[32], base[32], grew[32];
  fmt_size(add, sizeof(add), e->value, 0);
  if (f->rss_baseline_kb < 0 || f->rss_max_kb < 0) {
    fl_expect_put(o->exp, o->elen, "%s baseline + %s", fl_expect_op_str(e->op),
                  add);
    fl_expect_put(o->obs, o->olen, "no memory samples");
    return 0;
  }
  double b = f->rss_baseline_kb * 1024, m = f->rss_max_kb * 1024;
  fmt_size(lim, sizeof(lim), b + e->value, 0);
  fmt_size(max, sizeof(max), m, 0);
  fmt_size(base, sizeof(base), b, 0);
  fmt_size(grew, sizeof(grew), m - b, 1);
  fl_expect_put(o->exp, o->elen, "%s baseline + %s (%s)",
                fl_expect_op_str(e->op), add, lim);
  fl_expect_put(o->obs, o->olen, "max %s (baseline %s, %s)", max, base, grew);
  return fl_expect_cmp(m, e->op, b + e->value);
}

/* A count as one would read it: "42", or for rss (kB) "61.2MB". */
static void fmt_count(char *buf, size_t len, const struct fl_expect *e,
                      double v) {
  if (e->count == FL_COUNT_RSS)
    fmt_size(buf, len, v * 1024, 0);
  else
    snprintf(buf, len, "%.0f", v);
}

/* The index of the last sample of f->series that fails the condition,
 * or -1. */
static long last_over(const struct fl_expect *e,
                      const struct fl_target_facts *f, double limit) {
  long k = -1;
  for (size_t i = 0; i < f->nseries; i++)
    if (!fl_expect_cmp(f->series[i].v, e->op, limit))
      k = (long)i;
  return k;
}

/* T is taken just after the last sample that failed (the count is only
 * known at samples, one a second): the condition settled in time when
 * that sample came before start + DURATION and a sample after it held. */
static int eval_settles(const struct fl_expect *e,
                        const struct fl_target_facts *f, struct out *o) {
  int rss = e->count == FL_COUNT_RSS;
  double base = rss ? f->rss_baseline_kb : f->fds_baseline;
  double limit = base + (rss ? e->value / 1024 : e->value);
  char add[32], lim[32], dur[32], v[32], b[32];
  if (rss)
    fmt_size(add, sizeof(add), e->value, 0);
  else
    snprintf(add, sizeof(add), "%g", e->value);
  fmt_count(lim, sizeof(lim), e, limit);
  fmt_duration(dur, sizeof(dur), e->within);
  fl_expect_put(o->exp, o->elen,
                "%s baseline + %s (%s) from at most %s after t=%.2fs",
                fl_expect_op_str(e->op), add, lim, dur, f->from);
  if (unknown_dep(e, f, o))
    return 0;
  if (base < 0 || f->nseries == 0) {
    fl_expect_put(o->obs, o->olen, "no %s samples", rss ? "memory" : "fd");
    return 0;
  }
  fmt_count(b, sizeof(b), e, base);
  long k = last_over(e, f, limit);
  if (k < 0) {
    fl_expect_put(o->obs, o->olen, "held at all %zu samples (baseline %s)",
                  f->nseries, b);
    return 1;
  }
  const struct fl_count_sample *x = &f->series[k];
  fmt_count(v, sizeof(v), e, x->v);
  if ((size_t)k + 1 == f->nseries) {
    fl_expect_put(o->obs, o->olen,
                  "not settled by the end: %s at t=%.2fs (baseline %s)", v,
                  x->t, b);
    return 0;
  }
  fl_expect_put(o->obs, o->olen,
                "settled by t=%.2fs (last over: %s at t=%.2fs, "
                "baseline %s)",
                f->series[k + 1].t, v, x->t, b);
  return x->t < f->from + e->within;
}

static int eval_fault(const struct fl_expect *e,
                      const struct fl_target_facts *f, struct out *o) {
  fl_expect_put(o->exp, o->elen, "hit %s %g", fl_expect_op_str(e->op),
                e->value);
  if (f->fault_delivered == NULL) {
    fl_expect_put(o->obs, o->olen, "deliveries of faults were not counted");
    return 0;
  }
  long c = f->fault_delivered(e->name, f->arg);
  if (c < 0) {
    fl_expect_put(o->obs, o->olen, "no fault named '%s' in the scenario",
                  e->name);
    return 0;
  }
  fl_expect_put(o->obs, o->olen, "delivered %ld %s", c,
                plural((size_t)c, "time", "times"));
  return fl_expect_cmp((double)c, e->op, e->value);
}

int fl_expect_eval_target(const struct fl_expect *e,
                          const struct fl_target_facts *f, char *expected,
                          size_t elen, char *observed, size_t olen) {
  struct out o = {expected, elen, observed, olen};
  fl_expect_put(expected, elen, "%s", e->text);
  fl_expect_put(observed, olen, "%s", "");
  switch ((enum fl_expect_kind)e->kind) {
  case FL_EXP_NO_RESTART:
    fl_expect_put(expected, elen, "no restart");
    if (f->restarts == 0)
      fl_expect_put(observed, olen, "no restart");
    else
      fl_expect_put(observed, olen, "restarted %d %s", f->restarts,
                    plural((size_t)f->restarts, "time", "times"));
    return f->restarts == 0;
  case FL_EXP_NO_CRASH:
    fl_expect_put(expected, elen, "no crash");
    fl_expect_put(observed, olen, "%s",
                  !f->crashed ? "no crash"
                  : f->ending ? f->ending
                              : "crashed (ended by a signal)");
    return !f->crashed;
  case FL_EXP_ALIVE:
    fl_expect_put(expected, elen, "alive to the end");
    fl_expect_put(observed, olen, "%s",
                  !f->crashed && !f->exited ? "alive"
                  : f->ending               ? f->ending
                  : f->crashed              ? "crashed (ended by a signal)"
                                            : "exited before the end");
    return !f->crashed && !f->exited;
  case FL_EXP_STARTS:
    fl_expect_put(expected, elen, "starts under the start faults");
    fl_expect_put(observed, olen, "%s",
                  f->start_failure ? f->start_failure : "started");
    return f->start_failure == NULL;
  case FL_EXP_FDS:
    return eval_fds(e, f, &o);
  case FL_EXP_RSS:
    return eval_rss(e, f, &o);
  case FL_EXP_FAULT_HIT:
    return eval_fault(e, f, &o);
  case FL_EXP_SETTLES:
    return eval_settles(e, f, &o);
  default:
    fl_expect_put(observed, olen, "not a target expectation");
    return 0;
  }
}
