/*
 * The shared memory initdb's own servers leave when they are killed.
 *
 * initdb runs postgres twice (bootstrap, then single-user) with the
 * dynamic shared memory it chose, "posix", and has no -c to say otherwise.
 * Each makes /dev/shm/PostgreSQL.N segments, named by random handles, and
 * removes them as it exits; killed (SIGKILL to the run, SIGINT or SIGTERM
 * to faultline, a failure that ends the group) they stay. A marker file,
 * written as initdb starts and removed once it has exited, dates them:
 * what this sweep removes is a PostgreSQL.N segment of initdb's user,
 * made after the marker and before the sweep began, that no process has
 * open or mapped. Another cluster's live segment is always one or the
 * other (postgres keeps the file open until it has mapped it), so only
 * the dead are taken.
 */
#define _GNU_SOURCE
#include "postgres_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
#define SHM_PREFIX "PostgreSQL."
#define MARK_NAME "initdb.started"
#define MAX_CANDIDATES 256

struct candidate {
  char name[NAME_MAX + 1];
  int used;
};

static int ts_before(struct timespec a, struct timespec b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* Marks the candidates whose /dev/shm path `target` names. */
static void mark_used(struct candidate *c, size_t n, const char *target) {
  static const char dir[] = SHM_DIR "/";
  if (strncmp(target, dir, sizeof(dir) - 1) != 0)
    return;
  const char *name = target + sizeof(dir) - 1;
  size_t len = strcspn(name, " \n");
  for (size_t i = 0; i < n; i++)
    if (strlen(c[i].name) == len && strncmp(c[i].name, name, len) == 0)
      c[i].used = 1;
}

/* Open files first, then mappings: a segment being made is open until it
 * is mapped, so it is seen in one or the other. */
static void scan_process(int proc, const char *pid, struct candidate *c,
                         size_t n) {
  int pfd = openat(proc, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0)
    return;
  char link[PATH_MAX];
  int fdd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *fds = fdd >= 0 ? fdopendir(fdd) : NULL;
  if (fds == NULL && fdd >= 0)
    close(fdd);
  for (struct dirent *e; fds != NULL && (e = readdir(fds)) != NULL;) {
    ssize_t len = readlinkat(dirfd(fds), e->d_name, link, sizeof(link) - 1);
    if (len > 0) {
      link[len] = '\0';
      mark_used(c, n, link);
    }
  }
  if (fds != NULL)
    closedir(fds);
  int mfd = openat(pfd, "maps", O_RDONLY | O_CLOEXEC);
  FILE *maps = mfd >= 0 ? fdopen(mfd, "r") : NULL;
  if (maps == NULL && mfd >= 0)
    close(mfd);
  char *line = NULL;
  size_t cap = 0;
  while (maps != NULL && getline(&line, &cap, maps) > 0) {
    char *at = strstr(line, SHM_DIR "/" SHM_PREFIX);
    if (at != NULL)
      mark_used(c, n, at);
  }
  free(line);
  if (maps != NULL)
    fclose(maps);
  close(pfd);
}

/* The segments of `owner` made between `since` and `until`. */
static size_t list_candidates(uid_t owner, struct timespec since,
                              struct timespec until, struct candidate *c) {
  DIR *d = opendir(SHM_DIR);
  size_t n = 0;
  for (struct dirent *e;
       d != NULL && n < MAX_CANDIDATES && (e = readdir(d)) != NULL;) {
    struct stat st;
    if (strncmp(e->d_name, SHM_PREFIX, sizeof(SHM_PREFIX) - 1) != 0 ||
        fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || st.st_uid != owner ||
        ts_before(st.st_ctim, since) || !ts_before(st.st_ctim, until))
      continue;
    size_t len = strlen(e->d_name);
    if (len >= sizeof(c[n].name))
      continue;
    memcpy(c[n].name, e->d_name, len + 1);
    c[n++].used = 0;
  }
  if (d != NULL)
    closedir(d);
  return n;
}

/* DIR/NAME; -ENAMETOOLONG rather than a truncated path. */
static int join(char *out, size_t cap, const char *dir, const char *name) {
  int len = snprintf(out, cap, "%s/%s", dir, name);
  return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

static void sweep(const char *dir, uid_t owner) {
  char mark[PATH_MAX];
  struct stat st;
  if (join(mark, sizeof(mark), dir, MARK_NAME) != 0 || stat(mark, &st) != 0)
    return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  /* The file system's clock may lag the marker's by a tick. */
  struct timespec since = st.st_mtim;
  since.tv_sec -= 1;
  static struct candidate c[MAX_CANDIDATES];
  size_t n = list_candidates(owner, since, now, c);
  DIR *proc = n > 0 ? opendir("/proc") : NULL;
  for (struct dirent *e; proc != NULL && (e = readdir(proc)) != NULL;)
    if (isdigit((unsigned char)e->d_name[0]))
      scan_process(dirfd(proc), e->d_name, c, n);
  if (proc != NULL)
    closedir(proc);
  int shm = n > 0 ? open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  for (size_t i = 0; shm >= 0 && i < n; i++)
    if (!c[i].used)
      unlinkat(shm, c[i].name, 0);
  if (shm >= 0)
    close(shm);
  unlink(mark);
}

int fl_pg_initdb_mark(const struct fl_dep *d) {
  char mark[PATH_MAX];
  int rc = join(mark, sizeof(mark), d->dir, MARK_NAME);
  if (rc != 0)
    return rc;
  int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

void fl_pg_initdb_done(const struct fl_dep *d, int exited_ok) {
  if (exited_ok) { /* it removed its segments itself */
    char mark[PATH_MAX];
    if (join(mark, sizeof(mark), d->dir, MARK_NAME) == 0)
      unlink(mark);
    return;
  }
  sweep(d->dir, d->as_user ? d->uid : geteuid());
}

void fl_pg_initdb_reap(const char *dir) {
  /* A dead run's cluster: initdb's user owns its data folder. */
  char data[PATH_MAX];
  struct stat st;
  if ((join(data, sizeof(data), dir, "data") == 0 && stat(data, &st) == 0) ||
      stat(dir, &st) == 0)
    sweep(dir, st.st_uid);
}
