/*
 * The stream-fault proxy from the client's side: a Python asyncio client
 * (data/proxy_client.py) and redis-cli run under `faultline exec --proxy`
 * against real redis-server processes, and faults are switched with
 * `faultline inject/clear` while their connections stay open. Two servers
 * run per test, both proxied: A is the target of the faults, B shows that
 * another destination is unaffected. Counters are read back through the
 * control segment, as the runner reads them.
 *
 * Timing assertions compare with what was injected: never less, and (in
 * the median of a few) no more than a margin that covers the proxy's
 * timer granularity (1 ms), the client's own overhead and a busy machine.
 * "Not delayed" means under half the injected delay.
 *
 * The last test drives the proxy in process: the listen address a caller
 * chooses (faultline serve's proxies) and the rules it owns.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"
#include "faults/faults.h"
#include "proxy/proxy.h"
#include "support.h"

#define STEP_MS 5000
#define MARGIN_MS 60 /* added latency may exceed the injected value by */
#define PY "/usr/bin/python3"

static struct t_redis ra, rb;
static char tmp[256], ctl[320];
static struct t_proc cli;
static int setup_ok;

static void setup(void) {
  setup_ok = 0;
  memset(&cli, 0, sizeof(cli));
  cli.in_fd = cli.out_fd = -1;
  if (t_mkdtemp(tmp) != 0)
    return;
  snprintf(ctl, sizeof(ctl), "%s/control", tmp);
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

TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 60);

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

/* `faultline exec --control ctl --proxy A --proxy B [--seed S] -- argv`,
 * with stdin and stdout piped to us. */
static void start(const char *seed, char *const *cmd) {
  char *argv[32];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  argv[n++] = "--control";
  argv[n++] = ctl;
  argv[n++] = "--proxy";
  argv[n++] = (char *)fmt("127.0.0.1:%d", ra.port);
  argv[n++] = "--proxy";
  argv[n++] = (char *)fmt("127.0.0.1:%d", rb.port);
  if (seed != NULL) {
    argv[n++] = "--seed";
    argv[n++] = (char *)seed;
  }
  argv[n++] = "--";
  while (*cmd != NULL && n < 31)
    argv[n++] = *cmd++;
  argv[n] = NULL;
  cr_assert(setup_ok, "the redis servers did not start");
  cr_assert_eq(t_spawn(&cli, argv, NULL, 1), 0, "cannot start %s", argv[0]);
}

/* The asyncio client, ready for commands. */
static void py_start(const char *seed) {
  char *cmd[] = {PY, T_DATA "/proxy_client.py", NULL};
  start(seed, cmd);
  cr_assert_eq(t_expect(&cli, "ready", NULL, 0, 10000), 0,
               "the Python client did not start");
}

/* Sends one command, returns its one-line answer (a static buffer). */
static const char *ask_within(int timeout_ms, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static const char *ask_within(int timeout_ms, const char *f, ...) {
  static char line[1024];
  char cmd[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(cmd, sizeof(cmd), f, ap);
  va_end(ap);
  cr_assert_eq(t_send(&cli, cmd), 0, "cannot send '%s'", cmd);
  cr_assert_eq(t_line(&cli, line, sizeof(line), timeout_ms), 0,
               "no answer to '%s' within %d ms", cmd, timeout_ms);
  return line;
}
#define ask(...) ask_within(STEP_MS, __VA_ARGS__)

/* "ok 201.3" -> 201.3; fails the test on any other answer. */
static double ok_ms(const char *answer, const char *what) {
  double v;
  cr_assert_eq(sscanf(answer, "ok %lf", &v), 1, "%s answered '%s'", what,
               answer);
  return v;
}

#define ASSERT_ANSWER(answer, want, what)                                      \
  cr_assert_str_eq((answer), (want), "%s answered '%s', want '%s'", (what),    \
                   (answer), (want))

static double median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  return v[n / 2];
}

/* `faultline inject --control ctl SPEC`; the new rule's number. */
static int inject(const char *spec) {
  char *argv[] = {T_FAULTLINE, "inject", "--control", ctl, (char *)spec, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, STEP_MS, &r), 0);
  int id = -1;
  cr_assert_eq(r.status, 0, "inject %s: %s", spec, r.err);
  cr_assert_eq(sscanf(r.out, "rule %d:", &id), 1, "inject printed '%s'", r.out);
  t_run_free(&r);
  return id;
}

