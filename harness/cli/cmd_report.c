/*
 * faultline report: renders the reports of a finished run again from its
 * result.json (docs/result.md), e.g. after the run, on another machine,
 * or with a newer faultline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"
#include "report.h"

static const char usage[] =
    "usage: faultline report RESULT.json [--html FILE] [--md FILE]\n"
    "                        [--junit FILE]\n"
    "\n"
    "Renders the reports of a finished run from its result.json (what\n"
    "'faultline run' wrote into its output folder).\n"
    "\n"
    "  --html FILE   one self-contained HTML page: suite overview, charts of\n"
    "                traffic, latency, fds and memory with the fault windows,\n"
    "                expectations, injected faults, the target's log tail\n"
    "  --md FILE     a Markdown summary for a CI job summary or a pull\n"
    "                request comment (e.g. --md \"$GITHUB_STEP_SUMMARY\")\n"
    "  --junit FILE  JUnit XML for CI test views; INCONCLUSIVE and ERROR\n"
    "                scenarios are errors there, never skipped\n"
    "\n"
    "FILE '-' is standard output (for one of them at most). Each FILE is\n"
    "written whole or not at all. With none of these options the summary\n"
    "table is printed on standard output, in colour on a terminal unless\n"
    "NO_COLOR is set.\n"
    "\n"
    "Exit status: 0 when the reports were written, whatever the run's\n"
    "verdict; 2 bad usage, or RESULT.json unreadable or not a faultline\n"
    "result; 3 a report could not be written.\n"
    "\n"
    "usage: faultline report merge RESULT.json... [--out DIR]\n"
    "\n"
    "Joins the results of a suite split with 'faultline run --shard I/N'\n"
    "into one: DIR/result.json, report.html, report.md and junit.xml\n"
    "(default DIR: out). The scenarios keep their order, shard by shard;\n"
    "counts and verdict are computed again; a scenario in two results is\n"
    "an error. Exits like 'faultline run': 0 when every scenario passed, 1\n"
    "when one failed or was inconclusive, 3 for an ERROR or a file that\n"
    "could not be written, 2 for bad usage or input.\n";

enum { HTML, MD, JUNIT, NFORMATS };

static const struct {
  const char *flag;
  int (*render)(const json_t *result, FILE *out);
} formats[NFORMATS] = {
    [HTML] = {"--html", fl_report_html},
    [MD] = {"--md", fl_report_markdown},
    [JUNIT] = {"--junit", fl_report_junit},
};

/* Renders into path through path.tmp and a rename, so a reader never sees
 * half a report and a failed write leaves the previous one in place. */
static int write_report(int fmt, const json_t *result, const char *path) {
  if (strcmp(path, "-") == 0) {
    int rc = formats[fmt].render(result, stdout);
    if (rc != 0)
      fl_say("report: cannot write %s to standard output: %s",
             formats[fmt].flag + 2, fl_strerror(rc));
    return rc;
  }
  size_t len = strlen(path) + sizeof(".tmp");
  char *tmp = malloc(len);
  if (tmp == NULL) {
    fl_say("report: cannot write %s: %s", path, fl_strerror(-ENOMEM));
    return -ENOMEM;
  }
  snprintf(tmp, len, "%s.tmp", path);
  int rc = 0;
  FILE *f = fopen(tmp, "w");
  if (f == NULL) {
    rc = -errno;
  } else {
    rc = formats[fmt].render(result, f);
    if (fclose(f) != 0 && rc == 0)
      rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
      rc = -errno;
    if (rc != 0)
      unlink(tmp);
  }
  if (rc != 0)
    fl_say("report: cannot write %s: %s", path, fl_strerror(rc));
  free(tmp);
  return rc;
}

/* Parses the command line into result and outputs[]; 0, -1 after --help,
 * or an exit status. */
