/*
 * A scenario's timeline: its faults resolved to rules once addresses are
 * known, the times they switch on and off, the switching itself (rules in
 * the control segment, process faults on dependencies), the proxies that
 * stream faults need, and the traffic that runs for the timeline's length.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/base.h"
#include "faults/faults.h"
#include "run_int.h"

static fl_dep_t *dep_by_name(const struct srun *r, const char *name) {
  for (size_t i = 0; i < r->ndeps; i++)
    if (r->deps[i] != NULL && strcmp(fl_dep_name(r->deps[i]), name) == 0)
      return r->deps[i];
  return NULL;
}

/* The target as the rule's spec text shows it, and the rule aimed at it:
 * a dependency's address, or the target with its ${VAR}s expanded. */
static int aim_rule(struct srun *r, struct fault_state *f, char *target,
                    size_t size, char *e, size_t elen) {
  const struct fl_fault_decl *d = f->decl;
  if (d->pending == FL_PENDING_DEP && f->dep == NULL) {
    snprintf(e, elen, "fault target '%s' is not a dependency", d->target);
    return -EINVAL;
  }
  if (d->pending == FL_PENDING_DEP) {
    snprintf(target, size, "%s:%d", fl_dep_host(f->dep), fl_dep_port(f->dep));
    return fl_rule_aim_host(&f->rule, fl_dep_host(f->dep), fl_dep_port(f->dep),
                            e, elen);
  }
  if (d->pending == FL_PENDING_NONE) {
    snprintf(target, size, "%s", d->target);
    return 0;
  }
  char *x = fl_expand(d->target, fl_target_lookup, r, e, elen);
  if (x == NULL)
    return -EINVAL;
  snprintf(target, size, "%s", x);
  free(x);
  return fl_rule_aim(&f->rule, target, e, elen);
}

/* The decl's typed rule, aimed now that addresses are known. */
static int resolve_rule(struct srun *r, struct fault_state *f) {
  const struct fl_fault_decl *d = f->decl;
  char target[512], e[512];
  memcpy(&f->rule, &d->rule, sizeof(f->rule));
  if (aim_rule(r, f, target, sizeof(target), e, sizeof(e)) != 0) {
    fl_run_fail(r, "%s:%d:%d: %s", r->sc->file, d->pos.line, d->pos.col, e);
    return -EINVAL;
  }
  if (snprintf(f->spec, sizeof(f->spec), "%s@%s%s", d->action, target,
               d->options) >= (int)sizeof(f->spec)) {
    fl_run_fail(r, "%s:%d:%d: the fault is too long", r->sc->file, d->pos.line,
                d->pos.col);
    return -EINVAL;
  }
  memcpy(f->rule.spec, f->spec, sizeof(f->rule.spec));
  return 0;
}

/* Builds each fault's state, and its rule now that addresses are known. */
int fl_timeline_resolve_faults(struct srun *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->sc->nphases; i++)
    n += r->sc->phases[i].nfaults;
  r->faults = calloc(n + 1, sizeof(*r->faults));
  if (r->faults == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < r->sc->nphases; i++)
    for (size_t k = 0; k < r->sc->phases[i].nfaults; k++) {
      const struct fl_fault_decl *d = &r->sc->phases[i].faults[k];
      struct fault_state *f = &r->faults[r->nfaults++];
      f->decl = d;
      f->phase = r->sc->phases[i].name;
      f->on_t = f->off_t = -1;
      f->dep = dep_by_name(r, d->target);
      snprintf(f->name, sizeof(f->name), "%s %s", d->action, d->target);
      if (d->kind == FL_FAULT_PROCESS)
        snprintf(f->spec, sizeof(f->spec), "%s %s", d->action, d->target);
      else if (resolve_rule(r, f) != 0)
        return -EINVAL;
    }
  return 0;
}

static int cmp_event(const void *a, const void *b) {
  const struct timeline_event *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->on - y->on; /* offs before ons at the same instant */
}

