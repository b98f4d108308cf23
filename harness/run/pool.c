/*
 * The suite's dependency pool (--reuse-deps; the audit opts in): servers
 * kept from one scenario to the next where that cannot change a verdict.
 *
 * A managed dependency whose kind can be reset (postgres, redis) is
 * leased from the pool instead of started, unless the scenario has a
 * process fault on it (kill, stop, pause, restart, saturate): those change
 * the server itself, and get a server of their own as before. Every other
 * fault acts inside the target process (the shim) or in the run's own
 * proxy, and leaves the server as it was.
 *
 * A lease is exclusive: scenarios running side by side (--jobs N) never
 * share a server, so there are at most N servers of each dependency, and
 * a service that names its database or Redis db number in its own
 * configuration needs no change. Before each lease the server is reset
 * (fl_dep_reset: a new database faultline from template1, Redis flushed,
 * other clients ended, statistics reset), so a scenario sees what a fresh
 * start gives. A server that died, or whose lease did not finish, is
 * freed instead of kept; a reset that fails frees it and starts a new one.
 *
 * The servers live in a folder of their own, faultline-pool-OWNER-*, which
 * the guard and fl_run_reap find like a run's; the pool ends with the
 * suite (fl_pool_close), on errors and signals too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "faults/faults.h"
#include "run_int.h"

struct pool_dep {
  struct pool *pool;
  fl_dep_t *dep;
  char *key;         /* service file and dependency name */
  struct srun *user; /* NULL while idle */
  size_t slot;       /* its index in user->deps */
  int ready;         /* the lease's start or reset has finished */
  int resetting;     /* the lease began with a reset, not a start */
  fl_dep_cb cb;      /* the user's readiness callback */
};

/* A freed dependency's done, counted so the folder goes last. */
struct pool_free {
  struct pool *pool;
  void (*done)(void *arg);
  void *arg;
};

static void on_freed(void *arg) {
  struct pool_free *f = arg;
  struct pool *p = f->pool;
  void (*done)(void *) = f->done;
  void *darg = f->arg;
  free(f);
  p->freeing--;
  if (done != NULL)
    done(darg);
  if (p->closing && p->freeing == 0 && p->again != NULL)
    p->again(p->suite);
}

/* Frees e's server (done, may be NULL, when it is gone) and forgets e. */
static void discard(struct pool *p, struct pool_dep *e, void (*done)(void *),
                    void *arg) {
  for (size_t i = 0; i < p->n; i++)
    if (p->v[i] == e) {
      p->v[i] = p->v[--p->n];
      break;
    }
  struct pool_free *f = malloc(sizeof(*f));
  fl_dep_t *dep = e->dep;
  free(e->key);
  free(e);
  if (f == NULL) { /* the loop still waits for it; only the count is lost */
    fl_dep_free(dep, done, arg);
    return;
  }
  *f = (struct pool_free){p, done, arg};
  p->freeing++;
  fl_dep_free(dep, on_freed, f);
}

static int process_faulted(const struct fl_scenario *sc, const char *name) {
  for (size_t i = 0; i < sc->nphases; i++)
    for (size_t j = 0; j < sc->phases[i].nfaults; j++) {
      const struct fl_fault_decl *f = &sc->phases[i].faults[j];
      if (f->kind == FL_FAULT_PROCESS && f->target != NULL &&
          strcmp(f->target, name) == 0)
        return 1;
    }
  return 0;
}

int fl_pool_fits(const struct srun *r, size_t i) {
  const struct fl_dep_decl *d = &r->sv->deps[i];
  return r->suite->o->reuse_deps && fl_dep_kind_managed(d->kind) &&
         fl_dep_kind_resets(d->kind) && !process_faulted(r->sc, d->name);
}

static int start_new(struct pool *p, struct srun *r, size_t i, char *key,
                     fl_dep_cb cb);

/* A lease's start or reset has finished. */
static void on_leased(fl_dep_t *dep, int rc, void *arg) {
  struct pool_dep *e = arg;
  struct srun *r = e->user;
  if (rc == 0) {
    e->ready = 1;
    e->cb(dep, 0, r);
    return;
  }
  if (!e->resetting || r == NULL) { /* a start that failed: the run says */
    e->cb(dep, rc, r);
    return;
  }
  /* A reset that failed ended the server: a new one takes its place. */
  fl_run_say(r, "%s could not be reset (%s); starting a new one",
             fl_dep_name(dep), fl_dep_error(dep));
  struct pool *p = e->pool;
  size_t slot = e->slot;
  fl_dep_cb cb = e->cb;
  char *key = strdup(e->key);
  discard(p, e, NULL, NULL);
  r->deps[slot] = NULL;
  if (key == NULL || start_new(p, r, slot, key, cb) != 0)
    fl_run_fail(r, "cannot start dependency %s again: %s",
                r->sv->deps[slot].name, key ? "no resources" : "out of memory");
}

