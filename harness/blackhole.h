/*
 * A blackhole: a loopback listener whose accept queue is full, so that a
 * connect to it stays in SYN_SENT (the SYN is dropped, as by a firewall)
 * until the caller's own timeout. `hang` sends connections here.
 */
#ifndef FL_BLACKHOLE_H
#define FL_BLACKHOLE_H

#include "faultline/control.h"

struct fl_blackhole {
  int listen_fd;
  int fill_fd; /* the one connection that fills the queue */
  struct fl_addr addr;
};

/* Opens one on 127.0.0.1 (AF_INET) or ::1 (AF_INET6). Returns 0 or -errno;
 * on error *bh holds no descriptors. */
int fl_blackhole_open(int family, struct fl_blackhole *bh);
void fl_blackhole_close(struct fl_blackhole *bh);

#endif
