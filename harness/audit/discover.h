/*
 * faultline audit, step 1: what the service is made of, measured. The
 * service runs under the shim with its dependencies; each endpoint is
 * exercised alone while the shim records which destinations the process
 * used (new connects and reads/writes on already-open pooled connections),
 * which names it resolved and which paths it wrote. The battery
 * (battery.c) builds its cases from the result.
 *
 * This header is the contract between discovery (discover.c and its
 * helpers) and the battery and matrix; keep it small.
 */
#ifndef FL_AUDIT_DISCOVER_H
#define FL_AUDIT_DISCOVER_H

#include <stddef.h>
#include <stdio.h>

/* What an endpoint was seen to use. */
enum fl_use_kind {
  FL_USE_DEP = 1,  /* a managed dependency of the service file, by name */
  FL_USE_HOSTPORT, /* any other destination, "HOST:PORT" */
  FL_USE_DNS,      /* a name the process resolved */
  FL_USE_PATH,     /* a path glob it wrote, ${VAR}s kept (${DATA_DIR}/x/ *) */
};

struct fl_use {
  enum fl_use_kind kind;
  char *name;
};

struct fl_audit_endpoint {
  char *name;          /* short and unique, usable in expectations: "items" */
  char *method, *path; /* path concrete (parameters filled in) */
  char *body;          /* NULL: none */
  char **headers;      /* "Name: value", NULL-terminated; may be NULL */
  int status;          /* the usual status when exercised alone */
  double p50, p99;     /* seconds, exercised alone */
  struct fl_use *uses; /* what it used, beyond what the idle service does */
  size_t nuses;
};

struct fl_discovery {
  struct fl_audit_endpoint *endpoints;
  size_t nendpoints;
  char *live, *ready;  /* paths of liveness and readiness; NULL: none found */
  struct fl_use *uses; /* the union of the endpoints' uses, each once */
  size_t nuses;
  /* What the service used while starting, before it was ready (a name
   * resolved only then, a pool's first connections); not in `uses`. */
  struct fl_use *startup;
  size_t nstartup;
};

struct fl_discover_opts {
  const char *service_file;
  const char *endpoints_file; /* --endpoints; NULL: OpenAPI */
  const char *openapi_path;   /* --openapi; NULL: /openapi.json */
  const char *work_dir;       /* where the discovery run's files go */
  int quiet;
};

/* Runs the service and fills *out. Returns 0, or a negative code with one
 * sentence in err (FL_EBADSCENARIO for a bad endpoints file, with
 * FILE:LINE:COL). Nothing started is left running. */
int fl_audit_discover(const struct fl_discover_opts *o,
                      struct fl_discovery *out, char *err, size_t errlen);

/* What was found, for the terminal, before the battery starts. */
void fl_discovery_print(const struct fl_discovery *d, FILE *f);

void fl_discovery_free(struct fl_discovery *d);

#endif
