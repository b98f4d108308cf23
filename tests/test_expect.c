/* Expectations: every form parses to the values it says; every malformed
 * one in data/bad_expects.txt gives exactly its column and message; and
 * evaluation over request arrays built here (the computation is pure, so
 * synthetic records are the right input) gives the verdict and the
 * observed text a reader needs. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "expect/expect.h"
#include "support.h"

static struct fl_expect parse_ok(const char *text) {
  struct fl_expect e;
  char err[512] = "";
  int col = -1;
  int rc = fl_expect_parse(text, &e, &col, err, sizeof(err));
  cr_assert_eq(rc, 0, "'%s' was refused at column %d: %s", text, col, err);
  return e;
}

/* ---- Parsing ---------------------------------------------------------- */

Test(expect_parse, rate, .timeout = 10) {
  struct fl_expect e = parse_ok("rate(503) >= 95%");
  cr_assert_eq(e.kind, FL_EXP_RATE);
  cr_assert_eq(e.op, FL_CMP_GE);
  cr_assert_float_eq(e.value, 95, 1e-12);
  cr_assert_eq(e.cls.lo, 503);
  cr_assert_eq(e.cls.hi, 503);
  cr_assert_eq(e.cls.xfer, -1);
  cr_assert_str_eq(e.cls.text, "503");
  cr_assert_str_eq(e.text, "rate(503) >= 95%");
  cr_assert(fl_expect_is_endpoint(&e));

  e = parse_ok("rate(2xx)>=99.5%");
  cr_assert_eq(e.cls.lo, 200);
  cr_assert_eq(e.cls.hi, 299);
  cr_assert_float_eq(e.value, 99.5, 1e-12);
  cr_assert_str_eq(e.cls.text, "2xx");

  e = parse_ok("rate(5XX) < 1%");
  cr_assert_eq(e.op, FL_CMP_LT);
  cr_assert_eq(e.cls.lo, 500);
  cr_assert_eq(e.cls.hi, 599);

  static const struct {
    const char *text;
    int op, xfer;
  } xfer[] = {
      {"rate(error) <= 1%", FL_CMP_LE, 0},
      {"rate(refused) == 0%", FL_CMP_EQ, FL_XFER_REFUSED},
      {"rate(reset) != 100%", FL_CMP_NE, FL_XFER_RESET},
      {"rate(timeout) > 0%", FL_CMP_GT, FL_XFER_TIMEOUT},
      {"rate(dns) < 50%", FL_CMP_LT, FL_XFER_DNS},
      {"rate(other) < 50%", FL_CMP_LT, FL_XFER_OTHER},
  };
  for (size_t i = 0; i < sizeof(xfer) / sizeof(xfer[0]); i++) {
    e = parse_ok(xfer[i].text);
    cr_expect_eq(e.op, xfer[i].op, "%s", xfer[i].text);
    cr_expect_eq(e.cls.xfer, xfer[i].xfer, "%s", xfer[i].text);
    cr_expect_eq(e.cls.lo, 0);
    cr_expect_eq(e.cls.hi, 0);
  }
}

Test(expect_parse, header, .timeout = 10) {
  struct fl_expect e = parse_ok("header(Retry-After) on 503");
  cr_assert_eq(e.kind, FL_EXP_HEADER);
  cr_assert_str_eq(e.name, "Retry-After");
  cr_assert_eq(e.header, 0, "Retry-After is always captured first");
  cr_assert_eq(e.cls.lo, 503);
  cr_assert(fl_expect_is_endpoint(&e));
  e = parse_ok("header(retry-after) on 5xx");
  cr_assert_eq(e.header, 0);
  cr_assert_eq(e.cls.hi, 599);
  e = parse_ok("header(X-Request-Id) on 2xx");
  cr_assert_str_eq(e.name, "X-Request-Id");
  cr_assert_eq(e.header, -1, "the runner assigns other headers' slots");
}

Test(expect_parse, header_checks, .timeout = 10) {
  struct fl_expect e = parse_ok("header(X-Cache) == \"degraded\" on 2xx");
  cr_assert_eq(e.kind, FL_EXP_HEADER);
  cr_assert_str_eq(e.name, "X-Cache");
  cr_assert_eq(e.check, FL_HDR_STRING);
  cr_assert_eq(e.op, FL_CMP_EQ);
  cr_assert_str_eq(e.str, "degraded");
  cr_assert_eq(e.cls.lo, 200);
  e = parse_ok("header(X-Cache)!=\"miss\"on 2xx");
  cr_assert_eq(e.op, FL_CMP_NE);
  cr_assert_str_eq(e.str, "miss");
  e = parse_ok("header(ETag) == \"\\\"v1\\\" \\\\ x\" on 200");
  cr_assert_str_eq(e.str, "\"v1\" \\ x", "escaped quote and backslash");
  e = parse_ok("header(X-Empty) != \"\" on 200");
  cr_assert_str_eq(e.str, "");
  e = parse_ok("header(Retry-After) <= 30 on 503");
  cr_assert_eq(e.check, FL_HDR_NUMBER);
  cr_assert_eq(e.op, FL_CMP_LE);
  cr_assert_float_eq(e.value, 30, 1e-12);
  cr_assert_eq(e.header, 0);
  static const char *const ops[] = {"<", "<=", ">", ">=", "==", "!="};
  for (int op = FL_CMP_LT; op <= FL_CMP_NE; op++) {
    char text[64];
    snprintf(text, sizeof(text), "header(X-Load) %s 0.75 on 2xx", ops[op]);
    e = parse_ok(text);
    cr_expect_eq(e.op, op, "%s", text);
    cr_expect_float_eq(e.value, 0.75, 1e-12, "%s", text);
  }
  e = parse_ok("header(X-Cache) on 2xx");
  cr_assert_eq(e.check, FL_HDR_PRESENT, "no value: present and valid");
}

Test(expect_parse, latency, .timeout = 10) {
  struct fl_expect e = parse_ok("p(99) < 3s");
  cr_assert_eq(e.kind, FL_EXP_PERCENTILE);
  cr_assert_float_eq(e.percentile, 99, 1e-12);
  cr_assert_eq(e.op, FL_CMP_LT);
  cr_assert_float_eq(e.value, 3, 1e-12);
  e = parse_ok("p(99.9) <= 250ms");
  cr_assert_float_eq(e.percentile, 99.9, 1e-12);
  cr_assert_eq(e.value, 0.25);
  e = parse_ok("p(50%) > 1.5s");
  cr_assert_float_eq(e.percentile, 50, 1e-12);
  cr_assert_eq(e.value, 1.5);
  e = parse_ok("p(100) < 1m");
  cr_assert_eq(e.value, 60);
  e = parse_ok("p(99) <= 990ms");
  cr_assert_eq(e.value, 0.99, "ms is exact to the nearest double");
  e = parse_ok("max < 5s");
  cr_assert_eq(e.kind, FL_EXP_MAX);
  cr_assert_eq(e.value, 5);
  e = parse_ok("within timeout");
  cr_assert_eq(e.kind, FL_EXP_WITHIN_TIMEOUT);
  cr_assert(fl_expect_is_endpoint(&e));
}

