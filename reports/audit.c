/*
 * The audit matrix as Markdown and for a terminal. Rows are the cases
 * (dependency x fault), columns the endpoints, a cell what was seen.
 */
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"

/* Findings read the same in both: a cell that is not graceful. */
static int is_finding(const char *cell) {
  static const char *const ok[] = {"graceful 503", "fallback 2xx", "unaffected",
                                   "ok",           "inconclusive", "-"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (strcmp(cell, ok[i]) == 0)
      return 0;
  return 1;
}

static const char *cell_of(const json_t *c, const char *ep) {
  const json_t *cell = json_object_get(json_object_get(c, "cells"), ep);
  return cell ? fl_rep_str(cell, "cell", "-") : "-";
}

static void md_header(const json_t *m, FILE *out) {
  char dur[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(m, "duration", 0));
  fputs("# Failure-propagation matrix: ", out);
  fl_rep_md(out, fl_rep_str(m, "service", "?"));
  fprintf(out,
          "\n\n**%s**: %d graceful, %d findings, %d inconclusive "
          "cells; %zu cases in %s (--jobs %d).\n\n",
          fl_rep_str(m, "verdict", "?"),
          (int)fl_rep_num(json_object_get(m, "counts"), "graceful", 0),
          (int)fl_rep_num(json_object_get(m, "counts"), "findings", 0),
          (int)fl_rep_num(json_object_get(m, "counts"), "inconclusive", 0),
          json_array_size(json_object_get(m, "cases")), dur,
          (int)fl_rep_num(m, "jobs", 1));
}

static void md_table(const json_t *m, FILE *out) {
  const json_t *eps = json_object_get(m, "endpoints");
  size_t i, j;
  json_t *c, *ep;
  fputs("| dependency | fault |", out);
  json_array_foreach(eps, j, ep) {
    fputc(' ', out);
    fl_rep_md(out, json_string_value(ep));
    fputs(" |", out);
  }
  fputs("\n|---|---|", out);
  for (j = 0; j < json_array_size(eps); j++)
    fputs("---|", out);
  fputc('\n', out);
  json_array_foreach(json_object_get(m, "cases"), i, c) {
    fputs("| ", out);
    fl_rep_md(out, fl_rep_str(c, "row", "?"));
    fputs(" | ", out);
    fl_rep_md(out, fl_rep_str(c, "fault", "?"));
    fputs(" |", out);
    json_array_foreach(eps, j, ep) {
      const char *cell = cell_of(c, json_string_value(ep));
      fputs(is_finding(cell) ? " **" : " ", out);
      fl_rep_md(out, cell);
      fputs(is_finding(cell) ? "** |" : " |", out);
    }
    fputc('\n', out);
  }
}

/* Each finding with its evidence, and the scenario that reproduces it. */
static void md_findings(const json_t *m, FILE *out) {
  size_t i;
  json_t *c;
  int any = 0;
  json_array_foreach(json_object_get(m, "cases"), i, c) {
    const char *k;
    json_t *cell;
    json_object_foreach(json_object_get(c, "cells"), k, cell) {
      const char *name = fl_rep_str(cell, "cell", "-");
      if (!is_finding(name) && strcmp(name, "inconclusive") != 0)
        continue;
      if (!any++)
        fputs("\n## Findings\n\n", out);
      fputs("- **", out);
      fl_rep_md(out, name);
      fputs("** at `", out);
      fl_rep_md(out, k);
      fputs("` in ", out);
      fl_rep_md(out, fl_rep_str(c, "name", "?"));
      fputs(" (", out);
      fl_rep_md(out, fl_rep_str(c, "scenario", "?"));
      fputs("): ", out);
      fl_rep_md(out, fl_rep_str(cell, "detail", ""));
      fputc('\n', out);
    }
  }
}

int fl_audit_markdown(const json_t *m, FILE *out) {
  md_header(m, out);
  md_table(m, out);
  md_findings(m, out);
  return ferror(out) ? -EIO : 0;
}

/* One line per case: its row and fault, then its findings or "graceful". */
int fl_audit_summary(const json_t *m, FILE *out, int color) {
  size_t i;
  json_t *c;
  fputs("faultline audit: ", out);
  fl_rep_plain(out, fl_rep_str(m, "service", "?"));
  fputc('\n', out);
  json_array_foreach(json_object_get(m, "cases"), i, c) {
    char label[96];
    snprintf(label, sizeof(label), "%s %s", fl_rep_str(c, "row", "?"),
             fl_rep_str(c, "fault", "?"));
    fputs("  ", out);
    fl_rep_plain(out, label);
    for (size_t w = fl_rep_width(label); w < 30; w++)
      fputc(' ', out);
    const char *k;
    json_t *cell;
    int shown = 0;
    json_object_foreach(json_object_get(c, "cells"), k, cell) {
      const char *name = fl_rep_str(cell, "cell", "-");
      if (!is_finding(name) && strcmp(name, "inconclusive") != 0)
        continue;
      fputs(shown++ ? ", " : "", out);
      fputs(color ? "\033[31m" : "", out);
      fl_rep_plain(out, name);
      fputs(color ? "\033[0m" : "", out);
      fputs(" (", out);
      fl_rep_plain(out, k);
      fputc(')', out);
    }
    if (!shown)
      fprintf(out, "%sgraceful%s", color ? "\033[32m" : "",
              color ? "\033[0m" : "");
    fputc('\n', out);
  }
  char dur[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(m, "duration", 0));
  fprintf(out, "%s: %d findings, %d inconclusive cells, %zu cases in %s\n",
          fl_rep_str(m, "verdict", "?"),
          (int)fl_rep_num(json_object_get(m, "counts"), "findings", 0),
          (int)fl_rep_num(json_object_get(m, "counts"), "inconclusive", 0),
          json_array_size(json_object_get(m, "cases")), dur);
  return ferror(out) ? -EIO : 0;
}
