/*
 * redis_error against real clients: a real redis-server behind the proxy,
 * started in process as the runner starts it (protocol "redis"), and
 * redis-cli, redis-py (data/proto_redis.py) and ioredis
 * (data/proto_redis.js) talking to the proxy. Each client must raise its
 * own error for the reply we send (redis-py's exception classes, ioredis's
 * ReplyError, redis-cli's "(error) ..."), replies must stay in command
 * order in a pipeline, p=/times=/match= must be honoured, a transaction
 * must fail as a whole, and the connection must stay usable. Injections
 * are read back from the control segment, as the runner reads them.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "control/control.h"
#include "faults/faults.h"
#include "proxy/proxy.h"
#include "support.h"

#define PY "/usr/bin/python3"
#define STEP_MS 30000

static struct t_redis redis;
static char tmp[256], ctlpath[320];
static fl_control_t *ctl;
static uv_loop_t loop;
static uv_async_t stop;
static fl_proxy_t *proxy;
static pthread_t thread;
static int port, setup_ok;

static void on_stop(uv_async_t *a) {
  fl_proxy_close(proxy);
  uv_close((uv_handle_t *)a, NULL);
}

static void *run_loop(void *arg) {
  (void)arg;
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

static void setup(void) {
  setup_ok = 0;
  if (t_mkdtemp(tmp) != 0 || t_redis_start(&redis) != 0)
    return;
  snprintf(ctlpath, sizeof(ctlpath), "%s/control", tmp);
  if (fl_control_create(ctlpath, 7, &ctl) != 0 || uv_loop_init(&loop) != 0)
    return;
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)redis.port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct fl_proxy_opts o = {.protocol = "redis"};
  if (fl_proxy_start_with(&loop, ctl, (struct sockaddr *)&up, &o, &proxy) != 0)
    return;
  port = fl_proxy_port(proxy);
  uv_async_init(&loop, &stop, on_stop);
  if (pthread_create(&thread, NULL, run_loop, NULL) != 0)
    return;
  setup_ok = 1;
}

static void teardown(void) {
  if (setup_ok) {
    uv_async_send(&stop);
    pthread_join(thread, NULL);
    uv_loop_close(&loop);
  }
  if (ctl != NULL)
    fl_control_remove(ctl);
  t_redis_stop(&redis);
  t_rmtree(tmp);
}

TestSuite(proto_redis, .init = setup, .fini = teardown, .timeout = 120);

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

/* Installs `redis_error@REDIS,OPTIONS`; returns its id. */
static uint32_t arm(const char *options) {
  struct fl_rule rule;
  char err[256];
  uint32_t id = 0;
  const char *spec = fmt("redis_error@127.0.0.1:%d,%s", redis.port, options);
  cr_assert_eq(fl_spec_parse(spec, &rule, err, sizeof(err)), 0, "%s: %s", spec,
               err);
  cr_assert_eq(fl_control_add(ctl, &rule, &id), 0);
  return id;
}

static uint64_t injected(uint32_t id) {
  struct fl_rule_view v;
  cr_assert_eq(fl_control_rule(ctl, id, &v), 0);
  return v.injected;
}

/* Runs argv; its stdout (the caller frees it with t_run_free). */
static void run(char *const argv[], struct t_run *r) {
  cr_assert(setup_ok, "redis-server or the proxy did not start");
  cr_assert_eq(t_run(argv, NULL, NULL, STEP_MS, r), 0);
  cr_assert_eq(r->status, 0, "%s exited %d: %s", argv[0], r->status, r->err);
}

static void py(const char *mode, struct t_run *r) {
  char *argv[] = {PY, FL_TEST_SOURCE_DIR "/tests/data/proto_redis.py",
                  (char *)fmt("%d", port), (char *)mode, NULL};
  run(argv, r);
}

static void expect_py(const char *mode, const char *want) {
  struct t_run r;
  py(mode, &r);
  cr_expect_str_eq(r.out, want, "redis-py %s printed '%s', want '%s'", mode,
                   r.out, want);
  t_run_free(&r);
}

