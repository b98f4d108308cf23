/*
 * faultline run: scenarios to verdicts, written to OUT/result.json (and
 * the reports), exit 0 only when every scenario passed.
 * faultline validate: the same checks of the files, running nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"
#include "report.h"
#include "run/run.h"
#include "scenario/scenario.h"

/* --json and --junit are checked before the run, not after minutes of it:
 * an existing path must be a writable file, a new one's folder must exist
 * and be writable. */
static int check_writable(const char *flag, const char *path) {
  if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
    fl_say("bad %s '%s' (allowed: a file path)", flag, path);
    return -1;
  }
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == dir)
    slash[1] = '\0';
  else
    *slash = '\0';
  struct stat st;
  const char *why = NULL;
  if (stat(path, &st) == 0) {
    if (!S_ISREG(st.st_mode))
      why = S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
    else if (access(path, W_OK) != 0)
      why = strerror(errno);
  } else if (errno != ENOENT) {
    why = strerror(errno);
  } else if (stat(dir, &st) != 0) {
    why = strerror(errno);
  } else if (!S_ISDIR(st.st_mode)) {
    why = strerror(ENOTDIR);
  } else if (access(dir, W_OK) != 0) {
    why = strerror(errno);
  }
  if (why != NULL) {
    fl_say("cannot write %s %s: %s", flag, path, why);
    return -1;
  }
  return 0;
}

/* The copies asked for with --json and --junit. */
static int write_extra(const char *json, const char *junit, json_t *result) {
  int bad = 0;
  if (json != NULL && (bad |= fl_write_file(json, result, fl_dump_json)) == 0)
    fprintf(stderr, "faultline: wrote %s\n", json);
  if (junit != NULL) {
    int rc = fl_write_file(junit, result, fl_report_junit);
    if (rc == 0)
      fprintf(stderr, "faultline: wrote %s\n", junit);
    bad |= rc;
  }
  return bad ? -1 : 0;
}

/* What `faultline run` was asked for. */
struct run_args {
  struct fl_run_opts o;
  const char *json, *junit; /* extra copies, or NULL */
  char **files;
  int nfiles;
  int shard, shards; /* --shard I/N; 0/0 for all */
};

/* --shard I/N: 1 <= I <= N <= 1000. */
static int take_shard(const char *val, struct run_args *a) {
  char *end;
  long i = strtol(val, &end, 10), n = 0;
  if (end != val && *end == '/')
    n = strtol(end + 1, &end, 10);
  if (*end != '\0' || i < 1 || n < 1 || i > n || n > 1000) {
    fl_say("bad --shard '%s' (allowed: I/N with 1 <= I <= N, e.g. 2/4)", val);
    return FL_EXIT_USAGE;
  }
  a->shard = (int)i;
  a->shards = (int)n;
  return 0;
}

static int take_opt(int c, const char *val, void *arg) {
  struct run_args *a = arg;
  char *end;
  switch (c) {
  case 'o':
    a->o.out_dir = val;
    break;
  case 's':
    a->o.service_file = val;
    break;
  case 'j':
    a->o.jobs = (int)strtol(val, &end, 10);
    if (*end != '\0' || a->o.jobs < 1 || a->o.jobs > 64) {
      fl_say("bad --jobs '%s' (allowed: 1-64)", val);
      return FL_EXIT_USAGE;
    }
    break;
  case 'S':
    a->o.have_seed = 1;
    return fl_opt_seed(val, &a->o.seed);
  case 'q':
    a->o.quiet = 1;
    break;
  case 'J':
    a->json = val;
    return check_writable("--json", val) != 0 ? FL_EXIT_USAGE : 0;
  case 'U':
    a->junit = val;
    return check_writable("--junit", val) != 0 ? FL_EXIT_USAGE : 0;
  case 'H':
    return take_shard(val, a);
  case 'R':
    a->o.reuse_deps = 1;
    break;
  }
  return 0;
}

/* Narrows a->files to this shard's share (in their given order). */
static int keep_shard(struct run_args *a) {
  char err[FL_ERRLEN];
  int *keep = calloc((size_t)a->nfiles, sizeof(*keep));
  if (keep == NULL) {
    fl_say("out of memory");
    return FL_EXIT_ENV;
  }
  int rc = fl_shard_select(a->files, a->nfiles, a->shard, a->shards, keep, err,
                           sizeof(err));
  if (rc != 0) {
    free(keep);
    fl_say("%s", err);
    return FL_EXIT_USAGE;
  }
  int n = 0;
  for (int i = 0; i < a->nfiles; i++)
    if (keep[i])
      a->files[n++] = a->files[i];
  free(keep);
  if (!a->o.quiet)
    fprintf(stderr, "faultline: shard %d/%d: %d of %d scenario files\n",
            a->shard, a->shards, n, a->nfiles);
  a->nfiles = n;
  return 0;
}

