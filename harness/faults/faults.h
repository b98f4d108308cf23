/*
 * Fault specs: the text form of a rule, ACTION@TARGET[,key=value]...
 * e.g. "refuse@127.0.0.1:6379", "delay@[::1]:5432,ms=200,p=0.5".
 * `faultline help faults` documents the grammar (cli/help.c).
 */
#ifndef FL_FAULTS_H
#define FL_FAULTS_H

#include <stddef.h>

#include "faultline/segment.h"

/* Parses `spec` into *rule (all fields but seq, active and id). Host names
 * in connection targets are resolved here, never in the shim. Returns 0, or
 * FL_EBADSPEC with one sentence in err naming the offending part and what
 * is allowed. */
int fl_spec_parse(const char *spec, struct fl_rule *rule, char *err,
                  size_t errlen);

/* Names of actions, operations and error codes, for messages and status. */
const char *fl_action_name(int action);
const char *fl_op_name(int op);
/* "ECONNREFUSED", "EAI_AGAIN"...; NULL for a code not in the table. */
const char *fl_errcode_name(int code);

#endif
