/*
 * Fault specs, the text front door: ACTION@TARGET[,key=value]...
 * e.g. "refuse@127.0.0.1:6379", "delay@[::1]:5432,ms=200,p=0.5", read
 * into the same typed rule a scenario builds.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "faults_int.h"

/* The message for a name that is no rule action: the shim's and the
 * proxy's lists, led by the one whose name is nearest. */
static int unknown_action(const char *name, char *err, size_t errlen) {
  char shim[256], proxy[256];
  fl_fault_list(shim, sizeof(shim), 1u << FL_FAULT_SHIM, 1);
  fl_fault_list(proxy, sizeof(proxy), 1u << FL_FAULT_PROXY, 1);
  const struct fl_fault_type *near = fl_fault_nearest(name, FL_KINDS_RULE);
  if (near != NULL && near->kind == FL_FAULT_PROXY)
    return fl_faults_fail(
        err, errlen, "unknown action '%s' (proxy faults: %s; shim faults: %s)",
        name, proxy, shim);
  return fl_faults_fail(err, errlen, "unknown action '%s' (allowed: %s)", name,
                        shim);
}

/* Reads buf ("ACTION@TARGET[,k=v]...", cut in place) into d. */
static int parse(char *buf, struct fl_rule_draft *d, char *err, size_t errlen) {
  char *at = strchr(buf, '@');
  if (at == NULL)
    return fl_faults_fail(
        err, errlen, "missing '@' (expected ACTION@TARGET[,key=value]...)");
  *at = '\0';
  const struct fl_fault_type *t = fl_fault_find(buf);
  if (t != NULL && t->kind == FL_FAULT_PROCESS)
    return fl_faults_fail(err, errlen,
                          "%s is a process fault, for scenarios only ('{ %s: "
                          "DEPENDENCY }')",
                          t->name, t->name);
  if (t == NULL)
    return unknown_action(buf, err, errlen);
  fl_draft_init(d, t);
  char *target = at + 1, *opts = strchr(target, ',');
  if (opts != NULL)
    *opts++ = '\0';
  int rc = fl_rule_aim(&d->rule, target, err, errlen);
  while (rc == 0 && opts != NULL) {
    char *next = strchr(opts, ',');
    if (next != NULL)
      *next++ = '\0';
    char *eq = strchr(opts, '=');
    if (eq == NULL || eq == opts)
      return fl_faults_fail(err, errlen, "option '%s' is not key=value", opts);
    *eq = '\0';
    rc = fl_draft_option(d, opts, eq + 1, err, errlen);
    opts = next;
  }
  return rc != 0 ? rc : fl_draft_finish(d, err, errlen);
}

int fl_spec_parse(const char *spec, struct fl_rule *r, char *err,
                  size_t errlen) {
  char buf[FL_SPEC_MAX], why[512];
  struct fl_rule_draft d;
  int rc;
  memset(r, 0, sizeof(*r));
  if (strlen(spec) >= FL_SPEC_MAX)
    rc = fl_faults_fail(why, sizeof(why), "longer than %d bytes",
                        FL_SPEC_MAX - 1);
  else
    rc = parse(strcpy(buf, spec), &d, why, sizeof(why));
  if (rc != 0) {
    snprintf(err, errlen, "bad fault spec '%s': %s", spec, why);
    return rc;
  }
  memcpy(r, &d.rule, sizeof(*r));
  snprintf(r->spec, sizeof(r->spec), "%s", spec);
  return 0;
}
