/*
 * A WebSocket endpoint in one sentence, from its "websocket" object
 * (docs/result.md), for the Markdown and HTML reports: connections,
 * messages, round trips, unexpected closes by code, transport errors.
 */
#include <stdarg.h>
#include <stdio.h>

#include "fmt.h"

/* Appends to buf[*at..size). */
__attribute__((format(printf, 4, 5))) static void
add(char *buf, size_t size, size_t *at, const char *fmt, ...);
static void add(char *buf, size_t size, size_t *at, const char *fmt, ...) {
  if (*at >= size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *at, size - *at, fmt, ap);
  va_end(ap);
  if (n > 0)
    *at += (size_t)n;
}

/* "1.2 ms", "350 ms", "2.1 s", or "-" for none. */
static void ms(char *buf, size_t size, const json_t *o, const char *key) {
  if (!fl_rep_has_num(o, key)) {
    snprintf(buf, size, "-");
    return;
  }
  double v = fl_rep_num(o, key, 0);
  if (v < 1)
    snprintf(buf, size, "%.3g ms", v * 1000);
  else
    snprintf(buf, size, "%.3g s", v);
}

/* Counts of an object of NAME: N as "NAME × N, ..."; how many. */
static size_t counts(char *buf, size_t size, size_t *at, const json_t *o) {
  const char *k;
  json_t *v;
  size_t n = 0;
  json_object_foreach((json_t *)o, k, v) {
    add(buf, size, at, "%s%s × %.0f", n++ ? ", " : "", k,
        json_is_number(v) ? json_number_value(v) : 0);
  }
  return n;
}

int fl_rep_ws_line(const json_t *ep, char *buf, size_t size) {
  const json_t *w = json_object_get(ep, "websocket");
  if (!json_is_object(w))
    return 0;
  size_t at = 0;
  const json_t *m = json_object_get(w, "messages"),
               *rtt = json_object_get(w, "rtt");
  add(buf, size, &at,
      "%.0f connections at %g/s: %.0f of %.0f attempts opened (%.0f "
      "reconnects",
      fl_rep_num(w, "connections", 0), fl_rep_num(w, "connect_rate", 0),
      fl_rep_num(w, "opened", 0), fl_rep_num(w, "attempts", 0),
      fl_rep_num(w, "reconnects", 0));
  if (fl_rep_num(w, "slow_readers", 0) > 0)
    add(buf, size, &at, ", %.0f slow readers",
        fl_rep_num(w, "slow_readers", 0));
  char p50[32], p99[32];
  ms(p50, sizeof(p50), rtt, "p50");
  ms(p99, sizeof(p99), rtt, "p99");
  add(buf, size, &at,
      "); %.0f messages sent, %.0f received, rtt p50 %s, p99 %s; %.0f "
      "unexpected closes",
      fl_rep_num(m, "sent", 0), fl_rep_num(m, "received", 0), p50, p99,
      fl_rep_num(w, "closes", 0));
  const json_t *codes = json_object_get(w, "close_codes");
  if (json_object_size(codes) > 0) {
    add(buf, size, &at, " (");
    counts(buf, size, &at, codes);
    add(buf, size, &at, ")");
  }
  const json_t *errs = json_object_get(w, "errors");
  if (json_object_size(errs) > 0) {
    add(buf, size, &at, "; transport errors: ");
    counts(buf, size, &at, errs);
  }
  add(buf, size, &at, ".");
  return 1;
}
