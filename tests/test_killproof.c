/* SIGKILL of `faultline run` at any moment leaves nothing behind: a real
 * scenario (db-down: PostgreSQL, Redis, and the resilient service run as
 * uvicorn with two workers behind a shell that forks a daemon and a
 * background child) is killed while initdb runs, while the target starts,
 * mid-traffic and mid-teardown. Then no process of that run may remain
 * (none of the runner's descendants seen just before the kill, none whose
 * environment carries its tag), and no folder in our private TMPDIR, no
 * new /dev/shm entry, no System V segment of its PostgreSQL. Once with the
 * guard killed as well: the next `faultline run` start cleans up. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define MAXP 512
#define GONE_MS 15000 /* until the killed run's processes are gone */

static char dir[256], tmp[300], out[300], tmpenv[320];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(dir), 0);
  chmod(dir, 0755); /* postgres runs as its own user inside when we are root */
  snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", tmp);
  cr_assert_eq(mkdir(tmp, 0755), 0);
}

static void teardown(void) { t_rmtree(dir); }

TestSuite(killproof, .init = setup, .fini = teardown, .timeout = 240);

static const char service[] =
    "service: forky\n"
    "command: \"setsid -f sleep 1000; sleep 1000 & exec /usr/bin/python3 -m "
    "uvicorn app:app --host 127.0.0.1 --port ${PORT} --workers 2 "
    "--no-access-log\"\n"
    "dir: " FL_TEST_SOURCE_DIR "/scenarios/services/resilient\n"
    "env:\n"
    "  DATABASE_URL: "
    "postgresql://faultline:faultline@localhost:${POSTGRES_PORT}/faultline\n"
    "  REDIS_URL: ${REDIS_URL}\n"
    "  DATA_DIR: ${DATA_DIR}\n"
    "ready:\n  http: /health\n  timeout: 60s\n"
    "dependencies:\n"
    "  postgres: { type: postgres }\n"
    "  redis:    { type: redis }\n";

/* ---- the process table ---- */

struct pinfo {
  int pid, ppid;
  char state;
  unsigned long long start;
};

static int read_pinfo(int pid, struct pinfo *p) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *c = strrchr(buf, ')');
  p->pid = pid;
  if (c == NULL ||
      sscanf(c + 1,
             " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
             "%*d %*d %*d %*d %*d %llu",
             &p->state, &p->ppid, &p->start) != 3)
    return -1;
  return 0;
}

static size_t list_procs(struct pinfo *v, size_t max) {
  DIR *d = opendir("/proc");
  size_t n = 0;
  for (struct dirent *e; d && n < max && (e = readdir(d)) != NULL;)
    if (isdigit((unsigned char)e->d_name[0]) &&
        read_pinfo(atoi(e->d_name), &v[n]) == 0 && v[n].state != 'Z')
      n++;
  closedir(d);
  return n;
}

/* The live descendants of root (not itself), into out. */
static size_t descendants(int root, struct pinfo *dst, size_t max) {
  static struct pinfo all[4096];
  size_t n = list_procs(all, 4096), k = 0;
  int in[4096] = {0};
  for (int more = 1; more;) {
    more = 0;
    for (size_t i = 0; i < n; i++) {
      if (in[i])
        continue;
      int hit = all[i].ppid == root;
      for (size_t j = 0; j < n && !hit; j++)
        hit = in[j] && all[j].pid == all[i].ppid;
      if (hit)
        more = in[i] = 1;
    }
  }
  for (size_t i = 0; i < n && k < max; i++)
    if (in[i])
      dst[k++] = all[i];
  return k;
}

/* Does process pid's environment hold `entry` (NAME=VALUE)? */
static int env_has(int pid, const char *entry) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/environ", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  char *e = NULL;
  size_t cap = 0;
  int hit = 0;
  while (!hit && getdelim(&e, &cap, '\0', f) > 0)
    hit = strcmp(e, entry) == 0;
  free(e);
  fclose(f);
  return hit;
}

/* Processes left of the run: snapshot ones still alive (same start time),
 * and any whose environment carries the run's tag. */
