/*
 * Saturate: postgres's connection slots held from outside, over libpq's
 * non-blocking connect driven by uv_poll handles on the dependency's loop,
 * until the server refuses a connection; held against competing clients
 * until unsaturate (or a kill, stop or restart) lets them go.
 */
#define _GNU_SOURCE
#include "postgres_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define SAT_PARALLEL 8    /* connections being opened at once */
#define SAT_SETTLE_MS 100 /* before checking that the server stays full */
#define SAT_TOPUP_MS 200  /* a held saturation tries for a free slot */
#define SATURATE_MS 10000 /* until the server refuses connections */
#define RELEASE_MS 10000  /* until the released backends have ended */

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
  struct pg *pg = fl_pg(d);
  for (int i = 0; i < pg->nsat; i++)
    if (pg->sat[i] == c) {
      pg->sat[i] = pg->sat[--pg->nsat];
      break;
    }
  sat_drop(c);
}

/* Drives one connection: libpq says what to wait for next. Its options
 * (one numeric hostaddr, no SSL, no GSS encryption) keep it on the socket
 * it started with, which the poll handle watches. */
static void sat_step(struct satconn *c) {
  struct fl_dep *d = c->d;
  struct pg *pg = fl_pg(d);
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
      pg->sat_refused = 1;
    else if (pg->sat_err[0] == '\0')
      snprintf(pg->sat_err, sizeof(pg->sat_err), "%.300s", msg);
    sat_remove(d, c);
    break;
  }
  }
  pg->sat_pending--;
  sat_more(d);
}

/* Opens one more connection as superuser faultline: a superuser may take
 * the slots reserved for superusers too, so all of them fill up. */
static int sat_open(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  char port[16];
  snprintf(port, sizeof(port), "%d", d->port);
  const char *keys[] = {"hostaddr", "port",    "user",       "password",
                        "dbname",   "sslmode", "gssencmode", "application_name",
                        NULL};
  const char *vals[] = {
      "127.0.0.1", port,      "faultline",          "faultline", "faultline",
      "disable",   "disable", "faultline saturate", NULL};
  if (pg->nsat == pg->satcap) {
    int cap = pg->satcap ? 2 * pg->satcap : 64;
    struct satconn **n = realloc(pg->sat, (size_t)cap * sizeof(*n));
    if (n == NULL)
      return -ENOMEM;
    pg->sat = n;
    pg->satcap = cap;
  }
  struct satconn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->d = d;
  c->conn = PQconnectStartParams(keys, vals, 0);
  if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD ||
      uv_poll_init_socket(d->loop, &c->poll, PQsocket(c->conn)) != 0) {
    snprintf(pg->sat_err, sizeof(pg->sat_err), "%.300s",
             c->conn ? PQerrorMessage(c->conn) : "out of memory");
    PQfinish(c->conn);
    free(c);
    return -EIO;
  }
  c->poll.data = c;
  c->poll_open = 1;
  d->handles++;
  pg->sat[pg->nsat++] = c;
  pg->sat_pending++;
  /* A connection starts as if libpq had asked to wait for writing. */
  uv_poll_start(&c->poll, UV_WRITABLE, sat_ready);
  return 0;
}

static void sat_fail(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  int opened = pg->nsat;
  fl_sat_drop_all(d, 0);
  if (pg->sat_err[0] != '\0') {
    char *nl = strchr(pg->sat_err, '\n');
    if (nl != NULL)
      *nl = '\0';
    fl_dep_seterr(d,
                  "postgres: could not open a connection to fill its "
                  "slots: %s",
                  pg->sat_err);
  } else {
    fl_dep_seterr(d,
                  "postgres: %d connections are held and none was refused "
                  "(max_connections is %d)",
                  opened, pg->server_max_conn);
  }
  fl_dep_op_done(d, -EIO);
}

/* Called whenever a connection attempt ends. Saturating goes in three
 * stages: fill (SAT_PARALLEL attempts at a time until one is refused),
 * settle (a slot someone held for a moment, such as a backend still
 * ending, may free up meanwhile), confirm (one attempt at a time until one
 * is refused again). */