static int build_timeline(struct srun *r) {
  size_t cap = 16;
  r->events = malloc(cap * sizeof(*r->events));
  r->phase_start = calloc(r->sc->nphases + 1, sizeof(double));
  if (r->events == NULL || r->phase_start == NULL)
    return -ENOMEM;
  double t = 0;
  size_t fi = 0;
  for (size_t i = 0; i < r->sc->nphases; i++) {
    const struct fl_phase *ph = &r->sc->phases[i];
    r->phase_start[i] = t;
    for (size_t k = 0; k < ph->nfaults; k++, fi++) {
      const struct fl_fault_decl *d = &ph->faults[k];
      double from = t + (d->at > 0 ? d->at : 0),
             to = t + (d->until >= 0 ? d->until : ph->duration);
      double step = d->every > 0 ? d->every : to - from;
      for (double on = from; on < to - 1e-9; on += 2 * step) {
        double off = on + step < to ? on + step : to;
        if (r->nevents + 2 > cap) {
          cap *= 2;
          struct timeline_event *bigger =
              realloc(r->events, cap * sizeof(*r->events));
          if (bigger == NULL)
            return -ENOMEM;
          r->events = bigger;
        }
        r->events[r->nevents++] = (struct timeline_event){on, 1, fi};
        r->events[r->nevents++] = (struct timeline_event){off, 0, fi};
      }
    }
    t += ph->duration;
  }
  r->phase_start[r->sc->nphases] = t;
  r->total = t;
  qsort(r->events, r->nevents, sizeof(*r->events), cmp_event);
  return 0;
}

static void harvest_rule(struct srun *r, struct fault_state *f) {
  struct fl_rule_view v;
  if (f->id != 0 && fl_control_rule(r->ctl, f->id, &v) >= 0) {
    f->matched += v.matched;
    f->delivered += v.injected;
  }
}

static void on_process_fault(fl_dep_t *dep, int rc, void *arg) {
  struct fault_state *f = arg;
  (void)dep;
  if (rc == 0 && f->on)
    f->delivered++;
}

static void switch_process(struct srun *r, struct fault_state *f, int on) {
  f->on = on;
  int what = fl_dep_fault_of(f->decl->type->proc, on);
  if (what >= 0 && fl_dep_fault(f->dep, (enum fl_dep_fault)what,
                                on ? on_process_fault : NULL, f) != 0)
    fl_run_say(r, "warning: %s%s could not be applied: %s",
               on ? "" : "lifting ", f->name, fl_dep_error(f->dep));
}

void fl_timeline_switch(struct srun *r, struct fault_state *f, int on) {
  double now = r->traffic ? fl_traffic_now(r->traffic) : 0;
  if (on == f->on)
    return;
  if (f->decl->kind == FL_FAULT_PROCESS) {
    switch_process(r, f, on);
  } else if (on) {
    int rc = fl_control_add(r->ctl, &f->rule, &f->id);
    if (rc != 0) {
      fl_run_say(r, "warning: cannot install %s: %s", f->spec, fl_strerror(rc));
      return;
    }
    f->on = 1;
  } else {
    harvest_rule(r, f);
    fl_control_clear(r->ctl, f->id);
    f->id = 0;
    f->on = 0;
  }
  if (on) {
    f->switches++;
    if (f->on_t < 0)
      f->on_t = now;
  } else {
    f->off_t = now;
  }
  fl_run_say(r, "t=%.2fs %s %s", now, on ? "on: " : "off:", f->spec);
}

/* A target that retries a failing call in a tight loop (an accept() that
 * fails with EMFILE, say) can log millions of injections a second: the run
 * keeps the last FL_INJECTIONS_KEPT and counts the rest, and one collection
 * reads at most what the ring holds, so it cannot chase the writer forever. */
void fl_timeline_collect_injections(struct srun *r) {
  struct fl_event_view buf[256];
  if (r->injections == NULL) {
    r->injections = malloc(FL_INJECTIONS_KEPT * sizeof(*buf));
    if (r->injections == NULL)
      return;
  }
  for (int pass = 0; pass < FL_RING_SIZE / 256 + 1; pass++) {
    int n = fl_control_events(r->ctl, &r->ring_since, buf, 256);
    if (n <= 0)
      break;
    size_t room = FL_INJECTIONS_KEPT - r->ninjections;
    if ((size_t)n > room) {
      /* Drop the oldest half, amortising the move over many events. */
      size_t drop = FL_INJECTIONS_KEPT / 2;
      memmove(r->injections, r->injections + drop,
              (r->ninjections - drop) * sizeof(*buf));
      r->ninjections -= drop;
    }
    memcpy(r->injections + r->ninjections, buf, (size_t)n * sizeof(*buf));
    r->ninjections += (size_t)n;
  }
}