static int left_alive(const struct pinfo *snap, size_t n, const char *mark) {
  int left = 0;
  for (size_t i = 0; i < n; i++) {
    struct pinfo now;
    if (read_pinfo(snap[i].pid, &now) == 0 && now.start == snap[i].start &&
        now.state != 'Z')
      left++;
  }
  static struct pinfo all[4096];
  size_t m = list_procs(all, 4096);
  for (size_t i = 0; i < m; i++)
    left += env_has(all[i].pid, mark);
  return left;
}

static int wait_none_left(const struct pinfo *snap, size_t n,
                          const char *mark) {
  long long end = t_now_ms() + GONE_MS;
  int left;
  while ((left = left_alive(snap, n, mark)) > 0 && t_now_ms() < end)
    usleep(50 * 1000);
  return left;
}

/* ---- the file system ---- */

static int count_entries(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

/* Is /dev/shm/name mapped by a live process? Another test's PostgreSQL
 * (default shared memory: posix) holds entries there while it runs; what a
 * dead run left is mapped by nobody. */
static int shm_mapped(const char *name) {
  char cmd[400];
  snprintf(cmd, sizeof(cmd),
           "grep -qsF '/dev/shm/%s' /proc/[0-9]*/maps 2>/dev/null", name);
  return system(cmd) == 0;
}

/* /dev/shm entries new since `before` (a NUL-separated list); their names
 * into names. */
static int shm_new(const char *before, size_t len, char *names, size_t size) {
  names[0] = '\0';
  DIR *d = opendir("/dev/shm");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    /* Criterion's own segments (BoxFort's bxfi_*) come and go with the
     * test processes ctest runs beside this one. */
    if (e->d_name[0] == '.' || strncmp(e->d_name, "bxfi_", 5) == 0)
      continue;
    int seen = 0;
    for (size_t at = 0; at < len && !seen; at += strlen(before + at) + 1)
      seen = strcmp(before + at, e->d_name) == 0;
    if (!seen && shm_mapped(e->d_name))
      continue;
    if (!seen && strlen(names) + strlen(e->d_name) + 2 < size)
      strcat(strcat(names, " "), e->d_name);
    n += !seen;
  }
  if (d)
    closedir(d);
  return n;
}

static size_t shm_list(char *buf, size_t size) {
  DIR *d = opendir("/dev/shm");
  size_t len = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    size_t l = strlen(e->d_name) + 1;
    if (len + l <= size) {
      memcpy(buf + len, e->d_name, l);
      len += l;
    }
  }
  if (d)
    closedir(d);
  return len;
}

/* The run's tag, from its folder faultline-run-TAG-XXXXXX; 0 or -1. */
static int run_tag(char *tag, size_t size) {
  DIR *d = opendir(tmp);
  int rc = -1;
  for (struct dirent *e; d && rc != 0 && (e = readdir(d)) != NULL;) {
    const char *p = e->d_name;
    if (strncmp(p, "faultline-run-", 14) != 0)
      continue;
    const char *last = strrchr(p, '-');
    size_t n = (size_t)(last - (p + 14));
    if (n > 0 && n < size) {
      memcpy(tag, p + 14, n);
      tag[n] = '\0';
      rc = 0;
    }
  }
  if (d)
    closedir(d);
  return rc;
}

/* The System V segment of the run's PostgreSQL, from its postmaster.pid
 * (line 7: key and id); -1 when it has none yet. */
static int pg_shmid(void) {
  char cmd[1000], line[128] = "";
  snprintf(cmd, sizeof(cmd),
           "sed -n 7p %s/faultline-run-*/postgres-*/data/postmaster.pid "
           "%s/faultline-pool-*/*/postgres-*/data/postmaster.pid 2>/dev/null",
           tmp, tmp);
  FILE *f = popen(cmd, "r");
  if (f == NULL)
    return -1;
  char *got = fgets(line, sizeof(line), f);
  pclose(f);
  unsigned long key;
  int id;
  return got != NULL && sscanf(line, "%lu %d", &key, &id) == 2 ? id : -1;
}

