/*
 * A control segment ready for a target: created, with the blackholes that
 * `hang` sends connections to opened and published in it. faultline exec
 * and each scenario of faultline run set up theirs here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/base.h"
#include "control_int.h"

int fl_control_setup(const char *path, uint64_t seed, fl_control_t **out,
                     char *err, size_t errlen) {
  fl_control_t *c = NULL;
  int rc = fl_control_create(path, seed, &c);
  if (rc != 0) {
    snprintf(err, errlen, "cannot create control segment %s: %s", path,
             fl_strerror(rc));
    return rc;
  }
  struct fl_blackhole *bh4 = &c->blackholes[0], *bh6 = &c->blackholes[1];
  if ((rc = fl_blackhole_open(AF_INET, bh4)) != 0) {
    snprintf(err, errlen,
             "cannot open the loopback listener that hang needs: %s",
             fl_strerror(rc));
    fl_control_remove(c);
    return rc;
  }
  fl_blackhole_open(AF_INET6, bh6); /* optional: no IPv6 loopback is fine */
  fl_control_set_blackholes(c, &bh4->addr,
                            bh6->listen_fd >= 0 ? &bh6->addr : NULL);
  *out = c;
  return 0;
}
