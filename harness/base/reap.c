/*
 * What a killed faultline leaves behind, and how the next one finds it.
 *
 * Every temporary folder is named $TMPDIR/faultline-KIND-PID-START-XXXXXX
 * after its owner: its pid and its start time (clock ticks since boot, in
 * base 36), so that a pid reused by another process never passes for the
 * owner. Every process a run starts carries FAULTLINE_RUN=PID-START in its
 * environment, inherited by its own children. A folder or a process whose
 * owner is gone is stale: the reaper removes the one and kills the other.
 */
#define _GNU_SOURCE
#include "base.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "faultline-"
#define KILL_WAIT_MS 3000 /* until killed processes have gone */

int fl_proc_stat(int pid, struct fl_proc_stat *out) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -ESRCH;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -ESRCH;
  buf[n] = '\0';
  /* "pid (comm) state ppid pgrp ... starttime (22nd)": comm may hold
   * anything, so the fields are read after its last ')'. */
  const char *p = strrchr(buf, ')');
  if (p == NULL ||
      sscanf(p + 1,
             " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
             "%*d %*d %*d %*d %*d %llu",
             &out->state, &out->ppid, &out->pgrp, &out->start) != 4)
    return -ESRCH;
  return 0;
}

/* The fields reap.c reads, through fl_proc_stat. */
static int proc_stat(pid_t pid, unsigned long long *start, char *state,
                     pid_t *ppid) {
  struct fl_proc_stat st;
  if (fl_proc_stat((int)pid, &st) != 0)
    return -ESRCH;
  *start = st.start;
  if (state != NULL)
    *state = st.state;
  if (ppid != NULL)
    *ppid = st.ppid;
  return 0;
}

int fl_owner_tag(char *out, size_t size) {
  unsigned long long start;
  int rc = proc_stat(getpid(), &start, NULL, NULL);
  if (rc != 0)
    return rc;
  char b36[16];
  size_t n = 0;
  do
    b36[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[start % 36];
  while ((start /= 36) > 0 && n < sizeof(b36));
  int w = snprintf(out, size, "%d-", (int)getpid());
  for (size_t i = 0; w > 0 && (size_t)w + 1 < size && i < n; i++)
    out[w++] = b36[n - 1 - i];
  if (w <= 0 || (size_t)w >= size)
    return -ENAMETOOLONG;
  out[w] = '\0';
  return 0;
}

int fl_owner_alive(const char *tag) {
  char *end;
  long pid = strtol(tag, &end, 10);
  if (end == tag || *end != '-' || pid <= 0)
    return -EINVAL;
  unsigned long long want = strtoull(end + 1, &end, 36), start;
  if (*end != '\0' && *end != '-')
    return -EINVAL;
  char state;
  return proc_stat((pid_t)pid, &start, &state, NULL) == 0 && start == want &&
         state != 'Z' && state != 'X';
}

int fl_make_tmpdir(const char *kind, char *out, size_t size) {
  const char *tmp = getenv("TMPDIR");
  char tag[48];
  int rc = fl_owner_tag(tag, sizeof(tag));
  if (rc != 0)
    return rc;
  if ((size_t)snprintf(out, size, "%s/" PREFIX "%s-%s-XXXXXX",
                       tmp && *tmp ? tmp : "/tmp", kind, tag) >= size)
    return -ENAMETOOLONG;
  if (mkdtemp(out) == NULL) {
    rc = -errno;
    out[0] = '\0';
  }
  return rc;
}

/* The owner's tag of an entry named faultline-KIND-PID-START-XXXXXX, if
 * it is one, into tag; `kind` NULL matches any kind. */
static int entry_tag(const char *name, const char *kind, char *tag,
                     size_t size) {
  if (strncmp(name, PREFIX, sizeof(PREFIX) - 1) != 0)
    return 0;
  const char *k = name + sizeof(PREFIX) - 1, *dash = strchr(k, '-');
  if (dash == NULL ||
      (kind != NULL && ((size_t)(dash - k) != strlen(kind) ||
                        strncmp(k, kind, (size_t)(dash - k)) != 0)))
    return 0;
  const char *last = strrchr(dash, '-');
  size_t len = (size_t)(last - dash - 1);
  if (last == dash || len == 0 || len >= size)
    return 0;
  memcpy(tag, dash + 1, len);
  tag[len] = '\0';
  return 1;
}

int fl_reap_folders(const char *kind, void (*before)(const char *dir)) {
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || *tmp == '\0')
    tmp = "/tmp";
  DIR *d = opendir(tmp);
  if (d == NULL)
    return 0;
  int reaped = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char tag[64], path[PATH_MAX];
    if (!entry_tag(e->d_name, kind, tag, sizeof(tag)) ||
        fl_owner_alive(tag) != 0 ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name) >=
            sizeof(path))
      continue;
    if (before != NULL)
      before(path);
    fl_rm_tree(path);
    reaped++;
  }
  closedir(d);
  return reaped;
}

