/*
 * Managed dependencies on the caller's libuv loop.
 *
 * A dependency runs one operation at a time:
 *   start    the kind's first steps, the server, the
 *            kind's probe until it answers, the kind's setup (first start
 *            only).
 *   faults   the process faults of enum fl_dep_fault that its kind
 *            supports.
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
 * setsid()), so a signal to the group reaches every process the server
 * forks.
 *
 * This file holds the operations' state machine, the tick and the public
 * API, and knows no kind by name: what is particular to a server is in its
 * kind's ops table (deps_int.h).
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
  fl_dep_halt(d);
  fl_dep_kill_tree(d, &d->helper_pgid);
  fl_dep_kill_tree(d, &d->server_pgid);
  d->ending = 1;
  d->paused = 0;
  fl_dep_op_done(d, rc);
}

/* ---- the server: start and exit ---- */

/* Starts the server and polls until it answers (PH_BOOT). */
void fl_dep_boot(struct fl_dep *d) {
  d->phase = PH_BOOT;
  d->deadline = uv_now(d->loop) + (uint64_t)d->kind->start_ms;
  d->next_poll = 0;
  d->kind->url(d, d->url, sizeof(d->url));
  int rc = d->kind->spawn_server(d);
  if (rc != 0)
    fl_dep_fail(d, rc, "%s: cannot run %s: %s", d->kind->name, d->kind->name,
                uv_strerror(rc));
}

