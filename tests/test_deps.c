/*
 * Managed dependencies against real servers: postgres and redis started on
 * a loop, every process fault checked from a real client's side (psql,
 * redis-cli), and after each test no process and no folder left behind.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "deps/deps.h"
#include "support.h"

#define PSQL "/usr/lib/postgresql/15/bin/psql"
#define PG fl_dep_kind_find("postgres")
#define REDIS fl_dep_kind_find("redis")

struct ctx {
  uv_loop_t loop;
  uv_timer_t guard; /* wakes the loop so that deadlines are checked */
  char work[256];
  int done, rc, freed;
  pid_t groups[16]; /* every server process group seen */
  int ngroups;
};

static void on_done(fl_dep_t *d, int rc, void *arg) {
  struct ctx *c = arg;
  (void)d;
  c->rc = rc;
  c->done = 1;
}

static void on_freed(void *arg) { ((struct ctx *)arg)->freed = 1; }
static void on_freed_flag(void *arg) { *(int *)arg = 1; }
static void on_guard(uv_timer_t *t) { (void)t; }

/* Runs the loop until cond holds; fails the test after ms. */
#define RUN_UNTIL(c, cond, ms, what)                                           \
  do {                                                                         \
    long long end_ = t_now_ms() + (ms);                                        \
    while (!(cond) && t_now_ms() < end_)                                       \
      uv_run(&(c)->loop, UV_RUN_ONCE);                                         \
    cr_assert((cond), "%s: not done within %d ms", (what), (ms));              \
  } while (0)

static void ctx_init(struct ctx *c) {
  memset(c, 0, sizeof(*c));
  cr_assert_eq(uv_loop_init(&c->loop), 0);
  uv_timer_init(&c->loop, &c->guard);
  uv_timer_start(&c->guard, on_guard, 50, 50);
  cr_assert_eq(t_mkdtemp(c->work), 0);
  chmod(c->work, 0755); /* postgres runs as its own user inside it */
}

static void note_group(struct ctx *c, fl_dep_t *d) {
  if (fl_dep_pid(d) > 0 && c->ngroups < 16)
    c->groups[c->ngroups++] = fl_dep_pid(d);
}

/* Starts a dependency and waits until it is ready. */
static fl_dep_t *start(struct ctx *c, const fl_dep_kind_t *type) {
  fl_dep_t *d = NULL;
  c->done = 0;
  int rc = fl_dep_start(&c->loop, type, type == REDIS ? "cache" : "db", c->work,
                        on_done, c, &d);
  cr_assert_eq(rc, 0, "fl_dep_start: %s", fl_strerror(rc));
  RUN_UNTIL(c, c->done, 40000, "start");
  cr_assert_eq(c->rc, 0, "start failed: %s", fl_dep_error(d));
  cr_assert_gt(fl_dep_pid(d), 0);
  note_group(c, d);
  return d;
}

static void fault(struct ctx *c, fl_dep_t *d, enum fl_dep_fault f) {
  c->done = 0;
  int rc = fl_dep_fault(d, f, on_done, c);
  cr_assert_eq(rc, 0, "fault %d refused: %s", f, fl_dep_error(d));
  cr_assert_eq(c->done, 0, "a callback ran inside fl_dep_fault");
  RUN_UNTIL(c, c->done, 40000, "fault");
  cr_assert_eq(c->rc, 0, "fault %d failed: %s", f, fl_dep_error(d));
  note_group(c, d);
}

/* Calls fn for each live process of group pgid (zombies aside); returns
 * how many there were. */
static int each_in_group(pid_t pgid, void (*fn)(int pid, void *arg),
                         void *arg) {
  DIR *proc = opendir("/proc");
  struct dirent *e;
  int alive = 0;
  while (proc != NULL && (e = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    char path[300], buf[512] = "";
    snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'), state;
    int ppid, pgrp;
    if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
        pgrp == pgid && state != 'Z') {
      alive++;
      if (fn != NULL)
        fn(atoi(e->d_name), arg);
    }
  }
  if (proc != NULL)
    closedir(proc);
  return alive;
}