/* ---- the moments ---- */

/* M_REUSED: mid-traffic of a second scenario that reuses the first's
 * servers (--reuse-deps). */
enum moment { M_INITDB, M_TARGET, M_TRAFFIC, M_TEARDOWN, M_REUSED };

/* A child of pid named comm, within timeout_ms; 0 or -1. */
static int wait_child_named(int pid, const char *comm, int timeout_ms) {
  long long end = t_now_ms() + timeout_ms;
  while (t_now_ms() < end) {
    struct pinfo v[MAXP];
    size_t n = descendants(pid, v, MAXP);
    for (size_t i = 0; i < n; i++) {
      char path[64], name[32] = "";
      snprintf(path, sizeof(path), "/proc/%d/comm", v[i].pid);
      FILE *f = fopen(path, "re");
      if (f != NULL) {
        if (fgets(name, sizeof(name), f) != NULL)
          name[strcspn(name, "\n")] = '\0';
        fclose(f);
      }
      if (strcmp(name, comm) == 0)
        return 0;
    }
    usleep(5 * 1000);
  }
  return -1;
}

/* Does a descendant of root map a posix segment of PostgreSQL's? While
 * initdb runs, its bootstrap server does: a kill then leaves one. */
static int maps_pg_segment(int root) {
  struct pinfo v[MAXP];
  size_t n = descendants(root, v, MAXP);
  int found = 0;
  for (size_t i = 0; i < n && !found; i++) {
    char path[64], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof(path), "/proc/%d/maps", v[i].pid);
    FILE *f = fopen(path, "re");
    while (f != NULL && !found && getline(&line, &cap, f) > 0)
      found = strstr(line, "/dev/shm/PostgreSQL.") != NULL;
    free(line);
    if (f != NULL)
      fclose(f);
  }
  return found;
}

/* The runner's progress line holding needle (each line is echoed). */
static int expect_line(struct t_proc *p, const char *needle, int timeout_ms) {
  long long end = t_now_ms() + timeout_ms;
  char line[1024];
  while (t_now_ms() < end) {
    if (t_line(p, line, sizeof(line), (int)(end - t_now_ms())) != 0)
      return -1;
    fprintf(stderr, "  | %s\n", line);
    if (strstr(line, needle) != NULL)
      return 0;
  }
  return -1;
}

static int reach(struct t_proc *p, enum moment m) {
  switch (m) {
  case M_INITDB: {
    /* The kill is aimed at the instant initdb's server holds a segment
     * in /dev/shm, the one a killed initdb would leave. */
    if (wait_child_named(p->pid, "initdb", 60000) != 0)
      return -1;
    long long end = t_now_ms() + 30000;
    while (!maps_pg_segment(p->pid)) {
      if (t_now_ms() > end)
        return -1;
      usleep(1000);
    }
    return 0;
  }
  case M_TARGET:
    return expect_line(p, "target pid", 90000);
  case M_TRAFFIC:
    return expect_line(p, "on:  refuse", 120000);
  case M_TEARDOWN:
    return expect_line(p, "traffic done", 150000);
  case M_REUSED:
    if (expect_line(p, "reusing the server", 200000) != 0)
      return -1;
    return expect_line(p, "on:  refuse", 120000);
  }
  return -1;
}

/* A second, short `faultline run` (a file that does not exist): its start
 * reaps what a killed run left. */
static void second_start(void) {
  char *argv[] = {T_FAULTLINE, "run", "--out", out, "/nonexistent.yaml", NULL};
  char *env[] = {tmpenv, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, env, NULL, 30000, &r), 0);
  cr_expect_eq(r.status, 2, "a missing file is bad usage: %s", r.err);
  t_run_free(&r);
}

