/*
 * What is particular to a managed PostgreSQL cluster: finding its programs
 * (Debian keeps them out of PATH), a data folder user postgres can reach,
 * initdb, the server's arguments, pg_isready polls, the role and database
 * faultline, and the lock files and shared memory a killed postmaster
 * leaves behind.
 */
#define _GNU_SOURCE
#include "postgres_int.h"

#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"

#define PG_POLL_MS 50     /* between two pg_isready runs */
#define PG_START_MS 30000 /* initdb; then the server until ready */

/* ---- programs and folder ---- */

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
      fl_dep_seterr(d, "postgres: initdb not found in PATH nor in "
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
      fl_dep_seterr(d, "postgres: %s has initdb but no %s", d->server_bin,
                    progs[i]);
      return -ENOENT;
    }
  }
  return 0;
}

static int find_programs(struct fl_dep *d) {
  int rc = find_pg_bin(d);
  if (rc != 0 || geteuid() != 0)
    return rc;
  struct passwd *pw = getpwnam("postgres");
  if (pw == NULL) {
    fl_dep_seterr(d, "postgres refuses to run as root and there is no user "
                     "'postgres' to run it as: install the postgresql "
                     "package or create that user");
    return -ENOENT;
  }
  d->as_user = 1;
  d->uid = pw->pw_uid;
  d->gid = pw->pw_gid;
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

/* The cluster's folder: user postgres must own and reach it, and its
 * unix socket path must fit. */
static int prepare_dir(struct fl_dep *d) {
  int rc;
  char buf[PATH_MAX];
  const char *bad;
  if (d->as_user && chown(d->dir, d->uid, d->gid) != 0) {
    rc = -errno;
    fl_dep_seterr(d, "postgres: cannot give %s to user postgres: %s", d->dir,
                  strerror(errno));
    return rc;
  }
  if (d->as_user &&
      (bad = unsearchable(d->dir, d->uid, d->gid, buf, sizeof(buf))) != NULL) {
    fl_dep_seterr(
        d,
        "postgres: user postgres cannot reach %s (%s is not searchable "
        "by it): use a work folder it can reach",
        d->dir, bad);
    return -EACCES;
  }
  struct sockaddr_un un;
  if (strlen(d->dir) + sizeof("/.s.PGSQL.65535") > sizeof(un.sun_path)) {
    fl_dep_seterr(
        d,
        "postgres: its socket folder %s is too long for a unix socket "
        "path: use a shorter work folder",
        d->dir);
    return -ENAMETOOLONG;
  }
  return 0;
}

/* ---- start: initdb, server, pg_isready, setup ---- */

static void pg_path(const struct fl_dep *d, const char *prog, char *out,
                    size_t size) {
  snprintf(out, size, "%s/%s", d->server_bin, prog);
}

static void run_initdb(struct fl_dep *d) {
  char bin[PATH_MAX + 32], data[PATH_MAX + 8];
  pg_path(d, "initdb", bin, sizeof(bin));
  snprintf(data, sizeof(data), "%s/data", d->dir);
  char *argv[] = {bin,        "-D", data,   "-A",         "trust",     "-U",
                  "postgres", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
  fl_pg_initdb_mark(d); /* without it, only a kill could leave segments */
  fl_dep_run_helper(d, PH_PREPARE, "initdb", argv);
}

static void run_pg_isready(struct fl_dep *d) {
  char bin[PATH_MAX + 32], port[16];
  pg_path(d, "pg_isready", bin, sizeof(bin));
  snprintf(port, sizeof(port), "%d", d->port);
  char *argv[] = {bin, "-q", "-t", "1", "-h", "127.0.0.1", "-p", port, NULL};
  d->next_poll = uv_now(d->loop) + PG_POLL_MS;
  fl_dep_run_helper(d, PH_BOOT, NULL, argv);
}

/* psql as superuser postgres over the server's unix socket, stopping at
 * the first failing statement of `sql` (at most four). */
static void run_psql(struct fl_dep *d, enum phase phase, const char *what,
                     const char *const *sql) {
  char bin[PATH_MAX + 32], port[16];
  pg_path(d, "psql", bin, sizeof(bin));
  snprintf(port, sizeof(port), "%d", d->port);
  char *argv[24] = {bin,        "-X",   "-q",      "-v", "ON_ERROR_STOP=1",
                    "-h",       d->dir, "-p",      port, "-U",
                    "postgres", "-d",   "postgres"};
  int n = 13;
  for (int i = 0; sql[i] != NULL && i < 4; i++) {
    argv[n++] = "-c";
    argv[n++] = (char *)sql[i];
  }
  argv[n] = NULL;
  fl_dep_run_helper(d, phase, what, argv);
}

/* The role and database the service connects as. */
static void run_setup(struct fl_dep *d) {
  static const char *const sql[] = {
      "CREATE ROLE faultline LOGIN PASSWORD 'faultline' SUPERUSER",
      "CREATE DATABASE faultline OWNER faultline", NULL};
  run_psql(d, PH_SETUP, "creating role and database", sql);
}

/* Database faultline again as run_setup made it, from the same template;
 * WITH (FORCE) ends the sessions a previous user left (PostgreSQL 13+). */
static void run_reset(struct fl_dep *d) {
  static const char *const sql[] = {
      "DROP DATABASE IF EXISTS faultline WITH (FORCE)",
      "CREATE DATABASE faultline OWNER faultline TEMPLATE template1",
      "ALTER ROLE faultline RESET ALL", NULL};
  run_psql(d, PH_RESET, "resetting database faultline", sql);
}

static void url(const struct fl_dep *d, char *out, size_t size) {
  snprintf(out, size, "postgresql://faultline:faultline@127.0.0.1:%d/faultline",
           d->port);
}

/* The server's shared memory must go with its folder, whichever way it
 * ends: we end it with SIGKILL (free, kill, a failed start), and a killed
 * postmaster removes nothing. Its dynamic segments (default "posix") would
 * stay in /dev/shm as PostgreSQL.N, named by a random handle kept only in
 * the dead server's memory, so nobody could tell ours from another
 * cluster's; with "mmap" they are files in data/pg_dynshmem, removed with
 * the folder (and cleared by postgres itself when it starts again). The
 * main segment is anonymous memory that dies with its processes; only a
 * small System V segment, named in postmaster.pid, needs remove_shm(),
 * once no process is attached to it. A graceful stop on free would cost a
 * shutdown checkpoint on every teardown and still not cover a kill. */
static int spawn_server(struct fl_dep *d) {
  struct pg *pg = fl_pg(d);
  char port[16], maxc[64], bin[PATH_MAX + 32], data[PATH_MAX + 8];
  snprintf(port, sizeof(port), "%d", d->port);
  pg_path(d, "postgres", bin, sizeof(bin));
  snprintf(data, sizeof(data), "%s/data", d->dir);
  pg->server_max_conn = pg->max_conn ? pg->max_conn : PG_MAX_CONN;
  snprintf(maxc, sizeof(maxc), "max_connections=%d", pg->server_max_conn);
  char *argv[] = {bin,
                  "-D",
                  data,
                  "-p",
                  port,
                  "-k",
                  d->dir,
                  "-c",
                  "listen_addresses=127.0.0.1",
                  "-c",
                  "fsync=off",
                  "-c",
                  "dynamic_shared_memory_type=mmap",
                  "-c",
                  maxc,
                  NULL};
  return fl_dep_spawn(d, argv, 1);
}

static void poll_ready(struct fl_dep *d, uint64_t now) {
  if (d->helper == NULL && now >= d->next_poll)
    run_pg_isready(d);
}

static void helper_exited(struct fl_dep *d, int64_t status, int sig) {
  char h[32];
  int ok = status == 0 && sig == 0;
  if (d->helper_pgid > 0 && !fl_dep_group_alive(d->helper_pgid))
    d->helper_pgid = 0;
  switch (d->phase) {
  case PH_PREPARE:
    if (ok) {
      /* A failed one is swept at cleanup, once its group is gone: its
       * own servers may outlive it by an instant. */
      fl_pg_initdb_done(d, 1);
      fl_dep_boot(d);
    } else {
      char line[ERRLEN];
      fl_dep_log_tail(d, d->helper_mark, line, sizeof(line));
      fl_dep_fail(d, FL_ESTART, "postgres: initdb failed (%s): %s",
                  fl_dep_exit_how(status, sig, h, sizeof(h)), line);
    }
    break;
  case PH_BOOT:
    if (ok && d->server != NULL)
      fl_dep_boot_ready(d);
    break; /* not yet: the tick runs pg_isready again */
  case PH_SETUP:
    if (ok) {
      d->first_start = 0;
      fl_dep_op_done(d, 0);
    } else {
      char line[ERRLEN];
      fl_dep_log_tail(d, d->helper_mark, line, sizeof(line));
      fl_dep_fail(
          d, FL_ESTART,
          "postgres: creating role and database faultline failed (%s): %s",
          fl_dep_exit_how(status, sig, h, sizeof(h)), line);
    }
    break;
  case PH_RESET:
    if (ok) {
      fl_dep_op_done(d, 0);
    } else {
      char line[ERRLEN];
      fl_dep_log_tail(d, d->helper_mark, line, sizeof(line));
      fl_dep_fail(d, -EIO,
                  "postgres: resetting database faultline failed "
                  "(%s): %s",
                  fl_dep_exit_how(status, sig, h, sizeof(h)), line);
    }
    break;
  default:
    break;
  }
}

/* ---- after the server ---- */

/* A postgres that died by SIGKILL leaves its System V shared memory
 * segment behind; postmaster.pid names it (line 7: key and id). Removes the
 * cluster's System V segment once nothing is attached to it; with `force`, at
 * once (the kernel then destroys it at the last detach): a killed run's
 * cluster, whose postmaster is gone. */
static void remove_shm_at(const char *dir, int force) {
  char p[PATH_MAX + 32], line[256];
  snprintf(p, sizeof(p), "%s/data/postmaster.pid", dir);
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
      (unsigned long)ds.shm_perm.__key == key && (force || ds.shm_nattch == 0))
    shmctl(id, IPC_RMID, NULL);
}

static void remove_shm(struct fl_dep *d) { remove_shm_at(d->dir, 0); }

static void reap(const char *dir) {
  remove_shm_at(dir, 1);
  fl_pg_initdb_reap(dir);
}

/* After a kill, the lock files name a dead postmaster: postgres would take
 * a reused pid for a live one and refuse to start. */
static void remove_locks(struct fl_dep *d) {
  char p[PATH_MAX + 32];
  remove_shm(d);
  snprintf(p, sizeof(p), "%s/data/postmaster.pid", d->dir);
  unlink(p);
  snprintf(p, sizeof(p), "%s/.s.PGSQL.%d.lock", d->dir, d->port);
  unlink(p);
  snprintf(p, sizeof(p), "%s/.s.PGSQL.%d", d->dir, d->port);
  unlink(p);
}

static void halt(struct fl_dep *d) { fl_sat_drop_all(d, 0); }

static void cleanup(struct fl_dep *d) {
  if (d->dir[0] != '\0') {
    remove_shm(d);
    fl_pg_initdb_done(d, 0); /* an initdb killed or failed on the way */
  }
  fl_sat_free(d);
}

static int set_max_connections(struct fl_dep *d, int n) {
  if (n < 5 || n > 10000)
    return -EINVAL;
  fl_pg(d)->max_conn = n;
  return 0;
}

const struct fl_dep_kind fl_dep_postgres_kind = {
    .name = "postgres",
    .faults = ALL_FAULTS,
    .start_ms = PG_START_MS,
    .stop_signal = SIGINT, /* a fast shutdown: sessions ended, checkpoint */
    .ready_what = "accept sessions",
    .priv_size = sizeof(struct pg),
    .find_programs = find_programs,
    .prepare = prepare_dir,
    .first_steps = run_initdb,
    .spawn_server = spawn_server,
    .url = url,
    .poll_ready = poll_ready,
    .setup = run_setup,
    .reset = run_reset,
    .helper_exited = helper_exited,
    .halt = halt,
    .server_gone = remove_locks,
    .cleanup = cleanup,
    .reap = reap,
    .set_max_connections = set_max_connections,
    .saturate = fl_sat_start,
    .unsaturate = fl_sat_release,
    .hold_tick = fl_sat_tick,
};
