/*
 * The shim against a real client: psql (PostgreSQL 15, libpq) talking to a
 * real PostgreSQL over TCP (127.0.0.1) and over its unix socket. Faults are
 * switched on and off with `faultline inject/clear` while psql sessions keep
 * running, and are judged by what psql itself prints and its exit status.
 *
 * One `faultline exec --control CTL -- psql ...` session owns the control
 * segment in each test; other psql processes share it through their
 * environment (LD_PRELOAD and FAULTLINE_CONTROL), exactly what a child of
 * the exec'd command inherits. That is how `limit` is seen across
 * processes, and how a session on another destination shows it is not hit.
 *
 * Facts about psql these tests rely on (checked with strace and by hand):
 *  - libpq makes every socket NON-BLOCKING before connect() (TCP and unix)
 *    and keeps it so: connect() -> EINPROGRESS, poll(), getsockopt
 *    (SO_ERROR) (connect is called once), then sendto(MSG_NOSIGNAL)/
 *    recvfrom() between poll()s. So delay@ is never applied to psql, and
 *    hang@ leaves psql's connect in progress until connect_timeout, even
 *    once the rule is cleared.
 *  - connect_timeout (PGCONNECT_TIMEOUT) below 2 is raised to 2 s by libpq
 *    15; on expiry psql prints "... failed: timeout expired".
 *  - psql reading a pipe is not interactive: when its connection is lost
 *    ("server closed the connection unexpectedly" then "connection to
 *    server was lost") or a \connect fails, it exits with status 2. An
 *    interactive psql (on a terminal) tries PQreset() itself ("The
 *    connection to the server was lost. Attempting reset: Succeeded." or
 *    "Failed.") and keeps the old connection when \connect fails
 *    ("Previous connection kept"): see test interactive_keeps_running.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "support.h"

#define PSQL "/usr/lib/postgresql/15/bin/psql"
#define STEP_MS 10000 /* deadline for one answer that should come */

static struct t_pg pg;
static char tmp[256], ctl[320], port_s[16], sock[320];
static char env_preload[600], env_control[400];
static char *shim_env[4];
static struct t_proc procs[4];
static int setup_ok;

static void setup(void) {
  setup_ok = 0;
  memset(procs, 0, sizeof(procs));
  /* English messages, and no PG* settings of the caller's. */
  setenv("LC_ALL", "C", 1);
  static const char *pgvars[] = {"PGHOST",     "PGPORT",           "PGUSER",
                                 "PGDATABASE", "PGOPTIONS",        "PGSERVICE",
                                 "PGSSLMODE",  "PGCONNECT_TIMEOUT"};
  for (size_t i = 0; i < sizeof(pgvars) / sizeof(pgvars[0]); i++)
    unsetenv(pgvars[i]);
  if (t_mkdtemp(tmp) != 0)
    return;
  snprintf(ctl, sizeof(ctl), "%s/control", tmp);
  snprintf(env_preload, sizeof(env_preload), "LD_PRELOAD=%s", T_SHIM);
  snprintf(env_control, sizeof(env_control), "FAULTLINE_CONTROL=%s", ctl);
  shim_env[0] = env_preload;
  shim_env[1] = env_control;
  shim_env[2] = NULL;
  if (t_pg_start(&pg) != 0)
    return;
  snprintf(port_s, sizeof(port_s), "%d", pg.port);
  snprintf(sock, sizeof(sock), "%s/.s.PGSQL.%d", pg.dir, pg.port);
  setup_ok = 1;
}

static void teardown(void) {
  for (int i = 0; i < 4; i++)
    if (procs[i].pid > 0) {
      kill(-procs[i].pid, SIGKILL);
      t_finish(&procs[i], 5000);
    }
  t_pg_stop(&pg);
  t_rmtree(tmp);
}

TestSuite(shim_psql, .init = setup, .fini = teardown, .timeout = 60);

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

/* An argv under construction. */
struct args {
  char *v[48];
  int n;
};

static void add(struct args *a, const char *s) {
  a->v[a->n++] = (char *)s;
  a->v[a->n] = NULL;
}

