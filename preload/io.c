/*
 * Socket and file I/O wrappers, generated from one table.
 *
 * Each row: return type, name, parameters, arguments, the fd and MSG_*
 * flags expressions, the I/O kind, the operation recorded, and the raw
 * syscall used before the constructor ran. Adding a function is one row.
 *
 * Kinds:
 *   SOCK_IN / SOCK_OUT  socket calls: reset and delay on tracked sockets;
 *   ANY_IN              read()-style calls: the socket faults, if a socket;
 *   ANY_OUT             write()-style calls: socket faults on sockets, disk
 *                       faults (enospc, eio) on files under a path glob;
 *   FILE_OUT            pwrite/fsync: disk faults only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#include "calls.h"

enum io_kind { SOCK_IN, SOCK_OUT, ANY_IN, ANY_OUT, FILE_OUT };

static const uint32_t kind_gate[] = {
    [SOCK_IN] = FL_OPC_SOCKIO,  [SOCK_OUT] = FL_OPC_SOCKIO,
    [ANY_IN] = FL_OPC_SOCKIO,   [ANY_OUT] = FL_OPC_SOCKIO | FL_OPC_FILEIO,
    [FILE_OUT] = FL_OPC_FILEIO,
};

/* A socket that was reset stays broken, as after a real RST: TCP sockets
 * are disconnected (the peer gets an RST; pollers see POLLHUP). The
 * disconnect leaves ECONNRESET pending, which we report ourselves, so it is
 * consumed; the shutdown then makes later calls behave as after one real
 * RST, in the kernel itself and whether or not the rule is still on: end
 * of file on read, EPIPE on write. */
static void break_connection(int fd, const struct fl_dest *d) {
  if (d->inet.family != 0) {
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    FL_CALL(connect, (int)syscall(SYS_connect, fd, &sa, sizeof(sa)), fd, &sa,
            sizeof(sa));
    int pending;
    socklen_t len = sizeof(pending);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &len);
  }
  shutdown(fd, SHUT_RDWR);
}

/* The path of an open file, from /proc; "" when it has none. */
static void fd_path(int fd, char *buf, size_t size) {
  char link[32] = "/proc/self/fd/";
  size_t at = strlen(link);
  link[at + fl_utoa((uint32_t)fd, link + at)] = '\0';
  ssize_t len = readlink(link, buf, size - 1);
  buf[len > 0 ? len : 0] = '\0';
}

/* Returns 0 to pass the call through, or the errno to fail it with. */
static int io_fault(uint32_t ops, enum io_kind kind, int fd, int msg_flags,
                    int op) {
  int saved = errno, err = 0;
  struct fl_verdict v;
  struct fl_dest d;
  if (kind != FILE_OUT && fl_fd_lookup(fd, &d)) {
    struct fl_usage *u = fl_recording();
    if (u != NULL) /* pooled connections count: no connect is needed */
      fl_usage_dest(u, &d.inet, 0);
    d.fd = fd;
    d.msg_flags = msg_flags;
    d.addr_seen = 0;
    /* Rules aimed elsewhere cost one load per call, not a walk of the
     * rules: a socket no rule covers is marked quiet until they change. */
    uint32_t gen = fl_generation();
    if ((ops & FL_OPC_SOCKIO) == 0 || fl_fd_quiet(fd, gen)) {
      /* pass */
    } else if (fl_decide_dest(FL_OPC_SOCKIO, &d, &v)) {
      fl_record(&v, op);
      if (v.action == FL_ACT_DELAY) {
        fl_sleep_ms(v.ms);
      } else {
        break_connection(fd, &d);
        err = v.err;
      }
    } else if (!d.addr_seen) {
      fl_fd_mark_quiet(fd, gen);
    }
  } else if ((kind == ANY_OUT || kind == FILE_OUT) && (ops & FL_OPC_FILEIO)) {
    char path[PATH_MAX];
    fd_path(fd, path, sizeof(path));
    if (path[0] == '/' && fl_decide_path(FL_OPC_FILEIO, path, &v)) {
      fl_record(&v, op);
      err = v.err;
    }
  }
  errno = saved;
  return err;
}

