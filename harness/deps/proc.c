/*
 * The programs a dependency runs: spawned through setpriv into their own
 * process group with their output appended to the log, watched until their
 * group is empty, and the log read back for the line that explains a
 * failure.
 */
#define _GNU_SOURCE
#include "base/base.h"
#include "deps_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- process groups ---- */

/* State, parent and group of process `pid` from /proc/PID/stat; 0 when it
 * is alive. Zombies do not count: a child orphaned by a killed server may
 * wait for a reaper that never comes, yet it holds nothing. */
static int read_stat(const char *pid, int *ppid, int *pgrp) {
  struct fl_proc_stat st;
  if (fl_proc_stat(atoi(pid), &st) != 0 || st.state == 'Z' || st.state == 'X')
    return -ESRCH;
  *ppid = st.ppid;
  *pgrp = st.pgrp;
  return 0;
}

struct proc_entry {
  pid_t pid, ppid, pgrp;
  int in_tree;
};

/* The live processes; NULL (and *n 0) when /proc cannot be read. */
static struct proc_entry *list_procs(size_t *n) {
  *n = 0;
  DIR *proc = opendir("/proc");
  struct proc_entry *v = NULL;
  size_t cap = 0;
  struct dirent *e;
  while (proc != NULL && (e = readdir(proc)) != NULL) {
    int ppid, pgrp;
    if (!isdigit((unsigned char)e->d_name[0]) ||
        read_stat(e->d_name, &ppid, &pgrp) != 0)
      continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 256;
      struct proc_entry *nv = realloc(v, cap * sizeof(*v));
      if (nv == NULL)
        break;
      v = nv;
    }
    v[(*n)++] = (struct proc_entry){atoi(e->d_name), ppid, pgrp, 0};
  }
  if (proc != NULL)
    closedir(proc);
  return v;
}

int fl_dep_group_alive(pid_t pgid) {
  if (pgid <= 0)
    return 0;
  size_t n;
  struct proc_entry *v = list_procs(&n);
  if (v == NULL)
    return kill(-pgid, 0) == 0;
  int alive = 0;
  for (size_t i = 0; i < n && !alive; i++)
    alive = v[i].pgrp == pgid;
  free(v);
  return alive;
}

/* Signals a group we started, if it still has a live process: a group
 * seen empty is forgotten, so that a later group given the same number is
 * never touched. */
void fl_dep_signal_group(pid_t *pgid, int sig) {
  if (*pgid > 0 && !fl_dep_group_alive(*pgid))
    *pgid = 0;
  if (*pgid > 0)
    kill(-*pgid, sig);
}

static void add_stray(struct fl_dep *d, pid_t pid) {
  for (int i = 0; i < d->nstrays; i++)
    if (d->strays[i] == pid)
      return;
  if (d->nstrays == d->strayscap) {
    int cap = d->strayscap ? 2 * d->strayscap : 16;
    pid_t *n = realloc(d->strays, (size_t)cap * sizeof(*n));
    if (n == NULL)
      return;
    d->strays = n;
    d->strayscap = cap;
  }
  d->strays[d->nstrays++] = pid;
}

/* Notes the descendants of group pgid that left it: a server may give its
 * children sessions of their own (postgres does, for each backend). Once
 * their parent dies they are orphans, linked to the group no more, so they
 * are noted while it lives. */
static void note_strays(struct fl_dep *d, pid_t pgid) {
  size_t n;
  struct proc_entry *v = list_procs(&n);
  for (size_t i = 0; i < n; i++)
    v[i].in_tree = v[i].pgrp == pgid;
  for (int more = 1; more;) {
    more = 0;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n && !v[i].in_tree; j++)
        if (v[j].in_tree && v[j].pid == v[i].ppid)
          more = v[i].in_tree = 1;
  }
  for (size_t i = 0; i < n; i++)
    if (v[i].in_tree && v[i].pgrp != pgid)
      add_stray(d, v[i].pid);
  free(v);
}

int fl_dep_strays_alive(struct fl_dep *d) {
  for (int i = 0; i < d->nstrays;) {
    char pid[16];
    int ppid, pgrp;
    snprintf(pid, sizeof(pid), "%d", (int)d->strays[i]);
    if (read_stat(pid, &ppid, &pgrp) != 0)
      d->strays[i] = d->strays[--d->nstrays];
    else
      i++;
  }
  return d->nstrays > 0;
}

