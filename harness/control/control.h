/*
 * The writer's side of the control segment (layout: faultline/segment.h).
 * The runner creates it; `faultline inject/clear/status` open it from
 * another process. Writers serialise with flock(); the shim never locks.
 */
#ifndef FL_CONTROL_H
#define FL_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "faultline/segment.h"

typedef struct fl_control_s fl_control_t;

/* A rule with its counters, copied out consistently. */
struct fl_rule_view {
  struct fl_rule rule;
  uint64_t matched;
  uint64_t injected;
  uint64_t bytes; /* proxy faults: bytes held back */
  int32_t open;
};

struct fl_event_view {
  uint64_t index; /* position in the ring's history, from 0 */
  uint64_t time_ns;
  int32_t pid;
  uint32_t rule_id;
  int op;
  int err;
};

/* Creates the segment at `path` (which must not exist), mode 0600. */
int fl_control_create(const char *path, uint64_t seed, fl_control_t **out);
/* fl_control_create, then opens the blackholes that `hang` needs (IPv4;
 * IPv6 when the host has ::1) and publishes them; the handle owns them and
 * closes them with itself. On error `err` says which step failed, in one
 * sentence, and nothing is left behind. */
int fl_control_setup(const char *path, uint64_t seed, fl_control_t **out,
                     char *err, size_t errlen);
/* Opens an existing segment for writing rules; FL_EBADCTL when foreign. */
int fl_control_open(const char *path, fl_control_t **out);
/* Unmaps (and closes the blackholes of fl_control_setup); the file stays
 * (the creator removes it with fl_control_remove). */
void fl_control_close(fl_control_t *c);
/* Unmaps and deletes the file. */
void fl_control_remove(fl_control_t *c);

const char *fl_control_path(const fl_control_t *c);
uint64_t fl_control_seed(const fl_control_t *c);

/* Publishes where `hang` sends connections (family 0: none). */
void fl_control_set_blackholes(fl_control_t *c, const struct fl_addr *v4,
                               const struct fl_addr *v6);

/* Installs `rule` (from fl_spec_parse) with fresh counters; *id gets its
 * number. FL_ERULESFULL when all FL_MAX_RULES slots are taken. */
int fl_control_add(fl_control_t *c, const struct fl_rule *rule, uint32_t *id);
/* Removes rule `id`, or every rule when id is 0. FL_ENORULE if absent. */
int fl_control_clear(fl_control_t *c, uint32_t id);

/* Copies up to `max` active rules in slot order; returns how many. */
int fl_control_rules(fl_control_t *c, struct fl_rule_view *out, int max);
/* Counters of rule `id` (also after... only while it is installed). */
int fl_control_rule(fl_control_t *c, uint32_t id, struct fl_rule_view *out);
/* Copies events with index >= *since (oldest first, at most max); sets
 * *since past the last one copied. Returns how many. */
int fl_control_events(fl_control_t *c, uint64_t *since,
                      struct fl_event_view *out, int max);

/* For a rule applier inside this process (the proxy). */

/* The rules' generation: one atomic load; it changes after every add and
 * clear, so a reader re-reads the rules only when it moved. */
uint32_t fl_control_generation(const fl_control_t *c);
/* Copies the rule in `slot` (0 to FL_MAX_RULES-1) consistently; 1 when an
 * active rule is there, 0 when the slot is free. */
int fl_control_slot(fl_control_t *c, int slot, struct fl_rule_view *out);

enum fl_counter { FL_COUNT_MATCHED, FL_COUNT_INJECTED, FL_COUNT_BYTES };
/* Adds n to a counter of rule `id`, read from `slot`; nothing when the
 * slot holds another rule by now. Returns the counter's value before. */
uint64_t fl_control_count(fl_control_t *c, int slot, uint32_t id,
                          enum fl_counter which, uint64_t n);
/* Counts one injection of rule `id` unless it already made `times` (0: no
 * bound); returns 1 when counted. */
int fl_control_take(fl_control_t *c, int slot, uint32_t id, uint64_t times);
/* Appends an injection to the event ring: now, this process, op, err. */
void fl_control_record(fl_control_t *c, uint32_t id, int op, int err);

/*
 * Usage recording (audit discovery): while on, the shim fills the
 * segment's struct fl_usage; the runner copies it and takes differences
 * between copies to see what one window of time used.
 */

/* Turns recording on or off (the shim's slow paths then record). */
int fl_control_set_recording(fl_control_t *c, int on);

struct fl_usage_dest_view {
  struct fl_addr addr;
  uint64_t connects, ios;
};

struct fl_usage_text_view {
  char text[FL_USE_TEXT];
  uint32_t flags; /* enum fl_use_flag bits */
  uint64_t count;
};

/* A copy of the tables: only slots whose entry is complete. */
struct fl_usage_view {
  struct fl_usage_dest_view dests[FL_USE_DESTS];
  struct fl_usage_text_view names[FL_USE_NAMES];
  struct fl_usage_text_view paths[FL_USE_PATHS];
  size_t ndests, nnames, npaths;
  uint64_t overflow; /* keys that found no slot, all tables */
};

/* Copies the tables of `u` (a segment's, or any other) into *out. */
void fl_usage_read(const struct fl_usage *u, struct fl_usage_view *out);
/* fl_usage_read of this segment's tables. */
void fl_control_usage(fl_control_t *c, struct fl_usage_view *out);
/* *out = what `after` holds beyond `before` (counts subtracted, entries
 * with nothing new left out); `before` may be NULL. */
void fl_usage_delta(const struct fl_usage_view *before,
                    const struct fl_usage_view *after,
                    struct fl_usage_view *out);

/*
 * A blackhole: a loopback listener whose accept queue is full, so that a
 * connect to it stays in SYN_SENT (the SYN is dropped, as by a firewall)
 * until the caller's own timeout. `hang` sends connections here.
 */

struct fl_blackhole {
  int listen_fd;
  int fill_fd; /* the one connection that fills the queue */
  struct fl_addr addr;
};

/* Opens one on 127.0.0.1 (AF_INET) or ::1 (AF_INET6). Returns 0 or -errno;
 * on error *bh holds no descriptors. */
int fl_blackhole_open(int family, struct fl_blackhole *bh);
void fl_blackhole_close(struct fl_blackhole *bh);

#endif
