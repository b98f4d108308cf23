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

enum fl_dep_type { FL_DEP_POSTGRES, FL_DEP_REDIS, FL_DEP_EXTERNAL };

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

/* Called once when the dependency is ready (rc 0) or failed to start
 * (rc < 0, with a one-sentence reason in fl_dep_error()). */
typedef void (*fl_dep_cb)(fl_dep_t *dep, int rc, void *arg);

/* Starts a managed dependency (postgres or redis) named `name` on a free
 * 127.0.0.1 port; `workdir` is an existing folder where it may create its
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
 * (bad arguments) or -ENOMEM with *out NULL, without calling cb. */
int fl_dep_start(uv_loop_t *loop, enum fl_dep_type type, const char *name,
                 const char *workdir, fl_dep_cb cb, void *arg, fl_dep_t **out);

/* An external dependency: an address only ("host:port"); ready at once. */
int fl_dep_external(const char *name, const char *address, fl_dep_t **out);

const char *fl_dep_name(const fl_dep_t *d);
enum fl_dep_type fl_dep_type(const fl_dep_t *d);
const char *fl_dep_host(const fl_dep_t *d); /* "127.0.0.1" */
/* The port; may still change while the first start runs (a port taken by
 * someone else between our choice and the server's bind is retried). */
int fl_dep_port(const fl_dep_t *d);
/* postgresql://faultline:faultline@127.0.0.1:PORT/faultline or
 * redis://127.0.0.1:PORT/0; for external: the address. */
const char *fl_dep_url(const fl_dep_t *d);
const char *fl_dep_error(const fl_dep_t *d);
/* The server's main pid, 0 when not running. It leads the server's
 * process group. */
int fl_dep_pid(const fl_dep_t *d);
/* The dependency's temporary folder ("" for external). */
const char *fl_dep_dir(const fl_dep_t *d);

/* postgres: max_connections (default 50, so that saturate is quick), from
 * the server's next start on; call it right after fl_dep_start() for the
 * first one. -EINVAL for other types or n outside 5..10000. */
int fl_dep_set_max_connections(fl_dep_t *d, int n);

/* Applies a process fault; cb (may be NULL) is called when it is done
 * (kill, stop: when no process of the server is left; start: when ready
 * again; saturate: when the server refuses connections, twice 100 ms
 * apart; unsaturate: when the connections' server processes have ended).
 * A saturation holds: a slot someone else frees is taken again within
 * 200 ms, as a competing client would. Kill, stop and restart end it.
 * Returns, without calling cb, with a sentence in
 * fl_dep_error():
 *   -EINVAL   a fault the type does not support (saturate on redis,
 *             anything on external);
 *   -EBUSY    another operation (start or fault) is still in progress;
 *   -ESRCH    the server is not running (kill, stop, pause, saturate...),
 *             or start/restart of one whose first start failed;
 *   -EALREADY nothing to do (start while running, resume while not paused,
 *             pause while paused, saturate twice, unsaturate when not
 *             saturated).
 * A fault that fails later reaches cb with rc < 0 and the reason in
 * fl_dep_error(). */
int fl_dep_fault(fl_dep_t *d, enum fl_dep_fault f, fl_dep_cb cb, void *arg);

/* Ends everything the dependency started, at any time (while starting, in
 * the middle of a fault, paused, after a crash): SIGKILL to each process
 * group (its data is about to go; SIGKILL also ends stopped processes),
 * waits on the loop until no process of them is left, removes its folder,
 * frees, then calls done (may be NULL). Pending callbacks are dropped. For
 * an external dependency, done is called before fl_dep_free() returns. */
void fl_dep_free(fl_dep_t *d, void (*done)(void *arg), void *arg);

#endif
