/*
 * What the parts of the expectations module share: parse.c (the
 * grammar) and judge.c (judging). Nothing outside them includes it.
 */
#ifndef FL_EXPECT_PRIV_H
#define FL_EXPECT_PRIV_H

#include "expect.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The comparisons as written, by enum fl_expect_op: parsed by
 * parse.c, printed back by judge.c. */
extern const char *const fl_expect_op_text[FL_CMP_NE + 1];

#endif
