/*
 * The end-of-run table on a terminal: one line per scenario, then the
 * failed expectations with expected against observed. Verdicts are words,
 * so the table says the same in colour and without it.
 */
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"

static const char *const colors[FL_REP_NVERDICTS] = {
    [FL_REP_PASS] = "\033[32m",
    [FL_REP_INCONCLUSIVE] = "\033[33m",
    [FL_REP_FAIL] = "\033[1;31m",
    [FL_REP_ERROR] = "\033[1;35m",
};
#define BOLD "\033[1m"
#define RESET "\033[0m"

/* s (escaped for the terminal), then spaces up to `width` columns. */
static void cell(FILE *out, const char *s, size_t width) {
  fl_rep_plain(out, s);
  for (size_t w = fl_rep_width(s); w < width; w++)
    fputc(' ', out);
}

static void verdict_cell(FILE *out, enum fl_rep_verdict v, size_t width,
                         int color) {
  if (color)
    fputs(colors[v], out);
  fputs(fl_rep_verdict_name(v), out);
  if (color)
    fputs(RESET, out);
  for (size_t w = strlen(fl_rep_verdict_name(v)); w < width; w++)
    fputc(' ', out);
}

static const char *service_of(const json_t *scn) {
  return fl_rep_str(json_object_get(scn, "service"), "name", "-");
}

/* "2 of 9" into buf. */
static void failed_text(char *buf, size_t size, const json_t *scn) {
  int total;
  int failed = fl_rep_failed(scn, &total), unjudged = fl_rep_unjudged(scn);
  if (unjudged)
    snprintf(buf, size, "%d of %d, %d not judged", failed, total, unjudged);
  else
    snprintf(buf, size, "%d of %d", failed, total);
}

static void header(FILE *out, const json_t *r, int color) {
  int counts[FL_REP_NVERDICTS] = {0};
  json_t *scns = json_object_get(r, "scenarios");
  size_t i;
  json_t *s;
  json_array_foreach(scns, i, s) counts[fl_rep_verdict_of(s)]++;
  char dur[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(r, "duration", -1));
  verdict_cell(out, fl_rep_verdict_of(r), 0, color);
  fprintf(out,
          "  %zu scenario%s in %s: %d passed, %d failed, %d "
          "inconclusive, %d error%s\n",
          json_array_size(scns), json_array_size(scns) == 1 ? "" : "s", dur,
          counts[FL_REP_PASS], counts[FL_REP_FAIL], counts[FL_REP_INCONCLUSIVE],
          counts[FL_REP_ERROR], counts[FL_REP_ERROR] == 1 ? "" : "s");
}

static void table(FILE *out, const json_t *scns, int color) {
  static const char *const titles[] = {"SCENARIO", "SERVICE", "VERDICT",
                                       "DURATION", "FAILED"};
  size_t w[5];
  for (int c = 0; c < 5; c++)
    w[c] = strlen(titles[c]);
  w[2] = strlen("INCONCLUSIVE");
  size_t i;
  json_t *s;
  char buf[64];
  json_array_foreach(scns, i, s) {
    size_t n = fl_rep_width(fl_rep_str(s, "name", ""));
    w[0] = n > w[0] ? n : w[0];
    n = fl_rep_width(service_of(s));
    w[1] = n > w[1] ? n : w[1];
    failed_text(buf, sizeof(buf), s);
    w[4] = strlen(buf) > w[4] ? strlen(buf) : w[4];
    fl_rep_duration(buf, sizeof(buf), fl_rep_num(s, "duration", -1));
    w[3] = strlen(buf) > w[3] ? strlen(buf) : w[3];
  }
  fputs(color ? "  " BOLD : "  ", out);
  for (int c = 0; c < 5; c++) {
    cell(out, titles[c], w[c] + 2);
  }
  fputs(color ? "REASON" RESET "\n" : "REASON\n", out);
  json_array_foreach(scns, i, s) {
    enum fl_rep_verdict v = fl_rep_verdict_of(s);
    fputs("  ", out);
    cell(out, fl_rep_str(s, "name", ""), w[0] + 2);
    cell(out, service_of(s), w[1] + 2);
    verdict_cell(out, v, w[2] + 2, color);
    fl_rep_duration(buf, sizeof(buf), fl_rep_num(s, "duration", -1));
    cell(out, buf, w[3] + 2);
    failed_text(buf, sizeof(buf), s);
    cell(out, buf, w[4] + 2);
    if (v != FL_REP_PASS)
      fl_rep_plain(out, fl_rep_str(s, "reason", ""));
    fputc('\n', out);
  }
}

static void failures(FILE *out, const json_t *scns, int color) {
  int first = 1;
  size_t i, j;
  json_t *s, *e;
  json_array_foreach(scns, i, s) {
    json_array_foreach(json_object_get(s, "expectations"), j, e) {
      if (fl_rep_verdict_of(e) == FL_REP_PASS || fl_rep_not_judged(e))
        continue;
      if (first)
        fputs(color ? "\n" BOLD "Failed expectations" RESET "\n"
                    : "\nFailed expectations\n",
              out);
      first = 0;
      fputs("  ", out);
      verdict_cell(out, FL_REP_FAIL, 0, color);
      fputs(" ", out);
      fl_rep_plain(out, fl_rep_str(s, "name", ""));
      fputs(": ", out);
      fl_rep_plain(out, fl_rep_str(e, "phase", "always"));
      if (fl_rep_str(e, "endpoint", NULL) != NULL) {
        fputs(" / ", out);
        fl_rep_plain(out, fl_rep_str(e, "endpoint", ""));
      }
      fputs(": ", out);
      fl_rep_plain(out, fl_rep_str(e, "text", ""));
      fputs("\n      expected: ", out);
      fl_rep_plain(out, fl_rep_str(e, "expected", "-"));
      fputs("\n      observed: ", out);
      fl_rep_plain(out, fl_rep_str(e, "observed", "-"));
      fputc('\n', out);
    }
  }
}

int fl_report_summary(const json_t *r, FILE *out, int color) {
  json_t *scns = json_object_get(r, "scenarios");
  header(out, r, color);
  fputc('\n', out);
  table(out, scns, color);
  failures(out, scns, color);
  fflush(out);
  return ferror(out) ? -EIO : 0;
}