static void add_exec(struct args *a, const char *fault) {
  add(a, T_FAULTLINE);
  add(a, "exec");
  add(a, "--quiet");
  add(a, "--control");
  add(a, ctl);
  if (fault != NULL) {
    add(a, "--fault");
    add(a, fault);
  }
  add(a, "--");
}

/* psql to host (an address, a name, or the socket folder). */
static void add_psql(struct args *a, const char *host) {
  add(a, PSQL);
  add(a, "-X");
  add(a, "-q");
  add(a, "-A");
  add(a, "-t");
  add(a, "-v");
  add(a, "ON_ERROR_STOP=0");
  add(a, "-h");
  add(a, host);
  add(a, "-p");
  add(a, port_s);
  add(a, "-U");
  add(a, "postgres");
  add(a, "-d");
  add(a, "postgres");
}

/* A psql session reading SQL from a pipe (stderr merged): the control
 * segment's owner under `faultline exec` (own_segment) or sharing it. */
static struct t_proc *session(int slot, int own_segment, const char *fault,
                              const char *host) {
  struct args a = {.n = 0};
  cr_assert(setup_ok, "PostgreSQL did not start");
  if (own_segment)
    add_exec(&a, fault);
  add_psql(&a, host);
  cr_assert_eq(t_spawn(&procs[slot], a.v, own_segment ? NULL : shim_env, 1), 0);
  return &procs[slot];
}

/* Reads lines until one is exactly `want`; 0, or -1 with what was read
 * instead in seen. */
static int want_line(struct t_proc *p, const char *want, int timeout_ms,
                     char *seen, size_t size) {
  long long end = t_now_ms() + timeout_ms;
  char line[1024];
  size_t used = 0;
  seen[0] = '\0';
  while (t_now_ms() < end) {
    if (t_line(p, line, sizeof(line), (int)(end - t_now_ms())) != 0)
      return -1;
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\r')
      line[--n] = '\0';
    if (strcmp(line, want) == 0)
      return 0;
    if (used + n + 2 < size) {
      memcpy(seen + used, line, n);
      used += n;
      seen[used++] = '|';
      seen[used] = '\0';
    }
  }
  return -1;
}

/* Runs `select 'v' || n;` in a session and expects "v<n>" back. */
static long long query(struct t_proc *p, int n) {
  char seen[2048];
  long long t0 = t_now_ms();
  cr_assert_eq(t_send(p, fmt("select 'v' || %d;", n)), 0,
               "the session's stdin is closed");
  cr_assert_eq(want_line(p, fmt("v%d", n), STEP_MS, seen, sizeof(seen)), 0,
               "no 'v%d' from psql; it said: %s", n, seen);
  return t_now_ms() - t0;
}

/* Reads lines until one contains needle; 0, or -1 with what was read
 * instead in seen. */
static int find_line(struct t_proc *p, const char *needle, int timeout_ms,
                     char *seen, size_t size) {
  long long end = t_now_ms() + timeout_ms;
  char line[1024];
  size_t used = 0;
  seen[0] = '\0';
  while (t_now_ms() < end) {
    if (t_line(p, line, sizeof(line), (int)(end - t_now_ms())) != 0)
      return -1;
    if (strstr(line, needle) != NULL)
      return 0;
    size_t n = strlen(line);
    if (used + n + 2 < size) {
      memcpy(seen + used, line, n);
      used += n;
      seen[used++] = '|';
      seen[used] = '\0';
    }
  }
  return -1;
}

/* Expects a line containing needle from the session. */
#define expect_msg(p, needle)                                                  \
  do {                                                                         \
    char seen_[2048];                                                          \
    const char *n_ = (needle);                                                 \
    cr_assert_eq(find_line((p), n_, STEP_MS, seen_, sizeof(seen_)), 0,         \
                 "psql never said '%s'; it said: %s", n_, seen_);              \
  } while (0)

/* A one-shot `psql -h host -c "select 'v' || n"` sharing the segment (or,
 * with a fault, under its own `faultline exec --fault`). extra: one more
 * environment entry or NULL. */
