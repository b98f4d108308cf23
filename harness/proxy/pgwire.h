/*
 * The PostgreSQL codec (pgwire.c): its row for codec.c's table, and the
 * pieces of a pg_error answer, apart so that tests and the fuzzer can
 * reach them.
 */
#ifndef FL_PGWIRE_H
#define FL_PGWIRE_H

#include <stddef.h>

#include "faultline/segment.h"

struct fl_codec;
extern const struct fl_codec fl_codec_postgres;

/* When the fault acts (enum fl_stage): stage=, else from the code (53300,
 * 57P03, 28xxx and 3D000 refuse sessions; the others fail queries). */
int fl_pg_stage(const struct fl_proto *pr);

/* The severity answered (enum fl_pg_severity): severity=, else FATAL at
 * start-up, with close=yes and for 57P0x (shutdowns), ERROR otherwise. */
int fl_pg_severity(const struct fl_proto *pr, int stage);

/* An ErrorResponse message into out (cap bytes): severity, code, and
 * reply= or the server's own text for the code (with user or database
 * where it names them). Its length, or 0 when cap is too small. */
size_t fl_pg_error_response(const struct fl_proto *pr, int severity,
                            const char *user, const char *database, char *out,
                            size_t cap);

#endif
