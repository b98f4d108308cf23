/* fl-bench-proxy in its smoke mode: it runs all four configurations,
 * prints the Markdown table with a row for each, and leaves nothing
 * behind. The figures themselves are not judged here: a benchmark on a
 * shared machine is not a timed test. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define BENCH FL_TEST_BUILD_DIR "/fl-bench-proxy"

static size_t leftovers(const char *dir) {
  char pattern[400];
  glob_t g;
  snprintf(pattern, sizeof(pattern), "%s/fl-bench-*", dir);
  size_t n = glob(pattern, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
  globfree(&g);
  return n;
}

Test(proxy_bench, quick_prints_the_table, .timeout = 240) {
  cr_assert_eq(access(BENCH, X_OK), 0, "%s is not built", BENCH);
  char dir[256], env_tmp[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", dir);
  char *env[] = {env_tmp, NULL};
  char *argv[] = {BENCH, "--quick", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, 200000, &r), 0);
  cr_expect_eq(r.status, 0, "fl-bench-proxy --quick exited %d: %s", r.status,
               r.err);
  cr_expect(strstr(r.out, "| workload | configuration | median req/s |") !=
                NULL,
            "no table in:\n%s", r.out);
  static const char *const rows[] = {"| SET -P 1 | direct |",
                                     "| SET -P 1 | proxy |",
                                     "| SET -P 1 | socat |",
                                     "| GET -P 16 | direct |",
                                     "| GET -P 16 | proxy |",
                                     "| GET -P 16 | socat |",
                                     "| GET -P 16 | bare relay |",
                                     "- proxy ÷ bare epoll relay: ",
                                     "- proxy ≥ 0.6 × direct unpipelined",
                                     "- proxy ≥ 0.5 × direct pipelined"};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    cr_expect(strstr(r.out, rows[i]) != NULL, "no '%s' in:\n%s", rows[i],
              r.out);
  cr_expect_eq(leftovers(dir), 0, "fl-bench-proxy left its folder in %s", dir);
  t_run_free(&r);

  char *bad[] = {BENCH, "--rounds", "0", NULL};
  cr_assert_eq(t_run(bad, env, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2, "--rounds 0: status %d", r.status);
  cr_expect(strstr(r.err, "--rounds wants a number from 1 to 51") != NULL, "%s",
            r.err);
  t_run_free(&r);
  t_rmtree(dir);
}
