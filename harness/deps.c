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
 */
#define _GNU_SOURCE
#include "deps.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "errors.h"
#include "paths.h"

#include <libpq-fe.h>

#define TICK_MS 20
#define PG_POLL_MS 50     /* between two pg_isready runs */
#define PG_START_MS 30000 /* initdb; then the server until ready */
#define REDIS_START_MS 10000
#define PROBE_MS 1000 /* one PING attempt: a paused server accepts */
#define STOP_MS 30000 /* graceful stop before SIGKILL */
#define SATURATE_MS 10000
#define RELEASE_MS 10000
#define FREE_MS 10000 /* then the folder goes even if a process hangs */
#define PORT_TRIES 5
#define SAT_PARALLEL 8    /* connections being opened at once */
#define SAT_SETTLE_MS 100 /* before checking that the server stays full */
#define SAT_TOPUP_MS 200  /* a held saturation tries for a free slot */
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

/* How far saturate got; see sat_more(). */
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

static void on_tick(uv_timer_t *t);
static void boot(struct fl_dep *d);

static const char *kind(const struct fl_dep *d) {
  return d->type == FL_DEP_POSTGRES ? "postgres" : "redis";
}

static void seterr(struct fl_dep *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
}

/* ---- small system helpers ---- */

/* Is any process of group pgid still alive? Zombies do not count: a
 * backend orphaned by a killed postmaster may wait for a reaper that never
 * comes, yet it holds nothing. */