static void oneshot(const char *fault, const char *host, int n,
                    const char *extra, struct t_run *r) {
  struct args a = {.n = 0};
  char *env[4] = {NULL, NULL, NULL, NULL};
  int k = 0;
  if (fault != NULL) {
    a.n = 0;
    add(&a, T_FAULTLINE);
    add(&a, "exec");
    add(&a, "--quiet");
    add(&a, "--fault");
    add(&a, fault);
    add(&a, "--");
  } else {
    env[k++] = env_preload;
    env[k++] = env_control;
  }
  if (extra != NULL)
    env[k++] = (char *)extra;
  add_psql(&a, host);
  add(&a, "-c");
  add(&a, fmt("select 'v' || %d", n));
  cr_assert(setup_ok, "PostgreSQL did not start");
  cr_assert_eq(t_run(a.v, env, NULL, 20000, r), 0);
}

static void expect_ok(const char *fault, const char *host, int n) {
  struct t_run r;
  oneshot(fault, host, n, NULL, &r);
  cr_expect_eq(r.status, 0, "psql -h %s: status %d: %s", host, r.status, r.err);
  cr_expect_str_eq(r.out, fmt("v%d\n", n));
  t_run_free(&r);
}

static void expect_fail(const char *fault, const char *host, const char *msg) {
  struct t_run r;
  oneshot(fault, host, 0, NULL, &r);
  cr_expect_eq(r.status, 2, "psql -h %s: status %d, want 2 (%s)", host,
               r.status, r.err);
  cr_expect(strstr(r.err, msg) != NULL, "psql said '%s', not '%s'", r.err, msg);
  cr_expect_str_eq(r.out, "");
  t_run_free(&r);
}

/* `faultline status` numbers for rule `id`; -1 when it is not listed. */
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

static const char *tcp_refused(void) {
  return fmt("connection to server at \"127.0.0.1\", port %d failed: "
             "Connection refused",
             pg.port);
}

/* refuse (TCP and unix socket), exhaust@sockets and dns, each on and off
 * while the owner session (connected through "localhost") keeps going. */
Test(shim_psql, connect_faults) {
  struct t_proc *s = session(0, 1, NULL, "localhost");
  query(s, 1);

  /* refuse@TCP: new TCP connections fail, the unix socket works, and the
   * established session is not touched. */
  cr_assert_eq(t_inject(ctl, fmt("refuse@127.0.0.1:%d", pg.port)), 0);
  query(s, 2);
  expect_fail(NULL, "127.0.0.1", tcp_refused());
  expect_ok(NULL, pg.dir, 3);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, "127.0.0.1", 4);

  /* refuse@<unix socket>: the other way round. */
  cr_assert_eq(t_inject(ctl, fmt("refuse@%s", sock)), 0);
  expect_fail(NULL, pg.dir,
              fmt("connection to server on socket \"%s\" failed: "
                  "Connection refused",
                  sock));
  expect_ok(NULL, "127.0.0.1", 5);
  query(s, 6);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, pg.dir, 7);

  /* exhaust@sockets: no socket for anyone, open ones keep working. */
  cr_assert_eq(t_inject(ctl, "exhaust@sockets"), 0);
  expect_fail(NULL, "127.0.0.1",
              "could not create socket: Too many open files");
  expect_fail(NULL, pg.dir, "could not create socket: Too many open files");
  query(s, 8);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, "127.0.0.1", 9);

  /* dns@localhost: the name fails, the address works. */
  cr_assert_eq(t_inject(ctl, "dns@localhost"), 0);
  expect_fail(NULL, "localhost",
              "could not translate host name \"localhost\" to address: "
              "Temporary failure in name resolution");
  expect_ok(NULL, "127.0.0.1", 10);
  query(s, 11);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, "localhost", 12);

  /* The same through `faultline exec --fault` in one shot. */
  expect_fail(fmt("refuse@127.0.0.1:%d", pg.port), "127.0.0.1", tcp_refused());
  expect_ok(fmt("refuse@127.0.0.1:%d", pg.port), pg.dir, 13);
  expect_fail(fmt("refuse@%s", sock), pg.dir, "Connection refused");
  expect_fail("dns@localhost", "localhost",
              "Temporary failure in name resolution");
  expect_fail("exhaust@sockets", "127.0.0.1", "Too many open files");

  /* Finally the running session itself reconnects into the fault: a
   * failed \connect ends a non-interactive psql with status 2. */
  cr_assert_eq(t_inject(ctl, fmt("refuse@127.0.0.1:%d", pg.port)), 0);
  cr_assert_eq(t_send(s, "\\connect"), 0);
  expect_msg(s, "Connection refused");
  cr_assert_eq(t_finish(s, STEP_MS), 2);
}