#define IO_WRAPPERS(X)                                                         \
  X(ssize_t, send, (int fd, const void *b, size_t n, int fl), (fd, b, n, fl),  \
    fl, SOCK_OUT, FL_OP_SEND, syscall(SYS_sendto, fd, b, n, fl, NULL, 0))      \
  X(ssize_t, sendto,                                                           \
    (int fd, const void *b, size_t n, int fl, const struct sockaddr *a,        \
     socklen_t al),                                                            \
    (fd, b, n, fl, a, al), fl, SOCK_OUT, FL_OP_SEND,                           \
    syscall(SYS_sendto, fd, b, n, fl, a, al))                                  \
  X(ssize_t, sendmsg, (int fd, const struct msghdr *m, int fl), (fd, m, fl),   \
    fl, SOCK_OUT, FL_OP_SEND, syscall(SYS_sendmsg, fd, m, fl))                 \
  X(int, sendmmsg, (int fd, struct mmsghdr *m, unsigned int n, int fl),        \
    (fd, m, n, fl), fl, SOCK_OUT, FL_OP_SEND,                                  \
    syscall(SYS_sendmmsg, fd, m, n, fl))                                       \
  X(ssize_t, recv, (int fd, void *b, size_t n, int fl), (fd, b, n, fl), fl,    \
    SOCK_IN, FL_OP_RECV, syscall(SYS_recvfrom, fd, b, n, fl, NULL, NULL))      \
  X(ssize_t, recvfrom,                                                         \
    (int fd, void *b, size_t n, int fl, struct sockaddr *a, socklen_t *al),    \
    (fd, b, n, fl, a, al), fl, SOCK_IN, FL_OP_RECV,                            \
    syscall(SYS_recvfrom, fd, b, n, fl, a, al))                                \
  X(ssize_t, recvmsg, (int fd, struct msghdr *m, int fl), (fd, m, fl), fl,     \
    SOCK_IN, FL_OP_RECV, syscall(SYS_recvmsg, fd, m, fl))                      \
  X(int, recvmmsg,                                                             \
    (int fd, struct mmsghdr *m, unsigned int n, int fl, struct timespec *t),   \
    (fd, m, n, fl, t), fl, SOCK_IN, FL_OP_RECV,                                \
    syscall(SYS_recvmmsg, fd, m, n, fl, t))                                    \
  X(ssize_t, __recv_chk, (int fd, void *b, size_t n, size_t bl, int fl),       \
    (fd, b, n, bl, fl), fl, SOCK_IN, FL_OP_RECV,                               \
    syscall(SYS_recvfrom, fd, b, n, fl, NULL, NULL))                           \
  X(ssize_t, __recvfrom_chk,                                                   \
    (int fd, void *b, size_t n, size_t bl, int fl, struct sockaddr *a,         \
     socklen_t *al),                                                           \
    (fd, b, n, bl, fl, a, al), fl, SOCK_IN, FL_OP_RECV,                        \
    syscall(SYS_recvfrom, fd, b, n, fl, a, al))                                \
  X(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n), 0, ANY_IN,         \
    FL_OP_READ, syscall(SYS_read, fd, b, n))                                   \
  X(ssize_t, __read_chk, (int fd, void *b, size_t n, size_t bl),               \
    (fd, b, n, bl), 0, ANY_IN, FL_OP_READ, syscall(SYS_read, fd, b, n))        \
  X(ssize_t, readv, (int fd, const struct iovec *v, int c), (fd, v, c), 0,     \
    ANY_IN, FL_OP_READ, syscall(SYS_readv, fd, v, c))                          \
  X(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n), 0, ANY_OUT, \
    FL_OP_WRITE, syscall(SYS_write, fd, b, n))                                 \
  X(ssize_t, writev, (int fd, const struct iovec *v, int c), (fd, v, c), 0,    \
    ANY_OUT, FL_OP_WRITE, syscall(SYS_writev, fd, v, c))                       \
  X(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o),               \
    (fd, b, n, o), 0, FILE_OUT, FL_OP_WRITE,                                   \
    syscall(SYS_pwrite64, fd, b, n, o))                                        \
  X(ssize_t, pwrite64, (int fd, const void *b, size_t n, off_t o),             \
    (fd, b, n, o), 0, FILE_OUT, FL_OP_WRITE,                                   \
    syscall(SYS_pwrite64, fd, b, n, o))                                        \
  X(ssize_t, pwritev, (int fd, const struct iovec *v, int c, off_t o),         \
    (fd, v, c, o), 0, FILE_OUT, FL_OP_WRITE,                                   \
    syscall(SYS_pwritev, fd, v, c, o, 0))                                      \
  X(ssize_t, pwritev64, (int fd, const struct iovec *v, int c, off_t o),       \
    (fd, v, c, o), 0, FILE_OUT, FL_OP_WRITE,                                   \
    syscall(SYS_pwritev, fd, v, c, o, 0))                                      \
  X(int, fsync, (int fd), (fd), 0, FILE_OUT, FL_OP_FSYNC,                      \
    syscall(SYS_fsync, fd))                                                    \
  X(int, fdatasync, (int fd), (fd), 0, FILE_OUT, FL_OP_FSYNC,                  \
    syscall(SYS_fdatasync, fd))

/* The slow path is a separate cold function that the wrapper tail-calls,
 * so the idle path is a load, a test and a jump to libc, with no spills. */
#define IO_WRAPPER(ret, name, params, args, flags, kind, op, fallback)         \
  __attribute__((noinline, cold)) static ret slow_##name params {              \
    int err = io_fault(fl_ops(), kind, fd, flags, op);                         \
    if (err != 0) {                                                            \
      errno = err;                                                             \
      return -1;                                                               \
    }                                                                          \
    return fl_real_##name != NULL ? fl_real_##name args : (ret)(fallback);     \
  }                                                                            \
  ret name params {                                                            \
    if (FL_UNLIKELY(fl_ops() & kind_gate[kind]))                               \
      return slow_##name args;                                                 \
    return fl_real_##name != NULL ? fl_real_##name args : (ret)(fallback);     \
  }

IO_WRAPPERS(IO_WRAPPER)
