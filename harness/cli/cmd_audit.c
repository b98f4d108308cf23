/*
 * faultline audit: the service's failure-propagation matrix. This build
 * has its first step, discovery: `faultline audit --discover-only
 * SERVICE.yaml` starts the service with its dependencies under the shim,
 * exercises each endpoint alone and prints what each one used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/base.h"
#include "cli.h"
#include "scenario/scenario.h"

struct audit_opts {
  const char *endpoints, *openapi, *out;
  int discover_only, quiet;
};

static int take(int c, const char *val, void *arg) {
  struct audit_opts *a = arg;
  switch (c) {
  case 'e':
    a->endpoints = val;
    break;
  case 'a':
    a->openapi = val;
    break;
  case 'o':
    a->out = val;
    break;
  case 'd':
    a->discover_only = 1;
    break;
  case 'q':
    a->quiet = 1;
    break;
  default:
    return fl_opt_bad("audit", c, val);
  }
  return 0;
}

int fl_cmd_audit(int argc, char **argv) {
  static const struct option longs[] = {
      {"endpoints", required_argument, NULL, 'e'},
      {"openapi", required_argument, NULL, 'a'},
      {"out", required_argument, NULL, 'o'},
      {"discover-only", no_argument, NULL, 'd'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const struct fl_opts spec = {"audit", ":h", longs, take,
                               "a service file is needed"};
  struct audit_opts a = {.out = "faultline-audit"};
  int rc = fl_opt_parse(&spec, argc, argv, &a);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  if (optind + 1 != argc) {
    fl_say("audit: one service file, found %d arguments", argc - optind);
    return FL_EXIT_USAGE;
  }
  if (a.endpoints != NULL && a.openapi != NULL) {
    fl_say("audit: --endpoints and --openapi exclude each other");
    return FL_EXIT_USAGE;
  }
  if (a.openapi != NULL && a.openapi[0] != '/') {
    fl_say("audit: bad --openapi '%s' (allowed: a path such as "
           "/openapi.json)",
           a.openapi);
    return FL_EXIT_USAGE;
  }
  if (!a.discover_only) {
    fl_say("audit: this build has discovery only: add --discover-only");
    return FL_EXIT_USAGE;
  }
  char work[PATH_MAX], err[FL_ERRLEN];
  snprintf(work, sizeof(work), "%s/discover", a.out);
  struct fl_discover_opts o = {.service_file = argv[optind],
                               .endpoints_file = a.endpoints,
                               .openapi_path = a.openapi,
                               .work_dir = work,
                               .quiet = a.quiet};
  struct fl_discovery d;
  rc = fl_audit_discover(&o, &d, err, sizeof(err));
  if (rc != 0) {
    fl_say("audit: %s", err);
    return rc == FL_EBADSCENARIO || rc == -ENOENT ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  fl_discovery_print(&d, stdout);
  fl_discovery_free(&d);
  return FL_EXIT_OK;
}
