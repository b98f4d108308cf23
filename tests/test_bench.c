/* The benchmark programs fl-bench-shim, fl-bench-traffic,
 * fl-bench-switch-latency, fl-bench-scenario, fl-bench-runner-memory and
 * fl-bench-audit (fl-bench-proxy: test_proxy_bench.c) in their smoke mode: each
 * runs, exits 0, prints its Markdown table (also to --out), and leaves nothing
 * behind, neither after a full run nor when interrupted with SIGINT. The
 * figures are not judged: a benchmark on a shared machine is not a timed test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define SHIM FL_TEST_BUILD_DIR "/fl-bench-shim"
#define TRAFFIC FL_TEST_BUILD_DIR "/fl-bench-traffic"
#define SWITCH FL_TEST_BUILD_DIR "/fl-bench-switch-latency"
#define SCENARIO FL_TEST_BUILD_DIR "/fl-bench-scenario"
#define MEMORY FL_TEST_BUILD_DIR "/fl-bench-runner-memory"
#define WS FL_TEST_BUILD_DIR "/fl-bench-ws-traffic"
#define AUDIT FL_TEST_BUILD_DIR "/fl-bench-audit"

/* Entries of dir, . and .. aside. */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d != NULL)
    closedir(d);
  return n;
}

/* Does /proc/PID/FILE (NUL-separated strings) mention `needle`? */
static int proc_mentions(const char *pid, const char *file,
                         const char *needle) {
  char path[300];
  snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  buf[n] = '\0';
  return strstr(buf, needle) != NULL;
}

/* Processes whose command line or environment names `dir`: a target, a
 * server or a dependency that outlived the benchmark that made it there.
 * They die asynchronously (SIGKILL, PR_SET_PDEATHSIG): wait a little. */
static int processes_in(const char *dir) {
  int n = 0;
  for (int tries = 0; tries < 100; tries++) {
    n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9')
        continue;
      if (proc_mentions(e->d_name, "cmdline", dir) ||
          proc_mentions(e->d_name, "environ", dir))
        n++;
    }
    if (d != NULL)
      closedir(d);
    if (n == 0)
      return 0;
    usleep(100000);
  }
  return n;
}

/* Runs PROGRAM --quick --out DIR/table.md with TMPDIR=DIR; checks the
 * status, that the table printed is the one written, and that each of
 * `rows` is in it. */
static void quick(const char *program, const char *const rows[],
                  int timeout_ms) {
  cr_assert_eq(access(program, X_OK), 0, "%s is not built", program);
  char dir[256], env_tmp[300], out[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  /* The managed PostgreSQL runs as user postgres: it must reach its data
   * folder, which faultline run makes under TMPDIR. */
  cr_assert_eq(chmod(dir, 0711), 0);
  snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", dir);
  snprintf(out, sizeof(out), "%s/table.md", dir);
  char *env[] = {env_tmp, NULL};
  char *argv[] = {(char *)program, "--quick", "--out", out, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, timeout_ms, &r), 0);
  cr_expect_eq(r.status, 0, "%s --quick exited %d:\n%s", program, r.status,
               r.err);
  cr_expect(strstr(r.out, "\n|-") != NULL, "no table in:\n%s", r.out);
  for (size_t i = 0; rows[i] != NULL; i++)
    cr_expect(strstr(r.out, rows[i]) != NULL, "no '%s' in:\n%s", rows[i],
              r.out);
  FILE *f = fopen(out, "r");
  cr_expect_not_null(f, "--out %s not written", out);
  if (f != NULL) {
    static char written[1 << 16];
    size_t n = fread(written, 1, sizeof(written) - 1, f);
    written[n] = '\0';
    fclose(f);
    cr_expect_str_eq(written, r.out, "--out differs from what was printed");
  }
  unlink(out);
  cr_expect_eq(entries(dir), 0, "%s left files in its TMPDIR %s", program, dir);
  cr_expect_eq(processes_in(dir), 0, "%s left processes behind", program);
  t_run_free(&r);
  t_rmtree(dir);
}

/* Starts PROGRAM with args and TMPDIR=DIR, waits for `when` on its stderr
 * (and `settle_ms` more), interrupts it with SIGINT, and checks that it
 * exits 130 leaving no file and no process behind. */
static void interrupted(const char *program, char *const args[],
                        const char *when, int settle_ms) {
  cr_assert_eq(access(program, X_OK), 0, "%s is not built", program);
  char dir[256], env_tmp[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  /* The managed PostgreSQL runs as user postgres: it must reach its data
   * folder, which faultline run makes under TMPDIR. */
  cr_assert_eq(chmod(dir, 0711), 0);
  snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", dir);
  char *env[] = {env_tmp, NULL};
  char *argv[8] = {(char *)program};
  for (int i = 0; args[i] != NULL && i < 6; i++)
    argv[i + 1] = args[i];
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, env, 1), 0);
  cr_assert_eq(t_expect(&p, when, NULL, 0, 60000), 0, "%s never said '%s'",
               program, when);
  usleep((useconds_t)settle_ms * 1000);
  kill(p.pid, SIGINT);
  int st = t_finish(&p, 60000);
  cr_expect_eq(st, 130, "%s after SIGINT: status %d", program, st);
  cr_expect_eq(entries(dir), 0, "%s left files in its TMPDIR %s", program, dir);
  cr_expect_eq(processes_in(dir), 0, "%s left processes behind", program);
  t_rmtree(dir);
}

