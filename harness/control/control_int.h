/* The control handle's insides, shared by control.c (the segment) and
 * setup.c (a segment with the blackholes it publishes). */
#ifndef FL_CONTROL_INT_H
#define FL_CONTROL_INT_H

#include "control.h"

struct fl_control_s {
  int fd;
  char *path;
  struct fl_ctl_header *hdr;
  struct fl_ctl_stats *stats;
  /* IPv4 and IPv6, opened by fl_control_setup (else -1): closed with the
   * handle, so a published address never outlives its listener. */
  struct fl_blackhole blackholes[2];
};

#endif
