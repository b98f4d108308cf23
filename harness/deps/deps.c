/*
 * Managed dependencies on the caller's libuv loop.
 *
 * A dependency runs one operation at a time:
 *   start    postgres: initdb, server, pg_isready until it accepts
 *            sessions, psql creating role and database (first start only);
 *            redis: server, PING until +PONG.
 *   faults   kill, stop, start, pause, resume, restart, saturate,
 *            unsaturate.
 *   free     SIGKILL, wait until the process groups are empty, remove the
 *            folder.
 * One repeating timer (the tick) polls readiness and deadlines, and
 * delivers every completion, so that a callback never runs inside the call
 * that started its operation and may itself start the next one.
 *
 * Every program runs through `setpriv --pdeathsig KILL -- PROGRAM`: uv_spawn
 * has no PR_SET_PDEATHSIG, and setpriv sets it after uv_spawn's setuid
 * (which would clear it) and then execs the program under the same pid.
 * Each program leads its own process group (UV_PROCESS_DETACHED is
 * setsid()), so a signal to the group reaches every postgres backend.
 *
 * This file holds the operations' state machine, the tick and the public
 * API; proc.c runs the programs, postgres.c and redis.c
 * know each server, saturate.c holds postgres's connections.
 */

#define _GNU_SOURCE
#include "deps_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static void on_tick(uv_timer_t *t);

void fl_dep_seterr(struct fl_dep *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
}

/* ---- operations: start, end, deadlines ---- */

void fl_dep_begin_op(struct fl_dep *d, enum phase ph, uint64_t ms, fl_dep_cb cb,
                     void *arg) {
  d->phase = ph;
  d->deadline = uv_now(d->loop) + ms;
  d->cb = cb;
  d->arg = arg;
  d->rc = 0;
  d->forced = 0;
  uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
}

/* Ends the operation; its callback runs from the next tick. */
void fl_dep_op_done(struct fl_dep *d, int rc) {
  if (d->phase == PH_FREEING)
    return;
  d->phase = PH_DONE;
  d->rc = rc;
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
}

/* A start that cannot go on: everything it started is killed (fl_dep_free
 * waits for it and removes the folder), the reason goes to fl_dep_error. */
void fl_dep_fail(struct fl_dep *d, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
  fl_redis_probe_close(d);
  fl_dep_signal_group(&d->helper_pgid, SIGKILL);
  fl_dep_signal_group(&d->server_pgid, SIGKILL);
  d->ending = 1;
  d->paused = 0;
  fl_dep_op_done(d, rc);
}

/* ---- the server: start and exit ---- */

/* Starts the server and polls until it answers (PH_BOOT). */
void fl_dep_boot(struct fl_dep *d) {
  d->phase = PH_BOOT;
  d->deadline = uv_now(d->loop) +
                (d->type == FL_DEP_POSTGRES ? PG_START_MS : REDIS_START_MS);
  d->next_poll = 0;
  int rc = d->type == FL_DEP_REDIS ? fl_redis_spawn_server(d)
                                   : fl_pg_spawn_server(d);
  if (rc != 0)
    fl_dep_fail(d, rc, "%s: cannot run %s: %s", fl_dep_kind(d), fl_dep_kind(d),
                uv_strerror(rc));
}

void fl_dep_boot_ready(struct fl_dep *d) {
  if (d->type == FL_DEP_POSTGRES && d->first_start) {
    fl_pg_run_setup(d);
    return;
  }
  d->first_start = 0;
  fl_dep_op_done(d, 0);
}

static int server_says(const struct fl_dep *d, const char *needle) {
  char line[ERRLEN];
  fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
  return strstr(line, needle) != NULL;
}

