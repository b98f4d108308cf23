#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "match.h"

void fl_blackhole_close(struct fl_blackhole *bh) {
  if (bh->fill_fd >= 0)
    close(bh->fill_fd);
  if (bh->listen_fd >= 0)
    close(bh->listen_fd);
  bh->fill_fd = bh->listen_fd = -1;
}

int fl_blackhole_open(int family, struct fl_blackhole *bh) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  memset(bh, 0, sizeof(*bh));
  bh->listen_fd = bh->fill_fd = -1;
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*in);
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof(*in6);
  }
  int rc = 0;
  bh->listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  /* Backlog 0 admits exactly one connection; every later SYN is dropped
   * (tcp_abort_on_overflow=0, the default) and the client retries it. */
  if (bh->listen_fd < 0 || bind(bh->listen_fd, (struct sockaddr *)&ss, len) ||
      listen(bh->listen_fd, 0) ||
      getsockname(bh->listen_fd, (struct sockaddr *)&ss, &len)) {
    rc = -errno;
    goto fail;
  }
  bh->fill_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (bh->fill_fd < 0) {
    rc = -errno;
    goto fail;
  }
  if (connect(bh->fill_fd, (struct sockaddr *)&ss, len) != 0 &&
      errno != EINPROGRESS) {
    rc = -errno;
    goto fail;
  }
  struct pollfd pfd = {.fd = bh->fill_fd, .events = POLLOUT};
  int err = 0;
  socklen_t elen = sizeof(err);
  if (poll(&pfd, 1, 2000) != 1 ||
      getsockopt(bh->fill_fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
      err != 0) {
    rc = err != 0 ? -err : -ETIMEDOUT;
    goto fail;
  }
  fl_addr_from_sockaddr((struct sockaddr *)&ss, len, &bh->addr);
  return 0;
fail:
  fl_blackhole_close(bh);
  return rc;
}