static int group_alive(pid_t pgid) {
  if (pgid <= 0)
    return 0;
  DIR *proc = opendir("/proc");
  if (proc == NULL)
    return kill(-pgid, 0) == 0;
  int alive = 0;
  struct dirent *e;
  while (!alive && (e = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    char path[300], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
      continue;
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp ...": comm may hold anything. */
    char *p = strrchr(buf, ')');
    char state;
    int ppid, pgrp;
    if (p != NULL && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
        pgrp == pgid && state != 'Z' && state != 'X')
      alive = 1;
  }
  closedir(proc);
  return alive;
}

/* Signals a group we started, if it still has a live process: a group
 * seen empty is forgotten, so that a later group given the same number is
 * never touched. */
static void signal_group(pid_t *pgid, int sig) {
  if (*pgid > 0 && !group_alive(*pgid))
    *pgid = 0;
  if (*pgid > 0)
    kill(-*pgid, sig);
}

/* The most telling line written to the log since `mark`: one naming a
 * port conflict, else the last one naming an error, else the last one. */
static void log_tail(const struct fl_dep *d, off_t mark, char *out,
                     size_t size) {
  snprintf(out, size, "no output in %.400s", d->log);
  struct stat st;
  if (d->log_fd < 0 || fstat(d->log_fd, &st) != 0)
    return;
  off_t from = mark;
  if (st.st_size - from > 8192)
    from = st.st_size - 8192;
  char buf[8193];
  ssize_t n = pread(d->log_fd, buf, sizeof(buf) - 1, from);
  if (n <= 0)
    return;
  buf[n] = '\0';
  /* A port conflict is the root cause of what follows it. */
  const char *last = NULL, *telling = NULL, *port = NULL;
  char *save = NULL;
  for (char *line = strtok_r(buf, "\r\n", &save); line != NULL;
       line = strtok_r(NULL, "\r\n", &save)) {
    while (isspace((unsigned char)*line))
      line++;
    if (*line == '\0')
      continue;
    last = line;
    if (strstr(line, "already in use"))
      port = line;
    else if (strcasestr(line, "error") || strstr(line, "FATAL") ||
             strstr(line, "PANIC"))
      telling = line;
  }
  const char *best = port ? port : telling ? telling : last;
  if (best != NULL)
    snprintf(out, size, "%.300s", best);
}

static int server_says(const struct fl_dep *d, const char *needle) {
  char line[ERRLEN];
  log_tail(d, d->server_mark, line, sizeof(line));
  return strstr(line, needle) != NULL;
}

/* "exit 1" or "signal 9". */
static const char *how(int64_t status, int sig, char *buf, size_t size) {
  if (sig != 0)
    snprintf(buf, size, "signal %d", sig);
  else
    snprintf(buf, size, "exit %d", (int)status);
  return buf;
}

/* ---- operations: start, end, deadlines ---- */

static void begin_op(struct fl_dep *d, enum phase ph, uint64_t ms, fl_dep_cb cb,
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
static void op_done(struct fl_dep *d, int rc) {
  if (d->phase == PH_FREEING)
    return;
  d->phase = PH_DONE;
  d->rc = rc;
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
}

static void probe_close(struct fl_dep *d);
static void sat_drop_all(struct fl_dep *d, int remember);

/* A start that cannot go on: everything it started is killed (fl_dep_free
 * waits for it and removes the folder), the reason goes to fl_dep_error. */
static void fail(struct fl_dep *d, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof(d->err), fmt, ap);
  va_end(ap);
  probe_close(d);
  signal_group(&d->helper_pgid, SIGKILL);
  signal_group(&d->server_pgid, SIGKILL);
  d->ending = 1;
  d->paused = 0;
  op_done(d, rc);
}

/* ---- processes ---- */

static void child_closed(uv_handle_t *h) {
  struct child *c = (struct child *)h;
  c->d->handles--;
  free(c);
}

static void server_exited(struct fl_dep *d, int64_t status, int sig);
static void helper_exited(struct fl_dep *d, int64_t status, int sig);

static void on_child_exit(uv_process_t *h, int64_t status, int sig) {
  struct child *c = (struct child *)h;
  struct fl_dep *d = c->d;
  uv_close((uv_handle_t *)h, child_closed);
  if (c == d->server) {
    d->server = NULL;
    server_exited(d, status, sig);
  } else if (c == d->helper) {
    d->helper = NULL;
    helper_exited(d, status, sig);
  }
}

/* Runs argv (argv[0] a full path) through setpriv, as user postgres when
 * as_pg, in its own process group, output to the log. */
static int spawn(struct fl_dep *d, char *const argv[], int is_server) {
  char *args[32];
  size_t n = 0;
  args[n++] = d->setpriv;
  args[n++] = "--pdeathsig";
  args[n++] = "KILL";
  args[n++] = "--";
  for (size_t i = 0; argv[i] != NULL && n < 31; i++)
    args[n++] = argv[i];
  args[n] = NULL;

  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  for (int i = 1; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = d->log_fd;
  }
  uv_process_options_t po;
  memset(&po, 0, sizeof(po));
  po.file = d->setpriv;
  po.args = args;
  po.cwd = d->dir;
  po.exit_cb = on_child_exit;
  po.stdio = stdio;
  po.stdio_count = 3;
  po.flags = UV_PROCESS_DETACHED;
  if (d->as_pg) {
    po.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    po.uid = d->uid;
    po.gid = d->gid;
  }

  struct child *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->d = d;
  struct stat st;
  off_t mark = fstat(d->log_fd, &st) == 0 ? st.st_size : 0;
  int rc = uv_spawn(d->loop, &c->h, &po);
  d->handles++;
  if (rc != 0) {
    uv_close((uv_handle_t *)&c->h, child_closed);
    return rc;
  }
  if (is_server) {
    signal_group(&d->server_pgid, SIGKILL); /* leftovers of a crash */
    d->server = c;
    d->server_pgid = c->h.pid;
    d->server_mark = mark;
    d->ending = 0;
  } else {
    d->helper = c;
    d->helper_pgid = c->h.pid;
    d->helper_mark = mark;
  }
  return 0;
}

static void pg_path(const struct fl_dep *d, const char *prog, char *out,
                    size_t size) {
  snprintf(out, size, "%s/%s", d->server_bin, prog);
}

static void spawn_helper_or_fail(struct fl_dep *d, char *const argv[],
                                 const char *what) {
  int rc = spawn(d, argv, 0);
  if (rc != 0)
    fail(d, rc, "%s: cannot run %s: %s", kind(d), what, uv_strerror(rc));
}

static void run_initdb(struct fl_dep *d) {
  char bin[PATH_MAX + 32], data[PATH_MAX + 8];
  pg_path(d, "initdb", bin, sizeof(bin));
  snprintf(data, sizeof(data), "%s/data", d->dir);
  char *argv[] = {bin,        "-D", data,   "-A",         "trust",     "-U",
                  "postgres", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
  d->phase = PH_INITDB;
  spawn_helper_or_fail(d, argv, "initdb");
}

static void run_pg_isready(struct fl_dep *d) {
  char bin[PATH_MAX + 32], port[16];
  pg_path(d, "pg_isready", bin, sizeof(bin));
  snprintf(port, sizeof(port), "%d", d->port);
  char *argv[] = {bin, "-q", "-t", "1", "-h", "127.0.0.1", "-p", port, NULL};
  d->next_poll = uv_now(d->loop) + PG_POLL_MS;
  spawn_helper_or_fail(d, argv, "pg_isready");
}

/* The role and database, over the unix socket as superuser postgres. */
static void run_setup(struct fl_dep *d) {
  char bin[PATH_MAX + 32], port[16];
  pg_path(d, "psql", bin, sizeof(bin));
  snprintf(port, sizeof(port), "%d", d->port);
  char *argv[] = {bin,
                  "-X",
                  "-q",
                  "-v",
                  "ON_ERROR_STOP=1",
                  "-h",
                  d->dir,
                  "-p",
                  port,
                  "-U",
                  "postgres",
                  "-d",
                  "postgres",
                  "-c",
                  "CREATE ROLE faultline LOGIN PASSWORD 'faultline' SUPERUSER",
                  "-c",
                  "CREATE DATABASE faultline OWNER faultline",
                  NULL};
  d->phase = PH_SETUP;
  spawn_helper_or_fail(d, argv, "psql");
}

static int spawn_server(struct fl_dep *d) {
  char port[16], maxc[64], bin[PATH_MAX + 32], data[PATH_MAX + 8];
  snprintf(port, sizeof(port), "%d", d->port);
  if (d->type == FL_DEP_REDIS) {
    snprintf(d->url, sizeof(d->url), "redis://127.0.0.1:%d/0", d->port);
    char *argv[] = {d->server_bin, "--port",      port, "--bind",
                    "127.0.0.1",   "--save",      "",   "--appendonly",
                    "no",          "--daemonize", "no", "--dir",
                    d->dir,        NULL};
    return spawn(d, argv, 1);
  }
  snprintf(d->url, sizeof(d->url),
           "postgresql://faultline:faultline@127.0.0.1:%d/faultline", d->port);
  pg_path(d, "postgres", bin, sizeof(bin));
  snprintf(data, sizeof(data), "%s/data", d->dir);
  snprintf(maxc, sizeof(maxc), "max_connections=%d", d->max_conn);
  d->server_max_conn = d->max_conn;
  char *argv[] = {bin,    "-D",        data,
                  "-p",   port,        "-k",
                  d->dir, "-c",        "listen_addresses=127.0.0.1",
                  "-c",   "fsync=off", "-c",
                  maxc,   NULL};
  return spawn(d, argv, 1);
}

/* Starts the server and polls until it answers (PH_BOOT). */
static void boot(struct fl_dep *d) {
  d->phase = PH_BOOT;
  d->deadline = uv_now(d->loop) +
                (d->type == FL_DEP_POSTGRES ? PG_START_MS : REDIS_START_MS);
  d->next_poll = 0;
  int rc = spawn_server(d);
  if (rc != 0)
    fail(d, rc, "%s: cannot run %s: %s", kind(d), kind(d), uv_strerror(rc));
}

static void boot_ready(struct fl_dep *d) {
  if (d->type == FL_DEP_POSTGRES && d->first_start) {
    run_setup(d);
    return;
  }
  d->first_start = 0;
  op_done(d, 0);
}

static void helper_exited(struct fl_dep *d, int64_t status, int sig) {
  char h[32];
  int ok = status == 0 && sig == 0;
  if (d->helper_pgid > 0 && !group_alive(d->helper_pgid))
    d->helper_pgid = 0;
  switch (d->phase) {
  case PH_INITDB:
    if (ok) {
      boot(d);
    } else {
      char line[ERRLEN];
      log_tail(d, d->helper_mark, line, sizeof(line));
      fail(d, FL_ESTART, "postgres: initdb failed (%s): %s",
           how(status, sig, h, sizeof(h)), line);
    }
    break;
  case PH_BOOT:
    if (ok && d->server != NULL)
      boot_ready(d);
    break; /* not yet: the tick runs pg_isready again */
  case PH_SETUP:
    if (ok) {
      d->first_start = 0;
      op_done(d, 0);
    } else {
      char line[ERRLEN];
      log_tail(d, d->helper_mark, line, sizeof(line));
      fail(d, FL_ESTART,
           "postgres: creating role and database faultline failed (%s): %s",
           how(status, sig, h, sizeof(h)), line);
    }
    break;
  default:
    break;
  }
}

static void server_exited(struct fl_dep *d, int64_t status, int sig) {
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
        boot(d);
        return;
      }
    }
    /* fall through */
  case PH_SETUP:
    log_tail(d, d->server_mark, line, sizeof(line));
    fail(d, FL_ESTART, "%s exited during start-up (%s): %s", kind(d),
         how(status, sig, h, sizeof(h)), line);
    break;
  case PH_STOPPING:
  case PH_FREEING:
    break; /* the tick waits for the rest of the group */
  case PH_SATURATING:
    sat_drop_all(d, 0);
    log_tail(d, d->server_mark, line, sizeof(line));
    seterr(d, "postgres exited while being saturated (%s): %s",
           how(status, sig, h, sizeof(h)), line);
    op_done(d, -EIO);
    break;
  default:
    sat_drop_all(d, 0);
    if (d->ending)
      break; /* a failed start killed it */
    log_tail(d, d->server_mark, line, sizeof(line));
    seterr(d, "%s exited unexpectedly (%s): %s", kind(d),
           how(status, sig, h, sizeof(h)), line);
    break;
  }
}

