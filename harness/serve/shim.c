/*
 * faultline's extension: shim faults in a process started with `faultline
 * exec --control PATH`, switched over HTTP as `faultline inject/clear`
 * switch them. These are what no proxy can make: a refused or hanging
 * connect, a failed name lookup, no descriptors left, a full disk.
 *
 *   POST   /shim            {"control": PATH, "fault": SPEC}  -> 201 {"id"...}
 *   GET    /shim?control=PATH                                 -> the rules
 *   DELETE /shim/ID?control=PATH                              -> 204
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "faults/faults.h"
#include "serve_int.h"

/* Opens the segment at path: 0, or -1 with 400/404 in r. */
static int open_control(const char *path, fl_control_t **ctl, struct reply *r) {
  if (path == NULL || *path == '\0') {
    fl_reply_error(r, 400, "missing required field: control");
    return -1;
  }
  int rc = fl_control_open(path, ctl);
  if (rc == 0)
    return 0;
  if (rc == -ENOENT)
    fl_reply_error(r, 404, "control segment not found: %s", path);
  else
    fl_reply_error(r, 400, "cannot open control segment %s: %s", path,
                   fl_strerror(rc));
  return -1;
}

void fl_shim_add(const struct request *q, struct reply *r) {
  const char *path = NULL, *spec = NULL;
  json_error_t e;
  if (json_unpack_ex(q->body, &e, 0, "{s?s, s?s}", "control", &path, "fault",
                     &spec) != 0) {
    fl_reply_error(r, 400, "bad request body: %s", e.text);
    return;
  }
  if (spec == NULL) {
    fl_reply_error(r, 400, "missing required field: fault");
    return;
  }
  struct fl_rule rule;
  char err[512];
  if (fl_spec_parse(spec, &rule, err, sizeof(err)) != 0) {
    fl_reply_error(r, 400, "%s", err);
    return;
  }
  const struct fl_fault_type *t = fl_fault_of_action(rule.action);
  if (t == NULL || t->kind != FL_FAULT_SHIM) {
    fl_reply_error(r, 400,
                   "%s is not a shim fault: add it to a proxy as a toxic",
                   fl_action_name(rule.action));
    return;
  }
  fl_control_t *ctl;
  if (open_control(path, &ctl, r) != 0)
    return;
  uint32_t id;
  int rc = fl_control_add(ctl, &rule, &id);
  fl_control_close(ctl);
  if (rc != 0) {
    fl_reply_error(r, rc == FL_ERULESFULL ? 409 : 500, "%s", fl_strerror(rc));
    return;
  }
  *r = (struct reply){201, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
                                     "fault", rule.spec, "control", path)};
}

void fl_shim_list(const struct request *q, struct reply *r) {
  fl_control_t *ctl;
  if (open_control(fl_request_arg(q, "control"), &ctl, r) != 0)
    return;
  struct fl_rule_view *v = calloc(FL_MAX_RULES, sizeof(*v));
  if (v == NULL) {
    fl_control_close(ctl);
    fl_reply_error(r, 500, "out of memory");
    return;
  }
  int n = fl_control_rules(ctl, v, FL_MAX_RULES);
  json_t *rules = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(
        rules,
        json_pack("{s:I, s:s, s:I, s:I}", "id", (json_int_t)v[i].rule.id,
                  "fault", v[i].rule.spec, "matched", (json_int_t)v[i].matched,
                  "delivered", (json_int_t)v[i].injected));
  free(v);
  fl_control_close(ctl);
  *r = (struct reply){200, json_pack("{s:o}", "rules", rules)};
}

void fl_shim_delete(const struct request *q, const char *id, struct reply *r) {
  char *end;
  unsigned long n = strtoul(id, &end, 10);
  if (*id == '\0' || *end != '\0' || n == 0 || n > UINT32_MAX) {
    fl_reply_error(r, 400, "bad rule id '%s' (allowed: a rule's number)", id);
    return;
  }
  fl_control_t *ctl;
  if (open_control(fl_request_arg(q, "control"), &ctl, r) != 0)
    return;
  int rc = fl_control_clear(ctl, (uint32_t)n);
  fl_control_close(ctl);
  if (rc == FL_ENORULE)
    fl_reply_error(r, 404, "rule not found");
  else if (rc != 0)
    fl_reply_error(r, 500, "%s", fl_strerror(rc));
  else
    *r = (struct reply){204, NULL};
}