/* Is a process of group pgid alive (zombies aside)? */
static int group_alive(pid_t pgid) {
  return each_in_group(pgid, NULL, NULL) > 0;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Frees d and checks that nothing it started is left: no process in any
 * of its groups, no folder, and a loop that closes cleanly. */
static void finish(struct ctx *c, fl_dep_t *d) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", fl_dep_dir(d));
  note_group(c, d);
  c->freed = 0;
  fl_dep_free(d, on_freed, c);
  RUN_UNTIL(c, c->freed, 15000, "free");
  for (int i = 0; i < c->ngroups; i++)
    cr_assert(!group_alive(c->groups[i]), "process group %d is still alive",
              c->groups[i]);
  if (dir[0] != '\0')
    cr_assert(!exists(dir), "%s is still there", dir);
  uv_close((uv_handle_t *)&c->guard, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&c->loop), 0, "handles left open on the loop");
  t_rmtree(c->work);
}

/* ---- clients ---- */

/* redis-cli with a deadline; its output (stdout and stderr) in out. */
static int redis(int port, int timeout_ms, char *out, size_t size,
                 const char *a1, const char *a2, const char *a3) {
  char p[16];
  snprintf(p, sizeof(p), "%d", port);
  char *argv[] = {"redis-cli", "-p",       p,   (char *)a1,
                  (char *)a2,  (char *)a3, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, timeout_ms, &r), 0);
  snprintf(out, size, "%s%s", r.out, r.err);
  int st = r.status;
  t_run_free(&r);
  return st;
}

static void redis_ok(fl_dep_t *d) {
  char out[512];
  int st = redis(fl_dep_port(d), 5000, out, sizeof(out), "ping", NULL, NULL);
  cr_assert(st == 0 && strstr(out, "PONG"), "redis-cli ping: %d %s", st, out);
}

static int psql(fl_dep_t *d, const char *sql, int timeout_ms, char *out,
                size_t size) {
  char *argv[] = {PSQL, (char *)fl_dep_url(d), "-X", "-A", "-t",
                  "-c", (char *)sql,           NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, timeout_ms, &r), 0);
  snprintf(out, size, "%s%s", r.out, r.err);
  int st = r.status;
  t_run_free(&r);
  return st;
}

static void psql_ok(fl_dep_t *d, const char *sql, const char *want) {
  char out[1024];
  int st = psql(d, sql, 10000, out, sizeof(out));
  cr_assert(st == 0 && strstr(out, want), "psql %s: %d %s", sql, st, out);
}

/* ---- redis ---- */

Test(deps, redis_faults, .timeout = 120) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, REDIS);
  char url[64], out[512];
  snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", fl_dep_port(d));
  cr_assert_str_eq(fl_dep_url(d), url);
  redis_ok(d);
  cr_assert_eq(redis(fl_dep_port(d), 5000, out, sizeof(out), "set", "k", "v"),
               0);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_SATURATE, NULL, NULL), -EINVAL);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_START, NULL, NULL), -EALREADY);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_RESUME, NULL, NULL), -EALREADY);

  pid_t pid = fl_dep_pid(d);
  fault(&c, d, FL_DEP_KILL);
  cr_assert_eq(fl_dep_pid(d), 0);
  cr_assert(!group_alive(pid));
  cr_assert_neq(
      redis(fl_dep_port(d), 5000, out, sizeof(out), "ping", NULL, NULL), 0);
  cr_assert(strstr(out, "Connection refused"), "%s", out);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_PAUSE, NULL, NULL), -ESRCH);

  /* Same port; no persistence, so the data went with the process. */
  fault(&c, d, FL_DEP_START);
  redis_ok(d);
  redis(fl_dep_port(d), 5000, out, sizeof(out), "get", "k", NULL);
  cr_assert(strstr(out, "v") == NULL, "k survived a kill: %s", out);

  fault(&c, d, FL_DEP_PAUSE);
  long long t0 = t_now_ms();
  cr_assert_eq(
      redis(fl_dep_port(d), 1000, out, sizeof(out), "ping", NULL, NULL), -1,
      "a paused redis answered: %s", out);
  cr_assert_geq(t_now_ms() - t0, 1000);
  fault(&c, d, FL_DEP_RESUME);
  redis_ok(d);

  fault(&c, d, FL_DEP_STOP);
  cr_assert_eq(fl_dep_pid(d), 0);
  cr_assert_neq(
      redis(fl_dep_port(d), 5000, out, sizeof(out), "ping", NULL, NULL), 0);
  fault(&c, d, FL_DEP_START);
  redis_ok(d);

  pid = fl_dep_pid(d);
  fault(&c, d, FL_DEP_RESTART);
  cr_assert(fl_dep_pid(d) > 0 && fl_dep_pid(d) != pid);
  redis_ok(d);
  finish(&c, d);
}