/* ---- the redis PING probe ---- */

static void probe_closed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  d->probe.open = 0;
  d->handles--;
}

static void probe_close(struct fl_dep *d) {
  if (d->probe.open && !uv_is_closing((uv_handle_t *)&d->probe.tcp))
    uv_close((uv_handle_t *)&d->probe.tcp, probe_closed);
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct fl_dep *d = h->data;
  (void)hint;
  size_t room = sizeof(d->probe.buf) - 1 - d->probe.len;
  *buf = uv_buf_init(d->probe.buf + d->probe.len, (unsigned)room);
}

static void probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct fl_dep *d = s->data;
  (void)buf;
  if (n < 0) {
    probe_close(d);
    return;
  }
  d->probe.len += (size_t)n;
  d->probe.buf[d->probe.len] = '\0';
  if (strchr(d->probe.buf, '\n') == NULL &&
      d->probe.len < sizeof(d->probe.buf) - 1)
    return;
  /* Anything but +PONG (-LOADING while it loads) means: not yet. */
  int pong = strncmp(d->probe.buf, "+PONG", 5) == 0;
  probe_close(d);
  if (pong && d->phase == PH_BOOT && d->server != NULL)
    boot_ready(d);
}

static void probe_written(uv_write_t *w, int status) {
  struct fl_dep *d = w->data;
  if (status < 0)
    probe_close(d);
}

