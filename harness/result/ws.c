/*
 * A WebSocket endpoint's "websocket" object (docs/result.md): what its
 * connections did over the run, as judged by run/judge_ws.c.
 */
#include <math.h>
#include <stdio.h>

#include "result.h"

static void set(json_t *o, const char *key, json_t *v) {
  json_object_set_new(o, key, v);
}

/* Seconds to the microsecond, null for none. */
static json_t *secs(double v) {
  return isnan(v) ? json_null() : json_real(round(v * 1e6) / 1e6);
}

static json_t *count(size_t n) { return json_integer((json_int_t)n); }

json_t *fl_result_ws_json(const struct fl_result_ws *w) {
  json_t *o = json_object(), *hs = json_object(), *msgs = json_object(),
         *rtt = json_object(), *codes = json_object(), *errs = json_object();
  set(o, "connections", json_integer(w->connections));
  set(o, "connect_rate", json_real(w->connect_rate));
  set(o, "message_rate", json_real(w->message_rate));
  set(o, "slow_readers", json_integer(w->slow_readers));
  set(o, "attempts", count(w->attempts));
  set(o, "opened", count(w->opened));
  set(o, "reconnects", count(w->reconnects));
  set(hs, "p50", secs(w->handshake_p50));
  set(hs, "p99", secs(w->handshake_p99));
  set(hs, "max", secs(w->handshake_max));
  set(o, "handshake", hs);
  set(msgs, "sent", json_integer((json_int_t)w->sent));
  set(msgs, "received", json_integer((json_int_t)w->received));
  set(o, "messages", msgs);
  set(rtt, "replies", count(w->replies));
  set(rtt, "p50", secs(w->rtt_p50));
  set(rtt, "p99", secs(w->rtt_p99));
  set(rtt, "max", secs(w->rtt_max));
  set(o, "rtt", rtt);
  set(o, "closes", count(w->closes));
  for (size_t i = 0; i < w->ncodes; i++) {
    char key[16];
    snprintf(key, sizeof(key), "%d", w->codes[i]);
    set(codes, key, count(w->code_counts[i]));
  }
  set(o, "close_codes", codes);
  for (size_t i = 0; i < w->nerrors; i++)
    set(errs, w->error_names[i], count(w->error_counts[i]));
  set(o, "errors", errs);
  json_t *series = json_array();
  for (size_t i = 0; i < w->nseries; i++) {
    const struct fl_result_ws_second *x = &w->series[i];
    json_t *s = json_object();
    set(s, "t", json_integer((json_int_t)i));
    set(s, "attempts", json_integer(x->attempts));
    set(s, "opened", json_integer(x->opened));
    set(s, "closes", json_integer(x->closes));
    set(s, "open", json_integer(x->open));
    set(s, "received", json_integer(x->received));
    set(s, "replies", json_integer(x->replies));
    set(s, "rtt_p50", secs(x->rtt_p50));
    set(s, "rtt_p99", secs(x->rtt_p99));
    json_array_append_new(series, s);
  }
  set(o, "series", series);
  return o;
}