/* reset on the TCP destination breaks that session (psql exits 2), not a
 * session on the unix socket; then reset on the unix socket. */
Test(shim_psql, reset) {
  struct t_proc *u = session(0, 1, NULL, pg.dir); /* owns the segment */
  query(u, 1);
  struct t_proc *s = session(1, 0, NULL, "127.0.0.1");
  query(s, 2);
  cr_assert_eq(t_inject(ctl, fmt("reset@127.0.0.1:%d", pg.port)), 0);
  /* psql reads once more just after printing a result, so the reset hits
   * either that read (the next query then says "no connection to the
   * server") or the next query's send ("server closed the connection
   * unexpectedly"); both end with this line. */
  cr_assert_eq(t_send(s, "select 'v' || 3;"), 0);
  expect_msg(s, "connection to server was lost");
  cr_assert_eq(t_finish(s, STEP_MS), 2);
  query(u, 4);
  /* New connections are reset too, at their first write. */
  expect_fail(NULL, "127.0.0.1",
              fmt("connection to server at \"127.0.0.1\", port %d failed: "
                  "server closed the connection unexpectedly",
                  pg.port));
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, "127.0.0.1", 5);

  s = session(1, 0, NULL, "127.0.0.1");
  query(s, 6);
  cr_assert_eq(t_inject(ctl, fmt("reset@%s", sock)), 0);
  query(s, 7);
  cr_assert_eq(t_send(u, "select 'v' || 8;"), 0);
  expect_msg(u, "connection to server was lost");
  cr_assert_eq(t_finish(u, STEP_MS), 2);
  query(s, 9);
}

/* hang: psql's connect is non-blocking, so it waits for connect_timeout;
 * a session on the other destination, and the open TCP session, go on.
 * Then delay, which psql never sees for the same reason. */
Test(shim_psql, hang_and_delay) {
  struct t_proc *s = session(0, 1, NULL, "127.0.0.1");
  query(s, 1);
  cr_assert_eq(t_inject(ctl, fmt("hang@127.0.0.1:%d", pg.port)), 0);
  query(s, 2);
  expect_ok(NULL, pg.dir, 3);

  /* connect_timeout=2 (libpq 15 raises 1 to 2). */
  struct t_run r;
  long long t0 = t_now_ms();
  oneshot(fmt("hang@127.0.0.1:%d", pg.port), "127.0.0.1", 4,
          "PGCONNECT_TIMEOUT=2", &r);
  long long took = t_now_ms() - t0;
  cr_expect_eq(r.status, 2, "status %d: %s", r.status, r.err);
  cr_expect(strstr(r.err, fmt("connection to server at \"127.0.0.1\", port %d "
                              "failed: timeout expired",
                              pg.port)) != NULL,
            "psql said '%s'", r.err);
  cr_expect_geq(took, 2000, "gave up after %lld ms", took);
  cr_expect_lt(took, 8000, "gave up after %lld ms", took);
  t_run_free(&r);

  /* Without a timeout psql just waits, and clearing the rule does not
   * release a non-blocking connect already aimed at the blackhole: it
   * stays in progress ("until the caller's timeout"). New ones connect. */
  struct t_proc *w = session(1, 0, NULL, "127.0.0.1");
  cr_assert_eq(t_send(w, "select 'v' || 5;"), 0);
  char line[1024];
  cr_assert_neq(t_line(w, line, sizeof(line), 1000), 0,
                "psql said '%s' while its connect hangs", line);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  cr_assert_neq(t_line(w, line, sizeof(line), 1000), 0,
                "psql said '%s' after the hang was cleared", line);
  expect_ok(NULL, "127.0.0.1", 6);
  query(s, 7);

  /* delay: libpq's socket is non-blocking, so nothing is slowed and the
   * rule injects nothing, neither on the open session nor a new one. */
  const int ms = 300;
  cr_assert_eq(t_inject(ctl, fmt("delay@127.0.0.1:%d,ms=%d", pg.port, ms)), 0);
  for (int i = 0; i < 3; i++) {
    long long rt = query(s, 8 + i);
    cr_expect_lt(rt, ms, "a query took %lld ms", rt);
  }
  expect_ok(NULL, "127.0.0.1", 11);
  long matched, injected, open;
  cr_assert_eq(rule_counts(2, &matched, &injected, &open), 0);
  cr_expect_eq(injected, 0, "delay injected %ld times into psql", injected);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  query(s, 12);
  cr_assert_eq(t_finish(s, STEP_MS), 0);
}