static void reset(struct ctx *c, fl_dep_t *d) {
  c->done = 0;
  int rc = fl_dep_reset(d, on_done, c);
  cr_assert_eq(rc, 0, "reset refused: %s", fl_dep_error(d));
  cr_assert_eq(c->done, 0, "a callback ran inside fl_dep_reset");
  RUN_UNTIL(c, c->done, 40000, "reset");
  cr_assert_eq(c->rc, 0, "reset failed: %s", fl_dep_error(d));
}

/* A reset flushes every db, ends other clients and zeroes the stats; the
 * same server goes on. */
Test(deps, redis_reset, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, REDIS);
  int port = fl_dep_port(d);
  char out[512];
  cr_assert_eq(redis(port, 5000, out, sizeof(out), "set", "k", "v"), 0);
  char *argv[] = {"redis-cli", "-p", out, "-n", "3", "set", "k3", "v3", NULL};
  char p[16];
  snprintf(p, sizeof(p), "%d", port);
  argv[2] = p;
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 5000, &r), 0);
  t_run_free(&r);
  int held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(0x7f000001)};
  cr_assert_eq(connect(held, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(write(held, "PING\r\n", 6), 6);
  char buf[64];
  cr_assert_gt(read(held, buf, sizeof(buf)), 0);

  pid_t pid = fl_dep_pid(d);
  reset(&c, d);
  cr_assert_eq(fl_dep_pid(d), pid, "a reset restarted the server");
  struct timeval tv = {5, 0};
  setsockopt(held, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  cr_assert_leq(read(held, buf, sizeof(buf)), 0, "another client survived");
  close(held);
  /* This client is the first one since the reset. */
  redis(port, 5000, out, sizeof(out), "info", "stats", NULL);
  const char *n = strstr(out, "total_connections_received:");
  cr_assert(n != NULL && atoi(n + 27) == 1, "statistics kept: %s", out);
  redis(port, 5000, out, sizeof(out), "exists", "k", NULL);
  cr_assert(strstr(out, "0"), "k survived a reset: %s", out);
  redis(port, 5000, out, sizeof(out), "-n", "3", "dbsize");
  cr_assert(strstr(out, "0"), "db 3 survived a reset: %s", out);
  fault(&c, d, FL_DEP_PAUSE);
  cr_assert_eq(fl_dep_reset(d, on_done, &c), -ESRCH);
  fault(&c, d, FL_DEP_RESUME);
  redis_ok(d);
  finish(&c, d);
}

Test(deps, reset_refused_for_external, .timeout = 10) {
  fl_dep_t *d = NULL;
  cr_assert_eq(fl_dep_external("api", "127.0.0.1:9", &d), 0);
  cr_assert_eq(fl_dep_reset(d, NULL, NULL), -EINVAL);
  cr_assert(!fl_dep_kind_resets(fl_dep_kind_of(d)));
  cr_assert(fl_dep_kind_resets(PG) && fl_dep_kind_resets(REDIS));
  fl_dep_free(d, NULL, NULL);
}

/* Stop and restart reach a paused server: it is woken to end. */
Test(deps, redis_stop_while_paused, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, REDIS);
  fault(&c, d, FL_DEP_PAUSE);
  fault(&c, d, FL_DEP_RESTART);
  redis_ok(d);
  fault(&c, d, FL_DEP_PAUSE);
  fault(&c, d, FL_DEP_STOP);
  fault(&c, d, FL_DEP_START);
  redis_ok(d);
  fault(&c, d, FL_DEP_PAUSE);
  finish(&c, d); /* while paused */
}

Test(deps, redis_crash_then_start, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, REDIS);
  kill(fl_dep_pid(d), SIGSEGV);
  RUN_UNTIL(&c, fl_dep_pid(d) == 0, 10000, "crash seen");
  cr_assert(strstr(fl_dep_error(d), "redis exited unexpectedly (signal 11)"),
            "%s", fl_dep_error(d));
  fault(&c, d, FL_DEP_START);
  redis_ok(d);
  kill(fl_dep_pid(d), SIGKILL);
  RUN_UNTIL(&c, fl_dep_pid(d) == 0, 10000, "crash seen");
  finish(&c, d); /* after a crash */
}