static void cli(const char *out_want, const char *const *args) {
  char *argv[16] = {"redis-cli", "--no-raw", "-p", (char *)fmt("%d", port)};
  int n = 4;
  while (*args != NULL && n < 15)
    argv[n++] = (char *)*args++;
  argv[n] = NULL;
  struct t_run r;
  run(argv, &r);
  cr_expect_str_eq(r.out, out_want, "redis-cli printed '%s', want '%s'", r.out,
                   out_want);
  t_run_free(&r);
}

Test(proto_redis, redis_cli_sees_the_preset_and_resp3) {
  cli("OK\n", (const char *[]){"SET", "k", "v", NULL});
  uint32_t id = arm("reply=LOADING");
  cli("(error) LOADING Redis is loading the dataset in memory\n",
      (const char *[]){"GET", "k", NULL});
  cr_expect_eq(injected(id), 1);
  fl_control_clear(ctl, id);
  /* RESP3: HELLO 3 passes (a handshake), the command is answered; an
   * inline command too. */
  id = arm("reply=READONLY,match=SET");
  cli("(error) READONLY You can't write against a read only replica.\n",
      (const char *[]){"-3", "SET", "k", "w", NULL});
  cli("\"v\"\n", (const char *[]){"-3", "GET", "k", NULL});
  cr_expect_eq(injected(id), 1, "injected %llu, want 1",
               (unsigned long long)injected(id));
  fl_control_clear(ctl, id);
  cli("\"v\"\n", (const char *[]){"GET", "k", NULL});
}

Test(proto_redis, redis_py_raises_its_own_classes) {
  uint32_t id = arm("reply=LOADING");
  expect_py("get", "BusyLoadingError Redis is loading the dataset in memory\n");
  fl_control_clear(ctl, id);
  id = arm("reply=OOM,match=SET");
  expect_py("set", "ResponseError OOM command not allowed when used memory > "
                   "'maxmemory'.\n");
  expect_py("get", "ok None\n");
  fl_control_clear(ctl, id);
  id = arm("reply=READONLY");
  expect_py("set", "ReadOnlyError You can't write against a read only "
                   "replica.\n");
  fl_control_clear(ctl, id);
  id = arm("reply=NOAUTH");
  expect_py("get", "AuthenticationError Authentication required.\n");
  fl_control_clear(ctl, id);
  /* redis-py has no class of its own for these: a ResponseError with
   * the server's whole text, as from a real busy server or replica. */
  id = arm("reply=BUSY");
  expect_py("get", "ResponseError BUSY Redis is busy running a script. You "
                   "can only call SCRIPT KILL or SHUTDOWN NOSAVE.\n");
  fl_control_clear(ctl, id);
  id = arm("reply=MASTERDOWN");
  expect_py("get", "ResponseError MASTERDOWN Link with MASTER is down and "
                   "replica-serve-stale-data is set to 'no'.\n");
  fl_control_clear(ctl, id);
  /* A text of one's own. */
  id = arm("reply=ERR disk on fire");
  expect_py("get", "ResponseError disk on fire\n");
  cr_expect_eq(injected(id), 1);
  fl_control_clear(ctl, id);
}

/* A pipeline of 100 (INCR n, GET k): every GET answered by us, every INCR
 * by the server, each reply in its place; the same connection before and
 * after. */
Test(proto_redis, pipeline_keeps_the_order) {
  uint32_t id = arm("reply=OOM,match=GET");
  struct t_run r;
  py("pipeline", &r);
  char *save, *line = strtok_r(r.out, "\n", &save);
  for (int i = 0; i < 100; i++) {
    cr_assert_not_null(line);
    cr_expect_str_eq(line, fmt("ok %d", i + 1), "reply %d", 2 * i);
    line = strtok_r(NULL, "\n", &save);
    cr_assert_not_null(line);
    cr_expect_str_eq(line,
                     "err ResponseError OOM command not allowed when used "
                     "memory > 'maxmemory'.",
                     "reply %d", 2 * i + 1);
    line = strtok_r(NULL, "\n", &save);
  }
  cr_assert_not_null(line);
  long a = -1, b = -2;
  cr_expect_eq(sscanf(line, "ids %ld %ld", &a, &b), 2, "'%s'", line);
  cr_expect_eq(a, b, "the connection changed: client id %ld, then %ld", a, b);
  cr_expect_eq(injected(id), 100);
  t_run_free(&r);
  fl_control_clear(ctl, id);
}