/* limit max=1 across processes: a second TCP session is refused while the
 * first holds its connection, the unix socket is not counted, and the slot
 * comes back when the holder quits or the rule is cleared. */
Test(shim_psql, limit) {
  struct t_proc *u =
      session(0, 1, fmt("limit@127.0.0.1:%d,max=1", pg.port), pg.dir);
  query(u, 1);
  struct t_proc *h = session(1, 0, NULL, "127.0.0.1");
  query(h, 2);
  expect_fail(NULL, "127.0.0.1", tcp_refused());
  expect_ok(NULL, pg.dir, 3);
  long matched, injected, open;
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(open, 1, "status shows %ld open", open);
  cr_expect_eq(injected, 1);
  query(h, 4);
  cr_assert_eq(t_send(h, "\\q"), 0);
  cr_assert_eq(t_finish(h, STEP_MS), 0);
  expect_ok(NULL, "127.0.0.1", 5);
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(open, 0, "status shows %ld open", open);

  h = session(1, 0, NULL, "127.0.0.1");
  query(h, 6);
  expect_fail(NULL, "127.0.0.1", tcp_refused());
  cr_assert_eq(t_clear(ctl, "all"), 0);
  expect_ok(NULL, "127.0.0.1", 7);
  query(h, 8);
  query(u, 9);
  cr_assert_eq(t_finish(h, STEP_MS), 0);
  cr_assert_eq(t_finish(u, STEP_MS), 0);
}

/* A connection counted by limit is gone when its process dies, even
 * without close(): the slot must come back. */
Test(shim_psql, limit_slot_freed_when_holder_killed) {
  struct t_proc *u =
      session(0, 1, fmt("limit@127.0.0.1:%d,max=1", pg.port), pg.dir);
  query(u, 1);
  struct t_proc *h = session(1, 0, NULL, "127.0.0.1");
  query(h, 2);
  expect_fail(NULL, "127.0.0.1", tcp_refused());
  kill(h->pid, SIGKILL);
  t_finish(h, STEP_MS);
  /* The killed holder never called close(): its place is reclaimed
   * because its socket is gone from /proc. */
  expect_ok(NULL, "127.0.0.1", 3);
  long matched, injected, open;
  cr_assert_eq(rule_counts(1, &matched, &injected, &open), 0);
  cr_expect_eq(open, 0, "status shows %ld open", open);
}

/* An interactive psql (on a pseudo-terminal): it survives every fault and
 * recovers in the same process once the fault is cleared. */
