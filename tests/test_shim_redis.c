/*
 * The shim against a real client: redis-cli (7.0, hiredis inside) talking to
 * real redis-server processes. Every fault is switched on and off with
 * `faultline inject/clear` while one redis-cli keeps running, and is judged
 * by what redis-cli itself prints. Two servers run per test: A is the
 * target of the faults, B shows that another destination is unaffected.
 *
 * Facts about redis-cli these tests rely on (checked with strace):
 *  - With stdin not a tty and no command, redis-cli runs its REPL reading
 *    stdin line by line, answering each command as it arrives (one line per
 *    reply with --raw, the default when stdout is not a tty; nothing for a
 *    successful `connect HOST PORT`). A failed command does not end it: the
 *    next command reconnects to the current host and port.
 *  - hiredis connects with a NON-BLOCKING socket: connect() -> EINPROGRESS,
 *    poll(POLLOUT, -1), then a second connect() on the same socket to read
 *    the result; there is no connect timeout. It then makes the socket
 *    BLOCKING and uses sendto()/recvfrom() (one of each per command).
 *    So delay@ is not applied to redis-cli's connect, but is applied to
 *    both the send and the receive of every command; and hang@ leaves the
 *    connect in progress for good (until cleared AND never: the socket is
 *    aimed at the blackhole; see test hang).
 *  - Messages: "Could not connect to Redis at H:P: Connection refused",
 *    "Error: Connection reset by peer", "Could not connect to Redis at H:P:
 *    Can't create socket: Too many open files", "Could not connect to Redis
 *    at localhost:P: Temporary failure in name resolution"; exit status 1
 *    in one-shot mode.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define STEP_MS 5000 /* deadline for one answer that should come */

static struct t_redis ra, rb;
static char tmp[256], ctl[320];
static char env_preload[600], env_control[400];
static char *shim_env[3];
static struct t_proc cli;
static int setup_ok;

static void setup(void) {
  setup_ok = 0;
  memset(&cli, 0, sizeof(cli));
  cli.in_fd = cli.out_fd = -1;
  if (t_mkdtemp(tmp) != 0)
    return;
  snprintf(ctl, sizeof(ctl), "%s/control", tmp);
  snprintf(env_preload, sizeof(env_preload), "LD_PRELOAD=%s", T_SHIM);
  snprintf(env_control, sizeof(env_control), "FAULTLINE_CONTROL=%s", ctl);
  shim_env[0] = env_preload;
  shim_env[1] = env_control;
  shim_env[2] = NULL;
  if (t_redis_start(&ra) != 0 || t_redis_start(&rb) != 0)
    return;
  setup_ok = 1;
}

static void teardown(void) {
  if (cli.pid > 0) {
    kill(-cli.pid, SIGKILL);
    t_finish(&cli, 5000);
  }
  t_redis_stop(&ra);
  t_redis_stop(&rb);
  t_rmtree(tmp);
}

TestSuite(shim_redis, .init = setup, .fini = teardown, .timeout = 40);

/* The REPL under `faultline exec --control ctl [--fault F]`, connected to
 * 127.0.0.1:port. The control segment exists once it answered a command. */
static void repl_start(const char *fault, int port) {
  char p[16];
  snprintf(p, sizeof(p), "%d", port);
  char *argv[16];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  argv[n++] = "--control";
  argv[n++] = ctl;
  if (fault != NULL) {
    argv[n++] = "--fault";
    argv[n++] = (char *)fault;
  }
  argv[n++] = "--";
  argv[n++] = "redis-cli";
  argv[n++] = "-p";
  argv[n++] = p;
  argv[n] = NULL;
  cr_assert(setup_ok, "the redis servers did not start");
  cr_assert_eq(t_spawn(&cli, argv, NULL, 1), 0, "cannot start redis-cli");
}

/* Sends one command to the REPL and reads its one-line answer; returns the
 * round trip in ms, or -1 when nothing came within timeout_ms. */
static long long ask(const char *cmd, char *out, size_t size, int timeout_ms) {
  long long t0 = t_now_ms();
  out[0] = '\0';
  if (t_send(&cli, cmd) != 0)
    return -1;
  if (t_line(&cli, out, size, timeout_ms) != 0)
    return -1;
  return t_now_ms() - t0;
}