/* Returns 0, -1 after --help, or an exit status after saying why. */
static int parse_run_args(int argc, char **argv, struct run_args *a) {
  static const struct option longs[] = {
      {"out", required_argument, NULL, 'o'},
      {"service", required_argument, NULL, 's'},
      {"jobs", required_argument, NULL, 'j'},
      {"seed", required_argument, NULL, 'S'},
      {"quiet", no_argument, NULL, 'q'},
      {"json", required_argument, NULL, 'J'},
      {"junit", required_argument, NULL, 'U'},
      {"shard", required_argument, NULL, 'H'},
      {"reuse-deps", no_argument, NULL, 'R'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static const struct fl_opts spec = {
      "run", ":o:s:j:qh", longs, take_opt,
      "no scenario given (usage: faultline run [OPTIONS] SCENARIO.yaml...)"};
  int rc = fl_opt_parse(&spec, argc, argv, a);
  a->files = argv + optind;
  a->nfiles = argc - optind;
  return rc != 0 || a->shards == 0 ? rc : keep_shard(a);
}

/* The exit status: 130 when interrupted, else from the suite's verdict
 * (and FL_EXIT_ENV when its files could not be written). */
static int run_status(int rc, const json_t *result, int written) {
  const char *v = json_string_value(json_object_get(result, "verdict"));
  if (rc == -EINTR)
    return 130;
  if (strcmp(v, "ERROR") == 0 || !written)
    return FL_EXIT_ENV;
  return strcmp(v, "PASS") == 0 ? FL_EXIT_OK : FL_EXIT_FAILED;
}

int fl_cmd_run(int argc, char **argv) {
  struct run_args a = {.o = {.out_dir = "out", .jobs = 1}};
  int rc = parse_run_args(argc, argv, &a);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  fl_run_reap(); /* what a killed run left, before we add ours */
  json_t *result = NULL;
  char err[FL_ERRLEN];
  rc = fl_run_suite(a.files, a.nfiles, &a.o, &result, err, sizeof(err));
  if (rc != 0 && rc != -EINTR) {
    fl_say("%s", err);
    return rc == FL_EBADSCENARIO || rc == -ENOENT ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  int written = fl_write_outputs(a.o.out_dir, result) == 0 &&
                write_extra(a.json, a.junit, result) == 0;
  const char *nc = getenv("NO_COLOR");
  fl_report_summary(result, stdout,
                    isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0'));
  int status = run_status(rc, result, written);
  json_decref(result);
  return status;
}

static int say_error(const char *err) {
  fprintf(stderr, "%s\n", err);
  return 1;
}

/* Checks one file, a service or a scenario (against `service`, else its
 * own); 0 when it is good, else 1 after saying why. */
static int validate_one(const char *file, const char *service) {
  char err[FL_ERRLEN];
  struct fl_service *sv = NULL;
  if (fl_yaml_kind(file) == 1) {
    if (fl_service_load(file, &sv, err, sizeof(err)) != 0)
      return say_error(err);
    printf("%s: ok (service %s)\n", file, sv->name);
    fl_service_free(sv);
    return 0;
  }
  struct fl_scenario *sc;
  if (fl_scenario_load(file, &sc, err, sizeof(err)) != 0)
    return say_error(err);
  const char *svc = service ? service : sc->service_file;
  int bad = 0;
  if (svc != NULL && fl_service_load(svc, &sv, err, sizeof(err)) != 0)
    bad = say_error(err);
  else if (sv != NULL && fl_scenario_check(sc, sv, err, sizeof(err)))
    bad = say_error(err);
  else
    printf("%s: ok (scenario %s%s%s)\n", file, sc->name, sv ? " on " : "",
           sv ? sv->name : "");
  fl_service_free(sv);
  fl_scenario_free(sc);
  return bad;
}

int fl_cmd_validate(int argc, char **argv) {
  const char *service = NULL;
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--help") == 0) {
    fl_usage("validate");
    return FL_EXIT_OK;
  }
  if (argc > 2 && strcmp(argv[1], "--service") == 0) {
    service = argv[2];
    first = 3;
  }
  if (first >= argc) {
    fl_say("validate: no file given (usage: faultline validate [--service "
           "FILE] FILE...)");
    return FL_EXIT_USAGE;
  }
  int bad = 0;
  for (int i = first; i < argc; i++)
    bad += validate_one(argv[i], service);
  return bad ? FL_EXIT_USAGE : FL_EXIT_OK;
}
