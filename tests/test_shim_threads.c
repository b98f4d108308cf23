/*
 * The shim inside real multi-threaded clients while rules switch under
 * them: redis-benchmark with --threads (its own event loops on several
 * threads) and a Python ThreadPoolExecutor of connects. Nothing may crash
 * or hang, and every failure a client sees must be the injected one.
 * (tests/test_stress.c drives the same code under ASan and TSan with a
 * program of our own; these are other people's threads.)
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static struct t_redis redis, other;
static char tmp[256], ctl[320];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(tmp), 0);
  snprintf(ctl, sizeof(ctl), "%s/control", tmp);
  cr_assert_eq(t_redis_start(&redis), 0);
  cr_assert_eq(t_redis_start(&other), 0);
}

static void teardown(void) {
  t_redis_stop(&redis);
  t_redis_stop(&other);
  t_rmtree(tmp);
}

TestSuite(shim_threads, .init = setup, .fini = teardown, .timeout = 120);

/* Starts argv under `faultline exec --control ctl`, its output merged. */
static void start_under_shim(struct t_proc *p, char *const cmd[]) {
  char *argv[32] = {T_FAULTLINE, "exec", "--control", ctl, "--quiet", "--"};
  int n = 6;
  for (int i = 0; cmd[i] != NULL && n < 31; i++)
    argv[n++] = cmd[i];
  argv[n] = NULL;
  cr_assert_eq(t_spawn(p, argv, NULL, 1), 0);
}

/* Waits (with a deadline) until the control segment exists. */
static void wait_control(void) {
  long long until = t_now_ms() + 10000;
  while (access(ctl, F_OK) != 0 && t_now_ms() < until)
    usleep(10000);
  cr_assert_eq(access(ctl, F_OK), 0, "the control segment never appeared");
}

/* Flips `spec` on and off every ~20 ms until p exits or the deadline;
 * returns how many times it was switched on. */
static int flip_until_exit(struct t_proc *p, const char *spec, int ms) {
  long long until = t_now_ms() + ms;
  int flips = 0;
  siginfo_t info;
  /* WNOWAIT: the exit is left for t_finish to collect. */
  while (t_now_ms() < until &&
         (memset(&info, 0, sizeof(info)),
          waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT)) ==
             0 &&
         info.si_pid == 0) {
    if (t_inject(ctl, spec) == 0)
      flips++;
    usleep(20000);
    t_clear(ctl, "all");
    usleep(5000);
  }
  return flips;
}

static char *read_all(struct t_proc *p) {
  static char out[1 << 16];
  size_t len = 0;
  char line[4096];
  while (len + sizeof(line) < sizeof(out) &&
         t_line(p, line, sizeof(line), 2000) == 0)
    len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\n", line);
  out[len] = '\0';
  return out;
}

/* Rules aimed at another server switch under 4 benchmark threads: every
 * call takes the rule loop, none is hit; the benchmark finishes whole. */
Test(shim_threads, redis_benchmark_threads_while_rules_switch) {
  char port[16], spec[64];
  snprintf(port, sizeof(port), "%d", redis.port);
  snprintf(spec, sizeof(spec), "reset@127.0.0.1:%d", other.port);
  char *cmd[] = {"redis-benchmark", "-h", "127.0.0.1",    "-p", port,
                 "--threads",       "4",  "-c",           "20", "-n",
                 "60000",           "-t", "ping,set,get", "-q", NULL};
  struct t_proc p;
  start_under_shim(&p, cmd);
  wait_control();
  int flips = flip_until_exit(&p, spec, 90000);
  char *out = read_all(&p);
  int status = t_finish(&p, 20000);
  cr_assert_eq(status, 0, "redis-benchmark exited %d:\n%s", status, out);
  cr_assert_gt(flips, 3, "the rule was switched only %d times", flips);
  for (const char *t = "PING_INLINE\0SET\0GET\0"; *t; t += strlen(t) + 1)
    cr_assert(strstr(out, t) != NULL, "no %s result:\n%s", t, out);
}

/* Under a refuse rule from the start, the benchmark's failure is ours. */
Test(shim_threads, redis_benchmark_threads_see_the_injected_error) {
  char port[16], fault[64];
  snprintf(port, sizeof(port), "%d", redis.port);
  snprintf(fault, sizeof(fault), "refuse@127.0.0.1:%d", redis.port);
  char *argv[] = {T_FAULTLINE,
                  "exec",
                  "--fault",
                  fault,
                  "--quiet",
                  "--",
                  "redis-benchmark",
                  "-h",
                  "127.0.0.1",
                  "-p",
                  port,
                  "--threads",
                  "4",
                  "-n",
                  "1000",
                  "-t",
                  "ping",
                  "-q",
                  NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 30000, &r), 0);
  cr_assert_neq(r.status, 0, "redis-benchmark passed under refuse");
  cr_assert(strstr(r.out, "Connection refused") != NULL ||
                strstr(r.err, "Connection refused") != NULL,
            "not the injected error: %s%s", r.out, r.err);
  t_run_free(&r);
}

/* 16 threads connect, PING and close while a p=50% refuse flips: each
 * outcome is a PONG or ECONNREFUSED, and both happen. */
static const char *pool_py =
    "import socket, sys\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "port = int(sys.argv[1])\n"
    "def one(_):\n"
    "    try:\n"
    "        with socket.create_connection(('127.0.0.1', port), 5) as s:\n"
    "            s.sendall(b'PING\\r\\n')\n"
    "            return 'pong' if s.recv(16).startswith(b'+PONG') else 'odd'\n"
    "    except ConnectionRefusedError:\n"
    "        return 'refused'\n"
    "    except Exception as e:\n"
    "        return 'other:' + type(e).__name__\n"
    "with ThreadPoolExecutor(16) as ex:\n"
    "    seen = list(ex.map(one, range(4000)))\n"
    "for k in sorted(set(seen)):\n"
    "    print(k, seen.count(k))\n";

Test(shim_threads, python_thread_pool_while_refuse_flips) {
  char port[16], spec[64];
  snprintf(port, sizeof(port), "%d", redis.port);
  snprintf(spec, sizeof(spec), "refuse@127.0.0.1:%d,p=50%%", redis.port);
  char *cmd[] = {"python3", "-c", (char *)pool_py, port, NULL};
  struct t_proc p;
  start_under_shim(&p, cmd);
  wait_control();
  flip_until_exit(&p, spec, 90000);
  char *out = read_all(&p);
  int status = t_finish(&p, 20000);
  cr_assert_eq(status, 0, "python exited %d:\n%s", status, out);
  cr_assert(strstr(out, "pong ") != NULL, "no PONG at all:\n%s", out);
  cr_assert(strstr(out, "refused ") != NULL, "never refused:\n%s", out);
  cr_assert(strstr(out, "other:") == NULL && strstr(out, "odd") == NULL,
            "an outcome that is not ours:\n%s", out);
}
