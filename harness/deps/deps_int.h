/*
 * The state of one managed dependency and the ops table of its kind,
 * shared by the files of harness/deps/: deps.c (the operations' state
 * machine, the tick and the public API) and proc.c (the programs it runs
 * and their log) are generic; each kind is one file with one ops table
 * (postgres.c, redis.c), listed once in kinds.c. Nothing outside these
 * files includes it.
 */
#ifndef FL_DEPS_PRIV_H
#define FL_DEPS_PRIV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "deps.h"

#define TICK_MS 20
#define STOP_MS 30000 /* graceful stop before SIGKILL */
#define FREE_MS 10000 /* then the folder goes even if a process hangs */
#define PORT_TRIES 5
#define ERRLEN 512

enum phase {
  PH_IDLE,
  PH_DONE,    /* an operation ended: its callback runs on the next tick */
  PH_PREPARE, /* a helper runs before the first boot (postgres: initdb) */
  PH_BOOT,    /* server spawned, polling until it answers */
  PH_SETUP,   /* a helper runs after the first boot answered */
  PH_STOPPING,
  PH_SATURATING,
  PH_RELEASING,
  PH_FREEING,
  PH_RESET, /* a running server made as its first start left it */
};

struct fl_dep;

/* A kind of dependency, like libcurl's per-protocol handler: what the
 * generic code needs to know about one server program. A kind without
 * spawn_server (external) is an address only. Hooks marked "may be NULL"
 * are skipped when absent. */
struct fl_dep_kind {
  const char *name;       /* as written in a service file */
  unsigned faults;        /* FAULT_BIT(f) for each fault it supports */
  int start_ms;           /* a start step (and the boot) ends within it */
  int stop_signal;        /* the graceful stop */
  const char *ready_what; /* "did not ... within": what readiness is */
  size_t priv_size;       /* d->priv, its own state, zeroed */

  /* Finds its programs (d->server_bin, d->as_user...), a sentence in
   * d->err when one is missing. */
  int (*find_programs)(struct fl_dep *d);
  /* The folder d->dir exists: make it fit (may be NULL). */
  int (*prepare)(struct fl_dep *d);
  /* The steps of a first start before the boot (initdb), ending in
   * fl_dep_boot() or fl_dep_fail() (may be NULL: boot at once). */
  void (*first_steps)(struct fl_dep *d);
  /* Spawns the server with fl_dep_spawn(d, argv, 1). */
  int (*spawn_server)(struct fl_dep *d);
  /* Writes its URL, for the current port. */
  void (*url)(const struct fl_dep *d, char *out, size_t size);
  /* From the tick while booting: probes until it answers, then calls
   * fl_dep_boot_ready(). */
  void (*poll_ready)(struct fl_dep *d, uint64_t now);
  /* A first start answered: steps ending in fl_dep_op_done() or
   * fl_dep_fail() (may be NULL: ready). */
  void (*setup)(struct fl_dep *d);
  /* The helper it ran ended (may be NULL if it runs none). */
  void (*helper_exited)(struct fl_dep *d, int64_t status, int sig);
  /* Ends at once what it runs on the loop (probes, held connections):
   * the server is ending or being freed (may be NULL). */
  void (*halt)(struct fl_dep *d);
  /* Every process of the server has ended: clears what a killed server
   * leaves behind before the next start (may be NULL). */
  void (*server_gone)(struct fl_dep *d);
  /* Before its folder is removed, all processes gone; frees what priv
   * holds (may be NULL). */
  void (*cleanup)(struct fl_dep *d);
  /* A folder of a run that was killed, holding one of this kind's or
   * another's: releases what removing the folder would not (may be
   * NULL). */
  void (*reap)(const char *dir);
  /* fl_dep_reset: steps ending in fl_dep_op_done() or fl_dep_fail(), in
   * PH_RESET (may be NULL: the kind cannot be reset). */
  void (*reset)(struct fl_dep *d);
  /* fl_dep_set_max_connections (may be NULL: -EINVAL). */
  int (*set_max_connections)(struct fl_dep *d, int n);