static int parse(int argc, char **argv, const char **result,
                 const char *outputs[NFORMATS]) {
  static const struct option longs[] = {
      {"html", required_argument, NULL, HTML},
      {"md", required_argument, NULL, MD},
      {"junit", required_argument, NULL, JUNIT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  opterr = 0;
  optind = 1;
  int c, to_stdout = 0;
  while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
    if (c == 'h') {
      fputs(usage, stdout);
      return -1;
    } else if (c == ':') {
      fl_say("report: %s needs a file name (see faultline report --help)",
             argv[optind - 1]);
      return FL_EXIT_USAGE;
    } else if (c == '?') {
      fl_say("report: unknown option '%s' (allowed: --html, --md, --junit, "
             "--help)",
             argv[optind - 1]);
      return FL_EXIT_USAGE;
    } else if (outputs[c] != NULL) {
      fl_say("report: %s given twice", formats[c].flag);
      return FL_EXIT_USAGE;
    } else if (optarg[0] == '\0') {
      fl_say("report: %s needs a file name, not an empty string",
             formats[c].flag);
      return FL_EXIT_USAGE;
    } else if (strcmp(optarg, "-") == 0 && to_stdout++) {
      fl_say("report: only one report can go to standard output ('-')");
      return FL_EXIT_USAGE;
    }
    outputs[c] = optarg;
  }
  if (optind >= argc) {
    fl_say("report: no result file given (usage: faultline report "
           "RESULT.json [--html FILE] [--md FILE] [--junit FILE])");
    return FL_EXIT_USAGE;
  }
  if (optind + 1 < argc) {
    fl_say("report: one result file at a time (got '%s' and '%s')",
           argv[optind], argv[optind + 1]);
    return FL_EXIT_USAGE;
  }
  *result = argv[optind];
  return 0;
}

/* The run's exit status for a merged suite verdict. */
static int verdict_status(const json_t *result) {
  const char *v = json_string_value(json_object_get(result, "verdict"));
  if (v != NULL && strcmp(v, "PASS") == 0)
    return FL_EXIT_OK;
  return v != NULL && strcmp(v, "ERROR") == 0 ? FL_EXIT_ENV : FL_EXIT_FAILED;
}

/* The result files and --out DIR of `report merge`; 0, -1 after --help,
 * or an exit status. */
static int parse_merge(int argc, char **argv, const char **out_dir,
                       const char **files, int *nfiles) {
  *nfiles = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      return -1;
    } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      *out_dir = argv[++i];
    } else if (argv[i][0] == '-') {
      fl_say("report merge: unknown option '%s' (allowed: --out DIR, --help)",
             argv[i]);
      return FL_EXIT_USAGE;
    } else {
      files[(*nfiles)++] = argv[i];
    }
  }
  if (*nfiles == 0) {
    fl_say("report merge: no result given (usage: faultline report merge "
           "RESULT.json... [--out DIR])");
    return FL_EXIT_USAGE;
  }
  return 0;
}

static int cmd_merge(int argc, char **argv) {
  const char *out_dir = "out";
  const char **files = calloc((size_t)argc, sizeof(*files));
  json_t **docs = calloc((size_t)argc, sizeof(*docs));
  json_t *merged = NULL;
  char err[768];
  int n = 0, loaded = 0;
  int status = files && docs ? parse_merge(argc, argv, &out_dir, files, &n)
                             : FL_EXIT_ENV;
  for (; status == 0 && loaded < n; loaded++)
    if (fl_report_load(files[loaded], &docs[loaded], err, sizeof(err)) != 0) {
      fl_say("report merge: %s", err);
      status = FL_EXIT_USAGE;
    }
  if (status == 0 &&
      fl_report_merge(docs, files, (size_t)n, &merged, err, sizeof(err)) != 0) {
    fl_say("report merge: %s", err);
    status = FL_EXIT_USAGE;
  }
  if (status == 0)
    status = fl_write_outputs(out_dir, merged) != 0 ? FL_EXIT_ENV
                                                    : verdict_status(merged);
  json_decref(merged);
  for (int i = 0; docs != NULL && i < n; i++)
    json_decref(docs[i]);
  free(docs);
  free(files);
  return status < 0 ? FL_EXIT_OK : status;
}

int fl_cmd_report(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "merge") == 0)
    return cmd_merge(argc, argv);
  const char *path = NULL, *outputs[NFORMATS] = {NULL};
  int rc = parse(argc, argv, &path, outputs);
  if (rc != 0)
    return rc < 0 ? FL_EXIT_OK : rc;
  json_t *result;
  char err[768];
  if (fl_report_load(path, &result, err, sizeof(err)) != 0) {
    fl_say("report: %s", err);
    return FL_EXIT_USAGE;
  }
  int status = FL_EXIT_OK, any = 0;
  for (int f = 0; f < NFORMATS; f++) {
    if (outputs[f] == NULL)
      continue;
    any = 1;
    if (write_report(f, result, outputs[f]) != 0)
      status = FL_EXIT_ENV;
  }
  if (!any) {
    const char *no_color = getenv("NO_COLOR");
    int color = isatty(STDOUT_FILENO) && (no_color == NULL || !*no_color);
    if (fl_report_summary(result, stdout, color) != 0) {
      fl_say("report: cannot write the summary to standard output");
      status = FL_EXIT_ENV;
    }
  }
  json_decref(result);
  return status;
}