static void probe_connected(uv_connect_t *req, int status) {
  struct fl_dep *d = req->data;
  if (status < 0) {
    probe_close(d);
    return;
  }
  static char ping[] = "PING\r\n";
  uv_buf_t b = uv_buf_init(ping, sizeof(ping) - 1);
  d->probe.wreq.data = d;
  if (uv_write(&d->probe.wreq, (uv_stream_t *)&d->probe.tcp, &b, 1,
               probe_written) != 0 ||
      uv_read_start((uv_stream_t *)&d->probe.tcp, probe_alloc, probe_read) != 0)
    probe_close(d);
}

static void probe_start(struct fl_dep *d) {
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", d->port, &addr);
  if (uv_tcp_init(d->loop, &d->probe.tcp) != 0)
    return;
  d->probe.tcp.data = d;
  d->probe.creq.data = d;
  d->probe.open = 1;
  d->probe.len = 0;
  d->probe.started = uv_now(d->loop);
  d->handles++;
  if (uv_tcp_connect(&d->probe.creq, &d->probe.tcp,
                     (const struct sockaddr *)&addr, probe_connected) != 0)
    probe_close(d);
}

/* ---- saturate ---- */

struct satconn {
  uv_poll_t poll;
  struct fl_dep *d;
  PGconn *conn;
  int poll_open; /* until its close callback */
  int backend;   /* its server process, once connected */
};

static void sat_poll_closed(uv_handle_t *h) {
  struct satconn *c = h->data;
  c->poll_open = 0;
  c->d->handles--;
  if (c->conn == NULL)
    free(c);
}

/* Ends one connection. uv_close lets go of the socket at once, so libpq
 * may close it right after; the memory waits for the close callback. */
static void sat_drop(struct satconn *c) {
  if (c->poll_open && !uv_is_closing((uv_handle_t *)&c->poll))
    uv_close((uv_handle_t *)&c->poll, sat_poll_closed);
  PQfinish(c->conn);
  c->conn = NULL;
  if (!c->poll_open)
    free(c);
}

static void sat_more(struct fl_dep *d);
static void sat_step(struct satconn *c);

static void sat_ready(uv_poll_t *p, int status, int events) {
  (void)status; /* an error shows in PQconnectPoll */
  (void)events;
  sat_step(p->data);
}

static void sat_remove(struct fl_dep *d, struct satconn *c) {
  for (int i = 0; i < d->nsat; i++)
    if (d->sat[i] == c) {
      d->sat[i] = d->sat[--d->nsat];
      break;
    }
  sat_drop(c);
}

/* Drives one connection: libpq says what to wait for next. Its options
 * (one numeric hostaddr, no SSL, no GSS encryption) keep it on the socket
 * it started with, which the poll handle watches. */
static void sat_step(struct satconn *c) {
  struct fl_dep *d = c->d;
  switch (PQconnectPoll(c->conn)) {
  case PGRES_POLLING_READING:
    uv_poll_start(&c->poll, UV_READABLE, sat_ready);
    return;
  case PGRES_POLLING_WRITING:
    uv_poll_start(&c->poll, UV_WRITABLE, sat_ready);
    return;
  case PGRES_POLLING_OK:
    c->backend = PQbackendPID(c->conn);
    uv_close((uv_handle_t *)&c->poll, sat_poll_closed); /* held, idle */
    break;
  default: {
    const char *msg = PQerrorMessage(c->conn);
    if (strstr(msg, "too many clients") != NULL ||
        strstr(msg, "remaining connection slots") != NULL)
      d->sat_refused = 1;
    else if (d->sat_err[0] == '\0')
      snprintf(d->sat_err, sizeof(d->sat_err), "%.300s", msg);
    sat_remove(d, c);
    break;
  }
  }
  d->sat_pending--;
  sat_more(d);
}