void fl_dep_server_exited(struct fl_dep *d, int64_t status, int sig) {
  char h[32], line[ERRLEN];
  d->paused = 0;
  switch (d->phase) {
  case PH_BOOT:
    /* Someone took the port between our choice and the server's bind. */
    if (d->first_start && ++d->port_tries < PORT_TRIES &&
        server_says(d, "already in use")) {
      int port = fl_free_port();
      if (port > 0) {
        d->port = port;
        fl_dep_boot(d);
        return;
      }
    }
    /* fall through */
  case PH_SETUP:
    fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
    fl_dep_fail(d, FL_ESTART, "%s exited during start-up (%s): %s",
                fl_dep_kind(d), fl_dep_exit_how(status, sig, h, sizeof(h)),
                line);
    break;
  case PH_STOPPING:
  case PH_FREEING:
    break; /* the tick waits for the rest of the group */
  case PH_SATURATING:
    fl_sat_drop_all(d, 0);
    fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
    fl_dep_seterr(d, "postgres exited while being saturated (%s): %s",
                  fl_dep_exit_how(status, sig, h, sizeof(h)), line);
    fl_dep_op_done(d, -EIO);
    break;
  default:
    fl_sat_drop_all(d, 0);
    if (d->ending)
      break; /* a failed start killed it */
    fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
    fl_dep_seterr(d, "%s exited unexpectedly (%s): %s", fl_dep_kind(d),
                  fl_dep_exit_how(status, sig, h, sizeof(h)), line);
    break;
  }
}

/* ---- the tick: polling, deadlines, completions ---- */

static void start_timeout(struct fl_dep *d) {
  char line[ERRLEN];
  fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
  if (d->phase == PH_INITDB)
    fl_dep_fail(d, -ETIMEDOUT, "postgres: initdb did not finish within %d s",
                PG_START_MS / 1000);
  else if (d->phase == PH_SETUP)
    fl_dep_fail(
        d, -ETIMEDOUT,
        "postgres: creating role and database did not finish within %d s",
        PG_START_MS / 1000);
  else if (d->type == FL_DEP_REDIS)
    fl_dep_fail(d, -ETIMEDOUT,
                "redis did not answer PING within %d s (log: %s)",
                REDIS_START_MS / 1000, line);
  else
    fl_dep_fail(d, -ETIMEDOUT,
                "postgres did not accept sessions within %d s (log: %s)",
                PG_START_MS / 1000, line);
}

static void poll_ready(struct fl_dep *d, uint64_t now) {
  if (d->server == NULL)
    return;
  if (d->type == FL_DEP_POSTGRES)
    fl_pg_poll_ready(d, now);
  else
    fl_redis_poll_ready(d, now);
}

static void tick_stopping(struct fl_dep *d, uint64_t now) {
  if (d->server != NULL || fl_dep_group_alive(d->server_pgid)) {
    if (now >= d->deadline && !d->forced) {
      d->forced = 1;
      fl_dep_signal_group(&d->server_pgid, SIGKILL);
    }
    return;
  }
  d->server_pgid = 0;
  if (d->type == FL_DEP_POSTGRES)
    fl_pg_remove_locks(d);
  if (d->restarting) {
    d->restarting = 0;
    fl_dep_boot(d);
  } else if (d->forced) {
    fl_dep_fail(d, -ETIMEDOUT, "%s did not stop within %d s and was killed",
                fl_dep_kind(d), STOP_MS / 1000);
  } else {
    fl_dep_op_done(d, 0);
  }
}

static void dep_freed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  void (*done)(void *) = d->free_done;
  void *arg = d->free_arg;
  free(d->released);
  free(d->sat);
  free(d->name);
  free(d);
  if (done != NULL)
    done(arg);
}

static void dir_removed(void *arg) {
  struct fl_dep *d = arg;
  if (d->log_fd >= 0)
    close(d->log_fd);
  d->log_fd = -1;
  uv_close((uv_handle_t *)&d->tick, dep_freed);
}

static void tick_freeing(struct fl_dep *d, uint64_t now) {
  fl_dep_signal_group(&d->helper_pgid, SIGKILL);
  fl_dep_signal_group(&d->server_pgid, SIGKILL);
  if (d->handles > 0)
    return;
  if ((d->helper_pgid != 0 || d->server_pgid != 0) && now < d->deadline)
    return;
  if (d->removing)
    return;
  d->removing = 1;
  if (d->type == FL_DEP_POSTGRES && d->dir[0] != '\0')
    fl_pg_remove_shm(d);
  fl_rm_tree_async(d->loop, d->dir, dir_removed, d);
}

