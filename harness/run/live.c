/*
 * What a person watching `faultline run` sees. On a terminal: one live line
 * per running scenario (phase, elapsed/total, requests per second in the
 * last second, status mix, active faults), redrawn in place, with progress
 * messages printed above them; colour only on a terminal and never with
 * NO_COLOR. Elsewhere (CI logs, pipes): plain progress lines only.
 */
#define _GNU_SOURCE
#include "live.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tty = -1, color, drawn;

int fl_live_tty(void) {
  if (tty < 0) {
    const char *nc = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    tty = isatty(STDERR_FILENO) && (term == NULL || strcmp(term, "dumb"));
    color = tty && (nc == NULL || nc[0] == '\0');
  }
  return tty;
}

/* Clears the live block so that normal lines go above it. */
static void erase(void) {
  if (drawn > 0)
    fprintf(stderr, "\033[%dA\033[J", drawn);
  drawn = 0;
}

void fl_live_say(const char *scenario, const char *msg) {
  if (fl_live_tty())
    erase();
  fprintf(stderr, "[%s] %s\n", scenario, msg);
}

static const char *phase_at(const struct srun *r, double t) {
  for (size_t i = 0; i < r->sc->nphases; i++)
    if (t < r->phase_start[i + 1])
      return r->sc->phases[i].name;
  return r->sc->nphases ? r->sc->phases[r->sc->nphases - 1].name : "";
}

/* Requests scheduled in the last full second, by outcome. */
static void last_second(const struct srun *r, double now, long *n, long *ok,
                        long *err5, long *xfer) {
  *n = *ok = *err5 = *xfer = 0;
  double from = now - 1.0;
  for (size_t e = 0; e < r->sc->nendpoints; e++) {
    const struct fl_request *q;
    size_t cnt = fl_traffic_records(r->traffic, (int)e, &q);
    for (size_t i = cnt; i-- > 0 && q[i].sched >= from;) {
      if (q[i].latency < 0 || q[i].sched >= now)
        continue; /* in flight */
      (*n)++;
      if (q[i].error != FL_XFER_OK)
        (*xfer)++;
      else if (q[i].status >= 500)
        (*err5)++;
      else if (q[i].status >= 200 && q[i].status < 400)
        (*ok)++;
    }
  }
}

/* WebSocket connections open now over all WebSocket endpoints; -1 when
 * there is none. */
static long ws_open(const struct srun *r) {
  long open = -1;
  for (size_t e = 0; e < r->sc->nendpoints; e++) {
    struct fl_ws_records w;
    if (fl_traffic_ws_records(r->traffic, (int)e, &w) != 0)
      continue;
    open = open < 0 ? 0 : open;
    for (size_t i = 0; i < w.nconns; i++)
      open += w.conns[i].opened && w.conns[i].closed < 0;
  }
  return open;
}

static void line(const struct srun *r) {
  char faults[256] = "";
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].on)
      snprintf(faults + strlen(faults), sizeof(faults) - strlen(faults), "%s%s",
               faults[0] ? ", " : "", r->faults[i].name);
  const char *on = color ? "\033[1;33m" : "", *off = color ? "\033[0m" : "";
  if (r->state != S_RUNNING || r->traffic == NULL) {
    fprintf(stderr, "\033[K  %-18s %s\n", r->sc->name,
            r->state < S_RUNNING ? "starting" : "finishing");
    return;
  }
  double now = fl_traffic_now(r->traffic);
  long n, ok, e5, xf;
  last_second(r, now, &n, &ok, &e5, &xf);
  char ws[32] = "";
  long open = ws_open(r);
  if (open >= 0)
    snprintf(ws, sizeof(ws), "ws %ld open  ", open);
  fprintf(stderr,
          "\033[K  %-18s %-10s %5.1f/%.0fs %4ld req/s  ok %3ld%%  5xx %3ld%%  "
          "err %3ld%%  %s%s%s%s\n",
          r->sc->name, phase_at(r, now), now, r->total, n, n ? ok * 100 / n : 0,
          n ? e5 * 100 / n : 0, n ? xf * 100 / n : 0, ws, faults[0] ? on : "",
          faults[0] ? faults : "", faults[0] ? off : "");
}

void fl_live_draw(struct srun *runs, size_t n) {
  if (!fl_live_tty())
    return;
  erase();
  for (size_t i = 0; i < n; i++)
    if (runs[i].state != S_NEW && runs[i].state != S_DONE) {
      line(&runs[i]);
      drawn++;
    }
  fflush(stderr);
}

void fl_live_end(void) {
  if (fl_live_tty())
    erase();
}
