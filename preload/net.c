/*
 * Connection set-up: socket, socketpair, connect, accept, accept4, close.
 *
 * connect() records every connection's destination in the fd table even
 * when no rule is active (a few stores, no syscall), so a rule switched on
 * later reaches connections that already exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "calls.h"

static int real_connect(int fd, const struct sockaddr *a, socklen_t n) {
  return FL_CALL(connect, (int)syscall(SYS_connect, fd, a, n), fd, a, n);
}

static void dest_from(int fd, const struct sockaddr *a, socklen_t n,
                      struct fl_dest *d) {
  memset(d, 0, sizeof(*d));
  d->fd = fd;
  if (fl_addr_from_sockaddr(a, n, &d->inet) == 0)
    return;
  if (a != NULL && a->sa_family == AF_UNIX &&
      n > (socklen_t)offsetof(struct sockaddr_un, sun_path)) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)a;
    size_t max = n - offsetof(struct sockaddr_un, sun_path);
    if (max > sizeof(un->sun_path))
      max = sizeof(un->sun_path);
    size_t len = strnlen(un->sun_path, max);
    if (len > 0) /* abstract sockets have no path to aim at */
      d->unix_hash = fl_hash_bytes(un->sun_path, len, FL_HASH_SEED);
  }
}

static int connect_started(int r, int err) {
  return r == 0 || err == EINPROGRESS || err == EINTR || err == EISCONN ||
         err == EALREADY;
}

/* Builds a sockaddr of the socket's family for `to`: an AF_INET6 socket
 * reaches an IPv4 address through its v4-mapped form. */
static socklen_t sockaddr_for(int family, const struct fl_addr *to,
                              struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET && to->family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(to->port);
    memcpy(&in->sin_addr, to->addr, 4);
    return sizeof(*in);
  }
  if (family == AF_INET6 && to->family != 0) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(to->port);
    if (to->family == AF_INET) {
      in6->sin6_addr.s6_addr[10] = 0xff;
      in6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&in6->sin6_addr.s6_addr[12], to->addr, 4);
    } else {
      memcpy(&in6->sin6_addr, to->addr, 16);
    }
    return sizeof(*in6);
  }
  return 0;
}

/* The blackhole for a socket of this family: a listener whose accept queue
 * is full, so the SYN is dropped and the connect stays in SYN_SENT. A fake
 * EINPROGRESS would not do: an unconnected socket polls writable at once. */
static socklen_t blackhole_for(int family, struct sockaddr_storage *ss) {
  const struct fl_ctl_header *h = fl_header();
  if (h == NULL)
    return 0;
  if (family == AF_INET6 && h->blackhole6.family == AF_INET6)
    return sockaddr_for(family, &h->blackhole6, ss);
  return sockaddr_for(family, &h->blackhole4, ss);
}

static int connect_to_blackhole(int fd, int family, const struct fl_dest *d,
                                int nonblocking_now) {
  struct sockaddr_storage bh;
  socklen_t n = blackhole_for(family, &bh);
  if (n == 0) {
    errno = ETIMEDOUT; /* no blackhole was provided: time out at once */
    return -1;
  }
  int flags = 0;
  if (nonblocking_now) {
    flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
  int r = real_connect(fd, (struct sockaddr *)&bh, n);
  int err = errno;
  if (nonblocking_now)
    fcntl(fd, F_SETFL, flags);
  if (connect_started(r, err))
    fl_fd_track(fd, d, (struct sockaddr *)&bh, n, FL_NO_HOLD);
  errno = err;
  return r;
}

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* hang on a blocking socket: wait in the wrapper while the rule stays, so
 * clearing it releases the caller, who then really connects. The socket's
 * own SO_SNDTIMEO is honoured as the kernel does: EINPROGRESS, with the
 * connection left pending (towards the blackhole). Returns 1 when the rule
 * was lifted, or -1 with errno set. */
static int hang_blocking(int fd, int family, const struct fl_dest *d,
                         const struct fl_verdict *v) {
  struct timeval tv = {0, 0};
  socklen_t tvlen = sizeof(tv);
  uint64_t limit = 0;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tvlen) == 0 &&
      (tv.tv_sec != 0 || tv.tv_usec != 0))
    limit =
        now_ms() + (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
  while (fl_rule_still_active(v)) {
    if (limit != 0 && now_ms() >= limit) {
      if (connect_to_blackhole(fd, family, d, 1) == 0)
        return 1; /* cannot happen with a full queue; be honest if it does */
      errno = EINPROGRESS;
      return -1;
    }
    fl_sleep_ms(2);
  }
  return 1;
}