static void sat_more(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  if (d->phase != PH_SATURATING) {
    pg->sat_err[0] = '\0'; /* a top-up ended; it may fail quietly */
    return;
  }
  int limit = pg->server_max_conn + SAT_PARALLEL;
  if (pg->sat_stage == SAT_FILL) {
    while (!pg->sat_refused && pg->sat_err[0] == '\0' &&
           pg->sat_pending < SAT_PARALLEL && pg->nsat < limit)
      if (sat_open(d) != 0)
        break;
    if (pg->sat_pending > 0)
      return;
    if (!pg->sat_refused) {
      sat_fail(d);
      return;
    }
    pg->sat_stage = SAT_SETTLE;
    pg->sat_next = uv_now(d->loop) + SAT_SETTLE_MS;
  } else if (pg->sat_stage == SAT_CONFIRM && pg->sat_pending == 0) {
    if (pg->sat_refused) {
      d->saturated = 1;
      pg->sat_next = uv_now(d->loop) + SAT_TOPUP_MS;
      fl_dep_op_done(d, 0);
    } else if (pg->sat_err[0] != '\0' || pg->nsat >= limit ||
               sat_open(d) != 0) {
      sat_fail(d);
    }
  }
}

/* From the tick while held: tries for a free slot now and then, as a
 * competing client would: a connection the target closes is taken at
 * once. */
static void hold_tick(struct fl_dep *d, uint64_t now) {
  struct pg *pg = fl_pg(d);
  if (pg->sat_pending > 0 || now < pg->sat_next || d->paused)
    return;
  pg->sat_next = now + SAT_TOPUP_MS;
  sat_open(d);
}

static void saturating_tick(struct fl_dep *d, uint64_t now) {
  struct pg *pg = fl_pg(d);
  if (now >= d->deadline) {
    fl_sat_drop_all(d, 0);
    fl_dep_seterr(d, "postgres: max_connections was not filled within %d s",
                  SATURATE_MS / 1000);
    fl_dep_op_done(d, -ETIMEDOUT);
  } else if (pg->sat_pending == 0 && now >= pg->sat_next &&
             pg->sat_stage == SAT_SETTLE) {
    pg->sat_stage = SAT_CONFIRM; /* the settle stage ends */
    pg->sat_refused = 0;
    sat_more(d);
  }
}

static int released_alive(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  for (int i = 0; i < pg->nreleased; i++)
    if (kill(pg->released[i], 0) == 0 || errno != ESRCH)
      return 1;
  return 0;
}

static void releasing_tick(struct fl_dep *d, uint64_t now) {
  if (!released_alive(d)) {
    fl_dep_op_done(d, 0);
  } else if (now >= d->deadline) {
    fl_dep_seterr(d,
                  "postgres: the sessions holding its slots did not end "
                  "within %d s",
                  RELEASE_MS / 1000);
    fl_dep_op_done(d, -ETIMEDOUT);
  }
}

void fl_sat_tick(struct fl_dep *d, uint64_t now) {
  if (d->phase == PH_SATURATING)
    saturating_tick(d, now);
  else if (d->phase == PH_RELEASING)
    releasing_tick(d, now);
  else if (d->phase == PH_IDLE && d->saturated)
    hold_tick(d, now);
}

/* Ends every connection saturate holds; with remember, notes their server
 * processes, which unsaturate waits for: a slot is free only once the
 * postmaster has reaped its backend. */
void fl_sat_drop_all(struct fl_dep *d, int remember) {
  struct pg *pg = fl_pg(d);
  free(pg->released);
  pg->released = NULL;
  pg->nreleased = 0;
  if (remember && pg->nsat > 0)
    pg->released = calloc((size_t)pg->nsat, sizeof(pid_t));
  for (int i = 0; i < pg->nsat; i++) {
    if (pg->released != NULL && pg->sat[i]->backend > 0)
      pg->released[pg->nreleased++] = pg->sat[i]->backend;
    sat_drop(pg->sat[i]);
  }
  pg->nsat = 0;
  pg->sat_pending = 0;
  d->saturated = 0;
}

int fl_sat_start(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  struct pg *pg = fl_pg(d);
  fl_dep_begin_op(d, PH_SATURATING, SATURATE_MS, cb, arg);
  pg->sat_stage = SAT_FILL;
  pg->sat_refused = 0;
  pg->sat_err[0] = '\0';
  sat_more(d);
  return 0;
}

/* A paused backend cannot end yet: the release then waits for none. */
void fl_sat_release(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  fl_sat_drop_all(d, !d->paused);
  fl_dep_begin_op(d, PH_RELEASING, RELEASE_MS, cb, arg);
}

void fl_sat_free(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  free(pg->released);
  free(pg->sat);
  pg->released = NULL;
  pg->sat = NULL;
  pg->nreleased = pg->nsat = pg->satcap = 0;
}
