/*
 * Process faults on a managed dependency: one function per fault of enum
 * fl_dep_fault, in a table, each checking that the server is in a state
 * the fault applies to. Which faults a kind supports is its ops table's
 * business; the names of the faults belong to the fault vocabulary, so
 * the messages here do not repeat them.
 */
#define _GNU_SOURCE
#include "deps_int.h"
#include "faults/faults.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>

/* Completes at once; cb still runs from the loop. */
static int immediate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  d->cb = cb;
  d->arg = arg;
  fl_dep_op_done(d, 0);
  return 0;
}

static int refuse(struct fl_dep *d, int rc, const char *why) {
  fl_dep_seterr(d, "%s: cannot apply the fault: %s", d->name, why);
  return rc;
}

static int not_running(struct fl_dep *d) {
  return refuse(d, -ESRCH, "it is not running");
}

static int do_kill(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server == NULL)
    return not_running(d);
  fl_dep_halt(d);
  d->paused = 0;
  d->restarting = 0;
  d->ending = 1;
  fl_dep_kill_tree(d, &d->server_pgid);
  fl_dep_begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
  return 0;
}

/* The graceful stop, then (restarting) a start. A paused server gets the
 * signal first and SIGCONT after, so that the signal is waiting when it
 * wakes. */
static int stop_then(struct fl_dep *d, int restarting, fl_dep_cb cb,
                     void *arg) {
  fl_dep_halt(d);
  d->restarting = restarting;
  d->ending = 1;
  kill(d->server->h.pid, d->kind->stop_signal);
  if (d->paused)
    kill(-d->server_pgid, SIGCONT);
  d->paused = 0;
  fl_dep_begin_op(d, PH_STOPPING, STOP_MS, cb, arg);
  return 0;
}

static int boot_again(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  fl_dep_begin_op(d, PH_BOOT, 0, cb, arg);
  fl_dep_boot(d);
  return 0;
}

static int do_stop(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server == NULL)
    return not_running(d);
  return stop_then(d, 0, cb, arg);
}

static int do_restart(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server != NULL)
    return stop_then(d, 1, cb, arg);
  if (d->first_start)
    return not_running(d);
  return boot_again(d, cb, arg);
}

static int do_start(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server != NULL)
    return refuse(d, -EALREADY, "it is already running");
  if (d->first_start)
    return refuse(d, -ESRCH, "it never started in the first place");
  return boot_again(d, cb, arg);
}

static int do_pause(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server == NULL)
    return not_running(d);
  if (d->paused)
    return refuse(d, -EALREADY, "it is already paused");
  kill(-d->server_pgid, SIGSTOP);
  d->paused = 1;
  return immediate(d, cb, arg);
}

static int do_resume(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server == NULL || !d->paused)
    return refuse(d, -EALREADY, "it is not paused");
  kill(-d->server_pgid, SIGCONT);
  d->paused = 0;
  return immediate(d, cb, arg);
}

static int do_saturate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (d->server == NULL)
    return not_running(d);
  if (d->paused)
    return refuse(d, -EBUSY, "it is paused");
  if (d->saturated)
    return refuse(d, -EALREADY, "it is already saturated");
  return d->kind->saturate(d, cb, arg);
}

static int do_unsaturate(struct fl_dep *d, fl_dep_cb cb, void *arg) {
  if (!d->saturated)
    return refuse(d, -EALREADY, "it is not saturated");
  d->kind->unsaturate(d, cb, arg);
  return 0;
}

typedef int (*fault_fn)(struct fl_dep *d, fl_dep_cb cb, void *arg);

static const fault_fn faults[] = {
    [FL_DEP_KILL] = do_kill,         [FL_DEP_STOP] = do_stop,
    [FL_DEP_START] = do_start,       [FL_DEP_PAUSE] = do_pause,
    [FL_DEP_RESUME] = do_resume,     [FL_DEP_RESTART] = do_restart,
    [FL_DEP_SATURATE] = do_saturate, [FL_DEP_UNSATURATE] = do_unsaturate,
};

int fl_dep_fault(fl_dep_t *d, enum fl_dep_fault f, fl_dep_cb cb, void *arg) {
  char why[128];
  if (!fl_dep_kind_managed(d->kind))
    return refuse(d, -EINVAL, "an external dependency has no process");
  if ((unsigned)f >= sizeof(faults) / sizeof(faults[0]))
    return refuse(d, -EINVAL, "unknown fault");
  if (!fl_dep_kind_supports(d->kind, f)) {
    char kinds[96];
    snprintf(why, sizeof(why), "it applies to %s only",
             fl_dep_kind_names((int)f, kinds, sizeof(kinds)));
    return refuse(d, -EINVAL, why);
  }
  if (d->phase != PH_IDLE)
    return refuse(d, -EBUSY, "a previous operation is still in progress");
  return faults[f](d, cb, arg);
}

/* What switches each process fault of the vocabulary on and off, in
 * dependency operations; -1: nothing to undo. */
static const struct {
  int on, off;
} proc_ops[] = {
    [FL_PROC_NONE] = {-1, -1},
    [FL_PROC_KILL] = {FL_DEP_KILL, FL_DEP_START},
    [FL_PROC_STOP] = {FL_DEP_STOP, FL_DEP_START},
    [FL_PROC_PAUSE] = {FL_DEP_PAUSE, FL_DEP_RESUME},
    [FL_PROC_RESTART] = {FL_DEP_RESTART, -1},
    [FL_PROC_SATURATE] = {FL_DEP_SATURATE, FL_DEP_UNSATURATE},
};

int fl_dep_fault_of(int proc, int on) {
  if (proc < 0 || (size_t)proc >= sizeof(proc_ops) / sizeof(proc_ops[0]))
    return -1;
  return on ? proc_ops[proc].on : proc_ops[proc].off;
}