static void on_drained(void *arg) {
  struct srun *r = arg;
  r->t_end_ns = uv_hrtime();
  fl_run_say(r, "traffic done");
  fl_run_teardown(r);
}

static void end_traffic(struct srun *r) {
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].on)
      fl_timeline_switch(r, &r->faults[i], 0);
  fl_target_sample(r);
  fl_timeline_collect_injections(r);
  uv_timer_stop(&r->sampler);
  r->state = S_DRAINING;
  fl_traffic_stop(r->traffic, on_drained, r);
}

static void on_tick(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->state != S_RUNNING)
    return;
  double now = fl_traffic_now(r->traffic);
  while (r->next_event < r->nevents && r->events[r->next_event].t <= now) {
    const struct timeline_event *e = &r->events[r->next_event++];
    fl_timeline_switch(r, &r->faults[e->fault], e->on);
  }
  fl_timeline_collect_injections(r);
  if (now >= r->total) {
    end_traffic(r);
    return;
  }
  double next = r->total;
  if (r->next_event < r->nevents && r->events[r->next_event].t < next)
    next = r->events[r->next_event].t;
  double wait = next - fl_traffic_now(r->traffic);
  uv_timer_start(&r->timer, on_tick, wait > 0 ? (uint64_t)(wait * 1000) : 0, 0);
}

/* The names of the headers the expectations on endpoint `name` check,
 * into out (room for every expectation and a NULL). */
static void captured_headers(const struct fl_scenario *sc, const char *name,
                             const char **out) {
  size_t n = 0;
  for (size_t k = 0; k < sc->nexpects; k++)
    if (sc->expects[k].e.kind == FL_EXP_HEADER &&
        sc->expects[k].endpoint != NULL &&
        strcmp(sc->expects[k].endpoint, name) == 0)
      out[n++] = sc->expects[k].e.name;
  out[n] = NULL;
}

/* Endpoint d's rate per phase as the traffic's pieces: rates[i] from
 * starts[i] seconds (room for a piece per phase); how many. */
static size_t phase_pieces(const struct fl_scenario *sc,
                           const struct fl_endpoint_decl *d, double *rates,
                           double *starts) {
  double t = 0;
  for (size_t i = 0; i < sc->nphases; i++) {
    rates[i] = d->phase_rates[i];
    starts[i] = t;
    t += sc->phases[i].duration;
  }
  return sc->nphases;
}

void fl_timeline_begin_traffic(struct srun *r) {
  int rc = fl_traffic_new(&r->suite->loop, r->base_url, &r->traffic);
  if (rc != 0) {
    fl_run_fail(r, "cannot set up traffic: %s", fl_strerror(rc));
    return;
  }
  /* Every header an expectation names is captured for its endpoint (as
   * many as named; the traffic gives each a slot). */
  const char **capture = calloc(r->sc->nexpects + 1, sizeof(*capture));
  double *rates = calloc(r->sc->nphases + 1, sizeof(double));
  double *starts = calloc(r->sc->nphases + 1, sizeof(double));
  if (capture == NULL || rates == NULL || starts == NULL) {
    free(capture);
    free(rates);
    free(starts);
    fl_run_fail(r, "out of memory");
    return;
  }
  for (size_t i = 0; i < r->sc->nendpoints; i++) {
    const struct fl_endpoint_decl *d = &r->sc->endpoints[i];
    captured_headers(r->sc, d->name, capture);
    struct fl_endpoint_spec e = {
        .name = d->name,
        .method = d->method,
        .path = d->path,
        .body = d->body,
        .headers = (const char *const *)d->headers,
        .rate = d->rate,
        .rates = rates,
        .starts = starts,
        .concurrency = d->concurrency,
        .seed = r->suite->o->have_seed ? r->suite->o->seed : r->sc->seed,
        .timeout = d->timeout,
        .capture = capture};
    struct fl_ws_spec ws = d->wspec;
    ws.message = d->message;
    e.ws = d->ws ? &ws : NULL;
    if (d->phase_rates != NULL)
      e.nrates = phase_pieces(r->sc, d, rates, starts);
    if ((rc = fl_traffic_add(r->traffic, &e)) < 0) {
      free(capture);
      free(rates);
      free(starts);
      fl_run_fail(r, "cannot add endpoint %s: %s", d->name, fl_strerror(rc));
      return;
    }
  }
  free(capture);
  free(rates);
  free(starts);
  if (build_timeline(r) != 0) {
    fl_run_fail(r, "out of memory");
    return;
  }
  r->state = S_RUNNING;
  r->t_traffic_ns = uv_hrtime();
  if ((rc = fl_traffic_start(r->traffic)) != 0) {
    fl_run_fail(r, "cannot start traffic: %s", fl_strerror(rc));
    return;
  }
  fl_run_say(r, "target ready after %.1fs; traffic for %.1fs",
             fl_run_since(r->t_begin_ns), r->total);
  fl_target_sample(r);
  uv_timer_start(&r->sampler, fl_target_on_sample, 1000, 1000);
  on_tick(&r->timer);
}

