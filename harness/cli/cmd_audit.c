/*
 * faultline audit: a service's failure-propagation matrix. Writes
 * DIR/matrix.json, matrix.md and matrix.html, the cases' scenario files
 * under DIR/scenarios/ and their run under DIR/run/; exit 0 when every
 * cell is graceful, 1 for findings (or inconclusive cells), 2 for bad
 * input, 3 when something could not start. --discover-only stops after
 * the first step and prints what each endpoint was seen to use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/base.h"
#include "cli.h"
#include "report.h"
#include "run/run.h"

struct audit_cli {
  struct fl_audit_opts a;
  int discover_only;
};

static int take_opt(int c, const char *val, void *arg) {
  struct audit_cli *cli = arg;
  struct fl_audit_opts *a = &cli->a;
  char *end;
  switch (c) {
  case 'e':
    a->endpoints_file = val;
    break;
  case 'a':
    a->openapi_path = val;
    break;
  case 'o':
    a->out_dir = val;
    break;
  case 'n':
    a->only = val;
    break;
  case 'q':
    a->quiet = 1;
    break;
  case 'd':
    cli->discover_only = 1;
    break;
  case 'F':
    a->fresh_deps = 1;
    break;
  case 'j':
    a->jobs = (int)strtol(val, &end, 10);
    if (*end != '\0' || a->jobs < 1 || a->jobs > 64) {
      fl_say("bad --jobs '%s' (allowed: 1-64)", val);
      return FL_EXIT_USAGE;
    }
    break;
  default:
    return fl_opt_bad("audit", c, val);
  }
  return 0;
}

static int parse(int argc, char **argv, struct audit_cli *cli) {
  struct fl_audit_opts *a = &cli->a;
  static const struct option longs[] = {
      {"endpoints", required_argument, NULL, 'e'},
      {"openapi", required_argument, NULL, 'a'},
      {"out", required_argument, NULL, 'o'},
      {"jobs", required_argument, NULL, 'j'},
      {"only", required_argument, NULL, 'n'},
      {"quiet", no_argument, NULL, 'q'},
      {"discover-only", no_argument, NULL, 'd'},
      {"fresh-deps", no_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static const struct fl_opts spec = {
      "audit", ":o:j:qh", longs, take_opt,
      "no service given (usage: faultline audit [OPTIONS] SERVICE.yaml)"};
  int rc = fl_opt_parse(&spec, argc, argv, cli);
  if (rc != 0)
    return rc;
  if (argc - optind != 1) {
    fl_say("audit takes one service file (usage: faultline audit [OPTIONS] "
           "SERVICE.yaml)");
    return FL_EXIT_USAGE;
  }
  if (a->endpoints_file != NULL && a->openapi_path != NULL) {
    fl_say("give --endpoints or --openapi, not both");
    return FL_EXIT_USAGE;
  }
  if (a->openapi_path != NULL && a->openapi_path[0] != '/') {
    fl_say("bad --openapi '%s' (allowed: a path such as /openapi.json)",
           a->openapi_path);
    return FL_EXIT_USAGE;
  }
  a->service_file = argv[optind];
  return 0;
}

/* Step 1 alone: what each endpoint uses, printed. */
static int discover_only(const struct fl_audit_opts *a) {
  char work[PATH_MAX], err[FL_ERRLEN];
  snprintf(work, sizeof(work), "%s/discover", a->out_dir);
  struct fl_discover_opts o = {.service_file = a->service_file,
                               .endpoints_file = a->endpoints_file,
                               .openapi_path = a->openapi_path,
                               .work_dir = work,
                               .quiet = a->quiet};
  struct fl_discovery d;
  int rc = fl_audit_discover(&o, &d, err, sizeof(err));
  if (rc != 0) {
    fl_say("audit: %s", err);
    return rc == FL_EBADSCENARIO || rc == -ENOENT ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  fl_discovery_print(&d, stdout);
  fl_discovery_free(&d);
  return FL_EXIT_OK;
}

static int write_matrix(const char *dir, json_t *m) {
  static const struct {
    const char *name;
    int (*render)(const json_t *, FILE *);
  } outs[] = {{"matrix.json", fl_dump_json},
              {"matrix.md", fl_audit_markdown},
              {"matrix.html", fl_audit_html}};
  char path[PATH_MAX];
  for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, outs[i].name);
    if (fl_write_file(path, m, outs[i].render) != 0)
      return -1;
  }
  return 0;
}

static int audit_status(int rc, const json_t *matrix, const json_t *result) {
  if (rc == -EINTR)
    return 130;
  const char *rv = json_string_value(json_object_get(result, "verdict"));
  const char *mv = json_string_value(json_object_get(matrix, "verdict"));
  if (rv != NULL && strcmp(rv, "ERROR") == 0)
    return FL_EXIT_ENV;
  return mv != NULL && strcmp(mv, "GRACEFUL") == 0 ? FL_EXIT_OK
                                                   : FL_EXIT_FAILED;
}

int fl_cmd_audit(int argc, char **argv) {
  struct audit_cli cli = {.a = {.out_dir = "audit", .jobs = 1}};
  struct fl_audit_opts a = cli.a;
  int rc = parse(argc, argv, &cli);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  a = cli.a;
  fl_run_reap();
  if (cli.discover_only)
    return discover_only(&a);
  json_t *matrix = NULL, *result = NULL;
  char err[FL_ERRLEN];
  rc = fl_audit_run(&a, &matrix, &result, err, sizeof(err));
  if (matrix == NULL) {
    fl_say("%s", err);
    json_decref(result);
    return rc == FL_EBADSCENARIO || rc == -ENOENT ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  char run_dir[PATH_MAX];
  snprintf(run_dir, sizeof(run_dir), "%s/run", a.out_dir);
  int written = fl_write_outputs(run_dir, result) == 0 &&
                write_matrix(a.out_dir, matrix) == 0;
  const char *nc = getenv("NO_COLOR");
  fl_audit_summary(matrix, stdout,
                   isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0'));
  if (!a.quiet)
    fprintf(stderr,
            "faultline: wrote %s/matrix.html, matrix.md, "
            "matrix.json and scenarios/\n",
            a.out_dir);
  int status = written ? audit_status(rc, matrix, result) : FL_EXIT_ENV;
  json_decref(matrix);
  json_decref(result);
  return status;
}