static int connect_slow(int fd, const struct sockaddr *addr, socklen_t len) {
  int saved = errno;
  struct fl_dest d;
  dest_from(fd, addr, len, &d);
  struct fl_verdict v = {.rule = -1, .hold = FL_NO_HOLD};
  if (fl_fd_same_dest(fd, &d)) {
    errno = saved;
    return real_connect(fd, addr, len);
  }
  struct fl_usage *u = fl_recording();
  if (u != NULL) /* the destination asked for, before any redirect */
    fl_usage_dest(u, &d.inet, 1);
  while ((d.inet.family != 0 || d.unix_hash != 0) &&
         fl_decide_dest(FL_OPC_CONNECT, &d, &v)) {
    if (v.action != FL_ACT_REDIRECT)
      fl_record(&v, FL_OP_CONNECT);
    if (v.action == FL_ACT_DELAY) {
      fl_sleep_ms(v.ms);
      break; /* then connect for real, still counted by any limit */
    }
    if (v.action == FL_ACT_REDIRECT) {
      struct sockaddr_storage to;
      socklen_t n = sockaddr_for(addr->sa_family, &v.to, &to);
      if (n == 0)
        break;
      errno = saved;
      int r = real_connect(fd, (struct sockaddr *)&to, n);
      int err = errno;
      if (connect_started(r, err)) {
        fl_fd_track(fd, &d, (struct sockaddr *)&to, n, v.hold);
        fl_fd_note_inode(fd);
      } else
        fl_limit_release(&v.hold);
      errno = err;
      return r;
    }
    /* The remaining faults never make a connection: uncount it. */
    fl_limit_release(&v.hold);
    if (v.action != FL_ACT_HANG) { /* refuse, limit, errno-style faults */
      errno = v.err;
      return -1;
    }
    if ((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0)
      return connect_to_blackhole(fd, addr->sa_family, &d, 0);
    if (hang_blocking(fd, addr->sa_family, &d, &v) < 0)
      return -1;
    /* Lifted: decide afresh, another rule may apply. */
  }
  errno = saved;
  int r = real_connect(fd, addr, len);
  int err = errno;
  if (connect_started(r, err)) {
    fl_fd_track(fd, &d, addr, len, v.hold);
    fl_fd_note_inode(fd);
  } else
    fl_limit_release(&v.hold);
  errno = err;
  return r;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  if (FL_UNLIKELY(fl_ops() & FL_OPC_CONNECT))
    return connect_slow(fd, addr, len);
  int r = real_connect(fd, addr, len);
  int err = errno;
  if (connect_started(r, err)) {
    struct fl_dest d;
    dest_from(fd, addr, len, &d);
    if (d.inet.family != 0 || d.unix_hash != 0)
      fl_fd_track(fd, &d, addr, len, FL_NO_HOLD);
    errno = err;
  }
  return r;
}

/* exhaust: the process "has no fd left" for a new socket. */
static int exhausted(int op) {
  struct fl_verdict v;
  if (!fl_decide_exhaust(FL_OPC_SOCKET, &v))
    return 0;
  fl_record(&v, op);
  errno = v.err;
  return 1;
}

int socket(int domain, int type, int protocol) {
  if (FL_UNLIKELY(fl_ops() & FL_OPC_SOCKET) && exhausted(FL_OP_SOCKET))
    return -1;
  return FL_CALL(socket, (int)syscall(SYS_socket, domain, type, protocol),
                 domain, type, protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
  if (FL_UNLIKELY(fl_ops() & FL_OPC_SOCKET) && exhausted(FL_OP_SOCKET))
    return -1;
  return FL_CALL(socketpair,
                 (int)syscall(SYS_socketpair, domain, type, protocol, sv),
                 domain, type, protocol, sv);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  if (FL_UNLIKELY(fl_ops() & FL_OPC_SOCKET) && exhausted(FL_OP_ACCEPT))
    return -1;
  return FL_CALL(accept, (int)syscall(SYS_accept, fd, addr, len), fd, addr,
                 len);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  if (FL_UNLIKELY(fl_ops() & FL_OPC_SOCKET) && exhausted(FL_OP_ACCEPT))
    return -1;
  return FL_CALL(accept4, (int)syscall(SYS_accept4, fd, addr, len, flags), fd,
                 addr, len, flags);
}

int close(int fd) {
  /* Forget before closing: once closed, the number can be reused at once. */
  fl_fd_forget(fd);
  return FL_CALL(close, (int)syscall(SYS_close, fd), fd);
}