Test(proto_redis, times_after_and_p) {
  uint32_t id = arm("reply=OOM,times=3");
  expect_py("many", "failed 3\n");
  cr_expect_eq(injected(id), 3);
  fl_control_clear(ctl, id);
  id = arm("reply=OOM,after=190");
  expect_py("many", "failed 10\n");
  fl_control_clear(ctl, id);
  id = arm("reply=OOM,p=0.5");
  struct t_run r;
  py("many", &r);
  int failed = -1;
  cr_expect_eq(sscanf(r.out, "failed %d", &failed), 1);
  cr_expect(failed > 50 && failed < 150, "p=0.5 failed %d of 200", failed);
  cr_expect_eq(injected(id), (uint64_t)failed);
  t_run_free(&r);
  fl_control_clear(ctl, id);
}

/* A queued command that matches fails the transaction as a whole, at
 * EXEC, and the server discarded it: x was never set. */
Test(proto_redis, transaction_fails_at_exec) {
  uint32_t id = arm("reply=LOADING,match=GET");
  expect_py("multi", "BusyLoadingError Redis is loading the dataset in "
                     "memory\nok 0\n");
  cr_expect_eq(injected(id), 1);
  fl_control_clear(ctl, id);
  expect_py("multi", "ok [True, b'1']\nok 1\n");
}

Test(proto_redis, ioredis_reply_error) {
  uint32_t id = arm("reply=LOADING,match=GET");
  char *argv[] = {"node", FL_TEST_SOURCE_DIR "/tests/data/proto_redis.js",
                  (char *)fmt("%d", port), NULL};
  struct t_run r;
  run(argv, &r);
  cr_expect_str_eq(r.out,
                   "ReplyError: LOADING Redis is loading the dataset in "
                   "memory\nok OK\nok 1\nReplyError: LOADING Redis is "
                   "loading the dataset in memory\nok 2\n",
                   "ioredis printed '%s'", r.out);
  cr_expect_eq(injected(id), 2);
  t_run_free(&r);
  fl_control_clear(ctl, id);
}

/* ---- raw RESP, for what clients do not show ---------------------- */

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert(fd >= 0);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Reads exactly strlen(want) bytes (10 s at most) and compares. */
static void expect_bytes(int fd, const char *want) {
  size_t n = strlen(want), got = 0;
  char buf[1024];
  cr_assert_lt(n, sizeof(buf));
  while (got < n) {
    ssize_t k = read(fd, buf + got, n - got);
    if (k <= 0)
      break;
    got += (size_t)k;
  }
  buf[got] = '\0';
  cr_expect_str_eq(buf, want, "read '%s', want '%s'", buf, want);
}

/* A pipeline written a byte at a time: every cut of the stream. */
Test(proto_redis, byte_by_byte_pipeline) {
  cr_assert(setup_ok);
  uint32_t id = arm("reply=LOADING,match=GET");
  int fd = dial();
  const char *in = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nGET a\r\n"
                   "*2\r\n$3\r\nget\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\n"
                   "n\r\n\r\nEXISTS a\r\n";
  for (const char *p = in; *p != '\0'; p++)
    cr_assert_eq(write(fd, p, 1), 1);
  expect_bytes(fd, "+OK\r\n-LOADING Redis is loading the dataset in memory\r\n"
                   "-LOADING Redis is loading the dataset in memory\r\n"
                   ":1\r\n:1\r\n");
  cr_expect_eq(injected(id), 2);
  close(fd);
  fl_control_clear(ctl, id);
}

/* In subscribe mode replies are not counted any more: nothing answered. */
Test(proto_redis, subscribe_mode_is_left_alone) {
  cr_assert(setup_ok);
  uint32_t id = arm("reply=LOADING");
  int fd = dial();
  const char *sub = "SUBSCRIBE c\r\n";
  cr_assert_eq(write(fd, sub, strlen(sub)), (ssize_t)strlen(sub));
  expect_bytes(fd, "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
  const char *ping = "PING\r\n";
  cr_assert_eq(write(fd, ping, strlen(ping)), (ssize_t)strlen(ping));
  expect_bytes(fd, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  cr_expect_eq(injected(id), 0);
  close(fd);
  fl_control_clear(ctl, id);
}