/* Opens one more connection as superuser faultline: a superuser may take
 * the slots reserved for superusers too, so all of them fill up. */
static int sat_open(struct fl_dep *d) {
  char port[16];
  snprintf(port, sizeof(port), "%d", d->port);
  const char *keys[] = {"hostaddr", "port",    "user",       "password",
                        "dbname",   "sslmode", "gssencmode", "application_name",
                        NULL};
  const char *vals[] = {
      "127.0.0.1", port,      "faultline",          "faultline", "faultline",
      "disable",   "disable", "faultline saturate", NULL};
  if (d->nsat == d->satcap) {
    int cap = d->satcap ? 2 * d->satcap : 64;
    struct satconn **n = realloc(d->sat, (size_t)cap * sizeof(*n));
    if (n == NULL)
      return -ENOMEM;
    d->sat = n;
    d->satcap = cap;
  }
  struct satconn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->d = d;
  c->conn = PQconnectStartParams(keys, vals, 0);
  if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD ||
      uv_poll_init_socket(d->loop, &c->poll, PQsocket(c->conn)) != 0) {
    snprintf(d->sat_err, sizeof(d->sat_err), "%.300s",
             c->conn ? PQerrorMessage(c->conn) : "out of memory");
    PQfinish(c->conn);
    free(c);
    return -EIO;
  }
  c->poll.data = c;
  c->poll_open = 1;
  d->handles++;
  d->sat[d->nsat++] = c;
  d->sat_pending++;
  /* A connection starts as if libpq had asked to wait for writing. */
  uv_poll_start(&c->poll, UV_WRITABLE, sat_ready);
  return 0;
}

static void sat_fail(struct fl_dep *d) {
  int opened = d->nsat;
  sat_drop_all(d, 0);
  if (d->sat_err[0] != '\0') {
    char *nl = strchr(d->sat_err, '\n');
    if (nl != NULL)
      *nl = '\0';
    seterr(d, "postgres: saturate could not open a connection: %s", d->sat_err);
  } else {
    seterr(d,
           "postgres: saturate holds %d connections and none was refused "
           "(max_connections is %d)",
           opened, d->server_max_conn);
  }
  op_done(d, -EIO);
}

/* Called whenever a connection attempt ends. Saturating goes in three
 * stages: fill (SAT_PARALLEL attempts at a time until one is refused),
 * settle (a slot someone held for a moment, such as a backend still
 * ending, may free up meanwhile), confirm (one attempt at a time until one
 * is refused again). */
static void sat_more(struct fl_dep *d) {
  if (d->phase != PH_SATURATING) {
    d->sat_err[0] = '\0'; /* a top-up ended; it may fail quietly */
    return;
  }
  int limit = d->server_max_conn + SAT_PARALLEL;
  if (d->sat_stage == SAT_FILL) {
    while (!d->sat_refused && d->sat_err[0] == '\0' &&
           d->sat_pending < SAT_PARALLEL && d->nsat < limit)
      if (sat_open(d) != 0)
        break;
    if (d->sat_pending > 0)
      return;
    if (!d->sat_refused) {
      sat_fail(d);
      return;
    }
    d->sat_stage = SAT_SETTLE;
    d->sat_next = uv_now(d->loop) + SAT_SETTLE_MS;
  } else if (d->sat_stage == SAT_CONFIRM && d->sat_pending == 0) {
    if (d->sat_refused) {
      d->saturated = 1;
      d->sat_next = uv_now(d->loop) + SAT_TOPUP_MS;
      op_done(d, 0);
    } else if (d->sat_err[0] != '\0' || d->nsat >= limit || sat_open(d) != 0) {
      sat_fail(d);
    }
  }
}

/* From the tick: ends the settle stage; once saturated, tries for a free
 * slot now and then, as a competing client would: a connection the target
 * closes is taken at once. */
static void sat_tick(struct fl_dep *d, uint64_t now) {
  if (d->sat_pending > 0 || now < d->sat_next)
    return;
  if (d->phase == PH_SATURATING && d->sat_stage == SAT_SETTLE) {
    d->sat_stage = SAT_CONFIRM;
    d->sat_refused = 0;
    sat_more(d);
  } else if (d->phase == PH_IDLE && d->saturated && !d->paused) {
    d->sat_next = now + SAT_TOPUP_MS;
    sat_open(d);
  }
}

/* Ends every connection saturate holds; with remember, notes their server
 * processes, which unsaturate waits for: a slot is free only once the
 * postmaster has reaped its backend. */
static void sat_drop_all(struct fl_dep *d, int remember) {
  free(d->released);
  d->released = NULL;
  d->nreleased = 0;
  if (remember && d->nsat > 0)
    d->released = calloc((size_t)d->nsat, sizeof(pid_t));
  for (int i = 0; i < d->nsat; i++) {
    if (d->released != NULL && d->sat[i]->backend > 0)
      d->released[d->nreleased++] = d->sat[i]->backend;
    sat_drop(d->sat[i]);
  }
  d->nsat = 0;
  d->sat_pending = 0;
  d->saturated = 0;
}