static void kill_at(enum moment m, int kill_guard, int sig) {
  char svc[400], sc[400], shm[65536];
  snprintf(svc, sizeof(svc), "%s/svc.yaml", dir);
  snprintf(sc, sizeof(sc), "%s/scenarios/db-down.yaml", FL_TEST_SOURCE_DIR);
  FILE *f = fopen(svc, "w");
  cr_assert_not_null(f);
  fputs(service, f);
  fclose(f);
  size_t shm_len = shm_list(shm, sizeof(shm));

  char *argv[] = {T_FAULTLINE, "run", "--service", svc,  "--out",
                  out,         sc,    NULL,        NULL, NULL};
  if (m == M_REUSED) { /* the same scenario twice, the second on the pool */
    argv[6] = "--reuse-deps";
    argv[7] = sc;
    argv[8] = sc;
  }
  char *env[] = {tmpenv, NULL};
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, env, 1), 0);
  cr_assert_eq(reach(&p, m), 0, "the run never reached moment %d", m);

  char tag[64], mark[96];
  cr_assert_eq(run_tag(tag, sizeof(tag)), 0, "no faultline-run-TAG folder");
  snprintf(mark, sizeof(mark), "FAULTLINE_RUN=%s", tag);
  int shmid = pg_shmid();
  static struct pinfo snap[MAXP];
  size_t n = descendants(p.pid, snap, MAXP);
  cr_assert_gt(n, 0);
  if (kill_guard)
    for (size_t i = 0; i < n; i++) {
      char path[64], name[32] = "";
      snprintf(path, sizeof(path), "/proc/%d/comm", snap[i].pid);
      FILE *c = fopen(path, "re");
      if (c != NULL && fgets(name, sizeof(name), c) != NULL &&
          strncmp(name, "faultline-guard", 15) == 0)
        kill(snap[i].pid, SIGKILL);
      if (c != NULL)
        fclose(c);
    }
  cr_assert_eq(kill(p.pid, sig), 0);
  t_finish(&p, 10000);

  if (kill_guard) {
    /* Our children die with us; what they started waits for the next
     * start. */
    second_start();
  }
  cr_expect_eq(wait_none_left(snap, n, mark), 0,
               "processes of the killed run (tag %s) remain", tag);
  if (!kill_guard) {
    /* The guard removes the folders once the processes are gone. */
    long long end = t_now_ms() + GONE_MS;
    while (count_entries(tmp) > 0 && t_now_ms() < end)
      usleep(50 * 1000);
  }
  second_start();
  cr_expect_eq(count_entries(tmp), 0, "the killed run's folder remains");
  struct shmid_ds ds;
  cr_expect(shmid < 0 || shmctl(shmid, IPC_STAT, &ds) != 0,
            "PostgreSQL's System V segment %d remains", shmid);
  /* Other suites' PostgreSQL servers, running beside this one, make and
   * remove segments of their own: a segment of the killed run is one
   * that stays. */
  char names[512];
  long long until = t_now_ms() + 60000;
  int left;
  /* The last reading is the verdict: checking once more after it would
   * catch another suite's segment in the instant between its shm_open and
   * its mmap. */
  while ((left = shm_new(shm, shm_len, names, sizeof(names))) != 0 &&
         t_now_ms() < until)
    usleep(200 * 1000);
  cr_expect_eq(left, 0, "new entries in /dev/shm:%s", names);
}

Test(killproof, while_initdb_runs) { kill_at(M_INITDB, 0, SIGKILL); }
Test(killproof, while_the_target_starts) { kill_at(M_TARGET, 0, SIGKILL); }
Test(killproof, mid_traffic) { kill_at(M_TRAFFIC, 0, SIGKILL); }
Test(killproof, mid_teardown) { kill_at(M_TEARDOWN, 0, SIGKILL); }
Test(killproof, guard_killed_too_next_start_reaps) {
  kill_at(M_TRAFFIC, 1, SIGKILL);
}
Test(killproof, reused_servers_mid_traffic) { kill_at(M_REUSED, 0, SIGKILL); }
/* The runner's own teardown ends initdb's group with SIGKILL: its server
 * then leaves the segments it would have removed at its exit. */
Test(killproof, sigint_while_initdb_runs) { kill_at(M_INITDB, 0, SIGINT); }
Test(killproof, sigterm_while_initdb_runs) { kill_at(M_INITDB, 0, SIGTERM); }