Test(expect_parse, requests_and_recovers, .timeout = 10) {
  struct fl_expect e = parse_ok("requests >= 100");
  cr_assert_eq(e.kind, FL_EXP_REQUESTS);
  cr_assert_eq(e.value, 100);
  e = parse_ok("recovers(rate(2xx) >= 99%) within 10s");
  cr_assert_eq(e.kind, FL_EXP_RECOVERS);
  cr_assert_eq(e.cls.lo, 200);
  cr_assert_eq(e.cls.hi, 299);
  cr_assert_eq(e.op, FL_CMP_GE);
  cr_assert_eq(e.value, 99);
  cr_assert_eq(e.within, 10);
  e = parse_ok("recovers( rate( 503 ) < 5% ) within 1500ms");
  cr_assert_eq(e.cls.lo, 503);
  cr_assert_eq(e.op, FL_CMP_LT);
  cr_assert_eq(e.within, 1.5);
  cr_assert(fl_expect_is_endpoint(&e));
}

Test(expect_parse, target, .timeout = 10) {
  struct fl_expect e = parse_ok("  no   restart  ");
  cr_assert_eq(e.kind, FL_EXP_NO_RESTART);
  cr_assert_str_eq(e.text, "no   restart", "kept as written, trimmed");
  cr_assert_not(fl_expect_is_endpoint(&e));
  cr_assert_eq(parse_ok("no crash").kind, FL_EXP_NO_CRASH);
  cr_assert_eq(parse_ok("alive").kind, FL_EXP_ALIVE);

  e = parse_ok("fds <= baseline + 20");
  cr_assert_eq(e.kind, FL_EXP_FDS);
  cr_assert_eq(e.op, FL_CMP_LE);
  cr_assert_eq(e.value, 20);
  e = parse_ok("fds<baseline+5");
  cr_assert_eq(e.op, FL_CMP_LT);
  cr_assert_eq(e.value, 5);
  e = parse_ok("fds <= baseline");
  cr_assert_eq(e.value, 0);
  cr_assert_eq(e.count, FL_COUNT_FDS);

  /* Counts by kind: the same tail, another count. */
  e = parse_ok("conns(redis) <= baseline + 5");
  cr_assert_eq(e.kind, FL_EXP_FDS);
  cr_assert_eq(e.count, FL_COUNT_CONNS);
  cr_assert_str_eq(e.name, "redis");
  cr_assert_eq(e.value, 5);
  e = parse_ok("inbound < baseline + 100");
  cr_assert_eq(e.count, FL_COUNT_INBOUND);
  cr_assert_eq(e.op, FL_CMP_LT);
  cr_assert_eq(parse_ok("files <= baseline").count, FL_COUNT_FILES);

  e = parse_ok("settles(fds <= baseline + 10) within 5s");
  cr_assert_eq(e.kind, FL_EXP_SETTLES);
  cr_assert_eq(e.count, FL_COUNT_FDS);
  cr_assert_eq(e.value, 10);
  cr_assert_eq(e.within, 5);
  cr_assert_not(fl_expect_is_endpoint(&e));
  e = parse_ok("settles( conns(postgres)<=baseline ) within 1.5s");
  cr_assert_eq(e.count, FL_COUNT_CONNS);
  cr_assert_str_eq(e.name, "postgres");
  cr_assert_eq(e.value, 0);
  cr_assert_eq(e.within, 1.5);
  e = parse_ok("settles(rss <= baseline + 50MB) within 1m");
  cr_assert_eq(e.count, FL_COUNT_RSS);
  cr_assert_eq(e.value, 50.0 * 1048576);
  cr_assert_eq(e.within, 60);

  static const struct {
    const char *text;
    double bytes;
  } rss[] = {
      {"rss <= baseline + 50MB", 50.0 * 1048576},
      {"rss <= baseline + 512kB", 512.0 * 1024},
      {"rss <= baseline + 512KB", 512.0 * 1024},
      {"rss <= baseline + 1GB", 1073741824.0},
      {"rss <= baseline + 1.5GiB", 1.5 * 1073741824.0},
      {"rss <= baseline + 2MiB", 2.0 * 1048576},
      {"rss <= baseline + 100B", 100},
      {"rss <= baseline", 0},
  };
  for (size_t i = 0; i < sizeof(rss) / sizeof(rss[0]); i++) {
    e = parse_ok(rss[i].text);
    cr_expect_eq(e.kind, FL_EXP_RSS);
    cr_expect_eq(e.value, rss[i].bytes, "%s", rss[i].text);
  }

  e = parse_ok("fault(postgres) hit >= 1");
  cr_assert_eq(e.kind, FL_EXP_FAULT_HIT);
  cr_assert_str_eq(e.name, "postgres");
  cr_assert_eq(e.op, FL_CMP_GE);
  cr_assert_eq(e.value, 1);
  e = parse_ok("fault(redis) hit");
  cr_assert_eq(e.op, FL_CMP_GE, "a bare 'hit' is at least once");
  cr_assert_eq(e.value, 1);
  e = parse_ok("fault(refuse@db.internal:5432) hit == 0");
  cr_assert_str_eq(e.name, "refuse@db.internal:5432");
  cr_assert_eq(e.op, FL_CMP_EQ);
  cr_assert_eq(e.value, 0);
  cr_assert_not(fl_expect_is_endpoint(&e));
}

Test(expect_parse, too_long_and_null_outputs, .timeout = 10) {
  char text[400];
  memset(text, ' ', sizeof(text) - 1);
  memcpy(text, "alive", 5);
  text[sizeof(text) - 1] = '\0';
  struct fl_expect e;
  char err[256];
  int col = 0;
  cr_assert_eq(fl_expect_parse(text, &e, &col, err, sizeof(err)), FL_EBADSPEC);
  cr_assert_eq(col, 256);
  cr_assert_str_eq(err, "expectation is longer than 255 characters");
  /* The caller may not want the column or the message. */
  cr_assert_eq(fl_expect_parse("ratee", &e, NULL, NULL, 0), FL_EBADSPEC);
  cr_assert_eq(fl_expect_parse("alive", &e, NULL, NULL, 0), 0);
}