/* ---- postgres ---- */

Test(deps, postgres_faults, .timeout = 180) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, PG);
  char url[128], out[1024];
  snprintf(url, sizeof(url),
           "postgresql://faultline:faultline@127.0.0.1:%d/faultline",
           fl_dep_port(d));
  cr_assert_str_eq(fl_dep_url(d), url);
  psql_ok(d, "select current_user || '/' || current_database()",
          "faultline/faultline");
  psql_ok(d, "create table t (v text); insert into t values ('kept')",
          "INSERT");

  pid_t pid = fl_dep_pid(d);
  fault(&c, d, FL_DEP_KILL);
  cr_assert(!group_alive(pid), "backends outlived a kill");
  cr_assert_neq(psql(d, "select 1", 10000, out, sizeof(out)), 0);
  cr_assert(strstr(out, "Connection refused"), "%s", out);
  fault(&c, d, FL_DEP_START);
  psql_ok(d, "select v from t", "kept");

  fault(&c, d, FL_DEP_PAUSE);
  long long t0 = t_now_ms();
  cr_assert_eq(psql(d, "select 1", 1000, out, sizeof(out)), -1,
               "a paused postgres answered: %s", out);
  cr_assert_geq(t_now_ms() - t0, 1000);
  fault(&c, d, FL_DEP_RESUME);
  psql_ok(d, "select v from t", "kept");

  fault(&c, d, FL_DEP_STOP);
  cr_assert_neq(psql(d, "select 1", 10000, out, sizeof(out)), 0);
  cr_assert(strstr(out, "Connection refused"), "%s", out);
  fault(&c, d, FL_DEP_START);
  psql_ok(d, "select v from t", "kept");

  pid = fl_dep_pid(d);
  fault(&c, d, FL_DEP_RESTART);
  cr_assert(fl_dep_pid(d) > 0 && fl_dep_pid(d) != pid);
  psql_ok(d, "select v from t", "kept");
  finish(&c, d);
}

/* A reset gives the next user what a first start gives: no table, no
 * session of the last user (one still running a query is ended), the
 * role's settings back; the same server. */
Test(deps, postgres_reset, .timeout = 120) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, PG);
  psql_ok(d, "create table t (v text); insert into t values ('old')", "INSERT");
  psql_ok(d, "alter role faultline set statement_timeout = '1234ms'", "ALTER");
  char *argv[] = {PSQL, (char *)fl_dep_url(d), "-X",
                  "-c", "select pg_sleep(60)", NULL};
  struct t_proc held;
  cr_assert_eq(t_spawn(&held, argv, NULL, 1), 0);
  char out[1024];
  long long until = t_now_ms() + 10000;
  do /* the session is there before the reset */
    psql(d,
         "select count(*) from pg_stat_activity where query like "
         "'select pg_sleep%'",
         5000, out, sizeof(out));
  while (strncmp(out, "1", 1) != 0 && t_now_ms() < until);
  cr_assert(strncmp(out, "1", 1) == 0, "no held session: %s", out);

  pid_t pid = fl_dep_pid(d);
  reset(&c, d);
  cr_assert_eq(fl_dep_pid(d), pid, "a reset restarted the server");
  cr_assert_neq(t_finish(&held, 10000), 0, "the held session survived");
  psql_ok(d, "select count(*) from pg_tables where tablename = 't'", "0");
  psql_ok(d, "show statement_timeout", "0");
  psql_ok(d, "select current_user || '/' || current_database()",
          "faultline/faultline");
  reset(&c, d); /* twice in a row */
  fault(&c, d, FL_DEP_PAUSE);
  cr_assert_eq(fl_dep_reset(d, on_done, &c), -ESRCH);
  fault(&c, d, FL_DEP_RESUME);
  finish(&c, d);
}