void fl_dep_kill_tree(struct fl_dep *d, pid_t *pgid) {
  if (*pgid > 0)
    note_strays(d, *pgid);
  fl_dep_signal_group(pgid, SIGKILL);
  if (fl_dep_strays_alive(d))
    for (int i = 0; i < d->nstrays; i++)
      kill(d->strays[i], SIGKILL);
}

/* ---- the log ---- */

/* The most telling line written to the log since `mark`: one naming a
 * port conflict, else the last one naming an error, else the last one. */
void fl_dep_log_tail(const struct fl_dep *d, off_t mark, char *out,
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

/* "exit 1" or "signal 9". */
const char *fl_dep_exit_how(int64_t status, int sig, char *buf, size_t size) {
  if (sig != 0)
    snprintf(buf, size, "signal %d", sig);
  else
    snprintf(buf, size, "exit %d", (int)status);
  return buf;
}

/* ---- spawning ---- */

static void child_closed(uv_handle_t *h) {
  struct child *c = (struct child *)h;
  c->d->handles--;
  free(c);
}

static void on_child_exit(uv_process_t *h, int64_t status, int sig) {
  struct child *c = (struct child *)h;
  struct fl_dep *d = c->d;
  uv_close((uv_handle_t *)h, child_closed);
  if (c == d->server) {
    d->server = NULL;
    fl_dep_server_exited(d, status, sig);
  } else if (c == d->helper) {
    d->helper = NULL;
    if (d->kind->helper_exited != NULL)
      d->kind->helper_exited(d, status, sig);
  }
}

/* The options of a spawn through setpriv: args (32 slots) gets setpriv's
 * arguments then argv, stdio (3 slots) sends output to the log. */
static void spawn_options(struct fl_dep *d, char *const argv[], char **args,
                          uv_stdio_container_t *stdio,
                          uv_process_options_t *po) {
  size_t n = 0;
  args[n++] = d->setpriv;
  args[n++] = "--pdeathsig";
  args[n++] = "KILL";
  args[n++] = "--";
  for (size_t i = 0; argv[i] != NULL && n < 31; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  stdio[0].flags = UV_IGNORE;
  for (int i = 1; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = d->log_fd;
  }
  memset(po, 0, sizeof(*po));
  po->file = d->setpriv;
  po->args = args;
  po->cwd = d->dir;
  po->exit_cb = on_child_exit;
  po->stdio = stdio;
  po->stdio_count = 3;
  po->flags = UV_PROCESS_DETACHED;
  if (d->as_user) {
    po->flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    po->uid = d->uid;
    po->gid = d->gid;
  }
}

static void note_child(struct fl_dep *d, struct child *c, int is_server,
                       off_t mark) {
  if (is_server) {
    fl_dep_kill_tree(d, &d->server_pgid); /* leftovers of a crash */
    d->server = c;
    d->server_pgid = c->h.pid;
    d->server_mark = mark;
    d->ending = 0;
  } else {
    d->helper = c;
    d->helper_pgid = c->h.pid;
    d->helper_mark = mark;
  }
}

/* Runs argv (argv[0] a full path) through setpriv, as uid/gid when
 * as_user, in its own process group, output to the log. */
int fl_dep_spawn(struct fl_dep *d, char *const argv[], int is_server) {
  char *args[32];
  uv_stdio_container_t stdio[3];
  uv_process_options_t po;
  spawn_options(d, argv, args, stdio, &po);
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
  note_child(d, c, is_server, mark);
  return 0;
}

void fl_dep_run_helper(struct fl_dep *d, enum phase ph, const char *step,
                       char *const argv[]) {
  d->phase = ph;
  d->step = step;
  int rc = fl_dep_spawn(d, argv, 0);
  if (rc != 0) {
    const char *prog = strrchr(argv[0], '/');
    fl_dep_fail(d, rc, "%s: cannot run %s: %s", d->kind->name,
                prog ? prog + 1 : argv[0], uv_strerror(rc));
  }
}
