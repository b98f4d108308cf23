/*
 * The state of a managed PostgreSQL cluster (its kind's d->priv), shared
 * by postgres.c (the cluster) and saturate.c (its connection slots, held
 * from outside).
 */
#ifndef FL_DEPS_POSTGRES_H
#define FL_DEPS_POSTGRES_H

#include "deps_int.h"

#define PG_MAX_CONN 50 /* default max_connections: saturate is quick */

/* How far saturate got; see sat_more() in saturate.c. */
enum sat_stage { SAT_FILL, SAT_SETTLE, SAT_CONFIRM };

/* One connection opened by saturate. */
struct satconn;

struct pg {
  int max_conn;        /* from the next start on; 0: PG_MAX_CONN */
  int server_max_conn; /* max_connections of the running server */

  /* saturate */
  struct satconn **sat;
  int nsat, satcap;
  enum sat_stage sat_stage;
  int sat_pending, sat_refused;
  uint64_t sat_next; /* next settle check or top-up */
  char sat_err[ERRLEN];
  pid_t *released; /* backends still ending after unsaturate */
  int nreleased;
};

static inline struct pg *fl_pg(const struct fl_dep *d) { return d->priv; }

/* saturate.c: the ops table's saturation hooks, and what a kill, stop,
 * exit or free does to a saturation: ends it at once (remember: note the
 * server processes, which a release waits for). */
int fl_sat_start(struct fl_dep *d, fl_dep_cb cb, void *arg);
void fl_sat_release(struct fl_dep *d, fl_dep_cb cb, void *arg);
void fl_sat_tick(struct fl_dep *d, uint64_t now);
void fl_sat_drop_all(struct fl_dep *d, int remember);
/* Frees what a saturation allocated (after fl_sat_drop_all, with every
 * connection closed). */
void fl_sat_free(struct fl_dep *d);

/* pg_dsm.c: initdb's posix shared memory, which a killed initdb leaves in
 * /dev/shm. mark as initdb starts; done once it has exited (ok: cleanly)
 * or once its processes are gone; reap on a dead run's folder. */
int fl_pg_initdb_mark(const struct fl_dep *d);
void fl_pg_initdb_done(const struct fl_dep *d, int exited_ok);
void fl_pg_initdb_reap(const char *dir);

#endif
