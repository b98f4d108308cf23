/*
 * The guard: what cleans up when the runner cannot.
 *
 * A SIGKILLed runner runs no teardown. PR_SET_PDEATHSIG (every program we
 * start runs through `setpriv --pdeathsig KILL`) ends our own children,
 * but not theirs: uvicorn's workers, what a shell forked, a daemon. A
 * subreaper would not help either, since orphans go to the subreaper
 * above a dead one. So the runner forks a guard first, in a session of its
 * own (a group kill or a Ctrl-C does not reach it), that waits on a pipe.
 * A clean end writes 'd' and the guard leaves; end of file without it
 * means the runner died: the guard kills every process marked with its
 * tag (FL_OWNER_ENV, inherited by all we start) and removes the stale
 * folders. If the guard is killed too, the next `faultline run` does the
 * same at its start (fl_run_reap).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "deps/deps.h"
#include "run_int.h"

#define OWNER_GONE_MS 5000 /* from end of file until the runner is a zombie */

void fl_run_reap(void) {
  fl_reap_orphans();
  fl_reap_folders(NULL, fl_dep_reap_folder);
}

/* The runner closes its files before it becomes a zombie: until then its
 * tag still reads as alive. */
static void wait_owner_gone(const char *tag) {
  struct timespec pause = {0, 10 * 1000000};
  for (int ms = 0; ms < OWNER_GONE_MS && fl_owner_alive(tag) == 1; ms += 10)
    nanosleep(&pause, NULL);
}

static void guard_main(int fd, const char *tag) {
  setsid();
  prctl(PR_SET_NAME, "faultline-guard");
  signal(SIGPIPE, SIG_IGN);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < 3 && null >= 0; i++)
    dup2(null, i);
  /* Nothing of the runner's: a reader of its output gets end of file. */
  if (dup2(fd, 3) == 3)
    fd = 3;
  close_range(4, ~0U, 0);
  char c = 0;
  ssize_t n;
  do
    n = read(fd, &c, 1);
  while (n < 0 && errno == EINTR);
  if (n == 1 && c == 'd')
    _exit(0);
  wait_owner_gone(tag);
  fl_run_reap();
  _exit(0);
}

int fl_guard_start(struct guard *g) {
  char tag[48];
  int p[2];
  g->pid = -1;
  g->fd = -1;
  if (fl_owner_tag(tag, sizeof(tag)) != 0 || pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    guard_main(p[0], tag);
  }
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    return -errno;
  }
  g->pid = pid;
  g->fd = p[1];
  return 0;
}

void fl_guard_stop(struct guard *g) {
  if (g->fd >= 0) {
    ssize_t n;
    do
      n = write(g->fd, "d", 1);
    while (n < 0 && errno == EINTR);
    close(g->fd);
    g->fd = -1;
  }
  if (g->pid > 0)
    while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  g->pid = -1;
}
