/*
 * A case as an ordinary scenario file: the traffic (every endpoint, open
 * loop), the phases steady / fault / recovery / settled, and the
 * expectations it is judged by. `faultline run` on the file judges the
 * case exactly as the audit did; matrix.c reads the verdicts back by the
 * expectations' text, so the two must agree (see the cell table there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit.h"

/* YAML double-quoted. */
static void q(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void traffic_line(FILE *f, const char *name, const char *method,
                         const char *path, double rate, double timeout) {
  fprintf(f, "  %s: { request: ", name);
  char req[1200];
  snprintf(req, sizeof(req), "%s %s", method, path);
  q(f, req);
  fprintf(f, ", rate: %g, timeout: %gs", rate, timeout);
}

static void traffic(FILE *f, const struct fl_audit_case *c,
                    const struct fl_discovery *d,
                    const struct fl_battery_opts *o) {
  fputs("traffic:\n", f);
  for (size_t i = 0; i < d->nendpoints; i++) {
    const struct fl_audit_endpoint *e = &d->endpoints[i];
    traffic_line(f, c->eps[i].name, e->method, e->path, o->rate, o->timeout);
    if (e->body != NULL) {
      fputs(", body: ", f);
      q(f, e->body);
    }
    int open = 0, typed = 0;
    for (size_t h = 0; e->headers && e->headers[h]; h++) {
      const char *colon = strchr(e->headers[h], ':');
      if (colon == NULL)
        continue;
      typed |= strncasecmp(e->headers[h], "Content-Type:", 13) == 0;
      fprintf(f, "%s%.*s: ", open++ ? ", " : ", headers: { ",
              (int)(colon - e->headers[h]), e->headers[h]);
      q(f, colon[1] == ' ' ? colon + 2 : colon + 1);
    }
    /* Discovery sent an untyped body as JSON (audit/http.c): so do we. */
    if (e->body != NULL && !typed)
      fprintf(f, "%sContent-Type: \"application/json\"",
              open++ ? ", " : ", headers: { ");
    fputs(open ? " } }\n" : " }\n", f);
  }
  if (d->live != NULL) {
    traffic_line(f, "live", "GET", d->live, 5, o->timeout);
    fputs(" }\n", f);
  }
  if (d->ready != NULL) {
    traffic_line(f, "ready", "GET", d->ready, 5, o->timeout);
    fputs(" }\n", f);
  }
}

static void timeline(FILE *f, const struct fl_audit_case *c,
                     const struct fl_battery_opts *o) {
  fprintf(f,
          "timeline:\n"
          "  - phase: steady\n    duration: %gs\n"
          "  - phase: fault\n    duration: %gs\n    faults: [ %s ]\n"
          "  - phase: recovery\n    duration: %gs\n"
          "  - phase: settled\n    duration: %gs\n",
          o->steady, c->fault_s, c->faults, o->recovery, o->settled);
}

/* What "answers as usual" means for e: 2xx, or the status it gave when
 * exercised alone (an endpoint whose usual answer is a 404 or a 401 is
 * not failing when it gives it). */
static const char *usual(const struct fl_case_endpoint *e, char *buf,
                         size_t len) {
  if (e->status < 100 || (e->status >= 200 && e->status < 300))
    return "2xx";
  snprintf(buf, len, "%d", e->status);
  return buf;
}

/* The fault phase, per endpoint by its role. The process case bounds no
 * latency: new client connections cannot be accepted, whatever the
 * service does. */
static void expect_fault(FILE *f, const struct fl_audit_case *c) {
  int fds = strcmp(c->fault, "fds") == 0;
  fputs("  fault:\n", f);
  for (size_t i = 0; i < c->neps; i++) {
    const struct fl_case_endpoint *e = &c->eps[i];
    char st[16];
    fprintf(f, "    %s: [ ", e->name);
    switch (e->role) {
    case FL_ROLE_AFFECTED:
      fputs("\"rate(500) == 0%\", \"header(Retry-After) on 5xx if any\"", f);
      if (!fds)
        fprintf(f, ", \"p(99) < %gs\"", c->slow_s);
      break;
    case FL_ROLE_OTHER:
      if (fds) /* refused accepts are no cascade: only its own 500s */
        fputs("\"rate(500) == 0%\"", f);
      else
        fprintf(f, "\"rate(%s) >= 95%%\", \"p(99) < %gs\"",
                usual(e, st, sizeof(st)), c->other_p99);
      break;
    case FL_ROLE_LIVE:
      fputs(fds ? "\"rate(500) == 0%\"" : "\"rate(200) >= 95%\"", f);
      break;
    case FL_ROLE_READY:
      fputs(e->ready_down ? "\"rate(500) == 0%\", \"rate(503) >= 80%\""
                          : "\"rate(500) == 0%\"",
            f);
      break;
    }
    fputs(" ]\n", f);
  }
}

/* Recovery: what was hit answers again; settled: what was taken is
 * given back. */
static void expect_after(FILE *f, const struct fl_audit_case *c,
                         const struct fl_battery_opts *o) {
  fputs("  recovery:\n", f);
  for (size_t i = 0; i < c->neps; i++) {
    const struct fl_case_endpoint *e = &c->eps[i];
    char st[16];
    if (e->role == FL_ROLE_AFFECTED || e->role == FL_ROLE_READY)
      fprintf(f, "    %s: [ \"recovers(rate(%s) >= 90%%) within %gs\" ]\n",
              e->name, usual(e, st, sizeof(st)), o->recovery - 2);
  }
  /* Margins for pools that grow to their bound under load (baseline is
   * the steady phase's mean), not for a client per failed call. */
  fputs("  settled:\n    target:\n      - \"rss <= baseline + 50MB\"\n", f);
  /* After fd exhaustion the backlog of refused clients reconnects at
   * once: the count says nothing about a leak then. */
  if (strcmp(c->fault, "fds") != 0)
    fputs("      - \"fds <= baseline + 30\"\n", f);
  for (size_t i = 0; c->conns && c->conns[i]; i++)
    fprintf(f, "      - \"conns(%s) <= baseline + 10\"\n", c->conns[i]);
  fputs("  always:\n    - alive\n", f);
}

int fl_case_write(const struct fl_audit_case *c, const struct fl_discovery *d,
                  const struct fl_battery_opts *o, const char *service_file,
                  const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -errno;
  fprintf(f, "# Written by faultline audit: case %s of the %s row.\n", c->name,
          c->row);
  fprintf(f, "scenario: %s\ndescription: ", c->name);
  q(f, c->what);
  fputs("\nservice: ", f);
  q(f, service_file);
  fputc('\n', f);
  traffic(f, c, d, o);
  timeline(f, c, o);
  fputs("expect:\n", f);
  expect_fault(f, c);
  expect_after(f, c, o);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad)
    return -EIO;
  return 0;
}
