/* What discovery found, for the terminal before the battery starts, and
 * freeing it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

static const char *kind_word(enum fl_use_kind k) {
  switch (k) {
  case FL_USE_DEP:
    return "dependency";
  case FL_USE_HOSTPORT:
    return "address";
  case FL_USE_DNS:
    return "name";
  case FL_USE_PATH:
    return "path";
  }
  return "?";
}

/* "postgres, dns:localhost, path:${DATA_DIR}/x/ *", or "-" for none. */
static void print_uses(const struct fl_use *u, size_t n, FILE *f) {
  if (n == 0)
    fputs("-", f);
  for (size_t i = 0; i < n; i++) {
    const char *pre = u[i].kind == FL_USE_DNS    ? "dns:"
                      : u[i].kind == FL_USE_PATH ? "path:"
                                                 : "";
    fprintf(f, "%s%s%s", i ? ", " : "", pre, u[i].name);
  }
}

static void ms(double secs, char *buf, size_t len) {
  snprintf(buf, len, "%.1fms", secs * 1000.0);
}

void fl_discovery_print(const struct fl_discovery *d, FILE *f) {
  fprintf(f, "discovered %zu endpoint%s; liveness %s, readiness %s\n",
          d->nendpoints, d->nendpoints == 1 ? "" : "s",
          d->live ? d->live : "(none found)",
          d->ready ? d->ready : "(none found)");
  int w = 8;
  for (size_t i = 0; i < d->nendpoints; i++) {
    int n = (int)strlen(d->endpoints[i].name);
    w = n > w ? n : w;
  }
  fprintf(f, "  %-*s  %-28s %6s %9s %9s  %s\n", w, "ENDPOINT", "REQUEST",
          "STATUS", "P50", "P99", "USES");
  for (size_t i = 0; i < d->nendpoints; i++) {
    const struct fl_audit_endpoint *e = &d->endpoints[i];
    char req[512], p50[32], p99[32];
    snprintf(req, sizeof(req), "%s %s", e->method, e->path);
    ms(e->p50, p50, sizeof(p50));
    ms(e->p99, p99, sizeof(p99));
    fprintf(f, "  %-*s  %-28s %6d %9s %9s  ", w, e->name, req, e->status, p50,
            p99);
    print_uses(e->uses, e->nuses, f);
    fputc('\n', f);
  }
  fprintf(f, "uses:%s\n", d->nuses ? "" : " none beyond the idle service");
  for (size_t i = 0; i < d->nuses; i++) {
    fprintf(f, "  %-11s %s  (", kind_word(d->uses[i].kind), d->uses[i].name);
    int first = 1;
    for (size_t j = 0; j < d->nendpoints; j++)
      for (size_t k = 0; k < d->endpoints[j].nuses; k++)
        if (d->endpoints[j].uses[k].kind == d->uses[i].kind &&
            strcmp(d->endpoints[j].uses[k].name, d->uses[i].name) == 0) {
          fprintf(f, "%s%s", first ? "" : ", ", d->endpoints[j].name);
          first = 0;
        }
    fputs(")\n", f);
  }
  fputs("at start-up: ", f);
  print_uses(d->startup, d->nstartup, f);
  fputc('\n', f);
}

void fl_discovery_free(struct fl_discovery *d) {
  for (size_t i = 0; i < d->nendpoints; i++)
    fl_audit_endpoint_free(&d->endpoints[i]);
  free(d->endpoints);
  free(d->live);
  free(d->ready);
  for (size_t i = 0; i < d->nuses; i++)
    free(d->uses[i].name);
  free(d->uses);
  for (size_t i = 0; i < d->nstartup; i++)
    free(d->startup[i].name);
  free(d->startup);
  memset(d, 0, sizeof(*d));
}