static struct pool_dep *add(struct pool *p, char *key) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 4;
    struct pool_dep **v = realloc(p->v, cap * sizeof(*v));
    if (v == NULL)
      return NULL;
    p->v = v;
    p->cap = cap;
  }
  struct pool_dep *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return NULL;
  e->pool = p;
  e->key = key;
  p->v[p->n++] = e;
  return e;
}

/* A new server for run r's dependency i; takes key. */
static int start_new(struct pool *p, struct srun *r, size_t i, char *key,
                     fl_dep_cb cb) {
  const struct fl_dep_decl *d = &r->sv->deps[i];
  struct pool_dep *e = add(p, key);
  if (e == NULL) {
    free(key);
    return -ENOMEM;
  }
  e->user = r;
  e->slot = i;
  e->cb = cb;
  /* A folder each: its log is its own, beside the server's folder. */
  char dir[PATH_MAX];
  int rc = -ENAMETOOLONG;
  if ((size_t)snprintf(dir, sizeof(dir), "%s/%zu", p->dir, p->serial++) <
      sizeof(dir))
    rc = mkdir(dir, 0755) == 0 && chmod(dir, 0755) == 0 ? 0 : -errno;
  if (rc == 0)
    rc = fl_dep_start_config(&r->suite->loop, d->kind, d->name, dir, d->config,
                             on_leased, e, &e->dep);
  r->deps[i] = e->dep;
  if (rc != 0) { /* no dependency to free: forget the entry */
    p->v[--p->n] = NULL;
    free(e->key);
    free(e);
  }
  return rc;
}

static int make_dir(struct pool *p) {
  if (p->dir[0] != '\0')
    return 0;
  int rc = fl_make_tmpdir("pool", p->dir, sizeof(p->dir));
  if (rc == 0)
    chmod(p->dir, 0755); /* postgres runs as its own user inside it */
  return rc;
}

int fl_pool_lease(struct srun *r, size_t i, fl_dep_cb cb) {
  struct pool *p = &r->suite->pool;
  const struct fl_dep_decl *d = &r->sv->deps[i];
  int rc = make_dir(p);
  if (rc != 0)
    return rc;
  char *key;
  if (asprintf(&key, "%s\n%s", r->sv->file, d->name) < 0)
    return -ENOMEM;
  for (size_t k = 0; k < p->n; k++) {
    struct pool_dep *e = p->v[k];
    if (e->user != NULL || strcmp(e->key, key) != 0)
      continue;
    e->user = r;
    e->slot = i;
    e->cb = cb;
    e->resetting = 1;
    r->deps[i] = e->dep;
    if (fl_dep_reset(e->dep, on_leased, e) == 0) {
      free(key);
      fl_run_say(r, "%s: reusing the server on port %d", d->name,
                 fl_dep_port(e->dep));
      return 0;
    }
    discard(p, e, NULL, NULL); /* it died while idle */
    r->deps[i] = NULL;
    break;
  }
  return start_new(p, r, i, key, cb);
}

int fl_pool_return(struct suite *s, fl_dep_t *dep, void (*done)(void *arg),
                   void *arg) {
  struct pool *p = &s->pool;
  for (size_t k = 0; k < p->n; k++) {
    struct pool_dep *e = p->v[k];
    if (e->dep != dep)
      continue;
    if (!e->ready || fl_dep_pid(dep) <= 0 || s->interrupted) {
      discard(p, e, done, arg);
      return 0;
    }
    e->user = NULL;
    e->ready = 0;
    if (done != NULL)
      done(arg);
    return 0;
  }
  return -ENOENT;
}

static void on_dir_removed(void *arg) {
  struct pool *p = arg;
  p->dir[0] = '\0';
  p->removing = 0;
  if (p->again != NULL)
    p->again(p->suite);
}

int fl_pool_close(struct suite *s, void (*again)(struct suite *s)) {
  struct pool *p = &s->pool;
  p->suite = s;
  p->again = again;
  p->closing = 1;
  while (p->n > 0)
    discard(p, p->v[p->n - 1], NULL, NULL);
  if (p->freeing > 0 || p->removing)
    return 1;
  free(p->v);
  p->v = NULL;
  p->cap = 0;
  if (p->dir[0] == '\0')
    return 0;
  p->removing = 1;
  fl_rm_tree_async(&s->loop, p->dir, on_dir_removed, p);
  return 1;
}
