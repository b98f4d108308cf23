/*
 * The audit matrix as one self-contained HTML page: a heat map (green
 * graceful, red findings, grey inconclusive), each cell a link to its
 * case's timeline in run/report.html, with the evidence as its title.
 */
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"

static const char style[] =
    "body{font:14px system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "td a{color:inherit;text-decoration:none;display:block}"
    ".good{background:#c8efc8}.bad{background:#f5b3b3;font-weight:bold}"
    ".none{background:#e4e4e4}.na{background:#fff;color:#999}"
    "th.row{white-space:nowrap}";

static const char *tone(const char *cell) {
  static const char *const good[] = {"graceful 503", "fallback 2xx",
                                     "unaffected", "ok"};
  if (strcmp(cell, "-") == 0)
    return "na";
  if (strcmp(cell, "inconclusive") == 0)
    return "none";
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    if (strcmp(cell, good[i]) == 0)
      return "good";
  return "bad";
}

static void cell(const json_t *c, const char *ep, FILE *o) {
  const json_t *cl = json_object_get(json_object_get(c, "cells"), ep);
  const char *name = cl ? fl_rep_str(cl, "cell", "-") : "-";
  fprintf(o, "<td class=\"%s\"><a href=\"", tone(name));
  fl_rep_xml(o, fl_rep_str(c, "timeline", "#"), 1);
  fputs("\" title=\"", o);
  fl_rep_xml(o, cl ? fl_rep_str(cl, "detail", name) : "not part of the case",
             1);
  fputs("\">", o);
  fl_rep_xml(o, name, 0);
  fputs("</a></td>", o);
}

int fl_audit_html(const json_t *m, FILE *o) {
  const json_t *eps = json_object_get(m, "endpoints");
  fprintf(o,
          "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
          "charset=\"utf-8\"><title>faultline audit</title><style>%s"
          "</style></head><body>\n<h1>Failure-propagation matrix: ",
          style);
  fl_rep_xml(o, fl_rep_str(m, "service", "?"), 0);
  fputs("</h1>\n<p>", o);
  fl_rep_xml(o, fl_rep_str(m, "verdict", "?"), 0);
  fprintf(o,
          ": %d findings, %d inconclusive cells. A cell opens its case's "
          "timeline; hover for the evidence.</p>\n<table>\n<tr><th>"
          "dependency</th><th>fault</th>",
          (int)fl_rep_num(json_object_get(m, "counts"), "findings", 0),
          (int)fl_rep_num(json_object_get(m, "counts"), "inconclusive", 0));
  size_t i, j;
  json_t *c, *ep;
  json_array_foreach(eps, j, ep) {
    fputs("<th>", o);
    fl_rep_xml(o, json_string_value(ep), 0);
    fputs("</th>", o);
  }
  fputs("</tr>\n", o);
  json_array_foreach(json_object_get(m, "cases"), i, c) {
    fputs("<tr><th class=\"row\">", o);
    fl_rep_xml(o, fl_rep_str(c, "row", "?"), 0);
    fputs("</th><th class=\"row\" title=\"", o);
    fl_rep_xml(o, fl_rep_str(c, "what", ""), 1);
    fputs("\">", o);
    fl_rep_xml(o, fl_rep_str(c, "fault", "?"), 0);
    fputs("</th>", o);
    json_array_foreach(eps, j, ep) cell(c, json_string_value(ep), o);
    fputs("</tr>\n", o);
  }
  fputs("</table>\n<p>Each case is a scenario file under scenarios/; "
        "<code>faultline run --service SERVICE scenarios/*.yaml</code> "
        "judges them again.</p>\n</body></html>\n",
        o);
  return ferror(o) ? -EIO : 0;
}
