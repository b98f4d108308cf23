/*
 * The target's log: its stdout and stderr come through a pipe that the
 * runner reads on its loop and writes to OUTDIR/target.log, so that a
 * target printing megabytes a second cannot fill the disk: past
 * FL_TLOG_CAP bytes the log is rotated (target.log.1, one kept) and the
 * run goes on. Reading never blocks the loop; a target whose output the
 * runner cannot keep up with waits on its own writes, as on a terminal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "run_int.h"

#define FL_TLOG_CAP (8u << 20)

struct fl_tlog {
  uv_pipe_t pipe;
  int fd;       /* the log file */
  int open;     /* the pipe handle is open */
  int released; /* the run let go: free once the handle has closed */
  size_t size;  /* bytes in the current file */
  size_t cap;
  char path[PATH_MAX];
  char buf[64 * 1024];
};

static int reopen(struct fl_tlog *t) {
  if (t->fd >= 0)
    close(t->fd);
  t->fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  t->size = 0;
  return t->fd < 0 ? -errno : 0;
}

/* The current file becomes PATH.1 (replacing an older one). */
static void rotate(struct fl_tlog *t) {
  char old[PATH_MAX + 2];
  snprintf(old, sizeof(old), "%s.1", t->path);
  if (rename(t->path, old) == 0)
    reopen(t);
}

static void write_out(struct fl_tlog *t, const char *p, size_t n) {
  while (n > 0 && t->fd >= 0) {
    if (t->size >= t->cap)
      rotate(t);
    size_t room = t->cap - t->size, k = n < room ? n : room;
    ssize_t w = write(t->fd, p, k);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* a full disk: what does not fit is dropped */
    t->size += (size_t)w;
    p += w;
    n -= (size_t)w;
  }
}

static void maybe_free(struct fl_tlog *t) {
  if (t->released && !t->open)
    free(t);
}

static void on_closed(uv_handle_t *h) {
  struct fl_tlog *t = h->data;
  t->open = 0;
  maybe_free(t);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct fl_tlog *t = h->data;
  (void)hint;
  *b = uv_buf_init(t->buf, sizeof(t->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct fl_tlog *t = s->data;
  if (n > 0)
    write_out(t, b->base, (size_t)n);
  else if (n < 0 && t->open == 1) { /* EOF: every writer has gone */
    t->open = 2;
    uv_close((uv_handle_t *)&t->pipe, on_closed);
  }
}

int fl_tlog_open(uv_loop_t *loop, const char *path, struct fl_tlog **out,
                 int *child_fd) {
  struct fl_tlog *t = calloc(1, sizeof(*t));
  uv_file fds[2];
  if (t == NULL)
    return -ENOMEM;
  t->fd = -1;
  t->cap = FL_TLOG_CAP;
  snprintf(t->path, sizeof(t->path), "%s", path);
  int rc = reopen(t);
  if (rc == 0)
    rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
  if (rc == 0 && (rc = uv_pipe_init(loop, &t->pipe, 0)) != 0) {
    close(fds[0]);
    close(fds[1]);
  }
  if (rc != 0) {
    if (t->fd >= 0)
      close(t->fd);
    free(t);
    return rc;
  }
  t->pipe.data = t;
  t->open = 1;
  if ((rc = uv_pipe_open(&t->pipe, fds[0])) != 0)
    close(fds[0]); /* not the handle's yet */
  else
    rc = uv_read_start((uv_stream_t *)&t->pipe, on_alloc, on_read);
  if (rc != 0) {
    close(fds[1]);
    fl_tlog_close(t);
    return rc;
  }
  *out = t;
  *child_fd = fds[1];
  return 0;
}

void fl_tlog_drain(struct fl_tlog *t) {
  uv_os_fd_t fd;
  if (t == NULL || t->open != 1 || uv_fileno((uv_handle_t *)&t->pipe, &fd) != 0)
    return;
  ssize_t n;
  while ((n = read(fd, t->buf, sizeof(t->buf))) > 0 ||
         (n < 0 && errno == EINTR))
    if (n > 0)
      write_out(t, t->buf, (size_t)n);
}

void fl_tlog_close(struct fl_tlog *t) {
  if (t == NULL)
    return;
  fl_tlog_drain(t);
  if (t->fd >= 0)
    close(t->fd);
  t->fd = -1;
  t->released = 1;
  if (t->open == 1) {
    t->open = 2;
    uv_close((uv_handle_t *)&t->pipe, on_closed);
  }
  maybe_free(t);
}