static int saturate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  begin_op(d, PH_SATURATING, SATURATE_MS, cb, arg);
  d->sat_stage = SAT_FILL;
  d->sat_refused = 0;
  d->sat_err[0] = '\0';
  sat_more(d);
  return 0;
}

static int released_alive(struct fl_dep *d) {
  for (int i = 0; i < d->nreleased; i++)
    if (kill(d->released[i], 0) == 0 || errno != ESRCH)
      return 1;
  return 0;
}

/* ---- the tick: polling, deadlines, completions ---- */

static void start_timeout(struct fl_dep *d) {
  char line[ERRLEN];
  log_tail(d, d->server_mark, line, sizeof(line));
  if (d->phase == PH_INITDB)
    fail(d, -ETIMEDOUT, "postgres: initdb did not finish within %d s",
         PG_START_MS / 1000);
  else if (d->phase == PH_SETUP)
    fail(d, -ETIMEDOUT,
         "postgres: creating role and database did not finish within %d s",
         PG_START_MS / 1000);
  else if (d->type == FL_DEP_REDIS)
    fail(d, -ETIMEDOUT, "redis did not answer PING within %d s (log: %s)",
         REDIS_START_MS / 1000, line);
  else
    fail(d, -ETIMEDOUT,
         "postgres did not accept sessions within %d s (log: %s)",
         PG_START_MS / 1000, line);
}

static void poll_ready(struct fl_dep *d, uint64_t now) {
  if (d->server == NULL)
    return;
  if (d->type == FL_DEP_POSTGRES) {
    if (d->helper == NULL && now >= d->next_poll)
      run_pg_isready(d);
  } else if (!d->probe.open) {
    probe_start(d);
  } else if (now - d->probe.started > PROBE_MS) {
    probe_close(d);
  }
}

/* A postgres that died by SIGKILL leaves its System V shared memory
 * segment behind; postmaster.pid names it (line 7: key and id). It is
 * removed once nothing is attached to it. */
static void remove_pg_shm(struct fl_dep *d) {
  char p[PATH_MAX + 32], line[256];
  snprintf(p, sizeof(p), "%s/data/postmaster.pid", d->dir);
  FILE *f = fopen(p, "re");
  if (f == NULL)
    return;
  unsigned long key = 0;
  int id = -1;
  for (int i = 1; fgets(line, sizeof(line), f) != NULL; i++)
    if (i == 7 && sscanf(line, "%lu %d", &key, &id) != 2)
      id = -1;
  fclose(f);
  struct shmid_ds ds;
  if (id >= 0 && shmctl(id, IPC_STAT, &ds) == 0 &&
      (unsigned long)ds.shm_perm.__key == key && ds.shm_nattch == 0)
    shmctl(id, IPC_RMID, NULL);
}

/* After a kill, the lock files name a dead postmaster: postgres would take
 * a reused pid for a live one and refuse to start. */
static void remove_pg_locks(struct fl_dep *d) {
  char p[PATH_MAX + 32];
  remove_pg_shm(d);
  snprintf(p, sizeof(p), "%s/data/postmaster.pid", d->dir);
  unlink(p);
  snprintf(p, sizeof(p), "%s/.s.PGSQL.%d.lock", d->dir, d->port);
  unlink(p);
  snprintf(p, sizeof(p), "%s/.s.PGSQL.%d", d->dir, d->port);
  unlink(p);
}

