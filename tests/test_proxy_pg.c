/*
 * The proxy in front of a real PostgreSQL: psql and an asyncpg client run
 * once directly and once under `faultline exec --proxy` with latency on.
 * Through the proxy every answer must be the same, and every call slower
 * by at least the latency: the PostgreSQL protocol (start-up,
 * authentication, extended queries, a large row, a transaction) survives
 * chunks held back and re-timed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define LATENCY_MS 50

static struct t_pg pg;
static int setup_ok;

static void setup(void) { setup_ok = t_pg_start(&pg) == 0; }
static void teardown(void) { t_pg_stop(&pg); }

TestSuite(proxy_pg, .init = setup, .fini = teardown, .timeout = 90);

static const char *fmt(const char *f, ...)
    __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...) {
  static char bufs[8][256];
  static int next;
  char *b = bufs[next++ % 8];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, 256, f, ap);
  va_end(ap);
  return b;
}

/* Runs cmd directly (proxied == 0) or under exec --proxy with latency. */
static long long run(int proxied, char *const *cmd, struct t_run *r) {
  char *argv[32];
  int n = 0;
  if (proxied) {
    argv[n++] = T_FAULTLINE;
    argv[n++] = "exec";
    argv[n++] = "--quiet";
    argv[n++] = "--proxy";
    argv[n++] = (char *)fmt("127.0.0.1:%d", pg.port);
    argv[n++] = "--fault";
    argv[n++] = (char *)fmt("latency@127.0.0.1:%d,ms=%d", pg.port, LATENCY_MS);
    argv[n++] = "--";
  }
  while (*cmd != NULL && n < 31)
    argv[n++] = *cmd++;
  argv[n] = NULL;
  cr_assert(setup_ok, "PostgreSQL did not start");
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 60000, r), 0);
  cr_assert_eq(r->status, 0, "%s exited %d: %s", cmd[0] ? cmd[0] : argv[n - 1],
               r->status, r->err);
  return t_now_ms() - t0;
}

Test(proxy_pg, psql_with_latency) {
  char *cmd[] = {"psql",
                 "-X",
                 "-h",
                 "127.0.0.1",
                 "-p",
                 (char *)fmt("%d", pg.port),
                 "-U",
                 "postgres",
                 "-d",
                 "postgres",
                 "-At",
                 "-c",
                 "select 6 * 7",
                 "-c",
                 "select md5(string_agg(x::text, ',')) from "
                 "generate_series(1, 20000) x",
                 "-c",
                 "select length(repeat('ab', 200000))",
                 "-c",
                 "begin; create temp table t (a int); insert into t select "
                 "generate_series(1, 1000); select sum(a) from t; commit",
                 NULL};
  struct t_run direct, proxied, again;
  long long fast = run(0, cmd, &direct);
  /* The quicker of two direct runs: the first may pay for a cold start. */
  long long fast2 = run(0, cmd, &again);
  fast = fast2 < fast ? fast2 : fast;
  t_run_free(&again);
  long long slow = run(1, cmd, &proxied);
  cr_expect_str_eq(proxied.out, direct.out,
                   "through the proxy psql printed\n%s\ndirectly\n%s",
                   proxied.out, direct.out);
  cr_expect(strstr(direct.out, "42\n") == direct.out, "psql printed '%s'",
            direct.out);
  cr_expect(strstr(direct.out, "\n400000\n") != NULL);
  cr_expect(strstr(direct.out, "\n500500\n") != NULL);
  /* Start-up, authentication and four queries: at least five round
   * trips, each with a reply held LATENCY_MS. */
  cr_expect_geq(slow - fast, 5 * LATENCY_MS,
                "psql took %lld ms directly, %lld ms with latency ms=%d", fast,
                slow, LATENCY_MS);
  t_run_free(&direct);
  t_run_free(&proxied);
}

/* "NAME VALUE... MS" lines: the values must match line by line, and each
 * call through the proxy must take at least the latency. */
static void compare_lines(const char *direct, const char *proxied) {
  char *a = strdup(direct), *b = strdup(proxied);
  char *sa, *sb;
  char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
  int lines = 0;
  while (la != NULL && lb != NULL) {
    char *ta = strrchr(la, ' '), *tb = strrchr(lb, ' ');
    if (strcmp(la, "done") != 0) {
      cr_assert(ta != NULL && tb != NULL, "malformed lines '%s' / '%s'", la,
                lb);
      *ta = *tb = '\0';
      double ms = atof(tb + 1);
      cr_expect_geq(ms, LATENCY_MS, "%s took %.1f ms through the proxy", lb,
                    ms);
    }
    cr_expect_str_eq(lb, la, "through the proxy: '%s', directly: '%s'", lb, la);
    lines++;
    la = strtok_r(NULL, "\n", &sa);
    lb = strtok_r(NULL, "\n", &sb);
  }
  cr_expect(la == NULL && lb == NULL, "the outputs differ in length");
  cr_expect_eq(lines, 7, "%d lines: %s", lines, proxied);
  free(a);
  free(b);
}

Test(proxy_pg, asyncpg_with_latency) {
  char *cmd[] = {"/usr/bin/python3", T_DATA "/proxy_asyncpg.py",
                 (char *)fmt("%d", pg.port), NULL};
  struct t_run direct, proxied;
  run(0, cmd, &direct);
  run(1, cmd, &proxied);
  cr_expect(strstr(direct.out, "fetchval 42 ") != NULL, "asyncpg printed %s",
            direct.out);
  cr_expect(strstr(direct.out, "transaction 4950 ") != NULL);
  cr_expect(strstr(direct.out, "big 200000 abab ") != NULL);
  compare_lines(direct.out, proxied.out);
  t_run_free(&direct);
  t_run_free(&proxied);
}