/* Clears rules by number: `clear all` would also remove the redirects
 * that exec --proxy installed (rules 1 and 2), and the client's new
 * connections would then bypass the proxy. */
static void clear(int id) {
  cr_assert_eq(t_clear(ctl, fmt("%d", id)), 0, "cannot clear rule %d", id);
}

/* A rule's counters, read through the segment as the runner reads them. */
static struct fl_rule_view counters(int id) {
  fl_control_t *c;
  struct fl_rule_view v;
  cr_assert_eq(fl_control_open(ctl, &c), 0);
  cr_assert_eq(fl_control_rule(c, (uint32_t)id, &v), 0, "no rule %d", id);
  fl_control_close(c);
  return v;
}

/* n PINGs on connection `conn`: none faster than lo ms (what the proxy
 * promises), their median no slower than hi ms (a busy machine may
 * delay one of them more). */
static void pings_between(const char *conn, int n, double lo, double hi) {
  double t[16];
  for (int i = 0; i < n && i < 16; i++) {
    t[i] = ok_ms(ask("ping %s", conn), "ping");
    cr_expect_geq(t[i], lo, "a PING took %.1f ms, want at least %.0f", t[i],
                  lo);
  }
  double mid = median(t, n);
  cr_expect_leq(mid, hi, "median PING %.1f ms, want at most %.0f", mid, hi);
}

static void py_quit(void) {
  ASSERT_ANSWER(ask("quit"), "bye", "quit");
  cr_assert_eq(t_finish(&cli, STEP_MS), 0, "faultline exec did not exit 0");
}

/* ---- latency ----------------------------------------------------- */

Test(proxy, latency_asyncio) {
  const int ms = 200;
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ASSERT_ANSWER(ask("open b %d", rb.port), "ok", "open b");
  double base = ok_ms(ask("ping a"), "ping a");
  cr_expect_lt(base, ms / 2, "a PING took %.1f ms with no fault", base);
  int id = inject(fmt("latency@127.0.0.1:%d,ms=%d", ra.port, ms));
  /* The open connection is slowed: each reply is held ms longer. */
  pings_between("a", 5, ms, ms + MARGIN_MS);
  double other = ok_ms(ask("ping b"), "ping b");
  cr_expect_lt(other, ms / 2, "B is not aimed at, yet its PING took %.1f ms",
               other);
  /* A new connection is slowed too (the connect itself is not). */
  double fresh = ok_ms(ask("dial %d", ra.port), "dial a");
  cr_expect_geq(fresh, ms);
  struct fl_rule_view v = counters(id);
  cr_expect_eq(v.matched, 2, "connections seen: %lu, want 2",
               (unsigned long)v.matched);
  cr_expect_eq(v.injected, 2, "connections affected: %lu, want 2",
               (unsigned long)v.injected);
  cr_expect_geq(v.bytes, 6 * 7, "bytes delayed: %lu, want 6 +PONG replies",
                (unsigned long)v.bytes);
  /* `faultline status` shows the same counts, BYTES among them. */
  char *st[] = {T_FAULTLINE, "status", "--control", ctl, "--events", "0", NULL};
  struct t_run r;
  cr_assert_eq(t_run(st, NULL, NULL, STEP_MS, &r), 0);
  cr_assert(strstr(r.out, "BYTES") != NULL, "%s", r.out);
  unsigned long matched = 0, injected = 0, bytes = 0;
  int open = 0, found = 0;
  for (char *line = strtok(r.out, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    int rid;
    if (sscanf(line, "%d %lu %lu %d %lu", &rid, &matched, &injected, &open,
               &bytes) == 5 &&
        rid == id)
      found = 1;
  }
  t_run_free(&r);
  cr_assert(found, "rule %d is not in faultline status", id);
  cr_expect_eq(injected, 2);
  cr_expect_geq(bytes, 6 * 7, "status BYTES %lu", bytes);
  clear(id);
  double after = ok_ms(ask("ping a"), "ping a after clear");
  cr_expect_lt(after, ms / 2, "PING took %.1f ms after the latency was cleared",
               after);
  py_quit();
}

Test(proxy, latency_jitter_and_up) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  /* dir=up holds the requests instead of the replies: the same round trip
   * cost; both adds up. */
  int up_id = inject(fmt("latency@127.0.0.1:%d,ms=100,dir=up", ra.port));
  pings_between("a", 3, 100, 100 + MARGIN_MS);
  int down_id = inject(fmt("latency@127.0.0.1:%d,ms=100,dir=down", ra.port));
  pings_between("a", 3, 200, 200 + MARGIN_MS);
  clear(up_id);
  clear(down_id);
  /* jitter: between ms - j and ms + j, never reordered; 2 of 12 may
   * come late on a busy machine, none early. */
  inject(fmt("latency@127.0.0.1:%d,ms=100,jitter=50", ra.port));
  double lo = 1e9, hi = 0;
  int within = 0;
  for (int i = 0; i < 12; i++) {
    double t = ok_ms(ask("ping a"), "ping a under jitter");
    lo = t < lo ? t : lo;
    hi = t > hi ? t : hi;
    within += t <= 150 + MARGIN_MS;
  }
  cr_expect_geq(lo, 50, "fastest PING %.1f ms under ms=100,jitter=50", lo);
  cr_expect_geq(within, 10, "%d of 12 PINGs over 150 + %d ms (slowest %.1f)",
                12 - within, MARGIN_MS, hi);
  cr_expect_gt(hi - lo, 10,
               "12 PINGs within %.1f ms of each other: no "
               "jitter",
               hi - lo);
  py_quit();
}