Test(deps, postgres_saturate, .timeout = 120) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, PG);
  char out[1024];
  fault(&c, d, FL_DEP_SATURATE);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_SATURATE, NULL, NULL), -EALREADY);
  cr_assert_neq(psql(d, "select 1", 10000, out, sizeof(out)), 0);
  cr_assert(strstr(out, "too many clients") ||
                strstr(out, "remaining connection slots"),
            "%s", out);
  fault(&c, d, FL_DEP_UNSATURATE);
  psql_ok(d, "select 1", "1");
  cr_assert_eq(fl_dep_fault(d, FL_DEP_UNSATURATE, NULL, NULL), -EALREADY);

  /* Smaller max_connections from the next start on; a kill ends the
   * saturation, and free ends one in place. */
  cr_assert_eq(fl_dep_set_max_connections(d, 10), 0);
  fault(&c, d, FL_DEP_SATURATE);
  fault(&c, d, FL_DEP_RESTART);
  psql_ok(d, "show max_connections", "10");
  fault(&c, d, FL_DEP_SATURATE);
  cr_assert_neq(psql(d, "select 1", 10000, out, sizeof(out)), 0);
  finish(&c, d);
}

/* A saturated server stays full: a slot the target lets go of is taken
 * again, as a competing client would. */
Test(deps, postgres_saturate_holds, .timeout = 120) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, PG);
  struct t_proc held;
  char *argv[] = {PSQL, (char *)fl_dep_url(d), "-X", "-A", "-t", NULL};
  cr_assert_eq(t_spawn(&held, argv, NULL, 1), 0);
  cr_assert_eq(t_send(&held, "select 'held' || 1;"), 0);
  cr_assert_eq(t_expect(&held, "held1", NULL, 0, 10000), 0);
  fault(&c, d, FL_DEP_SATURATE);

  /* The session ends; within a few top-ups its slot is ours. */
  cr_assert_eq(t_finish(&held, 10000), 0);
  long long until = t_now_ms() + 1000;
  RUN_UNTIL(&c, t_now_ms() >= until, 2000, "top-ups");
  char out[1024];
  cr_assert_neq(psql(d, "select 1", 10000, out, sizeof(out)), 0,
                "a freed slot stayed free: %s", out);
  cr_assert(strstr(out, "too many clients"), "%s", out);
  finish(&c, d);
}

/* ---- shared memory ---- */

/* The shared memory a server's processes have mapped, as their maps show
 * it: POSIX segments by path (/dev/shm/PostgreSQL.N), System V ones by key
 * ("/SYSV0052e2c1 (deleted)"). Knowing our own segments keeps the check
 * exact while other clusters come and go on the machine. */
struct segs {
  char shm[32][64];
  unsigned keys[32];
  int nshm, nkeys;
};

static void note_maps(int pid, void *arg) {
  struct segs *s = arg;
  char path[64], line[512];
  snprintf(path, sizeof(path), "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    char *shm = strstr(line, "/dev/shm/"), *sysv = strstr(line, "/SYSV");
    unsigned key;
    if (shm != NULL) {
      shm[strcspn(shm, " \n")] = '\0';
      int seen = 0;
      for (int i = 0; i < s->nshm; i++)
        seen |= strcmp(s->shm[i], shm) == 0;
      if (!seen && s->nshm < 32)
        snprintf(s->shm[s->nshm++], sizeof(s->shm[0]), "%s", shm);
    } else if (sysv != NULL && sscanf(sysv, "/SYSV%8x", &key) == 1 &&
               key != 0) {
      int seen = 0;
      for (int i = 0; i < s->nkeys; i++)
        seen |= s->keys[i] == key;
      if (!seen && s->nkeys < 32)
        s->keys[s->nkeys++] = key;
    }
  }
  if (f != NULL)
    fclose(f);
}

static int sysv_exists(unsigned key) {
  FILE *f = fopen("/proc/sysvipc/shm", "r");
  char line[512];
  int found = 0;
  long long k;
  while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
    found = sscanf(line, "%lld", &k) == 1 && (unsigned)k == key;
  if (f != NULL)
    fclose(f);
  return found;
}

static void assert_segments_gone(const struct segs *s, const char *when) {
  for (int i = 0; i < s->nshm; i++)
    cr_assert(!exists(s->shm[i]), "%s is left after %s", s->shm[i], when);
  for (int i = 0; i < s->nkeys; i++)
    cr_assert(!sysv_exists(s->keys[i]),
              "System V segment 0x%08x is left after %s", s->keys[i], when);
}

/* Kill, restart and free leave no shared memory behind: each segment our
 * servers mapped (in /dev/shm or System V) is gone. The check is exact,
 * not a count of /dev/shm, which other tests' clusters running at the
 * same time (ctest -j) would change. */
