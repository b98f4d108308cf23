/*
 * faultline inject / clear / status: change and show the faults of a
 * running `faultline exec` (or run) through its control segment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "cli.h"
#include "control/control.h"
#include "faults/faults.h"

/* Parses --control (default $FAULTLINE_CONTROL) and opens the segment.
 * Leaves the positional arguments at argv[optind..]. Returns 0, -1 after
 * --help, or an exit status. */
static int open_control(const char *cmd, int argc, char **argv,
                        fl_control_t **ctl, int *events) {
  static const struct option longs[] = {
      {"control", required_argument, NULL, 'c'},
      {"events", required_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *path = getenv(FL_CTL_ENV);
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "+c:e:h", longs, NULL)) != -1) {
    if (c == 'c') {
      path = optarg;
    } else if (c == 'e' && events != NULL) {
      char *end;
      long n = strtol(optarg, &end, 10);
      if (*end != '\0' || n < 0 || n > FL_RING_SIZE) {
        fl_say("%s: bad --events '%s' (allowed: 0-%d)", cmd, optarg,
               FL_RING_SIZE);
        return FL_EXIT_USAGE;
      }
      *events = (int)n;
    } else if (c == 'h') {
      fl_usage(cmd);
      return -1;
    } else {
      fl_say("%s: unknown option '%s' (see faultline %s --help)", cmd,
             argv[optind - 1], cmd);
      return FL_EXIT_USAGE;
    }
  }
  if (path == NULL || path[0] == '\0') {
    fl_say("%s: no control segment: give --control PATH (printed by "
           "faultline exec) or set " FL_CTL_ENV,
           cmd);
    return FL_EXIT_USAGE;
  }
  int rc = fl_control_open(path, ctl);
  if (rc != 0) {
    fl_say("%s: cannot open control segment %s: %s", cmd, path,
           fl_strerror(rc));
    return FL_EXIT_USAGE;
  }
  return 0;
}

int fl_cmd_inject(int argc, char **argv) {
  fl_control_t *ctl = NULL;
  int rc = open_control("inject", argc, argv, &ctl, NULL);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  int status = FL_EXIT_OK;
  if (optind >= argc) {
    fl_say("inject: no fault given (usage: faultline inject --control PATH "
           "SPEC...)");
    status = FL_EXIT_USAGE;
  }
  /* All specs are checked before any is installed: all or nothing. */
  int n = argc - optind;
  struct fl_rule *rules = calloc((size_t)(n > 0 ? n : 1), sizeof(*rules));
  char err[512];
  for (int i = 0; status == FL_EXIT_OK && i < n; i++)
    if (fl_spec_parse(argv[optind + i], &rules[i], err, sizeof(err)) != 0) {
      fl_say("%s", err);
      status = FL_EXIT_USAGE;
    }
  for (int i = 0; status == FL_EXIT_OK && i < n; i++) {
    uint32_t id;
    rc = fl_control_add(ctl, &rules[i], &id);
    if (rc != 0) {
      fl_say("inject: cannot install '%s': %s", rules[i].spec, fl_strerror(rc));
      status = FL_EXIT_ENV;
    } else {
      printf("rule %" PRIu32 ": %s\n", id, rules[i].spec);
    }
  }
  free(rules);
  fl_control_close(ctl);
  return status;
}

int fl_cmd_clear(int argc, char **argv) {
  fl_control_t *ctl = NULL;
  int rc = open_control("clear", argc, argv, &ctl, NULL);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  int status = FL_EXIT_OK;
  if (optind >= argc || strcmp(argv[optind], "all") == 0) {
    fl_control_clear(ctl, 0);
  } else {
    for (int i = optind; i < argc; i++) {
      char *end;
      unsigned long id = strtoul(argv[i], &end, 10);
      if (*end != '\0' || id == 0 || id > UINT32_MAX || argv[i][0] == '-') {
        fl_say("clear: bad rule '%s' (allowed: a rule number shown by "
               "status, or all)",
               argv[i]);
        status = FL_EXIT_USAGE;
        continue;
      }
      if (fl_control_clear(ctl, (uint32_t)id) != 0) {
        fl_say("clear: no rule %lu", id);
        status = FL_EXIT_USAGE;
      }
    }
  }
  fl_control_close(ctl);
  return status;
}

static void print_event(const struct fl_event_view *e) {
  time_t sec = (time_t)(e->time_ns / 1000000000u);
  struct tm tm;
  char when[32];
  localtime_r(&sec, &tm);
  strftime(when, sizeof(when), "%H:%M:%S", &tm);
  const char *name = fl_errcode_name(e->err);
  printf("  %s.%06" PRIu64 "  pid %-7" PRId32 " rule %-3" PRIu32 " %-12s %s\n",
         when, (e->time_ns % 1000000000u) / 1000u, e->pid, e->rule_id,
         fl_op_name(e->op), name ? name : (e->err != 0 ? "?" : "-"));
}

int fl_cmd_status(int argc, char **argv) {
  fl_control_t *ctl = NULL;
  int events = 10;
  int rc = open_control("status", argc, argv, &ctl, &events);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  struct fl_rule_view views[FL_MAX_RULES];
  int n = fl_control_rules(ctl, views, FL_MAX_RULES);
  printf("control %s (seed %" PRIu64 ")\n", fl_control_path(ctl),
         fl_control_seed(ctl));
  if (n == 0)
    printf("no active rules\n");
  else
    printf("%-5s %-10s %-10s %-6s %-12s %s\n", "RULE", "MATCHED", "INJECTED",
           "OPEN", "BYTES", "SPEC");
  /* BYTES: what the proxy held back (latency, bandwidth, slicer, stall). */
  for (int i = 0; i < n; i++)
    printf("%-5" PRIu32 " %-10" PRIu64 " %-10" PRIu64 " %-6" PRId32
           " %-12" PRIu64 " %s\n",
           views[i].rule.id, views[i].matched, views[i].injected, views[i].open,
           views[i].bytes, views[i].rule.spec);
  if (events > 0) {
    static struct fl_event_view ev[FL_RING_SIZE];
    uint64_t since = 0;
    int m = fl_control_events(ctl, &since, ev, FL_RING_SIZE);
    int from = m > events ? m - events : 0;
    printf("recent injections (%" PRIu64 " in all):\n", since);
    for (int i = from; i < m; i++)
      print_event(&ev[i]);
  }
  fl_control_close(ctl);
  return FL_EXIT_OK;
}
