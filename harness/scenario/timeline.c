/*
 * A scenario's timeline: phases, and the faults switched on in each. A rule
 * fault's options are checked here with the same parser the runner uses,
 * so a bad option is reported at its line in the file.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "scenario_int.h"

static const struct {
  const char *name;
  int fault;
} process_faults[] = {
    {"kill", FL_DEP_KILL},         {"stop", FL_DEP_STOP},
    {"pause", FL_DEP_PAUSE},       {"restart", FL_DEP_RESTART},
    {"saturate", FL_DEP_SATURATE},
};

/* Rule actions a scenario may name (redirect is the runner's own). */
static int fl_action_by_name(const char *name) {
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++)
    if (a != FL_ACT_REDIRECT && strcmp(fl_action_name(a), name) == 0)
      return a;
  return -1;
}

static const char *fl_action_list(void) {
  static char list[512];
  if (list[0] == '\0')
    for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++)
      if (a != FL_ACT_REDIRECT)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 list[0] ? ", " : "", fl_action_name(a));
  return list;
}

static int process_fault(const char *name) {
  for (size_t i = 0; i < sizeof(process_faults) / sizeof(process_faults[0]);
       i++)
    if (strcmp(process_faults[i].name, name) == 0)
      return process_faults[i].fault;
  return -1;
}

static int load_fault(struct doc *d, yaml_node_t *n, struct fl_fault_decl *f) {
  int rc;
  f->pos = fl_yaml_pos(n);
  f->until = -1;
  if (n->type == YAML_SCALAR_NODE)
    return fl_yaml_fail(
        d, n,
        "a fault is a mapping such as '{ refuse: postgres }' or "
        "'{ kill: redis }', found '%s'",
        fl_yaml_scalar(n));
  if ((rc = fl_yaml_want_kind(d, n, YAML_MAPPING_NODE, "a fault")) != 0)
    return rc;
  char opts[512] = "";
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key), *v = fl_yaml_node(d, p->value);
    const char *key, *val;
    if ((rc = fl_yaml_want_scalar(d, k, "a fault key", &key)) != 0 ||
        (rc = fl_yaml_want_scalar(d, v, key, &val)) != 0)
      return rc;
    if (strcmp(key, "at") == 0 && strcmp(val, "start") == 0) {
      f->at = -1; /* before the target starts (first phase only) */
    } else if (strcmp(key, "at") == 0) {
      if ((rc = fl_yaml_duration(d, v, "at", &f->at)) != 0)
        return rc;
    } else if (strcmp(key, "until") == 0) {
      if ((rc = fl_yaml_duration(d, v, "until", &f->until)) != 0)
        return rc;
    } else if (strcmp(key, "every") == 0) {
      if ((rc = fl_yaml_duration(d, v, "every", &f->every)) != 0)
        return rc;
      if (f->every < 0.1)
        return fl_yaml_fail(d, v, "every must be at least 100ms");
    } else if (f->action == NULL &&
               (process_fault(key) >= 0 || fl_action_by_name(key) >= 0)) {
      if ((rc = fl_yaml_dup(d, k, key, &f->action)) != 0 ||
          (rc = fl_yaml_dup(d, v, val, &f->target)) != 0)
        return rc;
      f->pos = fl_yaml_pos(k);
      if (process_fault(key) >= 0) {
        f->kind = FL_FAULT_PROCESS;
        f->process = process_fault(key);
      }
    } else if (f->action == NULL &&
               (strchr(key, '=') || !isalpha(*key) || strlen(key) > 3)) {
      return fl_yaml_fail(d, k,
                          "unknown fault '%s' (allowed: %s, kill, stop, pause, "
                          "restart, saturate)",
                          key, fl_action_list());
    } else {
      size_t at = strlen(opts);
      snprintf(opts + at, sizeof(opts) - at, ",%s=%s", key, val);
    }
  }
  if (f->action == NULL)
    return fl_yaml_fail(d, n,
                        "a fault needs an action aimed at a target, e.g. '{ "
                        "refuse: postgres }' (actions: %s, kill, stop, pause, "
                        "restart, saturate)",
                        fl_action_list());
  if (f->kind == FL_FAULT_PROCESS && opts[0] != '\0')
    return fl_yaml_fail(d, n,
                        "process fault '%s' takes no options besides at, "
                        "until and every (found '%s')",
                        f->action, opts + 1);
  if (f->at < 0 && f->kind == FL_FAULT_PROCESS)
    return fl_yaml_fail(d, n,
                        "'at: start' is for rule faults; a process fault "
                        "starts with the first phase");
  if (f->until >= 0 && f->until <= f->at)
    return fl_yaml_fail(d, n, "until (%gs) must come after at (%gs)", f->until,
                        f->at);
  if ((f->options = strdup(opts)) == NULL)
    return fl_yaml_fail(d, n, "out of memory");
  if (f->kind == FL_FAULT_SHIM) {
    /* Check the options now with a stand-in target of the right kind. */
    char spec[1024], e[512];
    const char *stand_in = f->target;
    if (strcmp(f->action, "dns") != 0 && strcmp(f->action, "enospc") != 0 &&
        strcmp(f->action, "eio") != 0 && strcmp(f->action, "exhaust") != 0 &&
        strchr(f->target, ':') == NULL && strchr(f->target, '/') == NULL)
      stand_in = "127.0.0.1:1";
    else if (strstr(f->target, "${") != NULL)
      stand_in = strcmp(f->action, "dns") == 0 ? "example.invalid" : "/x/*";
    snprintf(spec, sizeof(spec), "%s@%s%s", f->action, stand_in, opts);
    struct fl_rule r;
    if (fl_spec_parse(spec, &r, e, sizeof(e)) != 0) {
      const char *msg = strstr(e, "': ");
      return fl_yaml_fail(d, n, "bad fault: %s", msg ? msg + 3 : e);
    }
  }
  return 0;
}

