/* The shim from a real program's side: a long-running Python probe
 * (data/probe.py) runs under `faultline exec`, the faults are switched with
 * `faultline inject/clear` while it runs, and each fault is asserted from
 * what the probe's own calls returned. The destinations are real: a
 * redis-server and listening sockets. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define PYTHON "/usr/bin/python3"
#define PROBE T_DATA "/probe.py"
#define ANSWER_MS 15000 /* a probe answer that takes longer is a failure */

/* Everything a test starts, so that fini can stop it even after a failed
 * assertion. Each Criterion test runs in its own process. */
static struct {
  char dir[PATH_MAX];
  char ctl[PATH_MAX + 16];
  struct t_redis redis;
  struct t_proc probe;
  char last_cmd[512];
  char answer[1024];
} S;

static void setup(void) {
  char tmp[256];
  memset(&S, 0, sizeof(S));
  cr_assert_eq(t_mkdtemp(tmp), 0, "cannot make a temporary folder");
  /* The real path: disk faults are aimed at absolute path globs. */
  cr_assert_not_null(realpath(tmp, S.dir));
  snprintf(S.ctl, sizeof(S.ctl), "%s/control", S.dir);
}

static void teardown(void) {
  if (S.probe.pid > 0)
    t_finish(&S.probe, 5000);
  t_redis_stop(&S.redis);
  if (S.dir[0] != '\0')
    t_rmtree(S.dir);
}

static void start_redis(void) {
  cr_assert_eq(t_redis_start(&S.redis), 0, "redis-server did not start");
}

/* Starts the probe under faultline exec with the control segment S.ctl,
 * an optional seed and initial faults (NULL-terminated). */
static void start_probe_at(const char *ctl, const char *seed, ...) {
  char *argv[32];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  argv[n++] = "--control";
  argv[n++] = (char *)ctl;
  if (seed != NULL) {
    argv[n++] = "--seed";
    argv[n++] = (char *)seed;
  }
  va_list ap;
  va_start(ap, seed);
  for (const char *f; (f = va_arg(ap, const char *)) != NULL && n < 24;) {
    argv[n++] = "--fault";
    argv[n++] = (char *)f;
  }
  va_end(ap);
  argv[n++] = "--";
  argv[n++] = PYTHON;
  argv[n++] = PROBE;
  argv[n] = NULL;
  cr_assert_eq(t_spawn(&S.probe, argv, NULL, 0), 0, "cannot spawn the probe");
  char line[256];
  cr_assert_eq(t_line(&S.probe, line, sizeof(line), ANSWER_MS), 0,
               "the probe did not start under faultline exec");
  cr_assert_str_eq(line, "ready");
}

static void start_probe(void) { start_probe_at(S.ctl, NULL, NULL); }

/* Sends one command; returns the probe's one-line answer. */
__attribute__((format(printf, 1, 2))) static const char *ask(const char *fmt,
                                                             ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(S.last_cmd, sizeof(S.last_cmd), fmt, ap);
  va_end(ap);
  cr_assert_eq(t_send(&S.probe, S.last_cmd), 0, "cannot send '%s'", S.last_cmd);
  cr_assert_eq(t_line(&S.probe, S.answer, sizeof(S.answer), ANSWER_MS), 0,
               "no answer to '%s' within %d ms", S.last_cmd, ANSWER_MS);
  return S.answer;
}

#define ASK_EQ(want, ...)                                                      \
  do {                                                                         \
    const char *got_ = ask(__VA_ARGS__);                                       \
    cr_assert_str_eq(got_, want, "'%s' answered '%s', expected '%s'",          \
                     S.last_cmd, got_, want);                                  \
  } while (0)

/* Runs `timed CMD`; checks the answer's word and returns the milliseconds. */
static long timed(const char *want, const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  const char *got = ask("timed %s", cmd);
  char word[64];
  long ms = -1;
  cr_assert_eq(sscanf(got, "%63s %ld", word, &ms), 2, "'%s' answered '%s'",
               S.last_cmd, got);
  cr_assert_str_eq(word, want, "'%s' answered '%s', expected '%s'", S.last_cmd,
                   got, want);
  return ms;
}

