/*
 * faultline audit: a service's failure-propagation matrix, measured.
 * Discovery (discover.h) says which endpoint uses what; the battery
 * (battery.c) turns each dependency into fault cases, each an ordinary
 * scenario (casefile.c writes it as YAML under DIR/scenarios/); `run`'s
 * engine runs them; the matrix (matrix.c) names what each endpoint did
 * in each case. Renderers of the matrix live in reports/.
 */
#ifndef FL_AUDIT_H
#define FL_AUDIT_H

#include <jansson.h>
#include <stddef.h>

#include "discover.h"
#include "scenario/scenario.h"

/* What an endpoint of a case is held to. */
enum fl_case_role {
  FL_ROLE_OTHER = 0, /* does not use the failed thing: no cascade */
  FL_ROLE_AFFECTED,  /* uses it: fast 503 with Retry-After or 2xx */
  FL_ROLE_LIVE,      /* liveness: stays 200 */
  FL_ROLE_READY,     /* readiness: 503 while needed, 200 after */
};

/* The timeline every case shares, in seconds. */
struct fl_battery_opts {
  double steady, fault, recovery, settled;
  double rate;    /* requests per second per data endpoint */
  double timeout; /* each request's */
};

/* One endpoint as the case's scenario names it. */
struct fl_case_endpoint {
  char name[64];
  int role;       /* enum fl_case_role */
  int ready_down; /* readiness: expected 503 during the fault */
  int status;     /* its usual answer when exercised alone; 0: unknown */
};

struct fl_audit_case {
  char name[128];   /* "postgres-down": the scenario's name and file */
  char row[160];    /* the matrix row: "postgres", "dns localhost", ... */
  char fault[32];   /* the column: down, blackhole, slow, ... */
  char what[256];   /* the faults, in words */
  char faults[512]; /* the timeline's fault phase, YAML flow items */
  double fault_s;   /* the fault phase's length */
  double slow_s;    /* affected endpoints answer within this */
  double other_p99; /* unaffected endpoints' p(99) bound */
  const char *const *conns; /* managed dependencies for conns() checks */
  struct fl_case_endpoint *eps;
  size_t neps;
};

struct fl_battery {
  struct fl_audit_case *cases;
  size_t ncases;
  char **dep_names; /* the managed dependencies, NULL-terminated */
};

/* The defaults: steady 3 s, fault 5 s, recovery 10 s, settled 3 s. */
void fl_battery_defaults(struct fl_battery_opts *o);

/* Builds every case for d on service sv, keeping those whose name
 * matches one of the comma-separated globs in `only` (NULL: all). 0, or
 * -ENOMEM, or -ENOENT when `only` keeps none (err says so). */
int fl_battery_build(const struct fl_discovery *d, const struct fl_service *sv,
                     const struct fl_battery_opts *o, const char *only,
                     struct fl_battery *out, char *err, size_t errlen);
void fl_battery_free(struct fl_battery *b);

/* casefile.c: case c as a scenario file at path, for service_file
 * (absolute), endpoints from d. 0 or -errno. */
int fl_case_write(const struct fl_audit_case *c, const struct fl_discovery *d,
                  const struct fl_battery_opts *o, const char *service_file,
                  const char *path);

/* matrix.c: the matrix document from the cases and the suite's result
 * (its scenarios named as the cases); a new reference, NULL when out of
 * memory. The cells' names: "graceful 503", "fallback 2xx", "no
 * Retry-After", "500", "hang", "cascade", "no recovery", "readiness
 * stays up", "leak", "crash", "inconclusive", and "ok" for the process. */
json_t *fl_matrix_build(const struct fl_battery *b, const json_t *result);
/* 1 when a cell name is a finding, 0 when graceful. */
int fl_matrix_is_finding(const char *cell);

struct fl_audit_opts {
  const char *service_file;
  const char *endpoints_file, *openapi_path;
  const char *out_dir;
  const char *only;
  int jobs, quiet;
  int fresh_deps; /* new dependencies for every case (else reused) */
};

/* audit.c: the whole audit. *matrix and *result get the documents (also
 * when cases failed); 0, or a negative code with one sentence in err
 * (FL_EBADSCENARIO for bad input). */
int fl_audit_run(const struct fl_audit_opts *o, json_t **matrix,
                 json_t **result, char *err, size_t errlen);

#endif
