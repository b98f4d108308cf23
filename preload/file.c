/*
 * Opening files: exhaust (EMFILE) on every open, and disk faults (enospc,
 * eio) on opens for writing under a path glob. Relative paths are made
 * absolute against the cwd or the directory fd, without resolving "..".
 *
 * libpython calls open64/openat64 and fortified builds call __open_2 and
 * friends, so every alias is defined: a name we skip is a name that
 * bypasses us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"

static int wants_write(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0;
}

static void absolute(int dirfd, const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  if (path[0] == '/') {
    snprintf(buf, size, "%s", path);
    return;
  }
  size_t n = 0;
  if (dirfd == AT_FDCWD) {
    if (getcwd(buf, size) == NULL)
      return;
    n = strlen(buf);
  } else {
    char link[32];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    ssize_t len = readlink(link, buf, size - 1);
    if (len <= 0)
      return;
    n = (size_t)len;
    buf[n] = '\0';
  }
  snprintf(buf + n, size - n, "%s%s", n > 0 && buf[n - 1] == '/' ? "" : "/",
           path);
}

/* Returns 0 to pass the open through, or the errno to fail it with. */
static int open_fault(int dirfd, const char *path, int flags) {
  int saved = errno, err = 0;
  struct fl_verdict v;
  if (fl_decide_exhaust(FL_OPC_OPEN, &v)) {
    err = v.err;
  } else if (path != NULL && wants_write(flags)) {
    char abs[PATH_MAX];
    absolute(dirfd, path, abs, sizeof(abs));
    struct fl_usage *u = fl_recording();
    if (u != NULL && abs[0] == '/')
      fl_usage_path(u, abs, (flags & O_CREAT) ? FL_USEF_CREATE : 0);
    if (abs[0] == '/' && fl_decide_path(FL_OPC_OPEN, abs, &v))
      err = v.err;
  }
  if (err != 0)
    fl_record(&v, FL_OP_OPEN);
  errno = saved;
  return err;
}

#define OPEN_GATE(dirfd, path, flags, failed)                                  \
  do {                                                                         \
    if (FL_UNLIKELY(fl_ops() & FL_OPC_OPEN)) {                                 \
      int err_ = open_fault((dirfd), (path), (flags));                         \
      if (err_ != 0) {                                                         \
        errno = err_;                                                          \
        return failed;                                                         \
      }                                                                        \
    }                                                                          \
  } while (0)

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, last)                                                 \
  mode_t mode = 0;                                                             \
  if (((flags)&O_CREAT) != 0 || ((flags)&O_TMPFILE) == O_TMPFILE) {            \
    va_list ap;                                                                \
    va_start(ap, last);                                                        \
    mode = (mode_t)va_arg(ap, int);                                            \
    va_end(ap);                                                                \
  }

#define SYS_OPENAT(d, p, f, m) ((int)syscall(SYS_openat, d, p, f, m))

int open(const char *path, int flags, ...) {
  OPEN_MODE(flags, flags);
  OPEN_GATE(AT_FDCWD, path, flags, -1);
  return FL_CALL(open, SYS_OPENAT(AT_FDCWD, path, flags, mode), path, flags,
                 mode);
}

