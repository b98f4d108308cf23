/*
 * pg_error against the real clients it must fool: psql (libpq), asyncpg,
 * psycopg2 and node-postgres, each run under `faultline exec --proxy
 * postgres=HOST:PORT --fault pg_error@...` in front of a real PostgreSQL.
 * Each client must raise its own error for the SQLSTATE (class, code or
 * printed message), a session hit by an ERROR must serve the next query,
 * and pipelined queries (simple and extended) must get their answers in
 * order, ours among them.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static struct t_pg pg;
static int setup_ok;

static void setup(void) { setup_ok = t_pg_start(&pg) == 0; }
static void teardown(void) { t_pg_stop(&pg); }

TestSuite(proto_pg, .init = setup, .fini = teardown, .timeout = 120);

static const char *fmt(const char *f, ...)
    __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...) {
  static char bufs[8][256];
  static int next;
  char *b = bufs[next++ % 8];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, 256, f, ap);
  va_end(ap);
  return b;
}

/* Runs cmd under exec --proxy postgres=... with `pg_error@PG,OPTS` (none
 * when opts is NULL); stdout and stderr in *r. */
static void run(const char *opts, char *const *cmd, struct t_run *r) {
  char *argv[32];
  int n = 0;
  cr_assert(setup_ok, "PostgreSQL did not start");
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  argv[n++] = "--proxy";
  argv[n++] = (char *)fmt("postgres=127.0.0.1:%d", pg.port);
  if (opts != NULL) {
    argv[n++] = "--fault";
    argv[n++] = (char *)fmt("pg_error@127.0.0.1:%d,%s", pg.port, opts);
  }
  argv[n++] = "--";
  while (*cmd != NULL && n < 31)
    argv[n++] = *cmd++;
  argv[n] = NULL;
  char *env[] = {"NODE_PATH=" FL_TEST_SOURCE_DIR "/tests/.npm/node_modules",
                 NULL};
  cr_assert_eq(t_run(argv, env, NULL, 60000, r), 0);
}

static void psql(const char *opts, struct t_run *r) {
  char *cmd[] = {"psql",         "-X",
                 "-h",           "127.0.0.1",
                 "-p",           (char *)fmt("%d", pg.port),
                 "-U",           "postgres",
                 "-d",           "postgres",
                 "-At",          "-c",
                 "select 6 * 7", "-c",
                 "select 2",     NULL};
  run(opts, cmd, r);
}

static void python(const char *script, const char *mode, const char *opts,
                   struct t_run *r) {
  char *cmd[] = {"/usr/bin/python3", (char *)fmt("%s/%s", T_DATA, script),
                 (char *)fmt("%d", pg.port), (char *)mode, NULL};
  run(opts, cmd, r);
  cr_assert_eq(r->status, 0, "%s exited %d: %s", script, r->status, r->err);
}

static void node(const char *opts, struct t_run *r) {
  char *cmd[] = {"node", T_DATA "/proto_pg_node.js", (char *)fmt("%d", pg.port),
                 NULL};
  run(opts, cmd, r);
  cr_assert_eq(r->status, 0, "node exited %d: %s", r->status, r->err);
}

#define HAS(hay, needle)                                                       \
  cr_assert(strstr((hay), (needle)) != NULL, "expected '%s' in:\n%s", needle,  \
            hay)

/* ---- psql (libpq) -------------------------------------------------- */

Test(proto_pg, psql_passes_with_no_fault) {
  struct t_run r;
  psql(NULL, &r);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "42\n2\n");
  t_run_free(&r);
}

