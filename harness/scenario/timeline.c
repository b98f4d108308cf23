/*
 * A scenario's timeline: phases, and the faults switched on in each. A
 * fault's row in the vocabulary (faults/faults.h) says what its key, target
 * and options are; its rule is built here, typed, so a bad option is
 * reported at its line in the file and the runner only fills in what is
 * known at run time (a dependency's address, ${VAR}s).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "scenario_int.h"

/* The first key of the mapping that names a fault a scenario may use. */
static yaml_node_pair_t *action_pair(struct doc *d, yaml_node_t *n,
                                     const struct fl_fault_type **type) {
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    const char *key = fl_yaml_scalar(fl_yaml_node(d, p->key));
    const struct fl_fault_type *t = key ? fl_fault_find(key) : NULL;
    if (t != NULL && !t->internal) {
      *type = t;
      return p;
    }
  }
  return NULL;
}

static int is_timing(const char *key) {
  return strcmp(key, "at") == 0 || strcmp(key, "until") == 0 ||
         strcmp(key, "every") == 0 || strcmp(key, "optional") == 0;
}

/* No key names a fault: the first that is neither timing nor an option is
 * a misspelt fault; otherwise the action is missing. */
static int no_action(struct doc *d, yaml_node_t *n) {
  char names[512];
  fl_fault_list(names, sizeof(names), ~0u, 0);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key);
    const char *key = fl_yaml_scalar(k);
    if (key == NULL)
      return fl_yaml_want_scalar(d, k, "a fault key", &key);
    if (!is_timing(key) && !fl_fault_is_option(key))
      return fl_yaml_fail(d, k, "unknown fault '%s' (allowed: %s)", key, names);
  }
  return fl_yaml_fail(d, n,
                      "a fault needs an action aimed at a target, e.g. '{ "
                      "refuse: postgres }' (actions: %s)",
                      names);
}

/* The fault's action and target, from its key and value. */
static int load_action(struct doc *d, yaml_node_t *n, struct fl_fault_decl *f,
                       yaml_node_pair_t **pair) {
  *pair = action_pair(d, n, &f->type);
  if (*pair == NULL)
    return no_action(d, n);
  yaml_node_t *k = fl_yaml_node(d, (*pair)->key);
  yaml_node_t *v = fl_yaml_node(d, (*pair)->value);
  const char *target;
  int rc = fl_yaml_want_scalar(d, v, f->type->name, &target);
  if (rc == 0)
    rc = fl_yaml_dup(d, k, f->type->name, &f->action);
  if (rc == 0)
    rc = fl_yaml_dup(d, v, target, &f->target);
  f->kind = f->type->kind;
  f->pos = fl_yaml_pos(k);
  return rc;
}

static int load_timing(struct doc *d, yaml_node_t *v, const char *key,
                       const char *val, struct fl_fault_decl *f) {
  int rc;
  if (strcmp(key, "optional") == 0) {
    if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
      return fl_yaml_fail(d, v, "bad optional '%s' (allowed: true, false)",
                          val);
    f->optional = val[0] == 't';
    return 0;
  }
  if (strcmp(key, "at") == 0 && strcmp(val, "start") == 0) {
    f->at = -1; /* before the target starts (first phase only) */
    return 0;
  }
  double *to = key[0] == 'a' ? &f->at : key[0] == 'u' ? &f->until : &f->every;
  if ((rc = fl_yaml_duration(d, v, key, to)) != 0)
    return rc;
  if (to == &f->every && f->every < 0.1)
    return fl_yaml_fail(d, v, "every must be at least 100ms");
  return 0;
}

/* One option: into the draft rule, and into the text that shows it. */
static int load_option(struct doc *d, yaml_node_t *v, const char *key,
                       const char *val, struct fl_rule_draft *draft, char *opts,
                       size_t size) {
  size_t at = strlen(opts);
  if (snprintf(opts + at, size - at, ",%s=%s", key, val) >= (int)(size - at))
    return fl_yaml_fail(d, v, "the fault's options are too long");
  char e[512];
  if (draft->type->kind != FL_FAULT_PROCESS &&
      fl_draft_option(draft, key, val, e, sizeof(e)) != 0)
    return fl_yaml_fail(d, v, "bad fault: %s", e);
  return 0;
}

/* Every key but the action's: timing, or an option of the rule. */
static int load_keys(struct doc *d, yaml_node_t *n, yaml_node_pair_t *action,
                     struct fl_fault_decl *f, struct fl_rule_draft *draft,
                     char *opts, size_t size) {
  int rc = 0;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       rc == 0 && p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key), *v = fl_yaml_node(d, p->value);
    const char *key, *val;
    if (p == action)
      continue;
    if ((rc = fl_yaml_want_scalar(d, k, "a fault key", &key)) != 0 ||
        (rc = fl_yaml_want_scalar(d, v, key, &val)) != 0)
      return rc;
    if (is_timing(key))
      rc = load_timing(d, v, key, val, f);
    else
      rc = load_option(d, v, key, val, draft, opts, size);
  }
  return rc;
}

static int check_timing(struct doc *d, yaml_node_t *n,
                        const struct fl_fault_decl *f, const char *opts) {
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
  return 0;
}

/* Aims the rule now when its target is as written; a dependency's address
 * and ${VAR}s are for the runner. */
static int aim_rule(struct doc *d, yaml_node_t *n, struct fl_fault_decl *f) {
  char e[512];
  if (f->kind == FL_FAULT_PROCESS)
    f->pending = FL_PENDING_DEP;
  else if (strstr(f->target, "${") != NULL)
    f->pending = FL_PENDING_EXPAND;
  else if (f->type->aim == FL_AIM_CONN && strchr(f->target, ':') == NULL &&
           strchr(f->target, '/') == NULL)
    f->pending = FL_PENDING_DEP;
  else if (fl_rule_aim(&f->rule, f->target, e, sizeof(e)) != 0)
    return fl_yaml_fail(d, n, "bad fault: %s", e);
  return 0;
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
  yaml_node_pair_t *action;
  if ((rc = load_action(d, n, f, &action)) != 0)
    return rc;
  struct fl_rule_draft draft = {.type = f->type};
  if (f->kind != FL_FAULT_PROCESS)
    fl_draft_init(&draft, f->type);
  char opts[512] = "", e[512];
  if ((rc = load_keys(d, n, action, f, &draft, opts, sizeof(opts))) != 0 ||
      (rc = check_timing(d, n, f, opts)) != 0)
    return rc;
  if (f->kind != FL_FAULT_PROCESS && fl_draft_finish(&draft, e, sizeof(e)) != 0)
    return fl_yaml_fail(d, n, "bad fault: %s", e);
  memcpy(&f->rule, &draft.rule, sizeof(f->rule));
  if ((f->options = strdup(opts)) == NULL)
    return fl_yaml_fail(d, n, "out of memory");
  return aim_rule(d, fl_yaml_node(d, action->value), f);
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