static void tick_stopping(struct fl_dep *d, uint64_t now) {
  if (d->server != NULL || group_alive(d->server_pgid)) {
    if (now >= d->deadline && !d->forced) {
      d->forced = 1;
      signal_group(&d->server_pgid, SIGKILL);
    }
    return;
  }
  d->server_pgid = 0;
  if (d->type == FL_DEP_POSTGRES)
    remove_pg_locks(d);
  if (d->restarting) {
    d->restarting = 0;
    boot(d);
  } else if (d->forced) {
    fail(d, -ETIMEDOUT, "%s did not stop within %d s and was killed", kind(d),
         STOP_MS / 1000);
  } else {
    op_done(d, 0);
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
  signal_group(&d->helper_pgid, SIGKILL);
  signal_group(&d->server_pgid, SIGKILL);
  if (d->handles > 0)
    return;
  if ((d->helper_pgid != 0 || d->server_pgid != 0) && now < d->deadline)
    return;
  if (d->removing)
    return;
  d->removing = 1;
  if (d->type == FL_DEP_POSTGRES && d->dir[0] != '\0')
    remove_pg_shm(d);
  fl_rm_tree_async(d->loop, d->dir, dir_removed, d);
}

static void on_tick(uv_timer_t *t) {
  struct fl_dep *d = t->data;
  uint64_t now = uv_now(d->loop);
  switch (d->phase) {
  case PH_IDLE:
    if (d->saturated)
      sat_tick(d, now);
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
      sat_drop_all(d, 0);
      seterr(d, "postgres: saturate did not fill max_connections within %d s",
             SATURATE_MS / 1000);
      op_done(d, -ETIMEDOUT);
    } else {
      sat_tick(d, now);
    }
    break;
  case PH_RELEASING:
    if (!released_alive(d)) {
      op_done(d, 0);
    } else if (now >= d->deadline) {
      seterr(d, "postgres: the saturating sessions did not end within %d s",
             RELEASE_MS / 1000);
      op_done(d, -ETIMEDOUT);
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

/* initdb from PATH, else from the newest /usr/lib/postgresql/N/bin
 * (Debian keeps the server programs out of PATH); its real folder must
 * hold postgres, pg_isready and psql too. */
static int find_pg_bin(struct fl_dep *d) {
  char initdb[PATH_MAX];
  if (fl_find_program("initdb", initdb, sizeof(initdb)) != 0) {
    glob_t g;
    int best = -1;
    initdb[0] = '\0';
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
        if (v > best && access(g.gl_pathv[i], X_OK) == 0) {
          best = v;
          snprintf(initdb, sizeof(initdb), "%s", g.gl_pathv[i]);
        }
      }
      globfree(&g);
    }
    if (initdb[0] == '\0') {
      seterr(d, "postgres: initdb not found in PATH nor in "
                "/usr/lib/postgresql/*/bin: install it with 'apt-get "
                "install postgresql'");
      return -ENOENT;
    }
  }
  /* A link in PATH (/usr/local/bin/initdb) leads to the real folder. */
  char real[PATH_MAX];
  if (realpath(initdb, real) == NULL)
    snprintf(real, sizeof(real), "%s", initdb);
  *strrchr(real, '/') = '\0';
  snprintf(d->server_bin, sizeof(d->server_bin), "%s", real);
  static const char *const progs[] = {"postgres", "pg_isready", "psql"};
  for (size_t i = 0; i < 3; i++) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/%s", d->server_bin, progs[i]);
    if (access(p, X_OK) != 0) {
      seterr(d, "postgres: %s has initdb but no %s", d->server_bin, progs[i]);
      return -ENOENT;
    }
  }
  return 0;
}

/* The first folder above `path` that uid/gid cannot search, or NULL. */
static const char *unsearchable(const char *path, uid_t uid, gid_t gid,
                                char *buf, size_t size) {
  snprintf(buf, size, "%s", path);
  char *end = strrchr(buf, '/');
  if (end == NULL)
    return NULL;
  *end = '\0'; /* the folder itself will be theirs */
  for (char *p = buf;;) {
    char *slash = strchr(p + 1, '/');
    if (slash != NULL)
      *slash = '\0';
    struct stat st;
    const char *dir = buf[0] ? buf : "/";
    if (stat(dir, &st) != 0 || !(st.st_mode & (st.st_uid == uid   ? S_IXUSR
                                               : st.st_gid == gid ? S_IXGRP
                                                                  : S_IXOTH)))
      return dir;
    if (slash == NULL)
      return NULL;
    *slash = '/';
    p = slash;
  }
}

static int find_programs(struct fl_dep *d) {
  if (fl_find_program("setpriv", d->setpriv, sizeof(d->setpriv)) != 0) {
    seterr(d, "setpriv not found in PATH: install it with 'apt-get install "
              "util-linux'");
    return -ENOENT;
  }
  if (d->type == FL_DEP_REDIS) {
    if (fl_find_program("redis-server", d->server_bin, sizeof(d->server_bin)) !=
        0) {
      seterr(d, "redis-server not found in PATH: install it with 'apt-get "
                "install redis-server'");
      return -ENOENT;
    }
    return 0;
  }
  int rc = find_pg_bin(d);
  if (rc != 0 || geteuid() != 0)
    return rc;
  struct passwd *pw = getpwnam("postgres");
  if (pw == NULL) {
    seterr(d, "postgres refuses to run as root and there is no user "
              "'postgres' to run it as: install the postgresql package or "
              "create that user");
    return -ENOENT;
  }
  d->as_pg = 1;
  d->uid = pw->pw_uid;
  d->gid = pw->pw_gid;
  return 0;
}