/* toxicity= picks connections from the seed and the connection's number:
 * the same seed picks the same ones. */
static void slow_pattern(const char *seed, char *out, int n) {
  py_start(seed);
  /* 300 ms: far above what a loaded machine adds to an unaffected dial,
   * so the pattern is the seed's, not the scheduler's. */
  inject(fmt("latency@127.0.0.1:%d,ms=300,toxicity=50%%", ra.port));
  for (int i = 0; i < n; i++)
    out[i] = ok_ms(ask("dial %d", ra.port), "dial a") >= 300 ? 'S' : '-';
  out[n] = '\0';
  py_quit();
  unlink(ctl);
}

Test(proxy, toxicity_is_reproducible) {
  char first[33], second[33], other[33];
  slow_pattern("42", first, 32);
  slow_pattern("42", second, 32);
  slow_pattern("43", other, 32);
  cr_expect_str_eq(first, second, "the same seed picked %s, then %s", first,
                   second);
  cr_expect(strchr(first, 'S') != NULL && strchr(first, '-') != NULL,
            "toxicity=50%% picked %s", first);
  cr_expect_str_neq(first, other, "seeds 42 and 43 both picked %s", first);
}

/* ---- stall ------------------------------------------------------- */

Test(proxy, stall_client_timeout_fires) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ASSERT_ANSWER(ask("open b %d", rb.port), "ok", "open b");
  int id = inject(fmt("stall@127.0.0.1:%d", ra.port));
  long long t0 = t_now_ms();
  ASSERT_ANSWER(ask("ping a 0.5"), "timeout", "ping a under stall");
  cr_expect_geq(t_now_ms() - t0, 500);
  double other = ok_ms(ask("ping b 2"), "ping b");
  cr_expect_lt(other, 250, "B took %.1f ms while A stalls", other);
  /* A new connection: the connect works, nothing answers. */
  ASSERT_ANSWER(ask("dial %d 0.5", ra.port), "timeout", "dial a under stall");
  struct fl_rule_view v = counters(id);
  cr_expect_eq(v.injected, 2, "stalled connections: %lu, want 2",
               (unsigned long)v.injected);
  clear(id);
  ok_ms(ask("dial %d", ra.port), "dial a after clear");
  /* The stalled connection resumes: the PING held back is answered. */
  ok_ms(ask("ping a"), "ping a after clear");
  py_quit();
}

