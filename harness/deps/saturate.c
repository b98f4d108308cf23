/*
 * Saturate: postgres's connection slots held from outside, over libpq's
 * non-blocking connect driven by uv_poll handles on the dependency's loop,
 * until the server refuses a connection; held against competing clients
 * until unsaturate (or a kill, stop or restart) lets them go.
 */
#define _GNU_SOURCE
#include "deps_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define SAT_PARALLEL 8    /* connections being opened at once */
#define SAT_SETTLE_MS 100 /* before checking that the server stays full */
#define SAT_TOPUP_MS 200  /* a held saturation tries for a free slot */

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
  fl_sat_drop_all(d, 0);
  if (d->sat_err[0] != '\0') {
    char *nl = strchr(d->sat_err, '\n');
    if (nl != NULL)
      *nl = '\0';
    fl_dep_seterr(d, "postgres: saturate could not open a connection: %s",
                  d->sat_err);
  } else {
    fl_dep_seterr(
        d,
        "postgres: saturate holds %d connections and none was refused "
        "(max_connections is %d)",
        opened, d->server_max_conn);
  }
  fl_dep_op_done(d, -EIO);
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
      fl_dep_op_done(d, 0);
    } else if (d->sat_err[0] != '\0' || d->nsat >= limit || sat_open(d) != 0) {
      sat_fail(d);
    }
  }
}

/* From the tick: ends the settle stage; once saturated, tries for a free
 * slot now and then, as a competing client would: a connection the target
 * closes is taken at once. */
void fl_sat_tick(struct fl_dep *d, uint64_t now) {
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
void fl_sat_drop_all(struct fl_dep *d, int remember) {
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

int fl_sat_start(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  fl_dep_begin_op(d, PH_SATURATING, SATURATE_MS, cb, arg);
  d->sat_stage = SAT_FILL;
  d->sat_refused = 0;
  d->sat_err[0] = '\0';
  sat_more(d);
  return 0;
}

int fl_sat_released_alive(struct fl_dep *d) {
  for (int i = 0; i < d->nreleased; i++)
    if (kill(d->released[i], 0) == 0 || errno != ESRCH)
      return 1;
  return 0;
}