static int prepare(struct fl_dep *d, const char *workdir) {
  char safe[64];
  safe_name(d->name, safe, sizeof(safe));
  snprintf(d->log, sizeof(d->log), "%s/%s.log", workdir, safe);
  /* Read-write: log_tail reads what the programs wrote. */
  d->log_fd = open(d->log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (d->log_fd < 0) {
    int rc = -errno;
    seterr(d, "%s: cannot open its log %s: %s", kind(d), d->log,
           strerror(errno));
    return rc;
  }
  int rc = find_programs(d);
  if (rc != 0)
    return rc;
  snprintf(d->dir, sizeof(d->dir), "%s/%s-XXXXXX", workdir, safe);
  if (mkdtemp(d->dir) == NULL) {
    rc = -errno;
    seterr(d, "%s: cannot create a folder in %s: %s", kind(d), workdir,
           strerror(errno));
    d->dir[0] = '\0';
    return rc;
  }
  if (d->type != FL_DEP_POSTGRES)
    return 0;
  char buf[PATH_MAX];
  const char *bad;
  if (d->as_pg && chown(d->dir, d->uid, d->gid) != 0) {
    rc = -errno;
    seterr(d, "postgres: cannot give %s to user postgres: %s", d->dir,
           strerror(errno));
    return rc;
  }
  if (d->as_pg &&
      (bad = unsearchable(d->dir, d->uid, d->gid, buf, sizeof(buf))) != NULL) {
    seterr(d,
           "postgres: user postgres cannot reach %s (%s is not searchable "
           "by it): use a work folder it can reach",
           d->dir, bad);
    return -EACCES;
  }
  struct sockaddr_un un;
  if (strlen(d->dir) + sizeof("/.s.PGSQL.65535") > sizeof(un.sun_path)) {
    seterr(d,
           "postgres: its socket folder %s is too long for a unix socket "
           "path: use a shorter work folder",
           d->dir);
    return -ENAMETOOLONG;
  }
  return 0;
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

  begin_op(d, type == FL_DEP_POSTGRES ? PH_INITDB : PH_BOOT, PG_START_MS, cb,
           arg);
  int rc = prepare(d, workdir);
  if (rc == 0 && (d->port = fl_free_port()) < 0) {
    rc = d->port;
    d->port = 0;
    seterr(d, "%s: cannot find a free port: %s", kind(d), strerror(-rc));
  }
  if (rc != 0)
    op_done(d, rc);
  else if (type == FL_DEP_POSTGRES)
    run_initdb(d);
  else
    boot(d);
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

static const char *fault_name(enum fl_dep_fault f) {
  switch (f) {
  case FL_DEP_KILL:
    return "kill";
  case FL_DEP_STOP:
    return "stop";
  case FL_DEP_START:
    return "start";
  case FL_DEP_PAUSE:
    return "pause";
  case FL_DEP_RESUME:
    return "resume";
  case FL_DEP_RESTART:
    return "restart";
  case FL_DEP_SATURATE:
    return "saturate";
  case FL_DEP_UNSATURATE:
    return "unsaturate";
  }
  return "?";
}

/* Completes at once; cb still runs from the loop. */
static int immediate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  d->cb = cb;
  d->arg = arg;
  op_done(d, 0);
  return 0;
}

static int refuse(struct fl_dep *d, int rc, enum fl_dep_fault f,
                  const char *why) {
  seterr(d, "%s: cannot %s: %s", d->name, fault_name(f), why);
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
    sat_drop_all(d, 0);
    d->paused = 0;
    d->restarting = 0;
    d->ending = 1;
    kill(-d->server_pgid, SIGKILL);
    begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
    return 0;
  case FL_DEP_STOP:
  case FL_DEP_RESTART:
    if (!running && (f == FL_DEP_STOP || d->first_start))
      return refuse(d, -ESRCH, f, "it is not running");
    if (!running) {
      begin_op(d, PH_BOOT, 0, cb, arg);
      boot(d);
      return 0;
    }
    sat_drop_all(d, 0);
    d->restarting = f == FL_DEP_RESTART;
    /* postgres: SIGINT is a fast shutdown (sessions ended, checkpoint). A
     * paused server gets the signal first and SIGCONT after, so that the
     * signal is waiting when it wakes. */
    d->ending = 1;
    kill(pid, d->type == FL_DEP_POSTGRES ? SIGINT : SIGTERM);
    if (d->paused)
      kill(-d->server_pgid, SIGCONT);
    d->paused = 0;
    begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
    return 0;
  case FL_DEP_START:
    if (running)
      return refuse(d, -EALREADY, f, "it is already running");
    if (d->first_start)
      return refuse(d, -ESRCH, f, "it never started in the first place");
    begin_op(d, PH_BOOT, 0, cb, arg);
    boot(d);
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
    return saturate(d, cb, arg);
  case FL_DEP_UNSATURATE:
    if (!d->saturated)
      return refuse(d, -EALREADY, f, "it is not saturated");
    sat_drop_all(d, !d->paused); /* a paused backend cannot end yet */
    begin_op(d, PH_RELEASING, RELEASE_MS, cb, arg);
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
  probe_close(d);
  sat_drop_all(d, 0);
  signal_group(&d->helper_pgid, SIGKILL);
  signal_group(&d->server_pgid, SIGKILL);
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
}