#define ASK(cmd, want)                                                         \
  do {                                                                         \
    char got_[1024];                                                           \
    const char *c_ = (cmd), *w_ = (want);                                      \
    cr_assert_geq(ask(c_, got_, sizeof(got_), STEP_MS), 0,                     \
                  "redis-cli gave no answer to '%s'", c_);                     \
    cr_assert_str_eq(got_, w_, "'%s' answered '%s', want '%s'", c_, got_, w_); \
  } while (0)

/* A command that prints nothing when it works (connect). */
#define QUIET(cmd)                                                             \
  do {                                                                         \
    cr_assert_eq(t_send(&cli, (cmd)), 0);                                      \
  } while (0)

static const char *fmt(const char *f, ...)
    __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, 512, f, ap);
  va_end(ap);
  return b;
}

static const char *refused(const char *host, int port) {
  return fmt("Could not connect to Redis at %s:%d: Connection refused", host,
             port);
}

/* A one-shot `redis-cli -h host -p port PING`, under a fresh
 * `faultline exec --fault fault` (fault != NULL) or sharing our control
 * segment through the environment (fault == NULL: the way children of the
 * exec'd command get the shim). */
static void oneshot(const char *fault, const char *host, int port,
                    int timeout_ms, struct t_run *r) {
  char p[16];
  snprintf(p, sizeof(p), "%d", port);
  char *argv[16];
  int n = 0;
  if (fault != NULL) {
    argv[n++] = T_FAULTLINE;
    argv[n++] = "exec";
    argv[n++] = "--quiet";
    argv[n++] = "--fault";
    argv[n++] = (char *)fault;
    argv[n++] = "--";
  }
  argv[n++] = "redis-cli";
  argv[n++] = "-h";
  argv[n++] = (char *)host;
  argv[n++] = "-p";
  argv[n++] = p;
  argv[n++] = "PING";
  argv[n] = NULL;
  cr_assert_eq(
      t_run(argv, fault == NULL ? shim_env : NULL, NULL, timeout_ms, r), 0);
}

static void expect_pong(const char *fault, const char *host, int port) {
  struct t_run r;
  oneshot(fault, host, port, STEP_MS, &r);
  cr_expect_eq(r.status, 0, "redis-cli -p %d PING under %s: status %d: %s",
               port, fault ? fault : "the shared segment", r.status, r.err);
  cr_expect_str_eq(r.out, "PONG\n");
  t_run_free(&r);
}

static void expect_fail(const char *fault, const char *host, int port,
                        const char *msg) {
  struct t_run r;
  oneshot(fault, host, port, STEP_MS, &r);
  cr_expect_eq(r.status, 1, "redis-cli -p %d PING: status %d, want 1", port,
               r.status);
  cr_expect(strstr(r.err, msg) != NULL, "stderr '%s' lacks '%s'", r.err, msg);
  cr_expect_str_eq(r.out, "");
  t_run_free(&r);
}