void fl_dep_boot_ready(struct fl_dep *d) {
  if (d->first_start && d->kind->setup != NULL) {
    d->kind->setup(d);
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

/* Someone took the port between our choice and the server's bind: a first
 * start tries another one. */
static int boot_on_another_port(struct fl_dep *d) {
  if (!d->first_start || ++d->port_tries >= PORT_TRIES ||
      !server_says(d, "already in use"))
    return 0;
  int port = fl_free_port();
  if (port <= 0)
    return 0;
  d->port = port;
  fl_dep_boot(d);
  return 1;
}

void fl_dep_server_exited(struct fl_dep *d, int64_t status, int sig) {
  char h[32], line[ERRLEN];
  const char *how = fl_dep_exit_how(status, sig, h, sizeof(h));
  fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
  d->paused = 0;
  switch (d->phase) {
  case PH_BOOT:
    if (boot_on_another_port(d))
      return;
    /* fall through */
  case PH_SETUP:
    fl_dep_fail(d, FL_ESTART, "%s exited during start-up (%s): %s",
                d->kind->name, how, line);
    break;
  case PH_STOPPING:
  case PH_FREEING:
    break; /* the tick waits for the rest of the group */
  case PH_RESET:
    fl_dep_fail(d, -EIO, "%s exited while being reset (%s): %s", d->kind->name,
                how, line);
    break;
  case PH_SATURATING:
    fl_dep_halt(d);
    fl_dep_seterr(d,
                  "%s exited while its connections were being filled "
                  "(%s): %s",
                  d->kind->name, how, line);
    fl_dep_op_done(d, -EIO);
    break;
  default:
    fl_dep_halt(d);
    if (!d->ending) /* else a failed start killed it */
      fl_dep_seterr(d, "%s exited unexpectedly (%s): %s", d->kind->name, how,
                    line);
    break;
  }
}

/* ---- the tick: polling, deadlines, completions ---- */

static void start_timeout(struct fl_dep *d) {
  char line[ERRLEN];
  int s = d->kind->start_ms / 1000;
  if (d->phase != PH_BOOT) {
    fl_dep_fail(d, -ETIMEDOUT, "%s: %s did not finish within %d s",
                d->kind->name, d->step ? d->step : "a start step", s);
    return;
  }
  fl_dep_log_tail(d, d->server_mark, line, sizeof(line));
  fl_dep_fail(d, -ETIMEDOUT, "%s did not %s within %d s (log: %s)",
              d->kind->name, d->kind->ready_what, s, line);
}

static void tick_stopping(struct fl_dep *d, uint64_t now) {
  if (d->server != NULL || fl_dep_group_alive(d->server_pgid) ||
      fl_dep_strays_alive(d)) {
    if (now >= d->deadline && !d->forced) {
      d->forced = 1;
      fl_dep_kill_tree(d, &d->server_pgid);
    }
    return;
  }
  d->server_pgid = 0;
  if (d->kind->server_gone != NULL)
    d->kind->server_gone(d);
  if (d->restarting) {
    d->restarting = 0;
    fl_dep_boot(d);
  } else if (d->forced) {
    fl_dep_fail(d, -ETIMEDOUT, "%s did not stop within %d s and was killed",
                d->kind->name, STOP_MS / 1000);
  } else {
    fl_dep_op_done(d, 0);
  }
}

static void dep_freed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  void (*done)(void *) = d->free_done;
  void *arg = d->free_arg;
  free(d->priv);
  free(d->strays);
  free(d->name);
  free(d->config);
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
  fl_dep_kill_tree(d, &d->helper_pgid);
  fl_dep_kill_tree(d, &d->server_pgid);
  if (d->handles > 0)
    return;
  if ((d->helper_pgid != 0 || d->server_pgid != 0 || d->nstrays > 0) &&
      now < d->deadline)
    return;
  if (d->removing)
    return;
  d->removing = 1;
  if (d->kind->cleanup != NULL)
    d->kind->cleanup(d);
  fl_rm_tree_async(d->loop, d->dir, dir_removed, d);
}

/* PH_DONE: the operation's callback, which may start the next one or
 * free. */
static void tick_done(struct fl_dep *d) {
  if (!d->saturated)
    uv_timer_stop(&d->tick);
  d->phase = PH_IDLE;
  fl_dep_cb cb = d->cb;
  d->cb = NULL;
  if (cb != NULL)
    cb(d, d->rc, d->arg);
}

static void on_tick(uv_timer_t *t) {
  struct fl_dep *d = t->data;
  uint64_t now = uv_now(d->loop);
  switch (d->phase) {
  case PH_IDLE:
    if (d->saturated)
      d->kind->hold_tick(d, now);
    else
      uv_timer_stop(t);
    break;
  case PH_DONE:
    tick_done(d);
    break;
  case PH_PREPARE:
  case PH_BOOT:
  case PH_SETUP:
    if (now >= d->deadline)
      start_timeout(d);
    else if (d->phase == PH_BOOT && d->server != NULL)
      d->kind->poll_ready(d, now);
    break;
  case PH_STOPPING:
    tick_stopping(d, now);
    break;
  case PH_SATURATING:
  case PH_RELEASING:
    d->kind->hold_tick(d, now);
    break;
  case PH_FREEING:
    tick_freeing(d, now);
    break;
  case PH_RESET:
    if (now >= d->deadline)
      fl_dep_fail(d, -ETIMEDOUT, "%s: a reset did not finish within %d s",
                  d->kind->name, d->kind->start_ms / 1000);
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

static int open_log(struct fl_dep *d, const char *workdir, const char *safe) {
  snprintf(d->log, sizeof(d->log), "%s/%s.log", workdir, safe);
  /* Read-write: fl_dep_log_tail reads what the programs wrote. */
  d->log_fd = open(d->log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (d->log_fd >= 0)
    return 0;
  int rc = -errno;
  fl_dep_seterr(d, "%s: cannot open its log %s: %s", d->kind->name, d->log,
                strerror(errno));
  return rc;
}

static int find_programs(struct fl_dep *d) {
  if (fl_find_program("setpriv", d->setpriv, sizeof(d->setpriv)) != 0) {
    fl_dep_seterr(d, "setpriv not found in PATH: install it with 'apt-get "
                     "install util-linux'");
    return -ENOENT;
  }
  return d->kind->find_programs(d);
}

static int prepare(struct fl_dep *d, const char *workdir) {
  char safe[64];
  safe_name(d->name, safe, sizeof(safe));
  int rc = open_log(d, workdir, safe);
  if (rc == 0)
    rc = find_programs(d);
  if (rc != 0)
    return rc;
  snprintf(d->dir, sizeof(d->dir), "%s/%s-XXXXXX", workdir, safe);
  if (mkdtemp(d->dir) == NULL) {
    rc = -errno;
    fl_dep_seterr(d, "%s: cannot create a folder in %s: %s", d->kind->name,
                  workdir, strerror(errno));
    d->dir[0] = '\0';
    return rc;
  }
  if (d->kind->prepare != NULL)
    rc = d->kind->prepare(d);
  if (rc == 0 && (d->port = fl_free_port()) < 0) {
    rc = d->port;
    d->port = 0;
    fl_dep_seterr(d, "%s: cannot find a free port: %s", d->kind->name,
                  strerror(-rc));
  }
  return rc;
}

/* ---- public API ---- */

static struct fl_dep *dep_new(const struct fl_dep_kind *kind,
                              const char *name) {
  struct fl_dep *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return NULL;
  d->kind = kind;
  d->log_fd = -1;
  d->name = strdup(name);
  if (kind->priv_size > 0)
    d->priv = calloc(1, kind->priv_size);
  if (d->name == NULL || (kind->priv_size > 0 && d->priv == NULL)) {
    free(d->name);
    free(d->priv);
    free(d);
    return NULL;
  }
  return d;
}

int fl_dep_start(uv_loop_t *loop, const fl_dep_kind_t *kind, const char *name,
                 const char *workdir, fl_dep_cb cb, void *arg, fl_dep_t **out) {
  return fl_dep_start_config(loop, kind, name, workdir, NULL, cb, arg, out);
}

int fl_dep_start_config(uv_loop_t *loop, const fl_dep_kind_t *kind,
                        const char *name, const char *workdir,
                        const char *config, fl_dep_cb cb, void *arg,
                        fl_dep_t **out) {
  if (out != NULL)
    *out = NULL;
  if (loop == NULL || kind == NULL || name == NULL || workdir == NULL ||
      out == NULL || !fl_dep_kind_managed(kind))
    return -EINVAL;
  struct fl_dep *d = dep_new(kind, name);
  if (d == NULL)
    return -ENOMEM;
  if (config != NULL && (d->config = strdup(config)) == NULL) {
    free(d->name);
    free(d->priv);
    free(d);
    return -ENOMEM;
  }
  d->loop = loop;
  snprintf(d->host, sizeof(d->host), "127.0.0.1");
  d->first_start = 1;
  uv_timer_init(loop, &d->tick);
  d->tick.data = d;
  *out = d;

  fl_dep_begin_op(d, PH_BOOT, (uint64_t)kind->start_ms, cb, arg);
  int rc = prepare(d, workdir);
  if (rc != 0)
    fl_dep_op_done(d, rc);
  else if (kind->first_steps != NULL)
    kind->first_steps(d);
  else
    fl_dep_boot(d);
  return 0;
}

/* "host:port" or "[v6]:port" into d's host and port. */
static int parse_address(const char *address, char *host, size_t size,
                         int *port) {
  const char *colon = strrchr(address, ':');
  char *end;
  long p = colon ? strtol(colon + 1, &end, 10) : 0;
  if (colon == NULL || colon == address || *end != '\0' || p <= 0 || p > 65535)
    return -EINVAL;
  size_t hlen = (size_t)(colon - address);
  if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
    address++;
    hlen -= 2;
  }
  snprintf(host, size, "%.*s", (int)hlen, address);
  *port = (int)p;
  return 0;
}

int fl_dep_external(const char *name, const char *address, fl_dep_t **out) {
  if (out != NULL)
    *out = NULL;
  char host[256];
  int port;
  if (name == NULL || address == NULL || out == NULL ||
      parse_address(address, host, sizeof(host), &port) != 0)
    return -EINVAL;
  struct fl_dep *d = dep_new(&fl_dep_external_kind, name);
  if (d == NULL)
    return -ENOMEM;
  snprintf(d->host, sizeof(d->host), "%s", host);
  d->port = port;
  snprintf(d->url, sizeof(d->url), "%s", address);
  *out = d;
  return 0;
}

const char *fl_dep_name(const fl_dep_t *d) { return d->name; }
const fl_dep_kind_t *fl_dep_kind_of(const fl_dep_t *d) { return d->kind; }
const char *fl_dep_host(const fl_dep_t *d) { return d->host; }
int fl_dep_port(const fl_dep_t *d) { return d->port; }
const char *fl_dep_url(const fl_dep_t *d) { return d->url; }
const char *fl_dep_error(const fl_dep_t *d) { return d->err; }
const char *fl_dep_dir(const fl_dep_t *d) { return d->dir; }

int fl_dep_pid(const fl_dep_t *d) {
  return d->server != NULL ? d->server->h.pid : 0;
}

const char *fl_dep_var(const fl_dep_t *d, const char *what, char *buf,
                       size_t size) {
  if (strcmp(what, "HOST") == 0)
    return d->host;
  if (strcmp(what, "URL") == 0)
    return d->url;
  if (strcmp(what, "PORT") == 0)
    snprintf(buf, size, "%d", d->port);
  else if (strcmp(what, "ADDR") == 0)
    snprintf(buf, size, "%s:%d", d->host, d->port);
  else
    return NULL;
  return buf;
}

int fl_dep_set_max_connections(fl_dep_t *d, int n) {
  if (d->kind->set_max_connections == NULL)
    return -EINVAL;
  return d->kind->set_max_connections(d, n);
}

int fl_dep_reset(fl_dep_t *d, fl_dep_cb cb, void *arg) {
  if (d->kind->reset == NULL) {
    fl_dep_seterr(d, "%s: a %s cannot be reset", d->name, d->kind->name);
    return -EINVAL;
  }
  if (d->phase != PH_IDLE) {
    fl_dep_seterr(d, "%s: another operation is in progress", d->name);
    return -EBUSY;
  }
  if (d->server == NULL || d->paused || d->saturated) {
    fl_dep_seterr(d, "%s: cannot be reset: it is not running freely", d->name);
    return -ESRCH;
  }
  fl_dep_begin_op(d, PH_RESET, (uint64_t)d->kind->start_ms, cb, arg);
  d->kind->reset(d);
  return 0;
}

void fl_dep_free(fl_dep_t *d, void (*done)(void *arg), void *arg) {
  if (d == NULL || !fl_dep_kind_managed(d->kind)) {
    if (d != NULL) {
      free(d->priv);
      free(d->name);
    }
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
  fl_dep_halt(d);
  fl_dep_kill_tree(d, &d->helper_pgid);
  fl_dep_kill_tree(d, &d->server_pgid);
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
}