int open64(const char *path, int flags, ...) {
  OPEN_MODE(flags, flags);
  OPEN_GATE(AT_FDCWD, path, flags, -1);
  return FL_CALL(open64, SYS_OPENAT(AT_FDCWD, path, flags | O_LARGEFILE, mode),
                 path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  OPEN_MODE(flags, flags);
  OPEN_GATE(dirfd, path, flags, -1);
  return FL_CALL(openat, SYS_OPENAT(dirfd, path, flags, mode), dirfd, path,
                 flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  OPEN_MODE(flags, flags);
  OPEN_GATE(dirfd, path, flags, -1);
  return FL_CALL(openat64, SYS_OPENAT(dirfd, path, flags | O_LARGEFILE, mode),
                 dirfd, path, flags, mode);
}

int __open_2(const char *path, int flags) {
  OPEN_GATE(AT_FDCWD, path, flags, -1);
  return FL_CALL(__open_2, SYS_OPENAT(AT_FDCWD, path, flags, 0), path, flags);
}

int __open64_2(const char *path, int flags) {
  OPEN_GATE(AT_FDCWD, path, flags, -1);
  return FL_CALL(__open64_2, SYS_OPENAT(AT_FDCWD, path, flags | O_LARGEFILE, 0),
                 path, flags);
}

int __openat_2(int dirfd, const char *path, int flags) {
  OPEN_GATE(dirfd, path, flags, -1);
  return FL_CALL(__openat_2, SYS_OPENAT(dirfd, path, flags, 0), dirfd, path,
                 flags);
}

int __openat64_2(int dirfd, const char *path, int flags) {
  OPEN_GATE(dirfd, path, flags, -1);
  return FL_CALL(__openat64_2, SYS_OPENAT(dirfd, path, flags | O_LARGEFILE, 0),
                 dirfd, path, flags);
}

#define CREAT_FLAGS (O_CREAT | O_WRONLY | O_TRUNC)

int creat(const char *path, mode_t mode) {
  OPEN_GATE(AT_FDCWD, path, CREAT_FLAGS, -1);
  return FL_CALL(creat, SYS_OPENAT(AT_FDCWD, path, CREAT_FLAGS, mode), path,
                 mode);
}

int creat64(const char *path, mode_t mode) {
  OPEN_GATE(AT_FDCWD, path, CREAT_FLAGS, -1);
  return FL_CALL(creat64,
                 SYS_OPENAT(AT_FDCWD, path, CREAT_FLAGS | O_LARGEFILE, mode),
                 path, mode);
}

/* stdio opens through libc's internal open, so fopen is wrapped itself.
 * Its later writes (fwrite, fflush) are internal too and stay unseen. */
static int fopen_flags(const char *mode) {
  int flags = O_RDONLY;
  if (mode != NULL && (strchr(mode, 'w') || strchr(mode, 'a')))
    flags = O_WRONLY | O_CREAT;
  if (mode != NULL && strchr(mode, '+'))
    flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags;
}

static FILE *(*resolve_fopen(const char *name))(const char *, const char *) {
  return (FILE * (*)(const char *, const char *)) fl_resolve(name);
}

/* fopen without libc's fopen (not found: see fl_resolve): open(2) with
 * the flags the mode means, then fdopen, as fopen itself does. */
static FILE *fopen_by_syscall(const char *path, const char *mode) {
  if (mode == NULL || strchr("rwa", mode[0]) == NULL) {
    errno = EINVAL;
    return NULL;
  }
  int flags = mode[0] == 'r' ? O_RDONLY : O_WRONLY | O_CREAT;
  flags |= mode[0] == 'w' ? O_TRUNC : mode[0] == 'a' ? O_APPEND : 0;
  if (strchr(mode, '+'))
    flags = (flags & ~O_ACCMODE) | O_RDWR;
  flags |= strchr(mode, 'x') ? O_EXCL : 0;
  flags |= strchr(mode, 'e') ? O_CLOEXEC : 0;
  int fd = (int)SYS_OPENAT(AT_FDCWD, path, flags | O_LARGEFILE, 0666);
  if (fd < 0)
    return NULL;
  FILE *f = fdopen(fd, mode);
  if (f == NULL) {
    int saved = errno;
    syscall(SYS_close, fd);
    errno = saved;
  }
  return f;
}

FILE *fopen(const char *path, const char *mode) {
  OPEN_GATE(AT_FDCWD, path, fopen_flags(mode), NULL);
  if (fl_real_fopen == NULL)
    fl_real_fopen = resolve_fopen("fopen");
  if (fl_real_fopen == NULL)
    return fopen_by_syscall(path, mode);
  return fl_real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
  OPEN_GATE(AT_FDCWD, path, fopen_flags(mode), NULL);
  if (fl_real_fopen64 == NULL)
    fl_real_fopen64 = resolve_fopen("fopen64");
  if (fl_real_fopen64 == NULL)
    return fopen_by_syscall(path, mode);
  return fl_real_fopen64(path, mode);
}
