/* A discovery read from a file (tests/known_discovery.c). */
#ifndef T_KNOWN_DISCOVERY_H
#define T_KNOWN_DISCOVERY_H

#include <stddef.h>

#include "audit/discover.h"

/* Fills *out from the YAML at path (live, ready, endpoints with uses);
 * 0, or a negative code with FILE:LINE:COL in err. */
int t_known_discovery(const char *path, struct fl_discovery *out, char *err,
                      size_t errlen);

#endif