Test(deps, postgres_leaves_no_shared_memory, .timeout = 180) {
  struct ctx c;
  ctx_init(&c);
  struct segs s = {0};
  fl_dep_t *d = start(&c, PG);
  each_in_group(fl_dep_pid(d), note_maps, &s);
  cr_assert_gt(s.nshm + s.nkeys, 0, "no shared memory seen at all");
  fault(&c, d, FL_DEP_KILL);
  assert_segments_gone(&s, "a kill");

  fault(&c, d, FL_DEP_START);
  each_in_group(fl_dep_pid(d), note_maps, &s);
  pid_t old = fl_dep_pid(d);
  fault(&c, d, FL_DEP_RESTART);
  cr_assert(!group_alive(old));
  each_in_group(fl_dep_pid(d), note_maps, &s);
  psql_ok(d, "select 1", "1");
  finish(&c, d); /* SIGKILL while running */
  assert_segments_gone(&s, "free");
}

/* ---- freeing at any time ---- */

Test(deps, free_while_starting, .timeout = 120) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = NULL;
  /* During initdb, before the loop even ran. */
  cr_assert_eq(fl_dep_start(&c.loop, PG, "db", c.work, on_done, &c, &d), 0);
  c.freed = 0;
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", fl_dep_dir(d));
  cr_assert(exists(dir));
  fl_dep_free(d, on_freed, &c);
  RUN_UNTIL(&c, c.freed, 15000, "free during initdb");
  cr_assert(!exists(dir));
  cr_assert_eq(c.done, 0, "start callback ran after free");

  /* While the server boots. */
  cr_assert_eq(fl_dep_start(&c.loop, PG, "db", c.work, on_done, &c, &d), 0);
  RUN_UNTIL(&c, fl_dep_pid(d) > 0, 40000, "server spawned");
  finish(&c, d);
}

/* A killed runner cannot clean up after itself: its folders stay, and so
 * does postgres's shared memory segment (named on line 7 of
 * postmaster.pid: key and id). */
static void drop_pg_shm(const char *work) {
  char pattern[300], line[256];
  snprintf(pattern, sizeof(pattern), "%s/*/data/postmaster.pid", work);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0)
    return;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    FILE *f = fopen(g.gl_pathv[i], "r");
    int id = -1;
    for (int n = 1; f != NULL && fgets(line, sizeof(line), f) != NULL; n++)
      if (n == 7 && sscanf(line, "%*u %d", &id) != 1)
        id = -1;
    if (f != NULL)
      fclose(f);
    if (id >= 0)
      shmctl(id, IPC_RMID, NULL);
  }
  globfree(&g);
}

/* Children die with the runner: a runner killed by SIGKILL leaves no
 * server behind (PR_SET_PDEATHSIG through setpriv). */
Test(deps, children_die_with_us, .timeout = 120) {
  char work[256];
  cr_assert_eq(t_mkdtemp(work), 0);
  chmod(work, 0755);
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t runner = fork();
  if (runner == 0) {
    struct ctx c;
    memset(&c, 0, sizeof(c));
    uv_loop_init(&c.loop);
    fl_dep_t *pg = NULL, *rd = NULL;
    fl_dep_start(&c.loop, PG, "db", work, on_done, &c, &pg);
    fl_dep_start(&c.loop, REDIS, "cache", work, NULL, NULL, &rd);
    uv_timer_init(&c.loop, &c.guard);
    uv_timer_start(&c.guard, on_guard, 50, 50);
    long long end = t_now_ms() + 40000;
    while ((c.done == 0 || fl_dep_pid(rd) == 0) && t_now_ms() < end)
      uv_run(&c.loop, UV_RUN_ONCE);
    int pids[2] = {fl_dep_pid(pg), fl_dep_pid(rd)};
    if (pids[0] == 0)
      fprintf(stderr, "postgres: %s\n", fl_dep_error(pg));
    (void)!write(fds[1], pids, sizeof(pids));
    for (;;)
      pause();
  }
  close(fds[1]);
  int pids[2] = {0, 0};
  ssize_t n = read(fds[0], pids, sizeof(pids));
  close(fds[0]);
  int both = pids[0] > 0 && pids[1] > 0 && group_alive(pids[0]) &&
             group_alive(pids[1]);
  kill(runner, SIGKILL);
  waitpid(runner, NULL, 0);
  cr_assert(n == (ssize_t)sizeof(pids) && both,
            "the runner did not start both servers (pids %d %d)", pids[0],
            pids[1]);
  long long end = t_now_ms() + 10000;
  while ((group_alive(pids[0]) || group_alive(pids[1])) && t_now_ms() < end)
    usleep(20000);
  cr_assert(!group_alive(pids[0]), "postgres outlived its runner");
  cr_assert(!group_alive(pids[1]), "redis outlived its runner");
  drop_pg_shm(work);
  t_rmtree(work);
}