  /* Saturation, when faults has it: start one (begins PH_SATURATING),
   * let it go (begins PH_RELEASING), and the tick of both and of a held
   * one (PH_IDLE with d->saturated), deadlines included. */
  int (*saturate)(struct fl_dep *d, fl_dep_cb cb, void *arg);
  void (*unsaturate)(struct fl_dep *d, fl_dep_cb cb, void *arg);
  void (*hold_tick)(struct fl_dep *d, uint64_t now);
};

#define FAULT_BIT(f) (1u << (f))
#define ALL_FAULTS (FAULT_BIT(FL_DEP_UNSATURATE + 1) - 1)

extern const struct fl_dep_kind fl_dep_external_kind;

/* A program we spawned; freed when its handle closes. */
struct child {
  uv_process_t h;
  struct fl_dep *d;
};

struct fl_dep {
  uv_loop_t *loop;
  const struct fl_dep_kind *kind;
  void *priv; /* kind->priv_size bytes, the kind's own */
  char *name;
  char *config; /* the kind's configuration, or NULL */
  char host[256];
  int port;
  char url[512];
  char err[ERRLEN];
  char dir[PATH_MAX]; /* our temporary folder */
  char log[PATH_MAX];
  int log_fd;
  off_t server_mark; /* log size when the server started */
  off_t helper_mark; /* log size when the last helper started */
  const char *step;  /* what the running helper does, for a timeout */

  /* Programs. */
  char setpriv[PATH_MAX];
  char server_bin[PATH_MAX]; /* the server program, or its bin folder */
  int as_user;               /* run as uid/gid */
  uid_t uid;
  gid_t gid;

  uv_timer_t tick;
  int handles; /* open handles besides the tick */
  enum phase phase;
  uint64_t deadline;
  uint64_t next_poll;
  int first_start; /* first steps, port retries and setup only then */
  int removing;    /* its folder is being removed off the loop */
  int port_tries;
  int restarting; /* stopping, then start */
  int forced;     /* a graceful stop ran out of time */
  int rc;         /* result of the operation, for PH_DONE */
  fl_dep_cb cb;
  void *arg;

  struct child *server;
  struct child *helper; /* a kind's helper program */
  pid_t server_pgid;    /* kept after exit until the group is empty */
  pid_t helper_pgid;
  pid_t *strays; /* processes of theirs that left their group */
  int nstrays, strayscap;
  int paused;
  int ending;    /* we sent the server a signal that ends it */
  int saturated; /* saturate succeeded and nothing ended it since */

  void (*free_done)(void *arg);
  void *free_arg;
};

/* Ends at once what the kind runs on the loop. */
static inline void fl_dep_halt(struct fl_dep *d) {
  if (d->kind->halt != NULL)
    d->kind->halt(d);
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
/* The server answers: a first start goes on to the kind's setup. */
void fl_dep_boot_ready(struct fl_dep *d);
void fl_dep_server_exited(struct fl_dep *d, int64_t status, int sig);

/* proc.c: processes, their groups and the log. */
int fl_dep_group_alive(pid_t pgid);
void fl_dep_signal_group(pid_t *pgid, int sig);
/* SIGKILL to group *pgid (forgotten once empty) and to every descendant
 * of it that left the group, noted until it is gone. */
void fl_dep_kill_tree(struct fl_dep *d, pid_t *pgid);
/* Is a process noted by fl_dep_kill_tree still alive? */
int fl_dep_strays_alive(struct fl_dep *d);
void fl_dep_log_tail(const struct fl_dep *d, off_t mark, char *out,
                     size_t size);
const char *fl_dep_exit_how(int64_t status, int sig, char *buf, size_t size);
/* Runs argv as the server (is_server) or as the one helper; 0 or a libuv
 * error. */
int fl_dep_spawn(struct fl_dep *d, char *const argv[], int is_server);
/* Runs a helper doing `step` (for messages: "initdb"), in phase ph; a
 * failure to spawn fails the start. */
void fl_dep_run_helper(struct fl_dep *d, enum phase ph, const char *step,
                       char *const argv[]);

#endif