static void on_tick(uv_timer_t *t) {
  struct fl_dep *d = t->data;
  uint64_t now = uv_now(d->loop);
  switch (d->phase) {
  case PH_IDLE:
    if (d->saturated)
      fl_sat_tick(d, now);
    else
      uv_timer_stop(t);
    break;
  case PH_DONE: {
    if (!d->saturated)
      uv_timer_stop(t);
    d->phase = PH_IDLE;
    fl_dep_cb cb = d->cb;
    d->cb = NULL;
    if (cb != NULL)
      cb(d, d->rc, d->arg); /* may start the next operation, or free */
    break;
  }
  case PH_INITDB:
  case PH_BOOT:
  case PH_SETUP:
    if (now >= d->deadline)
      start_timeout(d);
    else if (d->phase == PH_BOOT)
      poll_ready(d, now);
    break;
  case PH_STOPPING:
    tick_stopping(d, now);
    break;
  case PH_SATURATING:
    if (now >= d->deadline) {
      fl_sat_drop_all(d, 0);
      fl_dep_seterr(
          d, "postgres: saturate did not fill max_connections within %d s",
          SATURATE_MS / 1000);
      fl_dep_op_done(d, -ETIMEDOUT);
    } else {
      fl_sat_tick(d, now);
    }
    break;
  case PH_RELEASING:
    if (!fl_sat_released_alive(d)) {
      fl_dep_op_done(d, 0);
    } else if (now >= d->deadline) {
      fl_dep_seterr(d,
                    "postgres: the saturating sessions did not end within %d s",
                    RELEASE_MS / 1000);
      fl_dep_op_done(d, -ETIMEDOUT);
    }
    break;
  case PH_FREEING:
    tick_freeing(d, now);
    break;
  }
}

/* ---- preparing a start ---- */

/* NAME made safe for a file name. */
static void safe_name(const char *name, char *out, size_t size) {
  size_t n = 0;
  for (; name[n] != '\0' && n + 1 < size && n < 40; n++)
    out[n] = isalnum((unsigned char)name[n]) || strchr("._-", name[n]) ? name[n]
                                                                       : '_';
  out[n] = '\0';
  if (n == 0 || out[0] == '.')
    snprintf(out, size, "dep");
}

static int find_programs(struct fl_dep *d) {
  if (fl_find_program("setpriv", d->setpriv, sizeof(d->setpriv)) != 0) {
    fl_dep_seterr(d, "setpriv not found in PATH: install it with 'apt-get "
                     "install util-linux'");
    return -ENOENT;
  }
  if (d->type == FL_DEP_REDIS)
    return fl_redis_find_server(d);
  return fl_pg_find_programs(d);
}