Test(proxy, stall_closes_after_ms) {
  py_start(NULL);
  inject(fmt("stall@127.0.0.1:%d,ms=300", ra.port));
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  long long t0 = t_now_ms();
  const char *got = ask("ping a 3");
  long long took = t_now_ms() - t0;
  /* Closed with the PING unread: the kernel answers with an RST. */
  cr_expect(strcmp(got, "EOF") == 0 || strcmp(got, "ECONNRESET") == 0,
            "ping a under stall,ms=300 answered '%s'", got);
  cr_expect_geq(took, 290);
  cr_expect_lt(took, 300 + 500);
  py_quit();
}

/* ---- reset_peer, limit_data ---------------------------------------- */

Test(proxy, reset_peer_asyncio) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ok_ms(ask("set a big 200000"), "set big");
  int id = inject(fmt("reset_peer@127.0.0.1:%d", ra.port));
  ASSERT_ANSWER(ask("ping a"), "ECONNRESET", "ping a after reset_peer");
  ASSERT_ANSWER(ask("dial %d", ra.port), "ECONNRESET", "dial a");
  ok_ms(ask("dial %d", rb.port), "dial b");
  cr_expect_eq(counters(id).injected, 2);
  clear(id);
  /* After bytes=: the value starts arriving, then the connection is
   * reset. */
  id = inject(fmt("reset_peer@127.0.0.1:%d,bytes=10k,dir=down", ra.port));
  ASSERT_ANSWER(ask("open c %d", ra.port), "ok", "open c");
  ASSERT_ANSWER(ask("get c big"), "ECONNRESET", "get c under bytes=10k");
  cr_expect_eq(counters(id).injected, 1);
  clear(id);
  ASSERT_ANSWER(ask("open d %d", ra.port), "ok", "open d");
  const char *got = ask("get d big");
  cr_expect_eq(strncmp(got, "ok 200000 ", 10), 0, "get d answered '%s'", got);
  py_quit();
}

Test(proxy, limit_data_closes) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ok_ms(ask("set a big 100000"), "set big");
  int id = inject(fmt("limit_data@127.0.0.1:%d,bytes=4k", ra.port));
  ASSERT_ANSWER(ask("open c %d", ra.port), "ok", "open c");
  ASSERT_ANSWER(ask("get c big"), "EOF", "get c under limit_data");
  cr_expect_eq(counters(id).injected, 1);
  py_quit();
}

/* ---- bandwidth --------------------------------------------------- */

Test(proxy, bandwidth_n_over_rate) {
  const double rate = 128 * 1024;
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ok_ms(ask("set a big 262144"), "set big");
  int id = inject(fmt("bandwidth@127.0.0.1:%d,rate=128k", ra.port));
  /* Down: GET's reply is the value and a 9-byte header and trailer. */
  double want = (262144 + 11) / rate * 1000;
  const char *got = ask_within(20000, "get a big");
  size_t size;
  double took;
  cr_assert_eq(sscanf(got, "ok %zu %lf", &size, &took), 2, "get: '%s'", got);
  cr_expect_eq(size, 262144);
  cr_expect(took >= want * 0.9 && took <= want * 1.1,
            "262155 bytes at 128k/s took %.0f ms, want %.0f ms +- 10%%", took,
            want);
  /* Up: the SET carries the value. */
  want = (131072 + 32) / rate * 1000;
  took = ok_ms(ask_within(20000, "set a up 131072 20"), "set up");
  cr_expect(took >= want * 0.9 && took <= want * 1.1,
            "a 131072-byte SET at 128k/s took %.0f ms, want %.0f ms +- 10%%",
            took, want);
  cr_expect_geq(counters(id).bytes, 262144 + 131072);
  clear(id);
  got = ask("get a big");
  cr_assert_eq(sscanf(got, "ok %zu %lf", &size, &took), 2, "get: '%s'", got);
  cr_expect_lt(took, 200, "GET took %.0f ms once the bandwidth was cleared",
               took);
  py_quit();
}

/* ---- slicer, slow_close ------------------------------------------ */

