/*
 * A session: one service started as `run` starts a scenario's (its
 * dependencies, then the target under the shim, ready when its readiness
 * check says so), driven by a caller's function instead of a timeline.
 *
 * The driver runs on a thread of its own so that it may block (HTTP
 * requests, waits between them) while the loop goes on reading the
 * target's output and watching its processes. Its end is posted to the
 * loop, which then tears down as after a scenario.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "run_int.h"

int fl_run_session_stopping(const struct fl_run_session *s) {
  const struct suite *su =
      (const struct suite *)((const char *)s - offsetof(struct suite, session));
  return atomic_load(&su->stopping);
}

static void on_drive_done(uv_async_t *a) {
  struct suite *s = a->data;
  struct srun *r = &s->runs[0];
  fl_session_join(r);
  fl_run_teardown(r);
}

static void drive_main(void *arg) {
  struct suite *s = arg;
  s->drive(&s->session, s->drive_arg);
  uv_async_send(&s->drive_done);
}

void fl_session_init(struct suite *s) {
  uv_async_init(&s->loop, &s->drive_done, on_drive_done);
  s->drive_done.data = s;
}

void fl_session_ready(struct srun *r) {
  struct suite *s = r->suite;
  r->state = S_RUNNING;
  s->session = (struct fl_run_session){.base_url = r->base_url,
                                       .data_dir = r->x->datadir,
                                       .work_dir = r->x->workdir,
                                       .ctl = r->ctl,
                                       .sv = r->sv,
                                       .deps = r->deps,
                                       .ndeps = r->ndeps};
  fl_run_say(r, "ready at %s", r->base_url);
  if (uv_thread_create(&s->drive_thread, drive_main, s) != 0) {
    fl_run_fail(r, "cannot start a thread");
    return;
  }
  s->drive_state = 1;
}

void fl_session_join(struct srun *r) {
  struct suite *s = r->suite;
  if (s->drive == NULL)
    return;
  if (s->drive_state == 1) {
    atomic_store(&s->stopping, 1);
    uv_thread_join(&s->drive_thread);
    s->drive_state = 2;
  }
  if (!uv_is_closing((uv_handle_t *)&s->drive_done))
    uv_close((uv_handle_t *)&s->drive_done, NULL);
}

/* The run of a session: the service with a scenario of no phase. */
static int load_session(struct suite *s, const char *service_file, char *err,
                        size_t errlen) {
  s->runs = calloc(1, sizeof(*s->runs));
  if (s->runs == NULL)
    return -ENOMEM;
  struct srun *r = &s->runs[0];
  r->suite = s;
  s->nruns = 1; /* from here fl_run_free_runs frees what it holds */
  r->sc = calloc(1, sizeof(*r->sc));
  r->x = calloc(1, sizeof(*r->x));
  if (r->sc == NULL || r->x == NULL ||
      (r->sc->name = strdup("discover")) == NULL ||
      (r->sc->file = strdup(service_file)) == NULL)
    return -ENOMEM;
  int rc = fl_service_load(service_file, &r->sv, err, errlen);
  if (rc != 0)
    return rc;
  snprintf(r->outdir, sizeof(r->outdir), "%s", s->o->out_dir);
  return 0;
}

int fl_run_service(const char *service_file, const struct fl_run_opts *o,
                   fl_run_drive_fn drive, void *arg, char *err, size_t errlen) {
  struct suite s;
  memset(&s, 0, sizeof(s));
  s.o = o;
  s.drive = drive;
  s.drive_arg = arg;
  int rc = load_session(&s, service_file, err, errlen);
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  if (rc == 0)
    rc = fl_run_loop(&s, err, errlen);
  if (rc == 0 && s.interrupted)
    rc = -EINTR;
  if (rc == -EINTR)
    snprintf(err, errlen, "interrupted");
  if (rc == 0 && s.runs[0].error[0] != '\0') {
    snprintf(err, errlen, "%s", s.runs[0].error);
    rc = FL_ESTART;
  } else if (rc == 0 && s.drive_state != 2) {
    snprintf(err, errlen, "the service never became ready");
    rc = FL_ESTART;
  }
  fl_run_free_runs(&s);
  return rc;
}