static int prepare(struct fl_dep *d, const char *workdir) {
  char safe[64];
  safe_name(d->name, safe, sizeof(safe));
  snprintf(d->log, sizeof(d->log), "%s/%s.log", workdir, safe);
  /* Read-write: fl_dep_log_tail reads what the programs wrote. */
  d->log_fd = open(d->log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (d->log_fd < 0) {
    int rc = -errno;
    fl_dep_seterr(d, "%s: cannot open its log %s: %s", fl_dep_kind(d), d->log,
                  strerror(errno));
    return rc;
  }
  int rc = find_programs(d);
  if (rc != 0)
    return rc;
  snprintf(d->dir, sizeof(d->dir), "%s/%s-XXXXXX", workdir, safe);
  if (mkdtemp(d->dir) == NULL) {
    rc = -errno;
    fl_dep_seterr(d, "%s: cannot create a folder in %s: %s", fl_dep_kind(d),
                  workdir, strerror(errno));
    d->dir[0] = '\0';
    return rc;
  }
  if (d->type != FL_DEP_POSTGRES)
    return 0;
  return fl_pg_prepare_dir(d);
}

/* ---- public API ---- */

int fl_dep_start(uv_loop_t *loop, enum fl_dep_type type, const char *name,
                 const char *workdir, fl_dep_cb cb, void *arg, fl_dep_t **out) {
  if (out != NULL)
    *out = NULL;
  if (loop == NULL || name == NULL || workdir == NULL || out == NULL ||
      (type != FL_DEP_POSTGRES && type != FL_DEP_REDIS))
    return -EINVAL;
  struct fl_dep *d = calloc(1, sizeof(*d));
  if (d == NULL || (d->name = strdup(name)) == NULL) {
    free(d);
    return -ENOMEM;
  }
  d->loop = loop;
  d->type = type;
  snprintf(d->host, sizeof(d->host), "127.0.0.1");
  d->log_fd = -1;
  d->max_conn = 50;
  d->first_start = 1;
  uv_timer_init(loop, &d->tick);
  d->tick.data = d;
  *out = d;

  fl_dep_begin_op(d, type == FL_DEP_POSTGRES ? PH_INITDB : PH_BOOT, PG_START_MS,
                  cb, arg);
  int rc = prepare(d, workdir);
  if (rc == 0 && (d->port = fl_free_port()) < 0) {
    rc = d->port;
    d->port = 0;
    fl_dep_seterr(d, "%s: cannot find a free port: %s", fl_dep_kind(d),
                  strerror(-rc));
  }
  if (rc != 0)
    fl_dep_op_done(d, rc);
  else if (type == FL_DEP_POSTGRES)
    fl_pg_run_initdb(d);
  else
    fl_dep_boot(d);
  return 0;
}

int fl_dep_external(const char *name, const char *address, fl_dep_t **out) {
  if (out != NULL)
    *out = NULL;
  if (name == NULL || address == NULL || out == NULL)
    return -EINVAL;
  const char *colon = strrchr(address, ':');
  char *end;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (colon == NULL || colon == address || *end != '\0' || port <= 0 ||
      port > 65535)
    return -EINVAL;
  struct fl_dep *d = calloc(1, sizeof(*d));
  if (d == NULL || (d->name = strdup(name)) == NULL) {
    free(d);
    return -ENOMEM;
  }
  d->type = FL_DEP_EXTERNAL;
  d->log_fd = -1;
  const char *host = address;
  size_t hlen = (size_t)(colon - address);
  if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
    host++;
    hlen -= 2;
  }
  snprintf(d->host, sizeof(d->host), "%.*s", (int)hlen, host);
  d->port = (int)port;
  snprintf(d->url, sizeof(d->url), "%s", address);
  *out = d;
  return 0;
}

const char *fl_dep_name(const fl_dep_t *d) { return d->name; }
enum fl_dep_type fl_dep_type(const fl_dep_t *d) { return d->type; }
const char *fl_dep_host(const fl_dep_t *d) { return d->host; }
int fl_dep_port(const fl_dep_t *d) { return d->port; }
const char *fl_dep_url(const fl_dep_t *d) { return d->url; }
const char *fl_dep_error(const fl_dep_t *d) { return d->err; }
const char *fl_dep_dir(const fl_dep_t *d) { return d->dir; }

int fl_dep_pid(const fl_dep_t *d) {
  return d->server != NULL ? d->server->h.pid : 0;
}

int fl_dep_set_max_connections(fl_dep_t *d, int n) {
  if (d->type != FL_DEP_POSTGRES || n < 5 || n > 10000)
    return -EINVAL;
  d->max_conn = n;
  return 0;
}

/* The operation, for "NAME: cannot OPERATION: why". It says what is done
 * to the process, never the fault's name: the runner leads its warning
 * with that, from the fault vocabulary. */
static const char *fault_name(enum fl_dep_fault f) {
  switch (f) {
  case FL_DEP_KILL:
    return "send SIGKILL";
  case FL_DEP_STOP:
    return "shut it down";
  case FL_DEP_START:
    return "start it again";
  case FL_DEP_PAUSE:
    return "send SIGSTOP";
  case FL_DEP_RESUME:
    return "send SIGCONT";
  case FL_DEP_RESTART:
    return "shut it down and start it again";
  case FL_DEP_SATURATE:
    return "hold its connection slots";
  case FL_DEP_UNSATURATE:
    return "release its connection slots";
  }
  return "?";
}

/* Completes at once; cb still runs from the loop. */
static int immediate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  d->cb = cb;
  d->arg = arg;
  fl_dep_op_done(d, 0);
  return 0;
}

static int refuse(struct fl_dep *d, int rc, enum fl_dep_fault f,
                  const char *why) {
  fl_dep_seterr(d, "%s: cannot %s: %s", d->name, fault_name(f), why);
  return rc;
}