Test(proxy, slicer_pieces_apart) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ok_ms(ask("set a v 3000"), "set v");
  int id = inject(fmt("slicer@127.0.0.1:%d,size=100,ms=5", ra.port));
  /* The reply, 3000 bytes and a 9-byte frame, leaves in 31 pieces of at
   * most 100 bytes, 5 ms apart: 150 ms at least. */
  const char *got = ask("get a v");
  size_t size;
  double took;
  cr_assert_eq(sscanf(got, "ok %zu %lf", &size, &took), 2, "get: '%s'", got);
  cr_expect_eq(size, 3000);
  cr_expect_geq(took, 30 * 5, "31 pieces 5 ms apart came in %.1f ms", took);
  cr_expect_leq(took, 30 * 5 + 150);
  cr_expect_geq(counters(id).bytes, 3009);
  /* The request direction is not sliced by default. */
  took = ok_ms(ask("set a w 3000"), "set w");
  cr_expect_lt(took, 100, "an unsliced SET took %.1f ms", took);
  clear(id);
  py_quit();
}

Test(proxy, slow_close_delays_the_end) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  double fast = ok_ms(ask("bye a"), "bye a");
  cr_expect_lt(fast, 100);
  int id = inject(fmt("slow_close@127.0.0.1:%d,ms=300", ra.port));
  ASSERT_ANSWER(ask("open b %d", ra.port), "ok", "open b");
  /* redis answers QUIT and closes at once; the client sees the end of
   * the stream 300 ms later. */
  double slow = ok_ms(ask("bye b"), "bye b");
  cr_expect_geq(slow, 300, "the close came after %.1f ms", slow);
  cr_expect_leq(slow, 300 + 3 * MARGIN_MS);
  /* b, and a too if the proxy still held its half-closed connection when
   * the rule came (a busy machine): every connection seen is affected. */
  struct fl_rule_view v = counters(id);
  cr_expect_geq(v.injected, 1);
  cr_expect_eq(v.injected, v.matched, "affected %lu of %lu seen",
               (unsigned long)v.injected, (unsigned long)v.matched);
  clear(id);
  py_quit();
}

/* ---- down -------------------------------------------------------- */

Test(proxy, down_then_lifted) {
  py_start(NULL);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "open a");
  ok_ms(ask("ping a"), "ping a");
  int id = inject(fmt("down@127.0.0.1:%d", ra.port));
  ASSERT_ANSWER(ask("ping a"), "EOF", "ping a once the server is down");
  ASSERT_ANSWER(ask("dial %d", ra.port), "ECONNREFUSED", "dial a (down)");
  ok_ms(ask("dial %d", rb.port), "dial b");
  struct fl_rule_view v = counters(id);
  cr_expect_eq(v.injected, 2, "injected %lu: the outage and one connection",
               (unsigned long)v.injected);
  clear(id);
  long long t0 = t_now_ms();
  const char *got;
  while (strncmp(got = ask("dial %d", ra.port), "ok ", 3) != 0 &&
         t_now_ms() - t0 < 1000)
    ;
  ok_ms(got, "dial a once lifted");
  cr_expect_lt(t_now_ms() - t0, 200, "the proxy took %lld ms to come back",
               t_now_ms() - t0);
  ASSERT_ANSWER(ask("open a %d", ra.port), "ok", "reopen a");
  ok_ms(ask("ping a"), "ping a once lifted");
  /* down with a toxicity refuses only some new connections: each is
   * accepted, then reset. */
  inject(fmt("down@127.0.0.1:%d,toxicity=50%%", ra.port));
  int ok = 0, reset = 0;
  for (int i = 0; i < 20; i++) {
    got = ask("dial %d", ra.port);
    ok += strncmp(got, "ok ", 3) == 0;
    reset += strcmp(got, "ECONNRESET") == 0 || strcmp(got, "EOF") == 0;
  }
  cr_expect(ok > 0 && reset > 0 && ok + reset == 20,
            "toxicity=50%%: %d of 20 worked, %d refused", ok, reset);
  py_quit();
}

/* ---- redis-cli --------------------------------------------------- */

static void cli_start(void) {
  char *cmd[] = {"redis-cli", "-p", (char *)fmt("%d", ra.port), NULL};
  start(NULL, cmd);
}

