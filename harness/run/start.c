/*
 * A target that fails to start: whose doing is it?
 *
 * A target that exits, or is never ready, while a scenario fault is on
 * from the start (`at: start`) may be failing because of the fault: a
 * service that exits when its database is down has a real defect, and the
 * verdict is FAIL through the expectation `starts`. But it may as well be
 * broken by itself (a typo in its command, a port taken, a missing module),
 * which is not the service failing under a fault, and must stay ERROR.
 *
 * The presence of a start fault alone cannot tell the two apart, and
 * calling a broken harness set-up a service defect is the worse mistake (CI
 * would report a service bug that is not there). So the runner asks the
 * target itself: it starts it once more with the start faults off (the
 * "control" start). Ready then: the faults made it fail, FAIL. Failing
 * again: it does not start even without a fault, ERROR. The control start
 * costs at most one more readiness wait, and only on a failed start.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "run_int.h"

#define CONTROL_KILL_GRACE_MS 3000
/* What of the log's end `starts` quotes. */
#define TAIL_READ 2048
#define TAIL_LINES 3

static int start_faults_on(const struct srun *r) {
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].decl->at < 0 && r->faults[i].on)
      return 1;
  return 0;
}

/* The last `n` non-empty lines of the file's last TAIL_READ bytes, joined
 * by " | " into out; "" when it cannot be read. */
static void last_lines(const char *path, int n, char *out, size_t len) {
  char buf[TAIL_READ + 1];
  size_t got = 0;
  out[0] = '\0';
  FILE *f = path[0] ? fopen(path, "rb") : NULL;
  if (f == NULL)
    return;
  if (fseek(f, -(long)TAIL_READ, SEEK_END) != 0)
    rewind(f);
  got = fread(buf, 1, TAIL_READ, f);
  fclose(f);
  buf[got] = '\0';
  const char *line[TAIL_LINES];
  int k = 0;
  for (char *save = NULL, *s = strtok_r(buf, "\r\n", &save); s != NULL;
       s = strtok_r(NULL, "\r\n", &save)) {
    while (*s == ' ' || *s == '\t')
      s++;
    if (*s == '\0')
      continue;
    if (k == n) { /* keep the last n: drop the oldest */
      memmove(line, line + 1, (size_t)(n - 1) * sizeof(*line));
      k--;
    }
    line[k++] = s;
  }
  for (int i = 0; i < k; i++) {
    size_t at = strlen(out);
    snprintf(out + at, len - at, "%s%s", i ? " | " : "", line[i]);
  }
}

void fl_start_words(const char *log, const char *what, char *buf, size_t len) {
  char tail[384];
  last_lines(log, TAIL_LINES, tail, sizeof(tail));
  size_t w = (size_t)snprintf(buf, len, "%s", what);
  if (tail[0] == '\0' || w + 8 >= len)
    return;
  /* The log's very end tells most: when it does not fit, its start goes. */
  size_t n = strlen(tail), room = len - w - 6;
  const char *from = n > room ? tail + (n - room) : tail;
  snprintf(buf + w, len - w, ": %s%s", from == tail ? "" : "...", from);
}

static void on_control_kill(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->target_alive)
    kill(-r->target.pid, SIGKILL);
}

/* Keeps the first attempt's ending, then ends it (when it runs still),
 * lifts the start faults, and lets fl_start_closed() start it again. */
static void begin_control(struct srun *r, const char *how) {
  struct start_end *s = &r->x->start;
  s->exited = !r->target_alive;
  s->sig = s->exited ? r->exit_signal : 0;
  s->code = s->exited ? r->exit_code : 0;
  s->pid = r->target.pid;
  snprintf(s->log, sizeof(s->log), "%s", r->x->log_path);
  char what[160];
  if (s->exited) /* else `how` says how long it was given */
    snprintf(what, sizeof(what), "%s after %.1fs", how,
             fl_run_since(r->t_spawn_ns));
  else
    snprintf(what, sizeof(what), "%s", how);
  fl_start_words(r->x->log_path, what, s->how, sizeof(s->how));
  r->control = 1;
  uv_timer_stop(&r->timer);
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].decl->at < 0 && r->faults[i].on)
      fl_timeline_switch(r, &r->faults[i], 0);
  fl_run_say(r,
             "the target %s under the start faults; starting it once more "
             "without them (a control start)",
             how);
  if (r->target_alive) {
    kill(-r->target.pid, SIGTERM);
    uv_timer_start(&r->killer, on_control_kill, CONTROL_KILL_GRACE_MS, 0);
  }
}

void fl_start_failed(struct srun *r, const char *how) {
  fl_tlog_drain(r->tlog); /* its last words are read from the log */
  if (r->control == 2) {
    fl_run_fail(r,
                "the target %s while starting, also with the start faults "
                "off (a control start): it does not start even without a "
                "fault; see %s and %s",
                how, r->x->start.log, r->x->log_path);
    return;
  }
  if (!start_faults_on(r)) {
    fl_run_fail(r, "the target %s while starting; see %s", how, r->x->log_path);
    return;
  }
  begin_control(r, how);
}

void fl_start_closed(struct srun *r) {
  if (r->control != 1 || r->state != S_TARGET)
    return;
  r->control = 2;
  fl_tlog_close(r->tlog);
  r->tlog = NULL;
  fl_target_launch(r);
}

void fl_start_ready(struct srun *r) {
  if (r->control == 1)
    return; /* the first attempt, ready too late: it is being ended */
  if (r->control != 2) {
    if (r->suite->drive != NULL)
      fl_session_ready(r);
    else
      fl_timeline_begin_traffic(r);
    return;
  }
  /* It starts without the faults: failing with them was its own doing. */
  r->x->start.failed = 1;
  uv_timer_stop(&r->timer);
  fl_run_say(r, "the control start is ready: the target does not start "
                "under the start faults");
  fl_run_teardown(r);
}
