/*
 * The runner's side of usage recording: copying the shim's tables out of
 * the segment and taking the difference between two copies (what one
 * request window used beyond the one before).
 */
#include <string.h>

#include "control.h"
#include "control_int.h"

static void read_text(const struct fl_use_text *t, size_t n,
                      struct fl_usage_text_view *out, size_t *nout) {
  *nout = 0;
  for (size_t i = 0; i < n; i++) {
    if (!atomic_load_explicit(&t[i].ready, memory_order_acquire))
      continue;
    struct fl_usage_text_view *v = &out[(*nout)++];
    memcpy(v->text, t[i].text, sizeof(v->text));
    v->text[sizeof(v->text) - 1] = '\0';
    v->flags = atomic_load_explicit(&t[i].flags, memory_order_relaxed);
    v->count = atomic_load_explicit(&t[i].count, memory_order_relaxed);
  }
}

void fl_usage_read(const struct fl_usage *u, struct fl_usage_view *out) {
  out->ndests = 0;
  for (size_t i = 0; i < FL_USE_DESTS; i++) {
    const struct fl_use_dest *d = &u->dests[i];
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
      continue;
    struct fl_usage_dest_view *v = &out->dests[out->ndests++];
    v->addr = d->addr;
    v->connects = atomic_load_explicit(&d->connects, memory_order_relaxed);
    v->ios = atomic_load_explicit(&d->ios, memory_order_relaxed);
  }
  read_text(u->names, FL_USE_NAMES, out->names, &out->nnames);
  read_text(u->paths, FL_USE_PATHS, out->paths, &out->npaths);
  out->overflow =
      atomic_load_explicit(&u->overflow_dests, memory_order_relaxed) +
      atomic_load_explicit(&u->overflow_names, memory_order_relaxed) +
      atomic_load_explicit(&u->overflow_paths, memory_order_relaxed);
}

void fl_control_usage(fl_control_t *c, struct fl_usage_view *out) {
  fl_usage_read(&c->stats->usage, out);
}

static int same_addr(const struct fl_addr *a, const struct fl_addr *b) {
  return a->family == b->family && a->port == b->port &&
         memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void delta_text(const struct fl_usage_text_view *b, size_t nb,
                       const struct fl_usage_text_view *a, size_t na,
                       struct fl_usage_text_view *out, size_t *nout) {
  *nout = 0;
  for (size_t i = 0; i < na; i++) {
    uint64_t was = 0;
    for (size_t j = 0; j < nb; j++)
      if (strcmp(a[i].text, b[j].text) == 0)
        was = b[j].count;
    if (a[i].count > was) {
      out[*nout] = a[i];
      out[(*nout)++].count = a[i].count - was;
    }
  }
}

void fl_usage_delta(const struct fl_usage_view *before,
                    const struct fl_usage_view *after,
                    struct fl_usage_view *out) {
  static const struct fl_usage_view none;
  if (before == NULL)
    before = &none;
  out->ndests = 0;
  for (size_t i = 0; i < after->ndests; i++) {
    struct fl_usage_dest_view d = after->dests[i];
    for (size_t j = 0; j < before->ndests; j++)
      if (same_addr(&d.addr, &before->dests[j].addr)) {
        d.connects -= before->dests[j].connects;
        d.ios -= before->dests[j].ios;
      }
    if (d.connects > 0 || d.ios > 0)
      out->dests[out->ndests++] = d;
  }
  delta_text(before->names, before->nnames, after->names, after->nnames,
             out->names, &out->nnames);
  delta_text(before->paths, before->npaths, after->paths, after->npaths,
             out->paths, &out->npaths);
  out->overflow = after->overflow - before->overflow;
}