/* ---- failures to start ---- */

/* A folder of fake programs put first in PATH. */
static void fake_program(const char *dir, const char *name,
                         const char *script) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f, "#!/bin/sh\n%s\n", script);
  fclose(f);
  chmod(path, 0755);
}

static void path_first(const char *dir) {
  char path[4096];
  snprintf(path, sizeof(path), "%s:%s", dir, getenv("PATH"));
  setenv("PATH", path, 1);
}

/* Starts and expects a failure whose message contains each of want[]. */
static void start_fails(struct ctx *c, const fl_dep_kind_t *type,
                        const char *const want[]) {
  fl_dep_t *d = NULL;
  c->done = 0;
  cr_assert_eq(fl_dep_start(&c->loop, type, "dep", c->work, on_done, c, &d), 0);
  cr_assert_eq(c->done, 0, "a callback ran inside fl_dep_start");
  RUN_UNTIL(c, c->done, 40000, "failed start");
  cr_assert_lt(c->rc, 0);
  for (int i = 0; want[i] != NULL; i++)
    cr_assert(strstr(fl_dep_error(d), want[i]), "'%s' lacks '%s'",
              fl_dep_error(d), want[i]);
  finish(c, d);
}

Test(deps, redis_exits_at_start, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  char bin[256];
  cr_assert_eq(t_mkdtemp(bin), 0);
  fake_program(bin, "redis-server",
               "echo 'fake redis-server: cannot start' >&2; exit 3");
  path_first(bin);
  start_fails(&c, REDIS,
              (const char *const[]){"redis exited during start-up (exit 3)",
                                    "fake redis-server: cannot start", NULL});
  t_rmtree(bin);
}

Test(deps, redis_not_installed, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  char bin[256], link[512];
  cr_assert_eq(t_mkdtemp(bin), 0);
  snprintf(link, sizeof(link), "%s/setpriv", bin);
  cr_assert_eq(symlink("/usr/bin/setpriv", link), 0);
  setenv("PATH", bin, 1);
  start_fails(&c, REDIS,
              (const char *const[]){
                  "redis-server not found in PATH: install it with 'apt-get "
                  "install redis-server'",
                  NULL});
  t_rmtree(bin);
}

Test(deps, initdb_fails, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  char bin[256];
  cr_assert_eq(t_mkdtemp(bin), 0);
  fake_program(bin, "initdb", "echo 'initdb: error: fake failure' >&2; exit 1");
  const char *real[] = {"postgres", "pg_isready", "psql"};
  for (int i = 0; i < 3; i++) {
    char from[128], to[512];
    snprintf(from, sizeof(from), "/usr/lib/postgresql/15/bin/%s", real[i]);
    snprintf(to, sizeof(to), "%s/%s", bin, real[i]);
    cr_assert_eq(symlink(from, to), 0);
  }
  chmod(bin, 0755);
  path_first(bin);
  start_fails(&c, PG,
              (const char *const[]){
                  "postgres: initdb failed (exit 1): initdb: error: fake "
                  "failure",
                  NULL});
  t_rmtree(bin);
}

/* The first redis-server finds its port taken (as when another program
 * binds it between our choice and the server's bind): the start goes on
 * with another port. */
Test(deps, redis_port_retry, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  char bin[256], script[2048], first[300];
  cr_assert_eq(t_mkdtemp(bin), 0);
  snprintf(first, sizeof(first), "%s/first-port", bin);
  snprintf(script, sizeof(script),
           "if [ ! -e %s ]; then echo \"$2\" > %s; "
           "echo \"# Could not create server TCP listening socket "
           "127.0.0.1:$2: bind: Address already in use\"; exit 1; fi\n"
           "exec /usr/bin/redis-server \"$@\"",
           first, first);
  fake_program(bin, "redis-server", script);
  path_first(bin);
  fl_dep_t *d = start(&c, REDIS);
  FILE *f = fopen(first, "r");
  int port = 0;
  cr_assert(f != NULL && fscanf(f, "%d", &port) == 1);
  fclose(f);
  cr_assert(port > 0 && fl_dep_port(d) != port, "port %d, then %d", port,
            fl_dep_port(d));
  redis_ok(d);
  finish(&c, d);
  t_rmtree(bin);
}