Test(bench, shim_quick, .timeout = 180) {
  static const char *const rows[] = {
      "| redis-benchmark SET -P 1 | plain |",
      "| redis-benchmark GET -P 16 | shim idle |",
      "| redis-benchmark SET -P 1 | shim, 32 rules |",
      "| redis-benchmark GET -P 1 | fiu-run -x |",
      "| Python asyncio SET/GET | shim idle |",
      "| round trip | shim idle |",
      "| round trip | shim recording |",
      "| recv EAGAIN | fiu-run -x |",
      NULL};
  quick(SHIM, rows, 160000);
}

Test(bench, traffic_quick, .timeout = 120) {
  static const char *const rows[] = {
      "| requested (req/s) | achieved ÷ requested |", "| 1000 | ",
      "| wrk -c32 (closed loop: ", NULL};
  quick(TRAFFIC, rows, 100000);
}

Test(bench, switch_latency_quick, .timeout = 120) {
  static const char *const rows[] = {
      "| target | switched by | median |",
      "| C loop (",
      "| Python 3 loop (",
      "`fl_control_add` (the runner's timeline) |",
      "`faultline inject` |",
      "| C loop | `/bin/true` |",
      "Goal (median under 1 ms): met in ",
      NULL};
  quick(SWITCH, rows, 100000);
}

Test(bench, scenario_quick, .timeout = 180) {
  static const char *const rows[] = {"| part | what | time |",
                                     "| phases | the timeline, 2 × 2 s |",
                                     "| **overhead** | wall time − phases |",
                                     "| setup (result.json) |",
                                     "| ↳ dependencies |",
                                     "| ↳ teardown |",
                                     NULL};
  quick(SCENARIO, rows, 160000);
}

Test(bench, runner_memory_quick, .timeout = 120) {
  /* The in-flight counts are measured (a loaded loop may send one more
   * than asked), so only the table's shape is checked here. */
  static const char *const rows[] = {"| in flight | held by the server |",
                                     "| marginal, 1000 vs 100 |",
                                     "Peak RSS with 1000 in flight", NULL};
  quick(MEMORY, rows, 100000);
}

Test(bench, switch_latency_sigint, .timeout = 120) {
  char *args[] = {"--switches", "5000", NULL};
  interrupted(SWITCH, args, "switches each way", 300);
}

Test(bench, scenario_sigint, .timeout = 180) {
  char *args[] = {"--runs", "3", NULL};
  interrupted(SCENARIO, args, "run 1/3", 2000);
}

Test(bench, runner_memory_sigint, .timeout = 120) {
  char *args[] = {"--conns", "5000", NULL};
  interrupted(MEMORY, args, "5000 requests in flight", 1000);
}

Test(bench, bad_usage, .timeout = 30) {
  static const struct {
    const char *program, *arg, *value, *says;
  } cases[] = {
      {SWITCH, "--switches", "0", "--switches wants a number from 1"},
      {SCENARIO, "--runs", "x", "--runs wants a number from 1"},
      {MEMORY, "--conns", "5", "--conns wants a number from 20"},
      {AUDIT, "--rounds", "0", "--rounds wants a number from 1"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *argv[] = {(char *)cases[i].program, (char *)cases[i].arg,
                    (char *)cases[i].value, NULL};
    struct t_run r;
    cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
    cr_expect_eq(r.status, 2, "%s %s %s: status %d", cases[i].program,
                 cases[i].arg, cases[i].value, r.status);
    cr_expect(strstr(r.err, cases[i].says) != NULL, "%s", r.err);
    t_run_free(&r);
  }
}

Test(bench, ws_traffic_quick, .timeout = 120) {
  static const char *const rows[] = {
      "| N × R (msg/s asked) | client | achieved ÷ asked |",
      "| 200 × 2 (400) | faultline | ", "| 200 × 2 (400) | node ws | ",
      "- 20 × 50: achieved ", NULL};
  quick(WS, rows, 100000);
}

/* fl-bench-audit --quick: two cases audited both ways, about 2 min. */
Test(bench, audit_quick, .timeout = 420) {
  static const char *const rows[] = {
      "| figure | what | shared | fresh | shared ÷ fresh |",
      "| **audit wall time** |",
      "| **setup per case**, median |",
      "| servers reused |",
      "cells that differ: 0 of ",
      NULL};
  quick(AUDIT, rows, 400000);
}

Test(bench, audit_sigint, .timeout = 180) {
  char *args[] = {"--quick", NULL};
  interrupted(AUDIT, args, "dependencies shared", 15000);
}