static long long cli_ask(const char *cmd, char *out, size_t size) {
  long long t0 = t_now_ms();
  cr_assert_eq(t_send(&cli, cmd), 0);
  cr_assert_eq(t_line(&cli, out, size, STEP_MS), 0,
               "redis-cli gave no answer to '%s'", cmd);
  return t_now_ms() - t0;
}

#define CLI(cmd, want)                                                         \
  do {                                                                         \
    char got_[512];                                                            \
    cli_ask((cmd), got_, sizeof(got_));                                        \
    cr_assert_str_eq(got_, (want), "'%s' answered '%s', want '%s'", (cmd),     \
                     got_, (want));                                            \
  } while (0)

Test(proxy, redis_cli) {
  cli_start();
  CLI("PING", "PONG");
  char got[512];
  int lat = inject(fmt("latency@127.0.0.1:%d,ms=150", ra.port));
  double t3[3];
  for (int i = 0; i < 3; i++) {
    t3[i] = (double)cli_ask("PING", got, sizeof(got));
    cr_expect_str_eq(got, "PONG");
    cr_expect_geq(t3[i], 150);
  }
  cr_expect_leq(median(t3, 3), 150 + MARGIN_MS,
                "median PING %.0f ms under "
                "ms=150",
                median(t3, 3));
  clear(lat);
  long long t = cli_ask("SET k v", got, sizeof(got));
  cr_expect_str_eq(got, "OK");
  cr_expect_lt(t, 100);
  /* Replies one byte at a time: hiredis reassembles them. */
  int sl = inject(fmt("slicer@127.0.0.1:%d,size=1,ms=1", ra.port));
  CLI("GET k", "v");
  CLI("PING", "PONG");
  clear(sl);
  int rst = inject(fmt("reset_peer@127.0.0.1:%d", ra.port));
  CLI("GET k", "Error: Connection reset by peer");
  clear(rst);
  CLI("GET k", "v"); /* redis-cli reconnects by itself */
  int dn = inject(fmt("down@127.0.0.1:%d", ra.port));
  CLI("GET k", "Error: Server closed the connection");
  CLI("GET k",
      fmt("Could not connect to Redis at 127.0.0.1:%d: Connection refused",
          ra.port));
  clear(dn);
  /* The proxy listens again within its 5 ms tick: a connect that comes
   * sooner is still refused, so retry for a while. */
  long long t0 = t_now_ms();
  for (;;) {
    cli_ask("GET k", got, sizeof(got));
    if (strcmp(got, "v") == 0 || t_now_ms() - t0 > 1000)
      break;
  }
  cr_expect_str_eq(got, "v", "redis-cli still fails once down was cleared");
  cr_expect_lt(t_now_ms() - t0, 200, "the proxy took %lld ms to come back",
               t_now_ms() - t0);
  cr_assert_eq(t_finish(&cli, STEP_MS), 0);
}

Test(proxy, redis_cli_bandwidth) {
  cr_assert(setup_ok);
  char *set[] = {"redis-cli", "-p", (char *)fmt("%d", ra.port), "SET", "big",
                 NULL,        NULL};
  char *value = malloc(65537);
  memset(value, 'y', 65536);
  value[65536] = '\0';
  set[5] = value;
  struct t_run r;
  cr_assert_eq(t_run(set, NULL, NULL, STEP_MS, &r), 0);
  cr_assert_str_eq(r.out, "OK\n");
  t_run_free(&r);
  free(value);
  char *get[] = {T_FAULTLINE,
                 "exec",
                 "--quiet",
                 "--proxy",
                 (char *)fmt("127.0.0.1:%d", ra.port),
                 "--fault",
                 (char *)fmt("bandwidth@127.0.0.1:%d,rate=32k", ra.port),
                 "--",
                 "redis-cli",
                 "-p",
                 (char *)fmt("%d", ra.port),
                 "GET",
                 "big",
                 NULL};
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(get, NULL, NULL, 20000, &r), 0);
  long long took = t_now_ms() - t0;
  cr_expect_eq(r.status, 0, "%s", r.err);
  cr_expect_eq(strlen(r.out), 65537);
  double want = (65536 + 11) / (32.0 * 1024) * 1000;
  /* The floor proves the shaping; the ceiling leaves room for starting
   * two processes on a loaded machine (an ASan build). */
  cr_expect(took >= want * 0.9 && took <= want * 1.25 + 300,
            "65547 bytes at 32k/s took %lld ms, want %.0f ms -10%% +25%%", took,
            want);
  t_run_free(&r);
}