Test(proto_pg, psql_refused_at_startup) {
  static const struct {
    const char *opts, *says;
  } cases[] = {
      {"code=53300", "FATAL:  sorry, too many clients already"},
      {"code=57P03", "FATAL:  the database system is starting up"},
      {"code=28P01",
       "FATAL:  password authentication failed for user \"postgres\""},
      {"code=53300,reply=no room at the inn", "FATAL:  no room at the inn"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct t_run r;
    psql(cases[i].opts, &r);
    cr_assert_eq(r.status, 2, "%s: psql exited %d", cases[i].opts, r.status);
    HAS(r.err, cases[i].says);
    HAS(r.err, "connection to server at \"127.0.0.1\"");
    cr_assert_str_eq(r.out, "");
    t_run_free(&r);
  }
}

Test(proto_pg, psql_query_error_keeps_the_session) {
  struct t_run r;
  psql("code=40001,times=1", &r);
  HAS(r.err, "ERROR:  could not serialize access due to concurrent update");
  cr_assert_str_eq(r.out, "2\n", "the second query must be served");
  t_run_free(&r);
}

Test(proto_pg, match_picks_queries_by_their_text) {
  struct t_run r;
  psql("code=40001,match=SELECT 2|no such text", &r);
  HAS(r.err, "ERROR:  could not serialize access due to concurrent update");
  cr_assert_str_eq(r.out, "42\n", "only 'select 2' must fail");
  t_run_free(&r);
  /* Extended protocol: the text is Parse's. */
  node("code=40001,match=$1", &r);
  cr_assert_str_eq(r.out, "value 42\nerror 40001 could not serialize access "
                          "due to concurrent update\n");
  t_run_free(&r);
}

Test(proto_pg, psql_admin_shutdown_ends_the_session) {
  struct t_run r;
  psql("code=57P01", &r);
  cr_assert_neq(r.status, 0);
  HAS(r.err, "FATAL:  terminating connection due to administrator command");
  cr_assert_str_eq(r.out, "");
  t_run_free(&r);
}

/* ---- asyncpg ------------------------------------------------------- */

Test(proto_pg, asyncpg_raises_its_classes) {
  static const struct {
    const char *opts, *mode, *says;
  } cases[] = {
      {"code=53300", "connect", "error TooManyConnectionsError 53300\n"},
      {"code=57P03", "connect", "error CannotConnectNowError 57P03\n"},
      {"code=57P01,stage=startup", "connect",
       "error AdminShutdownError 57P01\n"},
      {"code=28P01", "connect", "error InvalidPasswordError 28P01\n"},
      /* Extended protocol: Parse..Sync swallowed, answered at Sync. */
      {"code=40001,times=1", "query",
       "error SerializationError 40001\nvalue 2\n"},
      {"code=40P01,times=1", "query",
       "error DeadlockDetectedError 40P01\nvalue 2\n"},
      {"code=53100,times=1", "query", "error DiskFullError 53100\nvalue 2\n"},
      {"code=08006,times=1", "query",
       "error ConnectionFailureError 08006\nvalue 2\n"},
      /* Inside a transaction block: asyncpg rolls back, then serves. */
      {"code=40001,after=2,times=1", "txn",
       "error SerializationError 40001\nvalue 3\n"},
      /* As against a real server's pg_terminate_backend mid-query. */
      {"code=57P01", "query", "error ConnectionDoesNotExistError 08003\n"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct t_run r;
    python("proto_pg_asyncpg.py", cases[i].mode, cases[i].opts, &r);
    cr_assert(strncmp(r.out, cases[i].says, strlen(cases[i].says)) == 0,
              "%s: expected\n%s\ngot\n%s%s", cases[i].opts, cases[i].says,
              r.out, r.err);
    t_run_free(&r);
  }
}

/* ---- psycopg2 ------------------------------------------------------ */

Test(proto_pg, psycopg2_sees_the_sqlstate) {
  struct t_run r;
  python("proto_pg_psycopg2.py", "connect", "code=53300", &r);
  HAS(r.out, "error OperationalError None");
  HAS(r.out, "FATAL:  sorry, too many clients already");
  t_run_free(&r);
  /* psycopg2 sends BEGIN first (after=1 lets it pass): the failed query
   * leaves the block failed ('E'); rollback, and the next one is served. */
  python("proto_pg_psycopg2.py", "query", "code=40001,after=1,times=1", &r);
  cr_assert_str_eq(r.out,
                   "error SerializationFailure 40001 ERROR:  could not "
                   "serialize access due to concurrent update\nvalue 2\n");
  t_run_free(&r);
  python("proto_pg_psycopg2.py", "query", "code=57P01", &r);
  HAS(r.out, "error OperationalError");
  t_run_free(&r);
}

/* ---- node-postgres ------------------------------------------------- */

Test(proto_pg, node_postgres_sees_err_code) {
  struct t_run r;
  node("code=53300", &r);
  cr_assert_str_eq(r.out, "error 53300 sorry, too many clients already\n");
  t_run_free(&r);
  /* A simple query hit, then an extended one served. */
  node("code=40001,times=1", &r);
  cr_assert_str_eq(
      r.out, "error 40001 could not serialize access due to concurrent update\n"
             "value 2\n");
  t_run_free(&r);
  /* A simple query served, then an extended one hit. */
  node("code=40P01,after=1,times=1", &r);
  cr_assert_str_eq(r.out, "value 42\nerror 40P01 deadlock detected\n");
  t_run_free(&r);
  node("code=57P01", &r);
  HAS(r.out,
      "error 57P01 terminating connection due to administrator command\n");
  t_run_free(&r);
}

/* ---- order and transaction status ------------------------------------ */

Test(proto_pg, pipelined_answers_keep_their_order) {
  const char *want =
      "row 1 | ready I | error 40001 | ready I | row 3 | ready I\n";
  struct t_run r;
  python("proto_pg_pipeline.py", "simple", "code=40001,after=1,times=1", &r);
  cr_assert_str_eq(r.out, want);
  t_run_free(&r);
  python("proto_pg_pipeline.py", "extended", "code=40001,after=1,times=1", &r);
  cr_assert_str_eq(r.out, want);
  t_run_free(&r);
  /* In a transaction block the answer says 'E' (failed block); the
   * ROLLBACK then reaches the server, and the session goes on. */
  python("proto_pg_pipeline.py", "txn", "code=40001,after=1,times=1", &r);
  cr_assert_str_eq(
      r.out, "ready T | error 40001 | ready E | ready I | row 2 | ready I\n");
  t_run_free(&r);
}

Test(proto_pg, no_fault_no_change) {
  struct t_run r;
  python("proto_pg_pipeline.py", "extended", NULL, &r);
  cr_assert_str_eq(r.out,
                   "row 1 | ready I | row 2 | ready I | row 3 | ready I\n");
  t_run_free(&r);
}

Test(proto_pg, unknown_protocol_is_refused) {
  char *argv[] = {T_FAULTLINE, "exec", "--proxy", "gopher=127.0.0.1:5432",
                  "--",        "true", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &r), 0);
  cr_assert_eq(r.status, 2, "exit %d: %s", r.status, r.err);
  HAS(r.err, "unknown protocol 'gopher'");
  t_run_free(&r);
}