/* `faultline status` numbers for rule `id` (matched, injected, open). */
static int rule_counts(int id, long *matched, long *injected, long *open) {
  char *argv[] = {T_FAULTLINE, "status", "--control", ctl,
                  "--events",  "0",      NULL};
  struct t_run r;
  if (t_run(argv, NULL, NULL, STEP_MS, &r) != 0)
    return -1;
  int found = -1;
  for (char *line = strtok(r.out, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    int rid;
    if (sscanf(line, "%d %ld %ld %ld", &rid, matched, injected, open) == 4 &&
        rid == id)
      found = 0;
  }
  t_run_free(&r);
  return found;
}

Test(shim_redis, refuse) {
  repl_start(NULL, ra.port);
  ASK("PING", "PONG");
  cr_assert_eq(t_inject(ctl, fmt("refuse@127.0.0.1:%d", ra.port)), 0);
  /* refuse is about connect: the open connection goes on working. */
  ASK("PING", "PONG");
  ASK(fmt("connect 127.0.0.1 %d", ra.port), refused("127.0.0.1", ra.port));
  ASK("PING", refused("127.0.0.1", ra.port));  /* the REPL retries: refused */
  QUIET(fmt("connect 127.0.0.1 %d", rb.port)); /* B is not aimed at */
  ASK("PING", "PONG");
  ASK(fmt("connect 127.0.0.1 %d", ra.port), refused("127.0.0.1", ra.port));
  cr_assert_eq(t_clear(ctl, "all"), 0);
  ASK("PING", "PONG"); /* the same redis-cli, now connected to A */
  ASK("SET k refuse", "OK");
  ASK("GET k", "refuse");
  /* The same through the CLI in one shot: status 1, the message. */
  expect_fail(fmt("refuse@127.0.0.1:%d", ra.port), "127.0.0.1", ra.port,
              refused("127.0.0.1", ra.port));
  expect_pong(fmt("refuse@127.0.0.1:%d", ra.port), "127.0.0.1", rb.port);
  cr_assert_eq(t_finish(&cli, STEP_MS), 0, "redis-cli did not exit cleanly");
}

Test(shim_redis, reset) {
  repl_start(NULL, ra.port);
  ASK("SET k 1", "OK");
  cr_assert_eq(t_inject(ctl, fmt("reset@127.0.0.1:%d", ra.port)), 0);
  ASK("INCR k", "Error: Connection reset by peer");
  /* The REPL reconnects for the next command; new connections are reset
   * too while the rule is on. */
  ASK("INCR k", "Error: Connection reset by peer");
  QUIET(fmt("connect 127.0.0.1 %d", rb.port));
  ASK("PING", "PONG");
  ASK("SET other b", "OK");
  QUIET(fmt("connect 127.0.0.1 %d", ra.port));
  ASK("PING", "Error: Connection reset by peer");
  long matched, injected, open;
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_geq(injected, 3, "3 resets shown to redis-cli, status says %ld",
                injected);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  ASK("PING", "PONG");
  /* No command that was reset reached the server: the RST came first. */
  ASK("GET k", "1");
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
  expect_fail(fmt("reset@127.0.0.1:%d", ra.port), "127.0.0.1", ra.port,
              "Error: Connection reset by peer");
}

Test(shim_redis, hang) {
  /* One shot: redis-cli has no connect timeout, so `timeout` ends it. */
  char *argv[] = {T_FAULTLINE,
                  "exec",
                  "--quiet",
                  "--fault",
                  (char *)fmt("hang@127.0.0.1:%d", ra.port),
                  "--",
                  "timeout",
                  "1",
                  "redis-cli",
                  "-p",
                  (char *)fmt("%d", ra.port),
                  "PING",
                  NULL};
  cr_assert(setup_ok);
  struct t_run r;
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  long long took = t_now_ms() - t0;
  cr_expect_eq(r.status, 124, "timeout should have ended redis-cli (got %d)",
               r.status);
  cr_expect_str_eq(r.out, "");
  cr_expect_geq(took, 1000);
  t_run_free(&r);
  expect_pong(fmt("hang@127.0.0.1:%d", ra.port), "127.0.0.1", rb.port);

  repl_start(NULL, ra.port);
  ASK("PING", "PONG");
  cr_assert_eq(t_inject(ctl, fmt("hang@127.0.0.1:%d", ra.port)), 0);
  ASK("PING", "PONG"); /* the open connection is not touched */
  QUIET(fmt("connect 127.0.0.1 %d", rb.port));
  ASK("PING", "PONG");
  char line[512];
  cr_assert_eq(t_send(&cli, fmt("connect 127.0.0.1 %d", ra.port)), 0);
  cr_assert_eq(t_send(&cli, "PING"), 0);
  cr_assert_neq(t_line(&cli, line, sizeof(line), 1000), 0,
                "redis-cli answered '%s' while its connect hangs", line);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  /* hiredis connects non-blocking and waits in poll() without a timeout:
   * the shim aimed that connect at the blackhole, and clearing the rule
   * does not move a connect already in progress ('non-blocking sockets
   * stay in progress until the caller's timeout'). So this redis-cli stays
   * stuck; only a new connection sees the rule gone. */
  cr_assert_neq(t_line(&cli, line, sizeof(line), 1000), 0,
                "redis-cli answered '%s' after the hang was cleared", line);
  expect_pong(NULL, "127.0.0.1", ra.port);
}

Test(shim_redis, delay) {
  const int ms = 300;
  repl_start(NULL, ra.port);
  char got[256];
  ASK("PING", "PONG");
  long long base = ask("PING", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "PONG");
  cr_expect_lt(base, ms, "PING took %lld ms before any delay", base);
  cr_assert_eq(t_inject(ctl, fmt("delay@127.0.0.1:%d,ms=%d", ra.port, ms)), 0);
  /* redis-cli's socket is blocking once connected: its send and its
   * receive are each delayed. */
  long long slow = ask("PING", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "PONG");
  cr_expect_geq(slow, 2 * ms, "PING took %lld ms under delay ms=%d", slow, ms);
  slow = ask("SET k v", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "OK");
  cr_expect_geq(slow, 2 * ms);
  long matched, injected, open;
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(injected, 4, "2 commands, a send and a recv each: %ld delays",
               injected);
  /* Another destination is not slowed. */
  QUIET(fmt("connect 127.0.0.1 %d", rb.port));
  long long other = ask("PING", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "PONG");
  cr_expect_lt(other, ms, "PING to B took %lld ms", other);
  /* A new connection to A: its non-blocking connect is not delayed, only
   * the PING's blocking send and recv (two more injections, not three). */
  long before = injected;
  QUIET(fmt("connect 127.0.0.1 %d", ra.port));
  slow = ask("PING", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "PONG");
  cr_expect_geq(slow, 2 * ms);
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(injected - before, 2, "connect + PING: %ld delays",
               injected - before);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  long long fast = ask("PING", got, sizeof(got), STEP_MS);
  cr_assert_str_eq(got, "PONG");
  cr_expect_lt(fast, ms, "PING took %lld ms after the delay was cleared", fast);
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
}

/* limit counts connections of every process sharing the segment; the
 * second client gets the shim and the segment through its environment,
 * as a child of the exec'd command would. */
Test(shim_redis, limit) {
  repl_start(fmt("limit@127.0.0.1:%d,max=1", ra.port), ra.port);
  /* hiredis calls connect() twice on one socket (the second collects the
   * non-blocking connect's result): one connection, counted once. */
  ASK("PING", "PONG");
  expect_fail(NULL, "127.0.0.1", ra.port, refused("127.0.0.1", ra.port));
  expect_pong(NULL, "127.0.0.1", rb.port);
  long matched, injected, open;
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(open, 1, "one connection open to A, status says %ld", open);
  /* The REPL moves to B: its connection to A is closed, a slot is free. */
  QUIET(fmt("connect 127.0.0.1 %d", rb.port));
  ASK("PING", "PONG");
  expect_pong(NULL, "127.0.0.1", ra.port);
  QUIET(fmt("connect 127.0.0.1 %d", ra.port));
  ASK("PING", "PONG");
  expect_fail(NULL, "127.0.0.1", ra.port, refused("127.0.0.1", ra.port));
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_pong(NULL, "127.0.0.1", ra.port);
  ASK("PING", "PONG");
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
}

Test(shim_redis, exhaust_sockets) {
  repl_start(NULL, ra.port);
  ASK("PING", "PONG");
  cr_assert_eq(t_inject(ctl, "exhaust@sockets"), 0);
  ASK("PING", "PONG"); /* no new socket needed */
  const char *msg = "Can't create socket: Too many open files";
  ASK(fmt("connect 127.0.0.1 %d", rb.port),
      fmt("Could not connect to Redis at 127.0.0.1:%d: %s", rb.port, msg));
  ASK("PING",
      fmt("Could not connect to Redis at 127.0.0.1:%d: %s", rb.port, msg));
  cr_assert_eq(t_clear(ctl, "all"), 0);
  ASK("PING", "PONG");
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
  expect_fail("exhaust@sockets", "127.0.0.1", ra.port, msg);
}

Test(shim_redis, dns) {
  repl_start(NULL, ra.port);
  ASK("PING", "PONG");
  cr_assert_eq(t_inject(ctl, "dns@localhost"), 0);
  const char *msg = fmt("Could not connect to Redis at localhost:%d: "
                        "Temporary failure in name resolution",
                        ra.port);
  ASK(fmt("connect localhost %d", ra.port), msg);
  ASK("PING", msg);
  /* A numeric address is never looked up. */
  QUIET(fmt("connect 127.0.0.1 %d", ra.port));
  ASK("PING", "PONG");
  cr_assert_eq(t_clear(ctl, "all"), 0);
  QUIET(fmt("connect localhost %d", ra.port));
  ASK("PING", "PONG");
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
  expect_fail("dns@localhost", "localhost", ra.port,
              "Temporary failure in name resolution");
  expect_pong("dns@other.invalid", "localhost", ra.port);
}