int fl_sc_load_phase(struct doc *d, yaml_node_t *n, struct fl_phase *ph,
                     const struct fl_phase *sc_first_phase) {
  int rc;
  const char *s;
  ph->pos = fl_yaml_pos(n);
  if ((rc = fl_yaml_want_kind(d, n, YAML_MAPPING_NODE, "a phase")) != 0 ||
      (rc = fl_yaml_check_keys(d, n, "a phase", "phase duration faults")) != 0)
    return rc;
  yaml_node_t *v = fl_yaml_get(d, n, "phase");
  if (v == NULL)
    return fl_yaml_fail(d, n, "a phase needs 'phase: NAME'");
  if ((rc = fl_yaml_want_scalar(d, v, "phase", &s)) != 0 ||
      (rc = fl_yaml_dup(d, v, s, &ph->name)) != 0)
    return rc;
  if (strcmp(s, "always") == 0)
    return fl_yaml_fail(d, v,
                        "'always' is reserved for expectations over the "
                        "whole run; choose another phase name");
  if ((v = fl_yaml_get(d, n, "duration")) == NULL)
    return fl_yaml_fail(d, n, "phase '%s' needs a duration", ph->name);
  if ((rc = fl_yaml_duration(d, v, "duration", &ph->duration)) != 0)
    return rc;
  if (ph->duration <= 0 || ph->duration > 3600)
    return fl_yaml_fail(d, v,
                        "bad duration for phase '%s' (allowed: above 0, at "
                        "most 1h)",
                        ph->name);
  if ((v = fl_yaml_get(d, n, "faults")) == NULL)
    return 0;
  if ((rc = fl_yaml_want_kind(d, v, YAML_SEQUENCE_NODE, "faults")) != 0)
    return rc;
  size_t cnt =
      (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  ph->faults = calloc(cnt + 1, sizeof(*ph->faults));
  if (ph->faults == NULL)
    return fl_yaml_fail(d, v, "out of memory");
  for (yaml_node_item_t *it = v->data.sequence.items.start;
       it < v->data.sequence.items.top; it++) {
    struct fl_fault_decl *f = &ph->faults[ph->nfaults++];
    if ((rc = load_fault(d, fl_yaml_node(d, *it), f)) != 0)
      return rc;
    if (f->at < 0 && ph != sc_first_phase)
      return fl_yaml_fail(d, fl_yaml_node(d, *it),
                          "'at: start' is allowed in the first "
                          "phase only");
    if (f->at >= ph->duration)
      return fl_yaml_fail(d, fl_yaml_node(d, *it),
                          "at (%gs) is not inside phase '%s' "
                          "(%gs long)",
                          f->at, ph->name, ph->duration);
    if (f->until > ph->duration)
      return fl_yaml_fail(d, fl_yaml_node(d, *it),
                          "until (%gs) is past the end of phase "
                          "'%s' (%gs long)",
                          f->until, ph->name, ph->duration);
  }
  return 0;
}
