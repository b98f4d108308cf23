/* What the files of faults/ share: vocab.c (the rows), options.c (the
 * option table and drafts), target.c (aiming rules) and spec.c (the spec
 * text). Nothing outside faults/ includes it. */
#ifndef FL_FAULTS_INT_H
#define FL_FAULTS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "faults.h"

/* Writes one sentence into err; returns FL_EBADSPEC. */
int fl_faults_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A whole decimal number, at most max: 0, or -1. */
int fl_faults_u64(const char *s, uint64_t max, uint64_t *out);

/* HOST[:PORT] (an address, CIDR, [v6], *, or a name) or a unix socket
 * path, into r's target and addresses. */
int fl_faults_conn_target(const char *t, struct fl_rule *r, char *err,
                          size_t errlen);

#endif
