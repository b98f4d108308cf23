/*
 * What the parts of the expectations module share: parse.c (the
 * grammar), judge.c (judging) and ws.c (WebSocket facts). Nothing outside them
 * includes it.
 */
#ifndef FL_EXPECT_PRIV_H
#define FL_EXPECT_PRIV_H

#include "expect.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The comparisons as written, by enum fl_expect_op: parsed by
 * parse.c, printed back by judge.c. */
extern const char *const fl_expect_op_text[FL_CMP_NE + 1];

/* judge.c's helpers, shared with ws.c: vsnprintf into buf unless it is
 * NULL; a op b; op as written. */
__attribute__((format(printf, 3, 4))) void fl_expect_put(char *buf, size_t len,
                                                         const char *fmt, ...);
int fl_expect_cmp(double a, int op, double b);
const char *fl_expect_op_str(int op);

#endif
