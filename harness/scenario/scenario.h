/*
 * Service and scenario files (YAML, see scenarios/README.md): loaded into
 * plain structs, with every error reported as FILE:LINE:COL: what was
 * found, what is allowed. Values that need run-time facts (${PORT}, a
 * dependency's address) are kept as written and expanded by the runner.
 */
#ifndef FL_SCENARIO_H
#define FL_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "deps/deps.h"
#include "expect/expect.h"
#include "faults/faults.h"

#define FL_ERRLEN 4096 /* room for a file's errors, a line each */

struct fl_pos {
  int line, col; /* 1-based */
};

struct fl_kv {
  char *key, *value;
  struct fl_pos pos;
};

struct fl_dep_decl {
  char *name;
  const fl_dep_kind_t *kind;
  char *address;  /* external only */
  char *protocol; /* external only: what its proxy follows, or NULL */
  char *config;   /* http: its routes, as the stub reads them (JSON) */
  struct fl_pos pos;
};

struct fl_service {
  char *file;
  char *name;
  char **argv; /* NULL-terminated; a string command is sh -c */
  char *dir;   /* absolute */
  struct fl_kv *env;
  size_t nenv;
  char *ready_http; /* path, or NULL for a TCP check */
  double ready_timeout;
  struct fl_dep_decl *deps;
  size_t ndeps;
};

/* What the runner must still fill in of a fault's rule. */
enum fl_fault_pending {
  FL_PENDING_NONE,   /* aimed when loaded */
  FL_PENDING_DEP,    /* the target names a dependency: its address */
  FL_PENDING_EXPAND, /* the target has ${VAR}s: aimed once expanded */
};

struct fl_fault_decl {
  const struct fl_fault_type *type; /* its row in the fault vocabulary */
  int kind;                         /* enum fl_fault_kind (type->kind) */
  char *action;        /* type->name: what fault(NAME) and reports say */
  char *target;        /* a dependency name, or as written (name, glob...) */
  char *options;       /* ",k=v,..." as written, for the rule's spec text */
  struct fl_rule rule; /* shim and proxy faults: options read, and aimed
                          unless pending */
  int pending;         /* enum fl_fault_pending */
  double at;           /* seconds after the phase's start */
  double until;        /* seconds after the phase's start; < 0: its end */
  double every;        /* > 0: on and off in turns of this length */
  int optional;        /* not delivered: proves nothing, disproves nothing */
  struct fl_pos pos;
};

struct fl_phase {
  char *name;
  double duration;
  struct fl_fault_decl *faults;
  size_t nfaults;
  struct fl_pos pos;
};

struct fl_endpoint_decl {
  char *name;
  char *method, *path, *body; /* path: a template, {1..50} {a,b} drawn */
  char **headers;             /* "Name: value", NULL-terminated */
  double rate, timeout;       /* rate: with phase_rates, the first phase's */
  double *phase_rates;        /* NULL, or the rate of each phase, in order */
  int concurrency;            /* at most this many in flight; 0: no cap */
  struct fl_pos pos;
  /* A WebSocket endpoint (request: WS /path; method "WS"): its spec, whose
   * message is NULL here (the runner points it at `message`). */
  int ws;
  struct fl_ws_spec wspec;
  char *message;
};

struct fl_expect_decl {
  char *phase;    /* a phase name or "always" */
  char *endpoint; /* NULL: a target expectation */
  struct fl_expect e;
  struct fl_pos pos;
};

struct fl_scenario {
  char *file;
  char *name;
  char *description;
  char *service_file; /* absolute; may be overridden by --service */
  uint64_t seed;
  struct fl_endpoint_decl *endpoints;
  size_t nendpoints;
  struct fl_phase *phases;
  size_t nphases;
  struct fl_expect_decl *expects;
  size_t nexpects;
};

/* Loads a file; on failure returns FL_EBADSCENARIO (or -errno when the file
 * cannot be read) with one sentence in err, prefixed FILE:LINE:COL. */
int fl_service_load(const char *path, struct fl_service **out, char *err,
                    size_t errlen);
int fl_scenario_load(const char *path, struct fl_scenario **out, char *err,
                     size_t errlen);
void fl_service_free(struct fl_service *s);
void fl_scenario_free(struct fl_scenario *s);

/* Cross-checks a scenario against the service it runs on: every fault
 * aimed at a dependency names one the service declares, process faults
 * only at managed ones. */
int fl_scenario_check(const struct fl_scenario *sc, const struct fl_service *sv,
                      char *err, size_t errlen);

/* Is the file a service (1) or a scenario (0)? -errno if unreadable. */
int fl_yaml_kind(const char *path);

/* Expands ${NAME} in `in` with lookup(); "$$" is "$". Returns a new string
 * or NULL with err set ("unknown variable ${X}"). */
char *fl_expand(const char *in,
                const char *(*lookup)(const char *name, void *arg), void *arg,
                char *err, size_t errlen);

/* `run --shard I/N`: sets keep[i] to 1 for the files of shard `index` (1 to
 * `count`) of `files`, split by the length of their timelines (each file
 * is loaded) so that every shard gets about the same time; deterministic
 * for the same set of files, whatever their order. 0, -EINVAL for a bad
 * I/N, or a loading error with one sentence in err. */
int fl_shard_select(char *const *files, int nfiles, int index, int count,
                    int *keep, char *err, size_t errlen);

#endif
