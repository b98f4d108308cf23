/*
 * Faults: the one vocabulary of fault actions (vocab.c: one row per action,
 * read by the spec parser, the scenario loader, `faultline list` and help,
 * validation messages, the runner and its reports), and typed rules built
 * from it.
 *
 * Text is a front door: a spec ACTION@TARGET[,key=value]... (`faultline
 * inject`, `--fault`) is parsed by fl_spec_parse into a struct fl_rule; a
 * scenario builds the same struct with a draft (fl_draft_*) from its YAML
 * keys, and aims it (fl_rule_aim*) once its target is known.
 * `faultline help faults` documents the grammar (cli/help.c).
 */
#ifndef FL_FAULTS_H
#define FL_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "faultline/segment.h"

/* How a fault is applied. */
enum fl_fault_kind {
  FL_FAULT_SHIM,    /* a rule the shim applies inside the target */
  FL_FAULT_PROXY,   /* a rule the proxy applies to a dependency's streams */
  FL_FAULT_PROCESS, /* an operation on a managed dependency's process */
};

/* What a fault is aimed at. */
enum fl_fault_aim {
  FL_AIM_CONN, /* a dependency, HOST[:PORT], CIDR, [V6], *:PORT, unix path */
  FL_AIM_NAME, /* a host name glob */
  FL_AIM_PATH, /* an absolute path glob */
  FL_AIM_FDS,  /* sockets, files or fds */
  FL_AIM_DEP,  /* a managed dependency */
};

/* Process faults, in this room's terms; the runner maps each to the
 * dependency operations that switch it on and off. */
enum fl_proc_fault {
  FL_PROC_NONE,
  FL_PROC_KILL,
  FL_PROC_STOP,
  FL_PROC_PAUSE,
  FL_PROC_RESTART,
  FL_PROC_SATURATE,
};

/* One fault action: a row of the vocabulary. */
struct fl_fault_type {
  const char *name;     /* as written in specs, scenarios and reports */
  uint8_t kind;         /* enum fl_fault_kind */
  uint8_t aim;          /* enum fl_fault_aim */
  uint8_t action;       /* enum fl_action of its rule (shim, proxy) */
  uint8_t proc;         /* enum fl_proc_fault (process) */
  uint8_t internal;     /* the runner's plumbing: specs only, never listed */
  uint8_t ms_min;       /* the least ms= (0 where it means "at once") */
  uint8_t dir;          /* proxy: enum fl_dir when no dir= is given */
  uint32_t ops;         /* enum fl_op_class bits (exhaust: per target) */
  const char *options;  /* the keys it takes: "ms, p, after, times" */
  const char *needs;    /* a required option, "ms=N"; NULL for none */
  const char *example;  /* what follows NAME@ in the `needs` message */
  const char *usage;    /* after NAME in `help faults`: "@T,ms=N" */
  const char *help;     /* one line, for `faultline list` */
  const char *detail;   /* `help faults`: the lines after the usage */
  const char *protocol; /* protocol faults: the one its target must speak */
};

/* The rows in order (NULL past the last), and lookups: NULL if none. */
const struct fl_fault_type *fl_fault_at(size_t i);
const struct fl_fault_type *fl_fault_find(const char *name);
const struct fl_fault_type *fl_fault_of_action(int action);
/* What an aim is, for listings: "path glob"... */
const char *fl_fault_aim_name(int aim);
/* "shim", "proxy" or "process". */
const char *fl_fault_kind_name(int kind);
/* Writes the names of the rows whose kind is in `kinds` (bits 1 << kind),
 * comma-separated, into buf; internal rows only if `internal`. */
void fl_fault_list(char *buf, size_t size, unsigned kinds, int internal);
/* The row of those kinds whose name is nearest to word (edit distance). */
const struct fl_fault_type *fl_fault_nearest(const char *word, unsigned kinds);
#define FL_KINDS_RULE (1u << FL_FAULT_SHIM | 1u << FL_FAULT_PROXY)

/* A rule being built: its type and the options given so far. */
struct fl_rule_draft {
  const struct fl_fault_type *type;
  struct fl_rule rule;
  uint32_t seen; /* options given: bits by their row in the option table */
};

/* Every function below returns 0, or FL_EBADSPEC with one sentence in err
 * naming the offending part and what is allowed. */

/* Starts a rule of a shim or proxy type, with no target and no options. */
void fl_draft_init(struct fl_rule_draft *d, const struct fl_fault_type *t);
/* One option, key=value, read by its row of the option table. */
int fl_draft_option(struct fl_rule_draft *d, const char *key, const char *value,
                    char *err, size_t errlen);
/* The typed form of a redirect's to=ADDRESS:PORT (a port and a whole
 * address: prefix 32 or 128). */
void fl_draft_redirect(struct fl_rule_draft *d, const struct fl_addr *to);
/* Checks required options and fills in defaults. */
int fl_draft_finish(struct fl_rule_draft *d, char *err, size_t errlen);
/* Is key an option of any fault? */
int fl_fault_is_option(const char *key);

/* Aims a rule (whose action is set) at a target as written for its type;
 * host names are resolved here, never in the shim. Sets target and ops. */
int fl_rule_aim(struct fl_rule *r, const char *target, char *err,
                size_t errlen);
/* Aims a connection rule at host (an address or a name) and port. */
int fl_rule_aim_host(struct fl_rule *r, const char *host, int port, char *err,
                     size_t errlen);

/* Parses `spec` into *rule (all fields but seq, active and id); errors are
 * prefixed "bad fault spec 'SPEC': ". */
int fl_spec_parse(const char *spec, struct fl_rule *rule, char *err,
                  size_t errlen);

/* Names of actions, operations and error codes, for messages and status. */
const char *fl_action_name(int action);
const char *fl_op_name(int op);
/* "ECONNREFUSED", "EAI_AGAIN"...; NULL for a code not in the table. */
const char *fl_errcode_name(int code);

#endif