/* ---- processes ---- */

struct pent {
  pid_t pid, ppid;
  int mark;
};

/* Does process pid's environment hold NAME=VALUE with a VALUE for which
 * stale() says yes? Unreadable environments (another user's) do not. */
static int env_marked(pid_t pid, const char *name,
                      int (*stale)(const char *value, void *arg), void *arg) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  size_t nlen = strlen(name);
  char *entry = NULL;
  size_t cap = 0;
  int hit = 0;
  while (!hit && getdelim(&entry, &cap, '\0', f) > 0)
    hit = strncmp(entry, name, nlen) == 0 && entry[nlen] == '=' &&
          stale(entry + nlen + 1, arg);
  free(entry);
  fclose(f);
  return hit;
}

/* Ourselves, and faultline's own programs (a runner or its guard started
 * from a marked environment), are never reaped. */
static int spared(pid_t pid) {
  char path[64], comm[32] = "";
  if (pid == getpid())
    return 1;
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 1;
  int ok = fgets(comm, sizeof(comm), f) != NULL;
  fclose(f);
  return ok && strncmp(comm, "faultline", 9) == 0;
}

/* The live processes, each with its parent; NULL when /proc is unreadable. */
static struct pent *snapshot(size_t *n) {
  *n = 0;
  DIR *d = opendir("/proc");
  struct pent *v = NULL;
  size_t cap = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
    unsigned long long start;
    char state;
    pid_t pid = atoi(e->d_name), ppid;
    if (!isdigit((unsigned char)e->d_name[0]) ||
        proc_stat(pid, &start, &state, &ppid) != 0 || state == 'Z' ||
        state == 'X')
      continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 256;
      struct pent *nv = realloc(v, cap * sizeof(*v));
      if (nv == NULL)
        break;
      v = nv;
    }
    v[(*n)++] = (struct pent){pid, ppid, 0};
  }
  if (d != NULL)
    closedir(d);
  return v;
}

/* Marks the processes whose environment says so, then their descendants:
 * a child that cleared its environment (postgres rewrites that memory
 * for its process titles) is still found through its parent. */
static size_t mark(struct pent *v, size_t n, const char *name,
                   int (*stale)(const char *, void *), void *arg) {
  for (size_t i = 0; i < n; i++)
    v[i].mark = !spared(v[i].pid) && env_marked(v[i].pid, name, stale, arg);
  for (int more = 1; more;) {
    more = 0;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n && !v[i].mark; j++)
        if (v[j].mark && v[j].pid == v[i].ppid && !spared(v[i].pid))
          more = v[i].mark = 1;
  }
  size_t marked = 0;
  for (size_t i = 0; i < n; i++)
    marked += v[i].mark != 0;
  return marked;
}

int fl_reap_marked(const char *name, int (*stale)(const char *, void *),
                   void *arg) {
  int killed = 0;
  struct timespec pause = {0, 20 * 1000000};
  for (int waited = 0; waited < KILL_WAIT_MS; waited += 20) {
    size_t n;
    struct pent *v = snapshot(&n);
    size_t marked = v != NULL ? mark(v, n, name, stale, arg) : 0;
    /* Stopped processes take a SIGKILL as well: no SIGCONT needed. */
    for (size_t i = 0; i < n; i++)
      if (v[i].mark)
        kill(v[i].pid, SIGKILL);
    free(v);
    if (waited == 0)
      killed = (int)marked;
    if (marked == 0)
      break;
    nanosleep(&pause, NULL);
  }
  return killed;
}

static int owner_dead(const char *tag, void *arg) {
  (void)arg;
  return fl_owner_alive(tag) == 0;
}

int fl_reap_orphans(void) {
  return fl_reap_marked(FL_OWNER_ENV, owner_dead, NULL);
}