Test(expect_parse, bad_corpus, .timeout = 30) {
  FILE *f = fopen(T_DATA "/bad_expects.txt", "r");
  cr_assert_not_null(f);
  char line[1024];
  int checked = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    char *tab1 = strchr(line, '\t');
    cr_assert_not_null(tab1, "corpus line without a tab: %s", line);
    *tab1 = '\0';
    char *tab2 = strchr(tab1 + 1, '\t');
    cr_assert_not_null(tab2, "corpus line without a column: %s", line);
    *tab2 = '\0';
    int want_col = atoi(tab1 + 1);
    struct fl_expect e;
    char err[1024] = "";
    int col = 0;
    int rc = fl_expect_parse(line, &e, &col, err, sizeof(err));
    cr_expect_eq(rc, FL_EBADSPEC, "'%s' was accepted", line);
    cr_expect_str_eq(err, tab2 + 1, "for '%s'", line);
    cr_expect_eq(col, want_col, "column for '%s'", line);
    checked++;
  }
  fclose(f);
  cr_assert_geq(checked, 60);
}

/* ---- HTTP-dates ------------------------------------------------------- */

Test(expect_http_date, valid, .timeout = 10) {
  /* RFC 9110's example instant in its three forms. */
  static const char *const same[] = {
      "Sun, 06 Nov 1994 08:49:37 GMT",
      "Sunday, 06-Nov-94 08:49:37 GMT",
      "Sun Nov  6 08:49:37 1994",
  };
  for (size_t i = 0; i < 3; i++) {
    long long t = 0;
    cr_expect_eq(fl_http_date_parse(same[i], &t), 0, "%s", same[i]);
    cr_expect_eq(t, 784111777LL, "%s", same[i]);
  }
  long long t;
  cr_assert_eq(fl_http_date_parse("Wed Nov 16 08:49:37 1994", &t), 0);
  cr_assert_eq(t, 784111777LL + 10 * 86400);
  cr_assert_eq(fl_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
  cr_assert_eq(t, 0);
  cr_assert_eq(fl_http_date_parse("Thu, 29 Feb 2024 23:59:60 GMT", &t), 0,
               "a leap day and a leap second");
  cr_assert_eq(fl_http_date_parse("Thu, 31 Dec 2099 12:00:00 GMT", &t), 0);
}

Test(expect_http_date, invalid, .timeout = 10) {
  static const char *const bad[] = {
      "",
      "sun, 06 Nov 1994 08:49:37 GMT", /* case-sensitive */
      "Mon, 06 Nov 1994 08:49:37 GMT", /* not a Monday */
      "Sun, 6 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 06 Nov 1994 08:49:37 GMT ",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:00 GMT",
      "Sun, 06 Nov 1994 08:49 GMT",
      "Wed, 31 Nov 1994 08:49:37 GMT",
      "Wed, 29 Feb 2023 08:49:37 GMT",
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT",
      "Sun, 06-Nov-94 08:49:37 GMT", /* RFC 850 needs the long name */
      "Sunday, 06 Nov 1994 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",
      "Sun Nov  6 08:49:37 94",
      "Sun,06 Nov 1994 08:49:37 GMT",
      "1994-11-06T08:49:37Z",
      "120",
      "soon",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    long long t = 0;
    cr_expect_eq(fl_http_date_parse(bad[i], &t), -EINVAL, "'%s' accepted",
                 bad[i]);
  }
}

/* ---- Endpoint evaluation ----------------------------------------------- */

static struct fl_request ok_req(double sched, double latency, int status) {
  struct fl_request r = {.sched = sched,
                         .start = sched,
                         .latency = latency,
                         .status = status,
                         .error = FL_XFER_OK};
  return r;
}

static struct fl_request err_req(double sched, double latency, int error) {
  struct fl_request r = {.sched = sched,
                         .start = sched,
                         .latency = latency,
                         .status = 0,
                         .error = error};
  return r;
}

static char exp_buf[512], obs_buf[512];

static int eval(const char *text, const struct fl_request *r, size_t n,
                double from, double to, double timeout) {
  struct fl_expect e = parse_ok(text);
  memset(exp_buf, 'X', sizeof(exp_buf));
  memset(obs_buf, 'X', sizeof(obs_buf));
  return fl_expect_eval_endpoint(&e, r, n, from, to, timeout, exp_buf,
                                 sizeof(exp_buf), obs_buf, sizeof(obs_buf));
}

Test(expect_eval, empty_window, .timeout = 10) {
  struct fl_request r[3] = {ok_req(0.5, 0.01, 200), ok_req(1.5, 0.01, 200),
                            ok_req(9.5, 0.01, 200)};
  static const char *const kinds[] = {
      "rate(2xx) >= 0%", "header(Retry-After) on 503",
      "p(50) < 1s",      "max < 1s",
      "within timeout",  "recovers(rate(2xx) >= 99%) within 10s",
  };
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    cr_expect_eq(eval(kinds[i], r, 3, 2, 9, 1), 0, "%s", kinds[i]);
    cr_expect_str_eq(obs_buf, "no requests", "%s", kinds[i]);
    cr_expect_eq(eval(kinds[i], NULL, 0, 0, 10, 1), 0, "%s", kinds[i]);
    cr_expect_str_eq(obs_buf, "no requests", "%s", kinds[i]);
  }
  /* Counting requests is the one check that means something on none. */
  cr_assert_eq(eval("requests >= 1", r, 3, 2, 9, 1), 0);
  cr_assert_str_eq(obs_buf, "0");
  cr_assert_str_eq(exp_buf, ">= 1");
  cr_assert_eq(eval("requests == 0", r, 3, 2, 9, 1), 1);
  cr_assert_eq(eval("requests == 2", r, 3, 0, 2, 1), 1);
}