static void pty_session(struct t_proc *p, char *const argv[]) {
  memset(p, 0, sizeof(*p));
  int master = -1;
  pid_t pid = forkpty(&master, NULL, NULL, NULL);
  cr_assert_geq(pid, 0, "forkpty failed");
  if (pid == 0) {
    struct termios t;
    if (tcgetattr(0, &t) == 0) {
      t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
      t.c_oflag &= ~(tcflag_t)ONLCR;
      tcsetattr(0, TCSANOW, &t);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  /* The same settings from this side too, before the first line is sent:
   * the child may not have run tcsetattr yet, and an echo of our input
   * would run into psql's answer. */
  struct termios t;
  if (tcgetattr(master, &t) == 0) {
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    t.c_oflag &= ~(tcflag_t)ONLCR;
    tcsetattr(master, TCSANOW, &t);
  }
  fcntl(master, F_SETFD, FD_CLOEXEC);
  p->pid = pid;
  p->in_fd = master;
  p->out_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
}

Test(shim_psql, interactive_keeps_running) {
  struct args a = {.n = 0};
  cr_assert(setup_ok, "PostgreSQL did not start");
  add_exec(&a, NULL);
  add_psql(&a, "127.0.0.1");
  add(&a, "-n"); /* no readline: plain lines on the terminal */
  add(&a, "-P");
  add(&a, "pager=off");
  add(&a, "-v");
  add(&a, "PROMPT1=");
  add(&a, "-v");
  add(&a, "PROMPT2=");
  struct t_proc *p = &procs[0];
  pty_session(p, a.v);
  query(p, 1);

  /* refuse: \connect fails, the old connection is kept and works; another
   * destination works; after clear, \connect works again. */
  cr_assert_eq(t_inject(ctl, fmt("refuse@127.0.0.1:%d", pg.port)), 0);
  cr_assert_eq(t_send(p, "\\connect"), 0);
  expect_msg(p, tcp_refused());
  expect_msg(p, "Previous connection kept");
  query(p, 2);
  cr_assert_eq(
      t_send(p, fmt("\\connect postgres postgres %s %d", pg.dir, pg.port)), 0);
  query(p, 3);
  cr_assert_eq(
      t_send(p, fmt("\\connect postgres postgres 127.0.0.1 %d", pg.port)), 0);
  expect_msg(p, "Previous connection kept");
  query(p, 4);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  cr_assert_eq(
      t_send(p, fmt("\\connect postgres postgres 127.0.0.1 %d", pg.port)), 0);
  query(p, 5);
  cr_assert_eq(t_send(p, "select inet_client_addr() is not null;"), 0);
  char seen[2048];
  cr_assert_eq(want_line(p, "t", STEP_MS, seen, sizeof(seen)), 0,
               "not on TCP after \\connect: %s", seen);

  /* reset once: the query fails, psql's own PQreset() reconnects. */
  cr_assert_eq(t_inject(ctl, fmt("reset@127.0.0.1:%d,times=1", pg.port)), 0);
  /* (The first message depends on which read or write the reset hits,
   * see test reset.) */
  cr_assert_eq(t_send(p, "select 'v' || 6;"), 0);
  expect_msg(p, "The connection to the server was lost. "
                "Attempting reset: Succeeded.");
  query(p, 7);

  /* reset on: the reconnect is reset too; psql stays, unconnected. */
  cr_assert_eq(t_inject(ctl, fmt("reset@127.0.0.1:%d", pg.port)), 0);
  cr_assert_eq(t_send(p, "select 'v' || 8;"), 0);
  expect_msg(p, "The connection to the server was lost. "
                "Attempting reset: Failed.");
  cr_assert_eq(t_send(p, "select 'v' || 9;"), 0);
  expect_msg(p, "You are currently not connected to a database.");
  cr_assert_eq(t_clear(ctl, "all"), 0);
  /* Unconnected, \\connect has no parameters to reuse: give a URI. */
  cr_assert_eq(
      t_send(p, fmt("\\connect postgresql://postgres@127.0.0.1:%d/postgres",
                    pg.port)),
      0);
  query(p, 10);

  /* exhaust and dns: \connect fails, the old connection is kept. */
  cr_assert_eq(t_inject(ctl, "exhaust@sockets"), 0);
  cr_assert_eq(t_send(p, "\\connect"), 0);
  expect_msg(p, "could not create socket: Too many open files");
  expect_msg(p, "Previous connection kept");
  query(p, 11);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  cr_assert_eq(t_inject(ctl, "dns@localhost"), 0);
  cr_assert_eq(
      t_send(p, fmt("\\connect postgres postgres localhost %d", pg.port)), 0);
  expect_msg(p, "could not translate host name \"localhost\" to address: "
                "Temporary failure in name resolution");
  expect_msg(p, "Previous connection kept");
  query(p, 12);
  cr_assert_eq(t_clear(ctl, "all"), 0);
  cr_assert_eq(
      t_send(p, fmt("\\connect postgres postgres localhost %d", pg.port)), 0);
  query(p, 13);
  cr_assert_eq(t_send(p, "\\q"), 0);
  cr_assert_eq(t_finish(p, STEP_MS), 0);
}
