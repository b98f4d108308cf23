/*
 * Managed dependencies: a throwaway PostgreSQL cluster or a redis-server,
 * started on a free loopback port of the caller's libuv loop, and the
 * process faults the timeline applies to them. Everything a dependency
 * creates lives under one temporary folder, removed by fl_dep_free(),
 * except its log, WORKDIR/NAME.log.
 *
 * Everything runs on the caller's loop; no call blocks for long. Callbacks
 * are never called from inside the call that starts the operation, and
 * never after fl_dep_free().
 */
#ifndef FL_DEPS_H
#define FL_DEPS_H

#include <uv.h>

#include <stddef.h>

/* Process faults on a managed dependency. */
enum fl_dep_fault {
  FL_DEP_KILL,       /* SIGKILL the server (and its children) */
  FL_DEP_STOP,       /* graceful stop (SIGTERM; postgres: fast shutdown) */
  FL_DEP_START,      /* start again after kill/stop, same port and data */
  FL_DEP_PAUSE,      /* SIGSTOP the whole server: a real hang */
  FL_DEP_RESUME,     /* SIGCONT */
  FL_DEP_RESTART,    /* stop then start */
  FL_DEP_SATURATE,   /* postgres: hold connections from outside until
                        max_connections is reached */
  FL_DEP_UNSATURATE, /* release them */
};

typedef struct fl_dep fl_dep_t;

/* A kind of dependency ("postgres", "redis", "external"): the server it
 * runs and the faults it supports, one table each inside harness/deps/.
 * Kinds are static: never freed. */
typedef struct fl_dep_kind fl_dep_kind_t;

/* The kind named `name`, or NULL. */
const fl_dep_kind_t *fl_dep_kind_find(const char *name);
const char *fl_dep_kind_name(const fl_dep_kind_t *k);
/* 1 when faultline runs it (fl_dep_start), 0 for an address only
 * (fl_dep_external). */
int fl_dep_kind_managed(const fl_dep_kind_t *k);
/* 1 when fault f applies to its dependencies. */
int fl_dep_kind_supports(const fl_dep_kind_t *k, enum fl_dep_fault f);
/* The names of the kinds, ", "-separated, in buf (returned): all of them
 * when fault < 0, else those that support that fault. */
const char *fl_dep_kind_names(int fault, char *buf, size_t size);

/* A run's folder left by a killed runner, its processes gone: each kind
 * releases what removing the folder will not (PostgreSQL's System V
 * segment, named in postmaster.pid). For fl_reap_folders(). */
void fl_dep_reap_folder(const char *workdir);

/* Called once when the dependency is ready (rc 0) or failed to start
 * (rc < 0, with a one-sentence reason in fl_dep_error()). */
typedef void (*fl_dep_cb)(fl_dep_t *dep, int rc, void *arg);

/* Starts a managed dependency of `kind` (postgres or redis) named `name` on a
 * free 127.0.0.1 port; `workdir` is an existing folder where it may create its
 * own temporary folder (when we are root, user "postgres" must be able to
 * reach it). Readiness: postgres accepts sessions and user "faultline"
 * (password "faultline", a superuser) owns database "faultline"; redis
 * answers PING. Servers run as the "postgres" user when we are root
 * (postgres refuses root), die with us (PR_SET_PDEATHSIG, set by running
 * each program through `setpriv --pdeathsig KILL`; it fires when the thread
 * that runs the loop ends), each in its own process group, and have their
 * stdout/stderr appended to WORKDIR/NAME.log.
 *
 * Returns 0 and sets *out; every failure to start, a missing program
 * included, then reaches cb with rc < 0. The caller frees *out with
 * fl_dep_free() in every case, after a failed start too. Returns -EINVAL
 * (bad arguments, a kind that is not managed) or -ENOMEM with *out NULL,
 * without calling cb. */
int fl_dep_start(uv_loop_t *loop, const fl_dep_kind_t *kind, const char *name,
                 const char *workdir, fl_dep_cb cb, void *arg, fl_dep_t **out);

/* fl_dep_start with the kind's configuration (http: the stub's routes,
 * JSON as harness/scenario/routes.c writes it); config may be NULL. */
int fl_dep_start_config(uv_loop_t *loop, const fl_dep_kind_t *kind,
                        const char *name, const char *workdir,
                        const char *config, fl_dep_cb cb, void *arg,
                        fl_dep_t **out);

