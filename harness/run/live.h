/* The live view of a run on a terminal (see live.c). */
#ifndef FL_LIVE_H
#define FL_LIVE_H

#include <stddef.h>

#include "run_int.h"

/* 1 when stderr is a terminal that can take the live view. */
int fl_live_tty(void);
/* A progress line, printed above the live block. */
void fl_live_say(const char *scenario, const char *msg);
/* Redraws one line per active scenario (a no-op off a terminal). */
void fl_live_draw(struct srun *runs, size_t n);
/* Removes the block before the final summary. */
void fl_live_end(void);

#endif