/* ---- in process: a chosen listen address, rules it owns ---------- */

struct owned_world {
  uv_loop_t loop;
  uv_async_t stop;
  fl_proxy_t *proxy;
  pthread_t thread;
  _Atomic uint32_t owned; /* the one rule id the proxy takes */
};

static int owns_one(void *arg, const struct fl_rule *rule) {
  struct owned_world *w = arg;
  return rule->id == atomic_load(&w->owned);
}

static void on_owned_stop(uv_async_t *a) {
  struct owned_world *w = a->data;
  fl_proxy_close(w->proxy);
  uv_close((uv_handle_t *)a, NULL);
}

static void *owned_loop(void *arg) {
  uv_run(&((struct owned_world *)arg)->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* redis-cli PING to port: 0 when it answered PONG. */
static int pong(int port) {
  char *argv[] = {"redis-cli", "-p", (char *)fmt("%d", port), "PING", NULL};
  struct t_run r;
  int ok = t_run(argv, NULL, NULL, STEP_MS, &r) == 0 && r.status == 0 &&
           strcmp(r.out, "PONG\n") == 0;
  t_run_free(&r);
  return ok ? 0 : -1;
}

static uint32_t add_rule(fl_control_t *c, const char *spec) {
  struct fl_rule rule;
  char err[256];
  uint32_t id = 0;
  cr_assert_eq(fl_spec_parse(spec, &rule, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(fl_control_add(c, &rule, &id), 0);
  return id;
}

Test(proxy, listen_address_and_owned_rules) {
  cr_assert(setup_ok);
  static struct owned_world w;
  fl_control_t *c;
  cr_assert_eq(fl_control_create(ctl, 7, &c), 0);
  cr_assert_eq(uv_loop_init(&w.loop), 0);
  int port = t_free_port();
  struct sockaddr_in at = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in up = at;
  up.sin_port = htons((uint16_t)ra.port);
  struct fl_proxy_opts o = {(struct sockaddr *)&at, owns_one, &w};
  cr_assert_eq(
      fl_proxy_start_with(&w.loop, c, (struct sockaddr *)&up, &o, &w.proxy), 0);
  cr_expect_eq(fl_proxy_port(w.proxy), port);
  fl_proxy_t *twice;
  cr_expect_eq(
      fl_proxy_start_with(&w.loop, c, (struct sockaddr *)&up, &o, &twice),
      -EADDRINUSE, "a second proxy bound a taken port");
  uv_async_init(&w.loop, &w.stop, on_owned_stop);
  w.stop.data = &w;
  cr_assert_eq(pthread_create(&w.thread, NULL, owned_loop, &w), 0);
  cr_expect_eq(pong(port), 0, "no PONG through the chosen port");

  /* Aimed at the upstream but not owned: ignored, however long we look
   * (the proxy re-reads rules every 5 ms). */
  uint32_t down = add_rule(c, fmt("down@127.0.0.1:%d", ra.port));
  for (long long end = t_now_ms() + 150; t_now_ms() < end;)
    cr_expect_eq(pong(port), 0, "a rule the proxy does not own acted");
  /* Owned: it acts once the rules change again. */
  atomic_store(&w.owned, down);
  add_rule(c, "refuse@127.0.0.2:1");
  long long end = t_now_ms() + 2000;
  while (pong(port) == 0 && t_now_ms() < end)
    ;
  cr_expect_neq(pong(port), 0, "the owned down rule did not act");

  uv_async_send(&w.stop);
  pthread_join(w.thread, NULL);
  cr_expect_eq(uv_loop_close(&w.loop), 0, "handles left open");
  fl_control_remove(c);
}