static void inject(const char *fmt, ...) {
  char spec[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(spec, sizeof(spec), fmt, ap);
  va_end(ap);
  cr_assert_eq(t_inject(S.ctl, spec), 0, "faultline inject '%s' failed", spec);
}

static void clear_all(void) {
  cr_assert_eq(t_clear(S.ctl, "all"), 0, "faultline clear all failed");
}

/* A listening socket inside the probe: another live destination. */
static int probe_listener(void) {
  int port = 0;
  const char *got = ask("listen");
  cr_assert_eq(sscanf(got, "ok %d", &port), 1, "listen answered '%s'", got);
  return port;
}

static void finish_probe(void) {
  ASK_EQ("bye", "quit");
  int st = t_finish(&S.probe, 10000);
  cr_assert_eq(st, 0, "faultline exec of the probe exited %d", st);
}

TestSuite(shim_python, .init = setup, .fini = teardown);

Test(shim_python, refuse, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  ASK_EQ("ok", "connect 127.0.0.1 %d", rp);

  inject("refuse@127.0.0.1:%d", rp);
  ASK_EQ("ECONNREFUSED", "connect 127.0.0.1 %d", rp);    /* blocking */
  ASK_EQ("ECONNREFUSED", "connect 127.0.0.1 %d 5", rp);  /* with a timeout */
  ASK_EQ("ECONNREFUSED", "aconnect 127.0.0.1 %d 5", rp); /* asyncio */
  ASK_EQ("ok", "connect 127.0.0.1 %d", other);
  ASK_EQ("ok", "aconnect 127.0.0.1 %d 5", other);

  clear_all();
  ASK_EQ("ok", "connect 127.0.0.1 %d", rp);
  ASK_EQ("ok", "aconnect 127.0.0.1 %d 5", rp);
  ASK_EQ("ok", "open r 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping r");
  finish_probe();
}

Test(shim_python, reset, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  ASK_EQ("ok", "open a 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping a");
  ASK_EQ("ok", "open o 127.0.0.1 %d", other);

  inject("reset@127.0.0.1:%d", rp);
  /* The established connection: its next I/O fails. */
  ASK_EQ("ECONNRESET", "ping a");
  /* A new connection is made, then reset on its first I/O. */
  ASK_EQ("ok", "open b 127.0.0.1 %d", rp);
  ASK_EQ("ECONNRESET", "ping b");

  clear_all();
  /* A reset connection stays broken, rule or no rule. */
  const char *got = ask("ping a");
  cr_assert_str_neq(got, "ok", "a reset connection worked again");
  ASK_EQ("ok", "open c 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping c");
  /* The connections were dropped at the server too (it got an RST): c is
   * soon redis's only client. */
  long long end = t_now_ms() + 5000;
  while (strcmp(ask("clients c"), "ok 1") != 0 && t_now_ms() < end)
    ;
  cr_assert_str_eq(S.answer, "ok 1", "redis still counts reset clients");
  ASK_EQ("ok", "close o");
  finish_probe();
}

/* After a real RST the error is reported once: the next write fails with
 * EPIPE (recv would see end of file). An injected reset must not report
 * ECONNRESET twice. */
Test(shim_python, reset_is_reported_once, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port;
  ASK_EQ("ok", "open a 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping a");
  inject("reset@127.0.0.1:%d", rp);
  ASK_EQ("ECONNRESET", "ping a");
  ASK_EQ("EPIPE", "ping a");
  clear_all();
  ASK_EQ("EPIPE", "ping a");
  finish_probe();
}

Test(shim_python, hang_and_release, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  inject("hang@127.0.0.1:%d", rp);

  long ms = timed("timeout", "aconnect 127.0.0.1 %d 0.5", rp);
  cr_assert_geq(ms, 500, "asyncio gave up after %ld ms, before its 0.5 s", ms);
  cr_assert_lt(ms, 5000, "asyncio's 0.5 s timeout took %ld ms", ms);
  ms = timed("timeout", "connect 127.0.0.1 %d 0.5", rp);
  cr_assert_geq(ms, 500, "socket timeout hit after %ld ms, before 0.5 s", ms);
  cr_assert_lt(ms, 5000, "socket timeout of 0.5 s took %ld ms", ms);
  ASK_EQ("ok", "connect 127.0.0.1 %d", other);

  /* A blocking connect without a timeout waits while the rule is on... */
  char line[256];
  snprintf(S.last_cmd, sizeof(S.last_cmd), "open h 127.0.0.1 %d", rp);
  cr_assert_eq(t_send(&S.probe, S.last_cmd), 0);
  cr_assert_eq(t_line(&S.probe, line, sizeof(line), 1000), -1,
               "a blocking connect under hang answered '%s'", line);
  /* ...and connects for real once the rule is cleared. */
  long long cleared = t_now_ms();
  clear_all();
  cr_assert_eq(t_line(&S.probe, line, sizeof(line), 5000), 0,
               "the hung connect was not released by faultline clear");
  cr_assert_str_eq(line, "ok", "the released connect answered '%s'", line);
  cr_assert_lt(t_now_ms() - cleared, 2000);
  ASK_EQ("ok", "ping h");
  ASK_EQ("ok", "aconnect 127.0.0.1 %d 2", rp);
  finish_probe();
}

Test(shim_python, delay, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  inject("delay@127.0.0.1:%d,ms=300", rp);

  long ms = timed("ok", "open a 127.0.0.1 %d", rp);
  cr_assert_geq(ms, 300, "a delayed blocking connect took %ld ms", ms);
  /* PING is one send and one recv: each is delayed. */
  ms = timed("ok", "ping a");
  cr_assert_geq(ms, 600, "a delayed ping (send + recv) took %ld ms", ms);
  ms = timed("ok", "connect 127.0.0.1 %d", other);
  cr_assert_lt(ms, 300, "a connect elsewhere took %ld ms", ms);

  clear_all();
  ms = timed("ok", "ping a");
  cr_assert_lt(ms, 300, "a ping after clear took %ld ms", ms);
  finish_probe();
}

Test(shim_python, limit, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port;
  inject("limit@127.0.0.1:%d,max=2", rp);

  ASK_EQ("ok", "open a 127.0.0.1 %d", rp);
  ASK_EQ("ok", "open b 127.0.0.1 %d", rp);
  ASK_EQ("ECONNREFUSED", "open c 127.0.0.1 %d", rp);
  /* The count spans processes: a child cannot get in either. */
  ASK_EQ("ECONNREFUSED", "spawn connect 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping a");
  ASK_EQ("ok", "ping b");

  ASK_EQ("ok", "close a");
  ASK_EQ("ok", "open c 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping c");
  ASK_EQ("ECONNREFUSED", "open d 127.0.0.1 %d", rp);
  ASK_EQ("ok", "close b");
  ASK_EQ("ok", "spawn connect 127.0.0.1 %d", rp);
  ASK_EQ("ok", "open d 127.0.0.1 %d", rp);

  clear_all();
  ASK_EQ("ok", "open e 127.0.0.1 %d", rp);
  finish_probe();
}

/* A process that exits holding a counted connection (crashed, killed, or
 * just exiting without close()) no longer holds it: the kernel closed it,
 * so the limit must let a new one in. */
Test(shim_python, limit_slot_freed_when_holder_exits, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port;
  inject("limit@127.0.0.1:%d,max=1", rp);
  /* A child takes the only slot and exits without closing. */
  ASK_EQ("ok", "spawn open z 127.0.0.1 %d + exit", rp);
  ASK_EQ("ok", "open a 127.0.0.1 %d", rp);
  ASK_EQ("ok", "ping a");
  finish_probe();
}

Test(shim_python, unix_socket_target, .timeout = 40) {
  char sock[PATH_MAX + 16], other[PATH_MAX + 16];
  snprintf(sock, sizeof(sock), "%s/db.sock", S.dir);
  snprintf(other, sizeof(other), "%s/other.sock", S.dir);
  start_probe();
  ASK_EQ("ok", "ulisten %s", sock);
  ASK_EQ("ok", "ulisten %s", other);
  ASK_EQ("ok", "uconnect %s", sock);
  inject("refuse@%s", sock);
  ASK_EQ("ECONNREFUSED", "uconnect %s", sock);
  ASK_EQ("ok", "uconnect %s", other);
  ASK_EQ("ECONNREFUSED", "spawn uconnect %s", sock);
  clear_all();
  ASK_EQ("ok", "uconnect %s", sock);
  finish_probe();
}

Test(shim_python, redirect, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, closed = t_free_port();
  cr_assert_gt(closed, 0);
  ASK_EQ("ECONNREFUSED", "connect 127.0.0.1 %d", closed); /* really closed */
  inject("redirect@127.0.0.1:%d,to=127.0.0.1:%d", closed, rp);
  ASK_EQ("ok", "open r 127.0.0.1 %d", closed);
  ASK_EQ("ok", "ping r"); /* it is redis that answers */
  ASK_EQ("ok", "aconnect 127.0.0.1 %d 5", closed);
  ASK_EQ("ok", "spawn connect 127.0.0.1 %d", closed);
  clear_all();
  ASK_EQ("ECONNREFUSED", "connect 127.0.0.1 %d", closed);
  ASK_EQ("ok", "ping r"); /* an established connection stays where it is */
  finish_probe();
}

Test(shim_python, exhaust_sockets, .timeout = 40) {
  start_redis();
  start_probe();
  ASK_EQ("ok", "socket");
  inject("exhaust@sockets");
  ASK_EQ("EMFILE", "socket");
  ASK_EQ("EMFILE", "connect 127.0.0.1 %d", S.redis.port);
  ASK_EQ("ok", "write %s/file", S.dir); /* files are another rule */
  clear_all();
  ASK_EQ("ok", "socket");
  ASK_EQ("ok", "connect 127.0.0.1 %d", S.redis.port);

  inject("exhaust@files");
  ASK_EQ("EMFILE open", "write %s/file", S.dir);
  ASK_EQ("ok", "socket");
  clear_all();
  inject("exhaust@fds");
  ASK_EQ("EMFILE open", "write %s/file", S.dir);
  ASK_EQ("EMFILE", "socket");
  clear_all();
  ASK_EQ("ok", "write %s/file", S.dir);
  finish_probe();
}

Test(shim_python, dns, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port;
  ASK_EQ("ok", "resolve localhost");

  inject("dns@localhost");
  ASK_EQ("EAI_AGAIN", "resolve localhost");
  ASK_EQ("EAI_AGAIN", "aresolve localhost"); /* from an executor thread */
  ASK_EQ("EAI_AGAIN", "resolve LOCALHOST");  /* names are case-blind */
  ASK_EQ("EAI_AGAIN", "connect localhost %d", rp);
  ASK_EQ("ok", "resolve 127.0.0.1"); /* numeric: never looked up */
  ASK_EQ("ok", "aresolve 127.0.0.1");
  ASK_EQ("ok", "connect 127.0.0.1 %d", rp);

  clear_all();
  ASK_EQ("ok", "resolve localhost");
  ASK_EQ("ok", "connect localhost %d", rp);

  inject("dns@local*,err=EAI_NONAME");
  ASK_EQ("EAI_NONAME", "resolve localhost");
  ASK_EQ("EAI_NONAME", "aresolve localhost");
  clear_all();
  ASK_EQ("ok", "aresolve localhost");
  finish_probe();
}

Test(shim_python, disk_faults, .timeout = 40) {
  char full[PATH_MAX + 8], fine[PATH_MAX + 8];
  snprintf(full, sizeof(full), "%s/full", S.dir);
  snprintf(fine, sizeof(fine), "%s/fine", S.dir);
  cr_assert_eq(mkdir(full, 0700), 0);
  cr_assert_eq(mkdir(fine, 0700), 0);
  start_probe();
  ASK_EQ("ok", "write %s/a", full);

  inject("enospc@%s/*", full);
  ASK_EQ("ENOSPC open", "write %s/a", full);
  ASK_EQ("ENOSPC open", "write %s/b", full);
  ASK_EQ("ok", "write %s/a", fine);
  clear_all();
  ASK_EQ("ok", "write %s/a", full);

  /* after= lets the open through: the write, then the fsync, fail. */
  inject("enospc@%s/*,after=1", full);
  ASK_EQ("ENOSPC write", "write %s/a", full);
  clear_all();
  inject("enospc@%s/*,after=2", full);
  ASK_EQ("ENOSPC fsync", "write %s/a", full);
  clear_all();

  inject("eio@%s/*", full);
  ASK_EQ("EIO open", "write %s/a", full);
  ASK_EQ("ok", "write %s/a", fine);
  clear_all();
  inject("eio@%s/*,after=1", full);
  ASK_EQ("EIO write", "write %s/a", full);
  clear_all();
  ASK_EQ("ok", "write %s/a", full);
  finish_probe();
}

/* One run of 20 connects under refuse,p=0.5 with a fixed seed. */
static void p_run(const char *ctl, const char *seed, char *out, size_t size) {
  char spec[128];
  snprintf(spec, sizeof(spec), "refuse@127.0.0.1:%d,p=0.5", S.redis.port);
  start_probe_at(ctl, seed, spec, NULL);
  snprintf(out, size, "%s",
           ask("repeat 20 connect 127.0.0.1 %d", S.redis.port));
  finish_probe();
}

Test(shim_python, probability_is_reproducible, .timeout = 40) {
  start_redis();
  char c1[PATH_MAX + 16], c2[PATH_MAX + 16], c3[PATH_MAX + 16];
  snprintf(c1, sizeof(c1), "%s/control1", S.dir);
  snprintf(c2, sizeof(c2), "%s/control2", S.dir);
  snprintf(c3, sizeof(c3), "%s/control3", S.dir);
  char a[1024], b[1024], c[1024];
  p_run(c1, "12345", a, sizeof(a));
  p_run(c2, "12345", b, sizeof(b));
  cr_assert_str_eq(a, b, "the same seed gave different decisions");
  cr_assert(strstr(a, "ok") != NULL, "p=0.5 refused all 20: %s", a);
  cr_assert(strstr(a, "ECONNREFUSED") != NULL, "p=0.5 refused none: %s", a);
  int words = 0;
  for (char *w = a; (w = strchr(w, ' ')) != NULL; w++)
    words++;
  cr_assert_eq(words + 1, 20, "not 20 outcomes: %s", a);
  for (char *w = strtok(a, " "); w != NULL; w = strtok(NULL, " "))
    cr_assert(strcmp(w, "ok") == 0 || strcmp(w, "ECONNREFUSED") == 0,
              "unexpected outcome '%s'", w);
  p_run(c3, "777", c, sizeof(c));
  cr_assert_str_neq(b, c, "another seed gave the same 20 decisions");
}

Test(shim_python, after_and_times, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port;
  inject("refuse@127.0.0.1:%d,after=2", rp);
  ASK_EQ("ok ok ECONNREFUSED ECONNREFUSED ECONNREFUSED",
         "repeat 5 connect 127.0.0.1 %d", rp);
  clear_all();
  inject("refuse@127.0.0.1:%d,times=1", rp);
  ASK_EQ("ECONNREFUSED ok ok ok", "repeat 4 connect 127.0.0.1 %d", rp);
  clear_all();
  inject("refuse@127.0.0.1:%d,after=1,times=2", rp);
  ASK_EQ("ok ECONNREFUSED ECONNREFUSED ok ok", "repeat 5 connect 127.0.0.1 %d",
         rp);
  finish_probe();
}

Test(shim_python, fork_exec_children_inherit, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  ASK_EQ("ok", "spawn connect 127.0.0.1 %d", rp);
  inject("refuse@127.0.0.1:%d", rp);
  ASK_EQ("ECONNREFUSED", "spawn connect 127.0.0.1 %d", rp);
  ASK_EQ("ECONNREFUSED", "spawn aconnect 127.0.0.1 %d 5", rp);
  ASK_EQ("ok", "spawn connect 127.0.0.1 %d", other);
  /* A grandchild too. */
  ASK_EQ("ECONNREFUSED", "spawn spawn connect 127.0.0.1 %d", rp);
  inject("dns@localhost");
  ASK_EQ("EAI_AGAIN", "spawn resolve localhost");
  clear_all();
  ASK_EQ("ok", "spawn connect 127.0.0.1 %d", rp);
  ASK_EQ("ok", "spawn resolve localhost");
  finish_probe();
}

/* `faultline status` for the segment: its whole output. */
static char *status_output(void) {
  char *argv[] = {T_FAULTLINE, "status", "--control", S.ctl, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_assert_eq(r.status, 0, "faultline status exited %d: %s", r.status, r.err);
  char *out = strdup(r.out);
  t_run_free(&r);
  return out;
}

/* The MATCHED, INJECTED and OPEN columns of the rule whose spec is `spec`
 * (BYTES, the proxy's, is skipped). */
static void status_counts(const char *out, const char *spec, long *matched,
                          long *injected, long *open) {
  const char *p = out;
  while (p != NULL && *p != '\0') {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    char line[512], s[300];
    long id;
    snprintf(line, sizeof(line), "%.*s", (int)n, p);
    if (sscanf(line, "%ld %ld %ld %ld %*d %299s", &id, matched, injected, open,
               s) == 5 &&
        strcmp(s, spec) == 0)
      return;
    p = eol ? eol + 1 : NULL;
  }
  cr_assert_fail("no rule '%s' in faultline status:\n%s", spec, out);
}

static int count_lines_with(const char *out, const char *a, const char *b) {
  int n = 0;
  for (const char *p = out; p != NULL && *p != '\0';) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[512];
    snprintf(line, sizeof(line), "%.*s", (int)len, p);
    if (strstr(line, a) != NULL && strstr(line, b) != NULL)
      n++;
    p = eol ? eol + 1 : NULL;
  }
  return n;
}

Test(shim_python, status_counters, .timeout = 40) {
  start_redis();
  start_probe();
  int rp = S.redis.port, other = probe_listener();
  char refuse[128], dns[] = "dns@localhost,times=1", lim[128];
  snprintf(refuse, sizeof(refuse), "refuse@127.0.0.1:%d,times=2", rp);
  snprintf(lim, sizeof(lim), "limit@127.0.0.1:%d,max=5", other);
  inject("%s", refuse);
  inject("%s", dns);
  inject("%s", lim);

  ASK_EQ("ECONNREFUSED ECONNREFUSED ok ok ok", "repeat 5 connect 127.0.0.1 %d",
         rp);
  ASK_EQ("EAI_AGAIN ok ok", "repeat 3 resolve localhost");
  ASK_EQ("ok", "open x 127.0.0.1 %d", other);
  ASK_EQ("ok", "open y 127.0.0.1 %d", other);

  char *out = status_output();
  long m, i, o;
  status_counts(out, refuse, &m, &i, &o);
  cr_expect_eq(m, 5, "refuse MATCHED %ld, the probe made 5 connects", m);
  cr_expect_eq(i, 2, "refuse INJECTED %ld, the probe was refused twice", i);
  status_counts(out, dns, &m, &i, &o);
  cr_expect_eq(m, 3, "dns MATCHED %ld, the probe made 3 lookups", m);
  cr_expect_eq(i, 1, "dns INJECTED %ld, one lookup failed", i);
  status_counts(out, lim, &m, &i, &o);
  cr_expect_eq(m, 2, "limit MATCHED %ld, the probe made 2 connects", m);
  cr_expect_eq(i, 0, "limit INJECTED %ld, none was refused", i);
  cr_expect_eq(o, 2, "limit OPEN %ld, the probe holds 2", o);
  cr_expect(strstr(out, "recent injections (3 in all)") != NULL,
            "3 injections in all, but:\n%s", out);
  cr_expect_eq(count_lines_with(out, "connect", "ECONNREFUSED"), 2, "%s", out);
  cr_expect_eq(count_lines_with(out, "getaddrinfo", "EAI_AGAIN"), 1, "%s", out);
  free(out);

  ASK_EQ("ok", "close x");
  out = status_output();
  status_counts(out, lim, &m, &i, &o);
  cr_expect_eq(o, 1, "limit OPEN %ld after one close", o);
  free(out);
  finish_probe();
}
