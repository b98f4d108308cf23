/*
 * What `faultline run` and `faultline report merge` write into their
 * output folder: result.json and every report rendered from it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "report.h"

int fl_write_file(const char *path, json_t *result,
                  int (*render)(const json_t *, FILE *)) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fl_say("cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = render(result, f);
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  if (rc != 0) {
    fl_say("cannot write %s: %s", path, strerror(-rc));
    return -1;
  }
  return 0;
}

static int write_one(const char *out_dir, const char *name, json_t *result,
                     int (*render)(const json_t *, FILE *)) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", out_dir, name);
  return fl_write_file(path, result, render);
}

int fl_dump_json(const json_t *result, FILE *f) {
  return json_dumpf(result, f, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) == 0
             ? 0
             : -EIO;
}

/* result.json and the reports rendered from it. */
int fl_write_outputs(const char *out_dir, json_t *result) {
  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    fl_say("cannot create %s: %s", out_dir, strerror(errno));
    return -1;
  }
  int bad = write_one(out_dir, "result.json", result, fl_dump_json);
  bad |= write_one(out_dir, "report.html", result, fl_report_html);
  bad |= write_one(out_dir, "report.md", result, fl_report_markdown);
  bad |= write_one(out_dir, "junit.xml", result, fl_report_junit);
  fprintf(stderr,
          "faultline: wrote %s/result.json, report.html, report.md, "
          "junit.xml\n",
          out_dir);
  return bad ? -1 : 0;
}
