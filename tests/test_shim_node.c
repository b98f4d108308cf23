/* The shim in Node 20: libuv makes connections through libc's connect()
 * but closes fds with syscall(SYS_close), which the shim never sees. Fault
 * rules must still reach every new connection, including ones that reuse
 * the fd number of a closed one. A real redis-server is the peer. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

#define NODE "/usr/bin/node"

/* One line per command on stdin: "connect PORT" answers "ok" (connected,
 * then closed) or the error code, e.g. ECONNREFUSED. */
static const char *probe =
    "const net = require('net');"
    "const rl = require('readline').createInterface({input: process.stdin});"
    "rl.on('line', (l) => {"
    "  const port = Number(l.split(' ')[1]);"
    "  const s = net.connect({host: '127.0.0.1', port}, () => {"
    "    console.log('ok'); s.destroy(); });"
    "  s.on('error', (e) => console.log(e.code));"
    "});";

static struct {
  char dir[256], ctl[300];
  struct t_redis redis;
  struct t_proc node;
} S;

static void setup(void) {
  memset(&S, 0, sizeof(S));
  cr_assert_eq(t_mkdtemp(S.dir), 0);
  snprintf(S.ctl, sizeof(S.ctl), "%s/ctl", S.dir);
  cr_assert_eq(t_redis_start(&S.redis), 0, "redis-server did not start");
  char *argv[] = {T_FAULTLINE, "exec", "--quiet", "--control",   S.ctl,
                  "--",        NODE,   "-e",      (char *)probe, NULL};
  cr_assert_eq(t_spawn(&S.node, argv, NULL, 1), 0);
}

static void teardown(void) {
  if (S.node.pid > 0)
    t_finish(&S.node, 5000);
  t_redis_stop(&S.redis);
  t_rmtree(S.dir);
}

TestSuite(shim_node, .init = setup, .fini = teardown, .timeout = 60);

static void expect_answer(const char *want) {
  char cmd[64], line[256];
  snprintf(cmd, sizeof(cmd), "connect %d", S.redis.port);
  cr_assert_eq(t_send(&S.node, cmd), 0);
  cr_assert_eq(t_line(&S.node, line, sizeof(line), 10000), 0,
               "node did not answer '%s'", cmd);
  cr_assert_str_eq(line, want, "'%s' answered '%s', expected '%s'", cmd, line,
                   want);
}

Test(shim_node, refuse_reaches_reused_fds) {
  expect_answer("ok");
  expect_answer("ok"); /* same fd number again, closed by syscall() */
  char spec[64];
  snprintf(spec, sizeof(spec), "refuse@127.0.0.1:%d", S.redis.port);
  cr_assert_eq(t_inject(S.ctl, spec), 0);
  expect_answer("ECONNREFUSED");
  expect_answer("ECONNREFUSED");
  cr_assert_eq(t_clear(S.ctl, "all"), 0);
  expect_answer("ok");
}

Test(shim_node, limit_counts_reconnects) {
  expect_answer("ok"); /* node runs: exec has made the segment */
  char spec[64];
  snprintf(spec, sizeof(spec), "limit@127.0.0.1:%d,max=1", S.redis.port);
  cr_assert_eq(t_inject(S.ctl, spec), 0);
  /* Each connection is closed before the next: one at a time is allowed. */
  expect_answer("ok");
  expect_answer("ok");
  expect_answer("ok");
}