/* An external dependency: an address only ("host:port"); ready at once. */
int fl_dep_external(const char *name, const char *address, fl_dep_t **out);

const char *fl_dep_name(const fl_dep_t *d);
const fl_dep_kind_t *fl_dep_kind_of(const fl_dep_t *d);
const char *fl_dep_host(const fl_dep_t *d); /* "127.0.0.1" */
/* The port; may still change while the first start runs (a port taken by
 * someone else between our choice and the server's bind is retried). */
int fl_dep_port(const fl_dep_t *d);
/* postgresql://faultline:faultline@127.0.0.1:PORT/faultline or
 * redis://127.0.0.1:PORT/0; for external: the address. */
const char *fl_dep_url(const fl_dep_t *d);
/* The value of variable ${NAME_WHAT} for WHAT in HOST, PORT, ADDR
 * (host:port), URL; NULL for another WHAT. It may be written in buf. */
const char *fl_dep_var(const fl_dep_t *d, const char *what, char *buf,
                       size_t size);
const char *fl_dep_error(const fl_dep_t *d);
/* The server's main pid, 0 when not running. It leads the server's
 * process group. */
int fl_dep_pid(const fl_dep_t *d);
/* The dependency's temporary folder ("" for external). */
const char *fl_dep_dir(const fl_dep_t *d);

/* postgres: max_connections (default 50, so that saturate is quick), from
 * the server's next start on; call it right after fl_dep_start() for the
 * first one. -EINVAL for other kinds or n outside 5..10000. */
int fl_dep_set_max_connections(fl_dep_t *d, int n);

/* Applies a process fault; cb (may be NULL) is called when it is done
 * (kill, stop: when no process of the server is left; start: when ready
 * again; saturate: when the server refuses connections, twice 100 ms
 * apart; unsaturate: when the connections' server processes have ended).
 * A saturation holds: a slot someone else frees is taken again within
 * 200 ms, as a competing client would. Kill, stop and restart end it.
 * Returns, without calling cb, with a sentence in
 * fl_dep_error():
 *   -EINVAL   a fault its kind does not support (saturate on redis,
 *             anything on external; see fl_dep_kind_supports);
 *   -EBUSY    another operation (start or fault) is still in progress;
 *   -ESRCH    the server is not running (kill, stop, pause, saturate...),
 *             or start/restart of one whose first start failed;
 *   -EALREADY nothing to do (start while running, resume while not paused,
 *             pause while paused, saturate twice, unsaturate when not
 *             saturated).
 * A fault that fails later reaches cb with rc < 0 and the reason in
 * fl_dep_error(). */
int fl_dep_fault(fl_dep_t *d, enum fl_dep_fault f, fl_dep_cb cb, void *arg);

/* Makes a running server as its first start left it, for the next user
 * of a server kept across scenarios (harness/run/pool.c): postgres drops
 * database faultline, ending its sessions, and creates it again from
 * template1 as the first start did (role settings reset too); redis ends
 * every other client's connection, flushes every database, script and
 * function, and resets its statistics. cb as for fl_dep_fault; a reset
 * that fails later ends the server (free it). Returns, without calling
 * cb: -EINVAL a kind that cannot (fl_dep_kind_resets), -EBUSY another
 * operation runs, -ESRCH not running, paused or saturated. */
int fl_dep_reset(fl_dep_t *d, fl_dep_cb cb, void *arg);
/* 1 when fl_dep_reset applies to its dependencies. */
int fl_dep_kind_resets(const fl_dep_kind_t *k);

/* Ends everything the dependency started, at any time (while starting, in
 * the middle of a fault, paused, after a crash): SIGKILL to each process
 * group (its data is about to go; SIGKILL also ends stopped processes),
 * waits on the loop until no process of them is left, removes its folder,
 * frees, then calls done (may be NULL). Pending callbacks are dropped. For
 * an external dependency, done is called before fl_dep_free() returns. */
void fl_dep_free(fl_dep_t *d, void (*done)(void *arg), void *arg);

/* The operation that switches process fault `proc` (enum fl_proc_fault of
 * faults/faults.h, from the fault vocabulary) on (on = 1) or off (0), as
 * an enum fl_dep_fault; -1 when there is none (restart has nothing to
 * undo). */
int fl_dep_fault_of(int proc, int on);

#endif