Test(expect_eval, in_flight_left_out, .timeout = 10) {
  struct fl_request r[4] = {ok_req(0, 0.1, 503), ok_req(1, 0.1, 503),
                            ok_req(2, -1, 0), ok_req(3, -1, 0)};
  cr_assert_eq(eval("rate(503) == 100%", r, 4, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_str_eq(obs_buf, "100.0% 503 (2 of 2)");
  cr_assert_eq(eval("p(1) == 100ms", r, 4, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("requests == 4", r, 4, 0, 10, 1), 1, "they were sent");
  cr_assert_eq(eval("max < 1s", r, 4, 2, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "no completed requests");
}

Test(expect_eval, window_by_schedule, .timeout = 10) {
  struct fl_request r[100];
  for (int i = 0; i < 100; i++)
    r[i] = ok_req(i * 0.1, 0.01, i >= 20 && i < 50 ? 503 : 200);
  /* [2, 5) holds the 30 requests scheduled at 2.0 .. 4.9, all 503. */
  cr_assert_eq(eval("requests == 30", r, 100, 2, 5, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("rate(503) == 100%", r, 100, 2, 5, 1), 1, "%s", obs_buf);
  cr_assert_str_eq(obs_buf, "100.0% 503 (30 of 30)");
  cr_assert_eq(eval("rate(503) == 0%", r, 100, 5, 10, 1), 1, "%s", obs_buf);
}

Test(expect_eval, rate_boundary, .timeout = 10) {
  struct fl_request r[2500];
  for (int i = 0; i < 100; i++)
    r[i] = ok_req(i * 0.01, 0.01, i < 95 ? 503 : 200);
  cr_assert_eq(eval("rate(503) >= 95%", r, 100, 0, 10, 1), 1);
  cr_assert_str_eq(exp_buf, ">= 95%");
  cr_assert_str_eq(obs_buf, "95.0% 503 (95 of 100)");
  cr_assert_eq(eval("rate(503) > 95%", r, 100, 0, 10, 1), 0);
  cr_assert_eq(eval("rate(503) == 95%", r, 100, 0, 10, 1), 1);
  cr_assert_eq(eval("rate(2xx) <= 5%", r, 100, 0, 10, 1), 1);

  /* 57 of 60 is 95 % too; 56 of 60 is not. */
  for (int i = 0; i < 60; i++)
    r[i] = ok_req(i * 0.1, 0.01, i < 57 ? 503 : 200);
  cr_assert_eq(eval("rate(503) >= 95%", r, 60, 0, 10, 1), 1, "%s", obs_buf);
  r[0].status = 200;
  cr_assert_eq(eval("rate(503) >= 95%", r, 60, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "93.3% 503 (56 of 60): 4 \u00d7 200");

  /* 94.96 % fails >= 95 % and must not be shown as "95.0%". */
  for (int i = 0; i < 2500; i++)
    r[i] = ok_req(i * 0.001, 0.01, i < 2374 ? 503 : 200);
  cr_assert_eq(eval("rate(503) >= 95%", r, 2500, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "94.96% 503 (2374 of 2500): 126 \u00d7 200");
  cr_assert_eq(eval("rate(503) >= 99.9%", r, 1000, 0, 10, 1), 1);
}

Test(expect_eval, all_transport_errors, .timeout = 10) {
  struct fl_request r[50];
  for (int i = 0; i < 50; i++)
    r[i] = err_req(i * 0.1, i < 40 ? 2.0 : 0.001,
                   i < 40 ? FL_XFER_TIMEOUT : FL_XFER_REFUSED);
  cr_assert_eq(eval("rate(2xx) >= 1%", r, 50, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf,
                   "0.0% 2xx (0 of 50): 40 \u00d7 timeout, 10 \u00d7 refused");
  cr_assert_eq(eval("rate(5xx) == 0%", r, 50, 0, 10, 2), 1,
               "a transport error is not a 5xx response");
  cr_assert_eq(eval("rate(error) == 100%", r, 50, 0, 10, 2), 1);
  cr_assert_eq(eval("rate(timeout) == 80%", r, 50, 0, 10, 2), 1, "%s", obs_buf);
  cr_assert_eq(eval("rate(refused) == 20%", r, 50, 0, 10, 2), 1);
  cr_assert_eq(eval("rate(reset) == 0%", r, 50, 0, 10, 2), 1);
  /* Latencies of failed requests count: the timeouts set p(99). */
  cr_assert_eq(eval("p(99) < 1s", r, 50, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf,
                   "p(99) = 2.00s (50 requests; slowest 2.00s at t=0.00s: "
                   "timeout)");
  cr_assert_eq(eval("within timeout", r, 50, 0, 10, 2), 1, "%s", obs_buf);
  cr_assert_eq(eval("header(Retry-After) on 503", r, 50, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf, "no 503 responses");
}

Test(expect_eval, percentile_one_sample, .timeout = 10) {
  struct fl_request r = ok_req(1, 0.12, 200);
  static const char *const ps[] = {"p(1) <= 120ms", "p(50) <= 120ms",
                                   "p(99) <= 120ms", "p(100) <= 120ms"};
  for (size_t i = 0; i < 4; i++)
    cr_expect_eq(eval(ps[i], &r, 1, 0, 10, 1), 1, "%s: %s", ps[i], obs_buf);
  cr_assert_eq(eval("p(99) < 120ms", &r, 1, 0, 10, 1), 0);
  cr_assert_str_eq(exp_buf, "< 120ms");
  cr_assert_str_eq(obs_buf,
                   "p(99) = 120ms (1 request; slowest 120ms at t=1.00s: "
                   "200)");
}

Test(expect_eval, percentile_hundred_samples, .timeout = 10) {
  /* Latencies 10ms .. 1000ms in a scrambled order. */
  struct fl_request r[100];
  for (int i = 0; i < 100; i++)
    r[i] = ok_req(i * 0.05, ((i * 37) % 100 + 1) / 100.0, 200);
  cr_assert_eq(eval("p(99) <= 990ms", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_str_eq(obs_buf, "p(99) = 990ms (100 requests)");
  cr_assert_eq(eval("p(99) < 990ms", r, 100, 0, 10, 1), 0);
  cr_assert_eq(eval("p(50) == 500ms", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("p(100) == 1s", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("p(99.5) == 1s", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("p(1) == 10ms", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("p(0.5) == 10ms", r, 100, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("p(90) > 3s", r, 100, 0, 10, 1), 0);
  cr_assert_str_eq(exp_buf, "> 3s");
  cr_assert_str_eq(obs_buf,
                   "p(90) = 900ms (100 requests; slowest 1.00s at t=1.35s: "
                   "200)");
  /* A value just over the limit is shown with the digits that say so. */
  r[0].latency = 3.004;
  cr_assert_eq(eval("p(100) <= 3s", r, 100, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "p(100) = 3.004s (100 requests; slowest 3.004s at "
                            "t=0.00s: 200)");
}

Test(expect_eval, max, .timeout = 10) {
  struct fl_request r[10];
  for (int i = 0; i < 10; i++)
    r[i] = ok_req(12 + i * 0.1, 0.05, 200);
  r[3].latency = 4.2;
  cr_assert_eq(eval("max < 5s", r, 10, 0, 20, 1), 1);
  cr_assert_eq(eval("max < 2s", r, 10, 0, 20, 1), 0);
  cr_assert_str_eq(exp_buf, "< 2s");
  cr_assert_str_eq(obs_buf, "max = 4.20s at t=12.30s: 200 (10 requests)");
}

Test(expect_eval, within_timeout, .timeout = 10) {
  struct fl_request r[10];
  for (int i = 0; i < 10; i++)
    r[i] = ok_req(i * 0.5, 0.1, 200);
  r[2] = err_req(1.0, 2.5, FL_XFER_TIMEOUT);
  cr_assert_eq(eval("within timeout", r, 10, 0, 10, 2), 1, "%s", obs_buf);
  cr_assert_str_eq(exp_buf, "every latency <= 2.5s (timeout 2s + 0.5s)");
  cr_assert_str_eq(obs_buf, "all 10 within 2.5s (slowest 2.50s)");
  r[4].latency = 2.51;
  r[7].latency = 9;
  cr_assert_eq(eval("within timeout", r, 10, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf, "2 of 10 over 2.5s (first at t=2.00s: 2.51s)");
  cr_assert_eq(eval("within timeout", r, 10, 0, 10, 0), 0);
  cr_assert_str_eq(obs_buf, "the endpoint has no timeout");
}

/* Header slots for the records of a test, as the traffic would make
 * them (each test runs in its own process). */
#define SLOTS 4
static char *slot_pool[2048][SLOTS];
static size_t slots_used;

static void with_slots(struct fl_request *r) {
  r->headers = slot_pool[slots_used++ % 2048];
  memset(r->headers, 0, SLOTS * sizeof(char *));
  r->nheaders = SLOTS;
}

/* n responses from t0 every 0.01 s, each with status and Retry-After. */
static void fill(struct fl_request *r, size_t n, double t0, int status,
                 char *retry_after) {
  for (size_t i = 0; i < n; i++) {
    r[i] = ok_req(t0 + (double)i * 0.01, 0.02, status);
    with_slots(&r[i]);
    r[i].headers[0] = retry_after;
  }
}

Test(expect_eval, header_retry_after, .timeout = 10) {
  struct fl_request r[243];
  static char delta[] = "120", date[] = "Sun, 06 Nov 1994 08:49:37 GMT",
              ows[] = " 5 ", soon[] = "soon", frac[] = "1.5", neg[] = "-1",
              empty[] = "", bad_day[] = "Mon, 06 Nov 1994 08:49:37 GMT";
  const char *h = "header(Retry-After) on 503";

  fill(r, 243, 3.02, 503, NULL);
  cr_assert_eq(eval(h, r, 243, 0, 10, 1), 0);
  cr_assert_str_eq(exp_buf,
                   "Retry-After on every 503 response (delta-seconds or "
                   "HTTP-date)");
  cr_assert_str_eq(obs_buf,
                   "missing on 243 of 243 503 responses (first at t=3.02s)");

  fill(r, 243, 3.02, 503, delta);
  cr_assert_eq(eval(h, r, 243, 0, 10, 1), 1);
  cr_assert_str_eq(obs_buf, "valid on 243 of 243 503 responses");
  r[10].headers[0] = date;
  r[11].headers[0] = ows;
  cr_assert_eq(eval(h, r, 243, 0, 10, 1), 1, "%s", obs_buf);

  char *invalid[] = {soon, frac, neg, empty, bad_day};
  for (size_t i = 0; i < 5; i++) {
    r[20].headers[0] = invalid[i];
    cr_expect_eq(eval(h, r, 243, 0, 10, 1), 0, "'%s' accepted", invalid[i]);
  }
  r[20].headers[0] = soon;
  eval(h, r, 243, 0, 10, 1);
  cr_assert_str_eq(obs_buf,
                   "invalid on 1 of 243 503 responses (first at t=3.22s: "
                   "'soon')");
  r[5].headers[0] = NULL;
  eval(h, r, 243, 0, 10, 1);
  cr_assert_str_eq(obs_buf,
                   "missing on 1 and invalid on 1 of 243 503 responses "
                   "(first at t=3.07s: missing; e.g. 'soon' at "
                   "t=3.22s)");

  /* Only 503s are held to it: 200s without the header do not count. */
  fill(r, 100, 0, 200, NULL);
  fill(r + 100, 20, 1, 503, delta);
  cr_assert_eq(eval(h, r, 120, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_str_eq(obs_buf, "valid on 20 of 20 503 responses");
  cr_assert_eq(eval("header(Retry-After) on 5xx", r, 120, 0, 10, 1), 1);
  cr_assert_eq(eval("header(Retry-After) on 2xx", r, 120, 0, 10, 1), 0);
  cr_assert_eq(eval("header(Retry-After) on 429", r, 120, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "no 429 responses");
}

Test(expect_eval, header_other_name, .timeout = 10) {
  struct fl_request r[3];
  static char id[] = "abc", blank[] = "  ";
  fill(r, 3, 0, 200, NULL);
  struct fl_expect e = parse_ok("header(X-Request-Id) on 2xx");
  char ex[256], ob[256];
  cr_assert_eq(fl_expect_eval_endpoint(&e, r, 3, 0, 10, 1, ex, sizeof(ex), ob,
                                       sizeof(ob)),
               0);
  cr_assert_str_eq(ob, "header X-Request-Id was not recorded");
  e.header = 2; /* the runner's capture slot */
  for (int i = 0; i < 3; i++)
    r[i].headers[2] = id;
  cr_assert_eq(fl_expect_eval_endpoint(&e, r, 3, 0, 10, 1, ex, sizeof(ex), ob,
                                       sizeof(ob)),
               1, "%s", ob);
  cr_assert_str_eq(ex, "X-Request-Id on every 2xx response (not empty)");
  r[1].headers[2] = blank;
  cr_assert_eq(fl_expect_eval_endpoint(&e, r, 3, 0, 10, 1, ex, sizeof(ex), ob,
                                       sizeof(ob)),
               0);
  cr_assert_str_eq(ob,
                   "invalid on 1 of 3 2xx responses (first at t=0.01s: '  ')");
}

/* Each record's slot 1 set to v[i % nv]. */
static void set_slot1(struct fl_request *r, size_t n, char **v, size_t nv) {
  for (size_t i = 0; i < n; i++)
    r[i].headers[1] = v[i % nv];
}

static int eval_slot1(const char *text, const struct fl_request *r, size_t n) {
  struct fl_expect e = parse_ok(text);
  e.header = 1; /* the runner's capture slot */
  return fl_expect_eval_endpoint(&e, r, n, 0, 10, 1, exp_buf, sizeof(exp_buf),
                                 obs_buf, sizeof(obs_buf));
}

Test(expect_eval, header_string_check, .timeout = 10) {
  struct fl_request r[10];
  static char degraded[] = "degraded", miss[] = "miss", hit[] = " hit ";
  fill(r, 10, 0, 200, NULL);
  set_slot1(r, 10, (char *[]){degraded}, 1);
  const char *h = "header(X-Cache) == \"degraded\" on 2xx";
  cr_assert_eq(eval_slot1(h, r, 10), 1, "%s", obs_buf);
  cr_assert_str_eq(exp_buf, "X-Cache == \"degraded\" on every 2xx response");
  cr_assert_str_eq(obs_buf, "held on 10 of 10 2xx responses");
  cr_assert_eq(eval_slot1("header(X-Cache) != \"miss\" on 2xx", r, 10), 1);
  /* Some lack it, some say something else: both counted, one value
   * shown. */
  set_slot1(r, 10, (char *[]){degraded, NULL, miss, hit}, 4);
  cr_assert_eq(eval_slot1(h, r, 10), 0);
  cr_assert_str_eq(obs_buf, "missing on 3 and wrong value on 4 of 10 2xx "
                            "responses (first at t=0.01s: missing; e.g. "
                            "'miss' at t=0.02s)");
  cr_assert_eq(eval_slot1("header(X-Cache) != \"miss\" on 2xx", r, 10), 0);
  cr_assert_str_eq(obs_buf, "missing on 3 and wrong value on 2 of 10 2xx "
                            "responses (first at t=0.01s: missing; e.g. "
                            "'miss' at t=0.02s)");
  /* Blanks around a value are not part of it. */
  set_slot1(r, 10, (char *[]){hit}, 1);
  cr_assert_eq(eval_slot1("header(X-Cache) == \"hit\" on 2xx", r, 10), 1, "%s",
               obs_buf);
  /* Other classes are not held to it. */
  r[3].status = 503;
  r[3].headers[1] = NULL;
  cr_assert_eq(eval_slot1("header(X-Cache) == \"hit\" on 2xx", r, 10), 1);
  cr_assert_str_eq(obs_buf, "held on 9 of 9 2xx responses");
}

Test(expect_eval, header_number_check, .timeout = 10) {
  struct fl_request r[6];
  static char ten[] = "10", half[] = "0.5", word[] = "soon", big[] = "45";
  fill(r, 6, 0, 503, NULL);
  set_slot1(r, 6, (char *[]){ten, half}, 2);
  cr_assert_eq(eval_slot1("header(X-Load) <= 10 on 503", r, 6), 1, "%s",
               obs_buf);
  cr_assert_str_eq(exp_buf, "X-Load <= 10 on every 503 response");
  cr_assert_eq(eval_slot1("header(X-Load) < 10 on 503", r, 6), 0);
  cr_assert_str_eq(obs_buf, "wrong value on 3 of 6 503 responses (first at "
                            "t=0.00s: '10')");
  cr_assert_eq(eval_slot1("header(X-Load) == 0.5 on 5xx", r + 1, 1), 1);
  r[4].headers[1] = word;
  cr_assert_eq(eval_slot1("header(X-Load) >= 0 on 503", r, 6), 0);
  cr_assert_str_eq(obs_buf, "invalid on 1 of 6 503 responses (first at "
                            "t=0.04s: 'soon')");

  /* Retry-After: delta-seconds, or an HTTP-date counted from the
   * response's arrival. */
  static char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";
  long long when;
  cr_assert_eq(fl_http_date_parse(date, &when), 0);
  fill(r, 6, 0, 503, big);
  const char *h = "header(Retry-After) <= 30 on 503";
  cr_assert_eq(eval(h, r, 6, 0, 10, 1), 0);
  cr_assert_str_eq(exp_buf, "Retry-After <= 30 on every 503 response "
                            "(seconds; an HTTP-date from the response)");
  cr_assert_str_eq(obs_buf, "wrong value on 6 of 6 503 responses (first at "
                            "t=0.00s: '45')");
  for (int i = 0; i < 6; i++) {
    r[i].headers[0] = date;
    r[i].received = (double)when - 20; /* the date is 20 s away */
  }
  cr_assert_eq(eval(h, r, 6, 0, 10, 1), 1, "%s", obs_buf);
  cr_assert_eq(eval("header(Retry-After) > 20 on 503", r, 6, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "wrong value on 6 of 6 503 responses (first at "
                            "t=0.00s: 'Sun, 06 Nov 1994 08:49:37 GMT' = 20s "
                            "after the response)");
  r[2].received = (double)when - 40.4;
  cr_assert_eq(eval(h, r, 6, 0, 10, 1), 0);
  cr_assert(strstr(obs_buf, "wrong value on 1 of 6") != NULL, "%s", obs_buf);
  cr_assert(strstr(obs_buf, "= 40s after the response") != NULL, "%s", obs_buf);
}

/* What a failed rate held instead: largest first, four at most. */
Test(expect_eval, rate_breakdown, .timeout = 10) {
  struct fl_request r[80];
  for (int i = 0; i < 80; i++)
    r[i] = i < 62 ? ok_req(i * 0.1, 0.01, 500)
                  : err_req(i * 0.1, 2, FL_XFER_TIMEOUT);
  cr_assert_eq(eval("rate(503) >= 95%", r, 80, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf,
                   "0.0% 503 (0 of 80): 62 \u00d7 500, 18 \u00d7 timeout");
  /* Six kinds of outcome: four named, then an ellipsis. */
  static const int st[] = {200, 500, 502, 504, 429};
  for (int i = 0; i < 80; i++)
    r[i] = i < 30   ? ok_req(i * 0.1, 0.01, 200)
           : i < 75 ? ok_req(i * 0.1, 0.01, st[1 + i % 4])
                    : err_req(i * 0.1, 0.01, FL_XFER_RESET);
  cr_assert_eq(eval("rate(2xx) >= 99%", r, 80, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf, "37.5% 2xx (30 of 80): 12 \u00d7 504, 11 \u00d7 "
                            "429, 11 \u00d7 500, 11 \u00d7 502, \u2026");
  /* Too much of a class: which outcomes in it. */
  cr_assert_eq(eval("rate(5xx) <= 10%", r, 80, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf, "42.5% 5xx (34 of 80): 12 \u00d7 504, 11 \u00d7 "
                            "500, 11 \u00d7 502");
  /* A rate that is exactly what != forbids: everything. */
  for (int i = 0; i < 4; i++)
    r[i] = ok_req(i * 0.1, 0.01, i < 2 ? 200 : 503);
  cr_assert_eq(eval("rate(2xx) != 50%", r, 4, 0, 10, 2), 0);
  cr_assert_str_eq(obs_buf, "50.0% 2xx (2 of 4): 2 \u00d7 200, 2 \u00d7 503");
}

/* A window [from, from + secs) at 10 requests a second where second s has
 * bad[s] responses that are 500 and the rest 200. */
static size_t seconds(struct fl_request *r, double from, int secs,
                      const int *bad) {
  size_t n = 0;
  for (int s = 0; s < secs; s++)
    for (int i = 0; i < 10; i++, n++)
      r[n] = ok_req(from + s + i * 0.1, 0.01, i < bad[s] ? 500 : 200);
  return n;
}

Test(expect_eval, recovers, .timeout = 10) {
  struct fl_request r[200];
  const char *rec = "recovers(rate(2xx) >= 90%) within 3s";
  int bad[10] = {5, 5, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t n = seconds(r, 10, 10, bad);
  cr_assert_eq(eval(rec, r, n, 10, 20, 1), 1, "%s", obs_buf);
  cr_assert_str_eq(exp_buf, "rate(2xx) >= 90% in every second from at most "
                            "3s after t=10.00s");
  cr_assert_str_eq(obs_buf, "recovered after 2.0s (last failing second at "
                            "t=11.00s: 50.0% 2xx (5 of 10): 5 \u00d7 500)");
  cr_assert_eq(eval("recovers(rate(2xx) >= 90%) within 1s", r, n, 10, 20, 1),
               0);
  cr_assert_eq(eval("recovers(rate(2xx) >= 90%) within 2s", r, n, 10, 20, 1), 1,
               "recovery exactly at the bound passes");

  int never[10] = {0};
  n = seconds(r, 10, 10, never);
  cr_assert_eq(eval(rec, r, n, 10, 20, 1), 1);
  cr_assert_str_eq(obs_buf, "recovered after 0.0s (every second held)");

  /* A dip in the last second: not recovered, whatever came before. */
  int dip[10] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  n = seconds(r, 10, 10, dip);
  cr_assert_eq(eval(rec, r, n, 10, 20, 1), 0);
  cr_assert_str_eq(obs_buf, "not recovered by the end (last failing second "
                            "at t=19.00s: 80.0% 2xx (8 of 10): 2 \u00d7 500)");
}

Test(expect_eval, recovers_partial_and_sparse_seconds, .timeout = 10) {
  struct fl_request r[200];
  const char *rec = "recovers(rate(2xx) >= 90%) within 3s";
  int good[10] = {0};
  size_t n = seconds(r, 0, 9, good);
  /* The window ends at 9.5 s: two failures in that half second are too
   * few to judge and are left out; five are not. */
  r[n++] = ok_req(9.1, 0.01, 500);
  r[n++] = ok_req(9.2, 0.01, 500);
  cr_assert_eq(eval(rec, r, n, 0, 9.5, 1), 1, "%s", obs_buf);
  for (int i = 0; i < 3; i++)
    r[n++] = ok_req(9.3 + i * 0.05, 0.01, 500);
  cr_assert_eq(eval(rec, r, n, 0, 9.5, 1), 0);
  cr_assert_str_eq(obs_buf, "not recovered by the end (last failing second "
                            "at t=9.00s: 0.0% 2xx (0 of 5): 5 \u00d7 500)");

  /* One request every 2 s: empty seconds neither hold nor fail. */
  n = 0;
  for (int i = 0; i < 10; i++)
    r[n++] = ok_req(i * 2.0 + 0.5, 0.01, i < 2 ? 503 : 200);
  cr_assert_eq(eval("recovers(rate(2xx) >= 90%) within 2s", r, n, 0, 20, 1), 0);
  cr_assert_str_eq(obs_buf, "recovered after 3.0s (last failing second at "
                            "t=2.00s: 0.0% 2xx (0 of 1): 1 \u00d7 503)");
  cr_assert_eq(eval(rec, r, n, 0, 20, 1), 1);

  /* Less than a second of traffic says nothing about recovery. */
  r[0] = ok_req(0.1, 0.01, 200);
  r[1] = ok_req(0.2, 0.01, 200);
  cr_assert_eq(eval(rec, r, 2, 0, 0.5, 1), 0);
  cr_assert_str_eq(obs_buf, "no full second of requests");
}

/* ---- Target evaluation ------------------------------------------------ */

static long deliveries(const char *name, void *arg) {
  (void)arg;
  if (strcmp(name, "postgres") == 0)
    return 12;
  if (strcmp(name, "redis") == 0)
    return 0;
  return -1;
}

static int eval_t(const char *text, const struct fl_target_facts *f) {
  struct fl_expect e = parse_ok(text);
  return fl_expect_eval_target(&e, f, exp_buf, sizeof(exp_buf), obs_buf,
                               sizeof(obs_buf));
}

Test(expect_target, process, .timeout = 10) {
  struct fl_target_facts f = {0};
  cr_assert_eq(eval_t("no restart", &f), 1);
  cr_assert_str_eq(obs_buf, "no restart");
  cr_assert_eq(eval_t("no crash", &f), 1);
  cr_assert_eq(eval_t("alive", &f), 1);
  cr_assert_str_eq(obs_buf, "alive");
  f.restarts = 2;
  cr_assert_eq(eval_t("no restart", &f), 0);
  cr_assert_str_eq(obs_buf, "restarted 2 times");
  f.exited = 1;
  cr_assert_eq(eval_t("alive", &f), 0);
  cr_assert_str_eq(obs_buf, "exited before the end");
  cr_assert_eq(eval_t("no crash", &f), 1);
  f.crashed = 1;
  cr_assert_eq(eval_t("no crash", &f), 0);
  cr_assert_str_eq(obs_buf, "crashed (ended by a signal)");
  cr_assert_eq(eval_t("alive", &f), 0);
}

Test(expect_target, fds_and_rss, .timeout = 10) {
  struct fl_target_facts f = {.fds_baseline = 12,
                              .fds_max = 30,
                              .rss_baseline_kb = 102400,
                              .rss_max_kb = 204800};
  cr_assert_eq(eval_t("fds <= baseline + 20", &f), 1);
  cr_assert_str_eq(exp_buf, "<= baseline + 20 (32.0)");
  cr_assert_str_eq(obs_buf, "max 30 (baseline 12.0, +18.0)");
  cr_assert_eq(eval_t("fds <= baseline + 18", &f), 1, "the bound is inclusive");
  cr_assert_eq(eval_t("fds < baseline + 18", &f), 0);
  cr_assert_eq(eval_t("fds <= baseline", &f), 0);

  cr_assert_eq(eval_t("rss <= baseline + 50MB", &f), 0);
  cr_assert_str_eq(exp_buf, "<= baseline + 50MB (150MB)");
  cr_assert_str_eq(obs_buf, "max 200MB (baseline 100MB, +100MB)");
  cr_assert_eq(eval_t("rss <= baseline + 100MB", &f), 1);
  f.rss_max_kb = 102400 + 512;
  cr_assert_eq(eval_t("rss <= baseline + 512kB", &f), 1);
  cr_assert_str_eq(obs_buf, "max 100.5MB (baseline 100MB, +512kB)");

  f.fds_baseline = -1;
  f.rss_max_kb = -1;
  cr_assert_eq(eval_t("fds <= baseline + 20", &f), 0);
  cr_assert_str_eq(obs_buf, "no fd samples");
  cr_assert_eq(eval_t("rss <= baseline + 50MB", &f), 0);
  cr_assert_str_eq(obs_buf, "no memory samples");
}

/* The counts by kind judge the value the runner hands over for them. */
Test(expect_target, counts_by_kind, .timeout = 10) {
  struct fl_target_facts f = {.fds_baseline = 3, .fds_max = 9};
  cr_assert_eq(eval_t("conns(redis) <= baseline + 5", &f), 0);
  cr_assert_str_eq(exp_buf, "<= baseline + 5 (8.0)");
  cr_assert_str_eq(obs_buf, "max 9 (baseline 3.0, +6.0)");
  cr_assert_eq(eval_t("inbound <= baseline + 6", &f), 1);
  f.no_such_dep = 1;
  cr_assert_eq(eval_t("conns(kafka) <= baseline + 50", &f), 0);
  cr_assert_str_eq(obs_buf, "no dependency named 'kafka' (conns(other): "
                            "connections to anything else)");
  cr_assert_eq(eval_t("fds <= baseline + 50", &f), 1,
               "only conns(NAME) names a dependency");
}

/* settles(...) within D, over synthetic samples one a second from a
 * window starting at t=8: the last sample over the bound must come
 * before 8 + D, and a later one must hold. */
Test(expect_target, settles, .timeout = 10) {
  struct fl_count_sample leak[] = {{8.0, 20},  {9.0, 60},  {10.0, 75},
                                   {11.0, 70}, {12.0, 70}, {13.0, 70}};
  struct fl_count_sample back[] = {{8.0, 20},  {9.0, 60},  {10.0, 75},
                                   {11.0, 22}, {12.0, 21}, {13.0, 20}};
  struct fl_count_sample late[] = {{8.0, 20},  {9.0, 60},  {10.0, 75},
                                   {11.0, 60}, {12.0, 70}, {13.0, 20}};
  struct fl_count_sample calm[] = {{8.0, 20}, {9.0, 21}, {10.0, 20}};
  struct fl_target_facts f = {
      .fds_baseline = 20, .from = 8, .series = leak, .nseries = 6};
  const char *x = "settles(fds <= baseline + 10) within 5s";
  cr_assert_eq(eval_t(x, &f), 0);
  cr_assert_str_eq(exp_buf,
                   "<= baseline + 10 (30) from at most 5s after t=8.00s");
  cr_assert_str_eq(obs_buf,
                   "not settled by the end: 70 at t=13.00s (baseline 20)");
  f.series = back;
  cr_assert_eq(eval_t(x, &f), 1);
  cr_assert_str_eq(obs_buf, "settled by t=11.00s (last over: 75 at t=10.00s, "
                            "baseline 20)");
  cr_assert_eq(eval_t("settles(fds <= baseline + 10) within 2s", &f), 0,
               "over at t=10, 2s after the start");
  cr_assert_eq(eval_t("settles(fds <= baseline + 10) within 2.5s", &f), 1);
  f.series = late;
  cr_assert_eq(eval_t(x, &f), 1);
  cr_assert_eq(eval_t("settles(fds <= baseline + 10) within 4s", &f), 0,
               "over at t=12, not before 8 + 4s");
  cr_assert_eq(eval_t("settles(fds <= baseline + 10) within 4.5s", &f), 1);
  f.series = calm;
  f.nseries = 3;
  cr_assert_eq(eval_t(x, &f), 1);
  cr_assert_str_eq(obs_buf, "held at all 3 samples (baseline 20)");
  cr_assert_eq(eval_t("settles(fds < baseline + 1) within 1s", &f), 0,
               "21 at the middle sample is not < 21");

  /* rss: kB samples against a size. */
  struct fl_count_sample mem[] = {{0, 102400}, {1, 204800}, {2, 102400}};
  struct fl_target_facts m = {
      .rss_baseline_kb = 102400, .from = 0, .series = mem, .nseries = 3};
  cr_assert_eq(eval_t("settles(rss <= baseline + 50MB) within 2s", &m), 1);
  cr_assert_str_eq(exp_buf,
                   "<= baseline + 50MB (150MB) from at most 2s after t=0.00s");
  cr_assert_str_eq(obs_buf, "settled by t=2.00s (last over: 200MB at "
                            "t=1.00s, baseline 100MB)");

  struct fl_target_facts none = {.fds_baseline = -1};
  cr_assert_eq(eval_t(x, &none), 0);
  cr_assert_str_eq(obs_buf, "no fd samples");
  none.no_such_dep = 1;
  cr_assert_eq(eval_t("settles(conns(kafka) <= baseline) within 1s", &none), 0);
  cr_assert(strstr(obs_buf, "no dependency named 'kafka'") != NULL, "%s",
            obs_buf);
}

Test(expect_target, fault_hit, .timeout = 10) {
  struct fl_target_facts f = {.fault_delivered = deliveries};
  cr_assert_eq(eval_t("fault(postgres) hit", &f), 1);
  cr_assert_str_eq(exp_buf, "hit >= 1");
  cr_assert_str_eq(obs_buf, "delivered 12 times");
  cr_assert_eq(eval_t("fault(postgres) hit > 12", &f), 0);
  cr_assert_eq(eval_t("fault(redis) hit >= 1", &f), 0);
  cr_assert_str_eq(obs_buf, "delivered 0 times");
  cr_assert_eq(eval_t("fault(redis) hit == 0", &f), 1);
  cr_assert_eq(eval_t("fault(kafka) hit", &f), 0);
  cr_assert_str_eq(obs_buf, "no fault named 'kafka' in the scenario");
  f.fault_delivered = NULL;
  cr_assert_eq(eval_t("fault(postgres) hit", &f), 0);
  cr_assert_str_eq(obs_buf, "deliveries of faults were not counted");
}

Test(expect_target, kinds_kept_apart, .timeout = 10) {
  struct fl_target_facts f = {0};
  cr_assert_eq(eval_t("rate(2xx) >= 99%", &f), 0);
  cr_assert_str_eq(obs_buf, "not a target expectation");
  struct fl_request r = ok_req(1, 0.1, 200);
  cr_assert_eq(eval("alive", &r, 1, 0, 10, 1), 0);
  cr_assert_str_eq(obs_buf, "not an endpoint expectation");
}

/* A value says what the service knew when it answered: a request scheduled
 * inside the window but answered after it closed (the dependency back by
 * then) is not held to the window's value. Presence checks still are. */
Test(expect_eval, header_value_judges_answers_inside_the_window,
     .timeout = 10) {
  struct fl_request r[4];
  static char degraded[] = "degraded", hit[] = "hit";
  fill(r, 4, 9.5, 200, NULL);
  set_slot1(r, 4, (char *[]){degraded}, 1);
  /* The last one: scheduled at 9.53, answered at 10.23. */
  r[3].latency = 0.7;
  r[3].headers[1] = hit;
  const char *h = "header(X-Cache) == \"degraded\" on 2xx";
  cr_assert_eq(eval_slot1(h, r, 4), 1, "%s", obs_buf);
  cr_assert_str_eq(obs_buf, "held on 3 of 3 2xx responses");
  /* Answered inside the window, the same value fails. */
  r[3].latency = 0.2;
  cr_assert_eq(eval_slot1(h, r, 4), 0, "%s", obs_buf);
  /* Presence is judged on every response scheduled in the window. */
  r[3].latency = 0.7;
  r[3].headers[1] = NULL;
  cr_assert_eq(eval_slot1("header(X-Cache) on 2xx", r, 4), 0, "%s", obs_buf);
}