/* A dependency that stream faults aim at is reached through a proxy for
 * the whole run: the shim redirects the target's connections to it, and
 * the proxy applies the faults' rules as they are switched. */
static int wants_proxy(const struct srun *r, const fl_dep_t *dep) {
  for (size_t k = 0; k < r->nfaults; k++)
    if (r->faults[k].dep == dep && r->faults[k].decl->kind == FL_FAULT_PROXY)
      return 1;
  return 0;
}

/* Starts dependency i's proxy and the pinned rule that sends the target's
 * connections to it. */
static int start_proxy(struct srun *r, size_t i) {
  fl_dep_t *dep = r->deps[i];
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)fl_dep_port(dep))};
  if (inet_pton(AF_INET, fl_dep_host(dep), &up.sin_addr) != 1) {
    fl_run_fail(r, "dependency %s: stream faults need an IPv4 address, not %s",
                fl_dep_name(dep), fl_dep_host(dep));
    return -EINVAL;
  }
  /* A kind whose protocol the proxy follows can take protocol faults. */
  const char *kind = r->sv->deps[i].protocol;
  if (kind == NULL)
    kind = fl_dep_kind_name(fl_dep_kind_of(dep));
  struct fl_proxy_opts opts = {.protocol = fl_proxy_speaks(kind) ? kind : NULL};
  int rc =
      fl_proxy_start_with(&r->suite->loop, r->ctl, (const struct sockaddr *)&up,
                          &opts, &r->proxies[i]);
  if (rc != 0) {
    fl_run_fail(r, "cannot start the proxy for %s: %s", fl_dep_name(dep),
                fl_strerror(rc));
    return rc;
  }
  char target[96], e[256] = "";
  struct fl_rule rule;
  uint32_t id;
  snprintf(target, sizeof(target), "%s:%d", fl_dep_host(dep), fl_dep_port(dep));
  if (fl_proxy_redirect_rule(r->proxies[i], target, &rule, e, sizeof(e)) != 0 ||
      (rc = fl_control_add(r->ctl, &rule, &id)) != 0) {
    fl_run_fail(r, "cannot redirect %s to its proxy: %s", fl_dep_name(dep),
                e[0] ? e : fl_strerror(rc));
    return -EINVAL;
  }
  fl_run_say(r, "%s reached through the proxy on 127.0.0.1:%d",
             fl_dep_name(dep), fl_proxy_port(r->proxies[i]));
  return 0;
}

int fl_timeline_start_proxies(struct srun *r) {
  r->proxies = calloc(r->ndeps + 1, sizeof(*r->proxies));
  if (r->proxies == NULL) {
    fl_run_fail(r, "out of memory");
    return -ENOMEM;
  }
  for (size_t i = 0; i < r->ndeps; i++) {
    int rc = wants_proxy(r, r->deps[i]) ? start_proxy(r, i) : 0;
    if (rc != 0)
      return rc;
  }
  return 0;
}