/* A server that never answers: the deadline ends it, nothing is left. */
Test(deps, redis_never_ready, .timeout = 60) {
  struct ctx c;
  ctx_init(&c);
  char bin[256];
  cr_assert_eq(t_mkdtemp(bin), 0);
  fake_program(bin, "redis-server", "exec sleep 1000");
  path_first(bin);
  long long t0 = t_now_ms();
  start_fails(
      &c, REDIS,
      (const char *const[]){"redis did not answer PING within 10 s", NULL});
  cr_assert_geq(t_now_ms() - t0, 10000);
  t_rmtree(bin);
}

/* As root, postgres runs as user postgres, who must reach its folder. */
Test(deps, postgres_unreachable_workdir, .timeout = 60) {
  if (geteuid() != 0)
    cr_skip_test("only root hands the cluster to user postgres");
  struct ctx c;
  ctx_init(&c);
  char inner[512];
  snprintf(inner, sizeof(inner), "%s/private", c.work);
  cr_assert_eq(mkdir(inner, 0700), 0);
  fl_dep_t *d = NULL;
  cr_assert_eq(fl_dep_start(&c.loop, PG, "db", inner, on_done, &c, &d), 0);
  RUN_UNTIL(&c, c.done, 10000, "failed start");
  cr_assert_lt(c.rc, 0);
  cr_assert(strstr(fl_dep_error(d), "user postgres cannot reach") &&
                strstr(fl_dep_error(d), "private is not searchable"),
            "%s", fl_dep_error(d));
  finish(&c, d);
}

/* A port taken while the server was down: start fails and says why. */
static void start_on_taken_port(const fl_dep_kind_t *type, const char *want) {
  struct ctx c;
  ctx_init(&c);
  fl_dep_t *d = start(&c, type);
  fault(&c, d, FL_DEP_STOP);
  /* SO_REUSEADDR: the server's side of earlier sessions may linger in
   * TIME_WAIT on that port; a listening socket still keeps it out. */
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in in = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)fl_dep_port(d)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
  cr_assert_eq(listen(fd, 1), 0);
  c.done = 0;
  cr_assert_eq(fl_dep_fault(d, FL_DEP_START, on_done, &c), 0);
  RUN_UNTIL(&c, c.done, 40000, "start on a taken port");
  cr_assert_lt(c.rc, 0);
  cr_assert(strstr(fl_dep_error(d), want), "'%s' lacks '%s'", fl_dep_error(d),
            want);
  cr_assert(strstr(fl_dep_error(d), "exited during start-up"), "%s",
            fl_dep_error(d));
  close(fd);
  finish(&c, d);
}

Test(deps, redis_port_taken, .timeout = 60) {
  start_on_taken_port(REDIS, "Address already in use");
}

Test(deps, postgres_port_taken, .timeout = 120) {
  start_on_taken_port(PG, "Address already in use");
}

/* ---- external ---- */

Test(deps, external, .timeout = 10) {
  fl_dep_t *d = NULL;
  cr_assert_eq(fl_dep_external("db", "db.example:5432", &d), 0);
  cr_assert_str_eq(fl_dep_host(d), "db.example");
  cr_assert_eq(fl_dep_port(d), 5432);
  cr_assert_str_eq(fl_dep_url(d), "db.example:5432");
  cr_assert(!fl_dep_kind_managed(fl_dep_kind_of(d)));
  cr_assert_eq(fl_dep_pid(d), 0);
  cr_assert_eq(fl_dep_fault(d, FL_DEP_KILL, NULL, NULL), -EINVAL);
  cr_assert(strstr(fl_dep_error(d), "external"), "%s", fl_dep_error(d));
  int freed = 0;
  fl_dep_free(d, on_freed_flag, &freed);
  cr_assert_eq(freed, 1);

  cr_assert_eq(fl_dep_external("v6", "[::1]:6379", &d), 0);
  cr_assert_str_eq(fl_dep_host(d), "::1");
  fl_dep_free(d, NULL, NULL);
  cr_assert_eq(fl_dep_external("bad", "nowhere", &d), -EINVAL);
  cr_assert_eq(fl_dep_external("bad", "host:99999", &d), -EINVAL);
}
