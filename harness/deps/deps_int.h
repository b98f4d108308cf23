/*
 * The state of one managed dependency, shared by the files that make up
 * deps.c's module: deps.c (the operations' state machine, the tick and the
 * public API), proc.c (the programs it runs and their log),
 * postgres.c and redis.c (what is particular to each server) and
 * saturate.c (holding postgres's connection slots). Nothing outside
 * these files includes it.
 */
#ifndef FL_DEPS_PRIV_H
#define FL_DEPS_PRIV_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "deps.h"

#define TICK_MS 20
#define PG_START_MS 30000 /* initdb; then the server until ready */
#define REDIS_START_MS 10000
#define STOP_MS 30000 /* graceful stop before SIGKILL */
#define SATURATE_MS 10000
#define RELEASE_MS 10000
#define FREE_MS 10000 /* then the folder goes even if a process hangs */
#define PORT_TRIES 5
#define ERRLEN 512

enum phase {
  PH_IDLE,
  PH_DONE,   /* an operation ended: its callback runs on the next tick */
  PH_INITDB, /* initdb running */
  PH_BOOT,   /* server spawned, polling until it answers */
  PH_SETUP,  /* psql creating role and database */
  PH_STOPPING,
  PH_SATURATING,
  PH_RELEASING,
  PH_FREEING,
};

/* How far saturate got; see sat_more() in saturate.c. */
enum sat_stage { SAT_FILL, SAT_SETTLE, SAT_CONFIRM };

struct fl_dep;

/* A program we spawned; freed when its handle closes. */
struct child {
  uv_process_t h;
  struct fl_dep *d;
};

/* One connection opened by saturate. */
struct satconn;

struct fl_dep {
  uv_loop_t *loop;
  enum fl_dep_type type;
  char *name;
  char host[256];
  int port;
  char url[512];
  char err[ERRLEN];
  char dir[PATH_MAX]; /* our temporary folder */
  char log[PATH_MAX];
  int log_fd;
  off_t server_mark; /* log size when the server started */
  off_t helper_mark; /* log size when the last helper started */

  /* Programs. */
  char setpriv[PATH_MAX];
  char server_bin[PATH_MAX]; /* redis-server, or postgres's bin folder */
  int as_pg;                 /* run as user postgres */
  uid_t uid;
  gid_t gid;
  int max_conn;
  int server_max_conn; /* max_connections of the running server */

  uv_timer_t tick;
  int handles; /* open handles besides the tick */
  enum phase phase;
  uint64_t deadline;
  uint64_t next_poll;
  int first_start; /* initdb, port retries and setup only then */
  int removing;    /* its folder is being removed off the loop */
  int port_tries;
  int restarting; /* stopping, then start */
  int forced;     /* a graceful stop ran out of time */
  int rc;         /* result of the operation, for PH_DONE */
  fl_dep_cb cb;
  void *arg;

  struct child *server;
  struct child *helper; /* initdb, pg_isready or psql */
  pid_t server_pgid;    /* kept after exit until the group is empty */
  pid_t helper_pgid;
  int paused;
  int ending;    /* we sent the server a signal that ends it */
  int saturated; /* saturate succeeded and nothing ended it since */

  /* The redis PING probe. */
  struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    int open;
    uint64_t started;
    char buf[64];
    size_t len;
  } probe;

  /* saturate */
  struct satconn **sat;
  int nsat, satcap;
  enum sat_stage sat_stage;
  int sat_pending, sat_refused;
  uint64_t sat_next; /* next settle check or top-up */
  char sat_err[ERRLEN];
  pid_t *released; /* backends still ending after unsaturate */
  int nreleased;

  void (*free_done)(void *arg);
  void *free_arg;
};

static inline const char *fl_dep_kind(const struct fl_dep *d) {
  return d->type == FL_DEP_POSTGRES ? "postgres" : "redis";
}

/* deps.c: the operations. An operation begins with fl_dep_begin_op() (or
 * a phase set by hand inside one) and ends with fl_dep_op_done(), whose
 * callback runs from the next tick; fl_dep_fail() ends a start that cannot
 * go on, killing all it started. */
__attribute__((format(printf, 2, 3))) void fl_dep_seterr(struct fl_dep *d,
                                                         const char *fmt, ...);
void fl_dep_begin_op(struct fl_dep *d, enum phase ph, uint64_t ms, fl_dep_cb cb,
                     void *arg);
void fl_dep_op_done(struct fl_dep *d, int rc);
__attribute__((format(printf, 3, 4))) void fl_dep_fail(struct fl_dep *d, int rc,
                                                       const char *fmt, ...);
/* Spawns the server and polls until it answers (PH_BOOT). */
void fl_dep_boot(struct fl_dep *d);
/* The server answers: a first postgres start goes on to its setup. */
void fl_dep_boot_ready(struct fl_dep *d);
void fl_dep_server_exited(struct fl_dep *d, int64_t status, int sig);

/* proc.c: processes, their groups and the log. */
int fl_dep_group_alive(pid_t pgid);
void fl_dep_signal_group(pid_t *pgid, int sig);
void fl_dep_log_tail(const struct fl_dep *d, off_t mark, char *out,
                     size_t size);
const char *fl_dep_exit_how(int64_t status, int sig, char *buf, size_t size);
/* Runs argv as the server (is_server) or as the one helper; 0 or a libuv
 * error. */
int fl_dep_spawn(struct fl_dep *d, char *const argv[], int is_server);

/* postgres.c: the cluster. */
int fl_pg_find_programs(struct fl_dep *d);
int fl_pg_prepare_dir(struct fl_dep *d);
void fl_pg_run_initdb(struct fl_dep *d);
void fl_pg_run_setup(struct fl_dep *d);
int fl_pg_spawn_server(struct fl_dep *d);
void fl_pg_poll_ready(struct fl_dep *d, uint64_t now);
void fl_pg_helper_exited(struct fl_dep *d, int64_t status, int sig);
void fl_pg_remove_shm(struct fl_dep *d);
void fl_pg_remove_locks(struct fl_dep *d);

/* redis.c: redis-server and its PING probe. */
int fl_redis_find_server(struct fl_dep *d);
int fl_redis_spawn_server(struct fl_dep *d);
void fl_redis_poll_ready(struct fl_dep *d, uint64_t now);
void fl_redis_probe_close(struct fl_dep *d);

/* saturate.c: postgres's connection slots, held from outside. */
int fl_sat_start(struct fl_dep *d, fl_dep_cb cb, void *arg);
void fl_sat_tick(struct fl_dep *d, uint64_t now);
void fl_sat_drop_all(struct fl_dep *d, int remember);
int fl_sat_released_alive(struct fl_dep *d);

#endif