int fl_dep_fault(fl_dep_t *d, enum fl_dep_fault f, fl_dep_cb cb, void *arg) {
  if (d->type == FL_DEP_EXTERNAL)
    return refuse(d, -EINVAL, f, "an external dependency has no process");
  if ((f == FL_DEP_SATURATE || f == FL_DEP_UNSATURATE) &&
      d->type != FL_DEP_POSTGRES)
    return refuse(d, -EINVAL, f, "it applies to postgres only");
  if (d->phase != PH_IDLE)
    return refuse(d, -EBUSY, f, "a previous operation is still in progress");
  int running = d->server != NULL;
  pid_t pid = running ? d->server->h.pid : 0;
  switch (f) {
  case FL_DEP_KILL:
    if (!running)
      return refuse(d, -ESRCH, f, "it is not running");
    fl_sat_drop_all(d, 0);
    d->paused = 0;
    d->restarting = 0;
    d->ending = 1;
    kill(-d->server_pgid, SIGKILL);
    fl_dep_begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
    return 0;
  case FL_DEP_STOP:
  case FL_DEP_RESTART:
    if (!running && (f == FL_DEP_STOP || d->first_start))
      return refuse(d, -ESRCH, f, "it is not running");
    if (!running) {
      fl_dep_begin_op(d, PH_BOOT, 0, cb, arg);
      fl_dep_boot(d);
      return 0;
    }
    fl_sat_drop_all(d, 0);
    d->restarting = f == FL_DEP_RESTART;
    /* postgres: SIGINT is a fast shutdown (sessions ended, checkpoint). A
     * paused server gets the signal first and SIGCONT after, so that the
     * signal is waiting when it wakes. */
    d->ending = 1;
    kill(pid, d->type == FL_DEP_POSTGRES ? SIGINT : SIGTERM);
    if (d->paused)
      kill(-d->server_pgid, SIGCONT);
    d->paused = 0;
    fl_dep_begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
    return 0;
  case FL_DEP_START:
    if (running)
      return refuse(d, -EALREADY, f, "it is already running");
    if (d->first_start)
      return refuse(d, -ESRCH, f, "it never started in the first place");
    fl_dep_begin_op(d, PH_BOOT, 0, cb, arg);
    fl_dep_boot(d);
    return 0;
  case FL_DEP_PAUSE:
    if (!running)
      return refuse(d, -ESRCH, f, "it is not running");
    if (d->paused)
      return refuse(d, -EALREADY, f, "it is already paused");
    kill(-d->server_pgid, SIGSTOP);
    d->paused = 1;
    return immediate(d, cb, arg);
  case FL_DEP_RESUME:
    if (!running || !d->paused)
      return refuse(d, -EALREADY, f, "it is not paused");
    kill(-d->server_pgid, SIGCONT);
    d->paused = 0;
    return immediate(d, cb, arg);
  case FL_DEP_SATURATE:
    if (!running)
      return refuse(d, -ESRCH, f, "it is not running");
    if (d->paused)
      return refuse(d, -EBUSY, f, "it is paused");
    if (d->saturated)
      return refuse(d, -EALREADY, f, "it is already saturated");
    return fl_sat_start(d, cb, arg);
  case FL_DEP_UNSATURATE:
    if (!d->saturated)
      return refuse(d, -EALREADY, f, "it is not saturated");
    fl_sat_drop_all(d, !d->paused); /* a paused backend cannot end yet */
    fl_dep_begin_op(d, PH_RELEASING, RELEASE_MS, cb, arg);
    return 0;
  }
  return refuse(d, -EINVAL, f, "unknown fault");
}

void fl_dep_free(fl_dep_t *d, void (*done)(void *arg), void *arg) {
  if (d == NULL || d->type == FL_DEP_EXTERNAL) {
    if (d != NULL)
      free(d->name);
    free(d);
    if (done != NULL)
      done(arg);
    return;
  }
  d->free_done = done;
  d->free_arg = arg;
  d->cb = NULL;
  d->phase = PH_FREEING;
  d->deadline = uv_now(d->loop) + FREE_MS;
  fl_redis_probe_close(d);
  fl_sat_drop_all(d, 0);
  fl_dep_signal_group(&d->helper_pgid, SIGKILL);
  fl_dep_signal_group(&d->server_pgid, SIGKILL);
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
}
