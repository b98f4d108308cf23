/*
 * The HTML report: one self-contained page (styles inline, charts inline
 * SVG, no script, no external asset), readable offline, on a laptop and on
 * paper. A suite overview comes first; then one section per scenario with
 * its expectations, injected faults, traffic and latency charts per
 * endpoint, the target's fds and memory, and the tail of its log when the
 * scenario did not pass.
 *
 * The page is also well-formed XML (void elements self-closed, only
 * numeric character references), so its charts and tables can be checked
 * with any XML tool. Accessibility: landmarks and headings, tables with
 * captions and <th scope>, verdicts as words with a symbol (never colour
 * alone), charts with role="img", <title>, <desc> and their data in a
 * table beside them.
 */
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"
#include "svg.h"

static const char *const vclass[FL_REP_NVERDICTS] = {
    [FL_REP_PASS] = "pass",
    [FL_REP_INCONCLUSIVE] = "inconclusive",
    [FL_REP_FAIL] = "fail",
    [FL_REP_ERROR] = "error",
};
static const char *const vsymbol[FL_REP_NVERDICTS] = {
    [FL_REP_PASS] = "\xe2\x9c\x93", /* ✓ */
    [FL_REP_INCONCLUSIVE] = "?",
    [FL_REP_FAIL] = "\xe2\x9c\x97", /* ✗ */
    [FL_REP_ERROR] = "!",
};

static const char style[] =
    ":root{color-scheme:light}\n"
    "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,"
    "sans-serif;color:#1a1a1a;background:#fff;margin:0 auto;"
    "max-width:1120px;padding:1rem 1.5rem 3rem}\n"
    "h1{font-size:1.6rem;margin:.5rem 0}\n"
    "h2{font-size:1.3rem;margin:2.5rem 0 .5rem;padding-top:1rem;"
    "border-top:2px solid #1a1a1a}\n"
    "h3{font-size:1.1rem;margin:1.5rem 0 .4rem}\n"
    "h4{font-size:1rem;margin:1rem 0 .3rem}\n"
    "table{border-collapse:collapse;margin:.4rem 0 1rem;width:100%}\n"
    "caption{text-align:left;font-weight:600;padding:.2rem 0}\n"
    "th,td{border:1px solid #bdbdbd;padding:.3rem .5rem;text-align:left;"
    "vertical-align:top;overflow-wrap:break-word}\n"
    "td.wrap{overflow-wrap:anywhere;min-width:7em}\n"
    "thead th{background:#efefef}\n"
    ".num{text-align:right;font-variant-numeric:tabular-nums;"
    "white-space:nowrap}\n"
    "tr.failed{background:#fff1f0}\n"
    ".v{font-weight:700;white-space:nowrap;padding:0 .35rem;"
    "border:1px solid;border-radius:3px}\n"
    ".v-pass{color:#0b5d1e;background:#e6f4ea}\n"
    ".v-fail{color:#a50e0e;background:#fce8e6}\n"
    ".v-inconclusive{color:#6b4100;background:#fef3d6}\n"
    ".v-error{color:#6a1b9a;background:#f3e5f5}\n"
    ".v-skip{color:#3c4043;background:#f1f3f4}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;"
    "gap:.1rem 1rem;margin:.5rem 0}\n"
    "dl.meta dt{font-weight:600}dl.meta dd{margin:0}\n"
    ".charts{max-width:900px}\n"
    "figure{margin:0 0 .5rem}figcaption{font-size:.9rem;color:#3d3d3d}\n"
    "svg.chart{display:block;width:100%;height:auto}\n"
    "pre.log{background:#f5f5f5;border:1px solid #bdbdbd;padding:.5rem;"
    "overflow:auto;max-height:32rem;white-space:pre-wrap;"
    "overflow-wrap:anywhere;font-size:.85rem}\n"
    "details{margin:.3rem 0 1rem}summary{cursor:pointer;color:#0645ad}\n"
    "a{color:#0645ad}\n"
    "@media (max-width:720px){body{padding:.5rem;font-size:14px}"
    "th,td{padding:.2rem .3rem}}\n"
    ".note{color:#3d3d3d}\n"
    "@media print{\n"
    "body{max-width:none;padding:0;font-size:10pt}\n"
    "table{font-size:9pt}th,td{padding:.15rem .3rem}\n"
    "section.scenario{break-before:page}\n"
    "h2,h3,h4{break-after:avoid}\n"
    "figure,tr,pre.log{break-inside:avoid}\n"
    "pre.log{max-height:none;overflow:visible}\n"
    "details{display:none}\n"
    "a{color:inherit;text-decoration:none}\n"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
    "}\n";

static void text(FILE *o, const char *s) { fl_rep_xml(o, s, 0); }

/* <tag attrs>s</tag>, s escaped; attrs (ours, not escaped) may be NULL. */
static void cell(FILE *o, const char *tag, const char *attrs, const char *s) {
  fprintf(o, "<%s%s%s>", tag, attrs ? " " : "", attrs ? attrs : "");
  text(o, s);
  fprintf(o, "</%s>", tag);
}

static void num_cell(FILE *o, double v, const char *fmt) {
  fputs("<td class=\"num\">", o);
  fprintf(o, fmt, v);
  fputs("</td>", o);
}

static void verdict(FILE *o, enum fl_rep_verdict v) {
  fprintf(o,
          "<span class=\"v v-%s\"><span aria-hidden=\"true\">%s </span>%s"
          "</span>",
          vclass[v], vsymbol[v], fl_rep_verdict_name(v));
}

static void seconds(FILE *o, const json_t *obj, const char *key) {
  if (fl_rep_has_num(obj, key))
    fprintf(o, "%.1f s", fl_rep_num(obj, key, 0));
  else
    fputs("\xe2\x80\x94", o); /* — */
}

static void head(FILE *o, const json_t *r) {
  enum fl_rep_verdict v = fl_rep_verdict_of(r);
  size_t n = json_array_size(json_object_get(r, "scenarios"));
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
        "<meta charset=\"utf-8\"/>\n"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\"/>\n",
        o);
  fprintf(o,
          "<title>faultline report: %s (%zu scenario%s)</title>\n"
          "<style>\n%s</style>\n</head>\n<body>\n",
          fl_rep_verdict_name(v), n, n == 1 ? "" : "s", style);
  fputs("<header>\n<h1>faultline report: ", o);
  verdict(o, v);
  fputs("</h1>\n<p>", o);
  int counts[FL_REP_NVERDICTS] = {0};
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(r, "scenarios"), i, s)
      counts[fl_rep_verdict_of(s)]++;
  char dur[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(r, "duration", -1));
  fprintf(o,
          "%zu scenario%s in %s: %d passed, %d failed, %d inconclusive, "
          "%d error%s. Started ",
          n, n == 1 ? "" : "s", dur, counts[FL_REP_PASS], counts[FL_REP_FAIL],
          counts[FL_REP_INCONCLUSIVE], counts[FL_REP_ERROR],
          counts[FL_REP_ERROR] == 1 ? "" : "s");
  text(o, fl_rep_str(r, "started", "at an unknown time"));
  fputs(" by faultline ", o);
  text(o, fl_rep_str(r, "faultline", "?"));
  fputs(".</p>\n</header>\n<main>\n", o);
}

/* Up to 5 failed expectation texts of a scenario, as a list. */
static void failed_list(FILE *o, const json_t *s) {
  int total, failed = fl_rep_failed(s, &total), shown = 0;
  fprintf(o, "%d of %d", failed, total);
  if (failed == 0)
    return;
  fputs("<ul>", o);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(s, "expectations"), i, e) {
    if (fl_rep_verdict_of(e) == FL_REP_PASS || fl_rep_not_judged(e) ||
        shown++ == 5)
      continue;
    fputs("<li>", o);
    text(o, fl_rep_str(e, "phase", "always"));
    fputs(" / ", o);
    text(o, fl_rep_str(e, "endpoint", "\xe2\x80\x94"));
    fputs(": ", o);
    text(o, fl_rep_str(e, "text", ""));
    fputs("</li>", o);
  }
  if (failed > 5)
    fprintf(o, "<li>and %d more</li>", failed - 5);
  fputs("</ul>", o);
}

static void overview(FILE *o, const json_t *r) {
  fputs("<section aria-labelledby=\"overview\">\n"
        "<h2 id=\"overview\">Suite overview</h2>\n<table>\n"
        "<caption>Each scenario's verdict, duration and failed "
        "expectations</caption>\n<thead><tr><th scope=\"col\">Scenario</th>"
        "<th scope=\"col\">Service</th><th scope=\"col\">Verdict</th>"
        "<th scope=\"col\">Duration</th><th scope=\"col\">Failed "
        "expectations</th><th scope=\"col\">Reason</th></tr></thead>\n"
        "<tbody>\n",
        o);
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(r, "scenarios"), i, s) {
    enum fl_rep_verdict v = fl_rep_verdict_of(s);
    fprintf(o, "<tr%s><th scope=\"row\"><a href=\"#s%zu\">",
            v == FL_REP_PASS ? "" : " class=\"failed\"", i);
    text(o, fl_rep_str(s, "name", ""));
    fputs("</a></th>", o);
    cell(o, "td", NULL,
         fl_rep_str(json_object_get(s, "service"), "name", "\xe2\x80\x94"));
    fputs("<td>", o);
    verdict(o, v);
    fputs("</td><td class=\"num\">", o);
    char dur[32];
    fl_rep_duration(dur, sizeof(dur), fl_rep_num(s, "duration", -1));
    fprintf(o, "%s</td><td class=\"wrap\">", dur);
    failed_list(o, s);
    fputs("</td>", o);
    cell(o, "td", "class=\"wrap\"",
         v == FL_REP_PASS ? "" : fl_rep_str(s, "reason", ""));
    fputs("</tr>\n", o);
  }
  fputs("</tbody>\n</table>\n</section>\n", o);
}

static void meta_item(FILE *o, const char *term, const char *value) {
  if (value == NULL)
    return;
  fprintf(o, "<dt>%s</dt><dd>", term);
  text(o, value);
  fputs("</dd>\n", o);
}

static void meta(FILE *o, const json_t *s) {
  const json_t *svc = json_object_get(s, "service");
  fputs("<dl class=\"meta\">\n", o);
  meta_item(o, "Service", fl_rep_str(svc, "name", NULL));
  meta_item(o, "Service file", fl_rep_str(svc, "file", NULL));
  meta_item(o, "Scenario file", fl_rep_str(s, "file", NULL));
  meta_item(o, "Started", fl_rep_str(s, "started", NULL));
  char buf[96], dur[32], setup[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(s, "duration", -1));
  fl_rep_duration(setup, sizeof(setup), fl_rep_num(s, "setup", -1));
  snprintf(buf, sizeof(buf), "%s (setup %s)", dur, setup);
  meta_item(o, "Duration", buf);
  if (fl_rep_has_num(s, "seed")) {
    snprintf(buf, sizeof(buf), "%.0f", fl_rep_num(s, "seed", 0));
    meta_item(o, "Seed", buf);
  }
  json_t *phases = json_object_get(s, "phases");
  if (json_array_size(phases) > 0) {
    fputs("<dt>Phases</dt><dd>", o);
    size_t i;
    json_t *p;
    json_array_foreach(phases, i, p) {
      fputs(i > 0 ? ", " : "", o);
      text(o, fl_rep_str(p, "name", ""));
      fprintf(o, " %g\xe2\x80\x93%g s", fl_rep_num(p, "start", 0),
              fl_rep_num(p, "end", 0));
    }
    fputs("</dd>\n", o);
  }
  fputs("</dl>\n", o);
}

static void expectations(FILE *o, const json_t *s, size_t si) {
  json_t *exps = json_object_get(s, "expectations");
  fprintf(o, "<h3 id=\"s%zu-exp\">Expectations</h3>\n", si);
  if (json_array_size(exps) == 0) {
    fputs("<p class=\"note\">No expectation was evaluated.</p>\n", o);
    return;
  }
  int total, failed = fl_rep_failed(s, &total);
  fprintf(o,
          "<table class=\"expectations\">\n"
          "<caption>%d of %d expectations failed</caption>\n"
          "<thead><tr><th scope=\"col\">Phase</th><th scope=\"col\">"
          "Endpoint</th><th scope=\"col\">Expectation</th><th scope=\"col\">"
          "Expected</th><th scope=\"col\">Observed</th><th scope=\"col\">"
          "Verdict</th></tr></thead>\n<tbody>\n",
          failed, total);
  size_t i;
  json_t *e;
  json_array_foreach(exps, i, e) {
    enum fl_rep_verdict v = fl_rep_verdict_of(e);
    int skip = fl_rep_not_judged(e);
    fputs(v == FL_REP_PASS || skip ? "<tr>" : "<tr class=\"failed\">", o);
    cell(o, "td", NULL, fl_rep_str(e, "phase", "always"));
    cell(o, "td", NULL, fl_rep_str(e, "endpoint", "\xe2\x80\x94"));
    cell(o, "th", "scope=\"row\"", fl_rep_str(e, "text", ""));
    cell(o, "td", NULL, fl_rep_str(e, "expected", "\xe2\x80\x94"));
    cell(o, "td", NULL, fl_rep_str(e, "observed", "\xe2\x80\x94"));
    fputs("<td>", o);
    if (skip) /* nothing to judge it on: neither a pass nor a failure */
      fputs("<span class=\"v v-skip\"><span aria-hidden=\"true\">"
            "\xe2\x80\x93 </span>not judged</span>",
            o);
    else
      verdict(o, v);
    fputs("</td></tr>\n", o);
  }
  fputs("</tbody>\n</table>\n", o);
}

static void faults(FILE *o, const json_t *s) {
  json_t *fs = json_object_get(s, "faults");
  fputs("<h3>Injected faults</h3>\n", o);
  if (json_array_size(fs) == 0) {
    fputs("<p class=\"note\">No fault was switched on.</p>\n", o);
    return;
  }
  fputs("<table>\n<caption>Each fault's window and how often it matched "
        "and was delivered</caption>\n<thead><tr><th scope=\"col\">Fault"
        "</th><th scope=\"col\">Kind</th><th scope=\"col\">Spec</th>"
        "<th scope=\"col\">Dependency</th><th scope=\"col\">Phase</th>"
        "<th scope=\"col\">On</th><th scope=\"col\">Off</th>"
        "<th scope=\"col\">Matched</th><th scope=\"col\">Delivered</th>"
        "</tr></thead>\n<tbody>\n",
        o);
  size_t i;
  json_t *f;
  json_array_foreach(fs, i, f) {
    int never = fl_rep_num(f, "delivered", 0) <= 0;
    int optional = json_is_true(json_object_get(f, "optional"));
    fputs(never && !optional ? "<tr class=\"failed\">" : "<tr>", o);
    cell(o, "th", "scope=\"row\"", fl_rep_str(f, "name", ""));
    cell(o, "td", NULL, fl_rep_str(f, "kind", "\xe2\x80\x94"));
    cell(o, "td", "class=\"wrap\"", fl_rep_str(f, "spec", "\xe2\x80\x94"));
    cell(o, "td", "class=\"wrap\"",
         fl_rep_str(f, "dependency", "\xe2\x80\x94"));
    cell(o, "td", NULL, fl_rep_str(f, "phase", "\xe2\x80\x94"));
    fputs("<td class=\"num\">", o);
    seconds(o, f, "on");
    fputs("</td><td class=\"num\">", o);
    if (fl_rep_has_num(f, "off"))
      seconds(o, f, "off");
    else
      fputs("still on", o);
    fputs("</td>", o);
    num_cell(o, fl_rep_num(f, "matched", 0), "%.0f");
    fprintf(o, "<td class=\"num\">%.0f%s</td></tr>\n",
            fl_rep_num(f, "delivered", 0),
            !never ? ""
            : optional
                ? " (optional: never met)"
                : " <span class=\"v v-inconclusive\"><span "
                  "aria-hidden=\"true\">? </span>never delivered</span>");
  }
  fputs("</tbody>\n</table>\n", o);
}

/* The per-second numbers behind an endpoint's charts, folded away. */
static void data_table(FILE *o, const json_t *ep) {
  static const char *const keys[] = {"requests", "2xx", "3xx",
                                     "4xx",      "5xx", "error"};
  static const char *const lat[] = {"p50", "p95", "p99", "max"};
  fputs("<details><summary>Per-second data for ", o);
  text(o, fl_rep_str(ep, "name", ""));
  fputs("</summary>\n<table>\n<caption>Requests and latency (ms) per "
        "second</caption>\n<thead><tr><th scope=\"col\">t (s)</th>",
        o);
  for (size_t k = 0; k < 6; k++)
    fprintf(o, "<th scope=\"col\">%s</th>", keys[k]);
  for (size_t k = 0; k < 4; k++)
    fprintf(o, "<th scope=\"col\">%s</th>", lat[k]);
  fputs("</tr></thead>\n<tbody>\n", o);
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(ep, "series"), i, s) {
    fprintf(o, "<tr><th scope=\"row\" class=\"num\">%g</th>",
            fl_rep_num(s, "t", 0));
    for (size_t k = 0; k < 6; k++)
      num_cell(o, fl_rep_num(s, keys[k], 0), "%.0f");
    for (size_t k = 0; k < 4; k++) {
      if (fl_rep_has_num(s, lat[k]))
        num_cell(o, fl_rep_num(s, lat[k], 0) * 1000, "%.1f");
      else
        fputs("<td class=\"num\">\xe2\x80\x94</td>", o);
    }
    fputs("</tr>\n", o);
  }
  fputs("</tbody>\n</table>\n</details>\n", o);
}

/* A WebSocket endpoint's seconds, folded away. */
static void ws_table(FILE *o, const json_t *ep) {
  static const char *const keys[] = {"attempts", "opened",   "closes",
                                     "open",     "received", "replies"};
  static const char *const rtt[] = {"rtt_p50", "rtt_p99"};
  const json_t *series =
      json_object_get(json_object_get(ep, "websocket"), "series");
  if (json_array_size(series) == 0)
    return;
  fputs("<details><summary>Per-second data for ", o);
  text(o, fl_rep_str(ep, "name", ""));
  fputs("</summary>\n<table>\n<caption>Connections, messages and round "
        "trips (ms) per second</caption>\n<thead><tr><th scope=\"col\">t "
        "(s)</th>",
        o);
  for (size_t k = 0; k < 6; k++)
    fprintf(o, "<th scope=\"col\">%s</th>", keys[k]);
  for (size_t k = 0; k < 2; k++)
    fprintf(o, "<th scope=\"col\">%s</th>", rtt[k]);
  fputs("</tr></thead>\n<tbody>\n", o);
  size_t i;
  json_t *x;
  json_array_foreach(series, i, x) {
    fprintf(o, "<tr><th scope=\"row\" class=\"num\">%g</th>",
            fl_rep_num(x, "t", 0));
    for (size_t k = 0; k < 6; k++)
      num_cell(o, fl_rep_num(x, keys[k], 0), "%.0f");
    for (size_t k = 0; k < 2; k++) {
      if (fl_rep_has_num(x, rtt[k]))
        num_cell(o, fl_rep_num(x, rtt[k], 0) * 1000, "%.1f");
      else
        fputs("<td class=\"num\">\xe2\x80\x94</td>", o);
    }
    fputs("</tr>\n", o);
  }
  fputs("</tbody>\n</table>\n</details>\n", o);
}

static void traffic(FILE *o, const json_t *s, size_t si) {
  json_t *eps = json_object_get(s, "endpoints");
  fputs("<h3>Traffic</h3>\n", o);
  if (json_array_size(eps) == 0) {
    fputs("<p class=\"note\">No traffic was recorded.</p>\n", o);
    return;
  }
  size_t i;
  json_t *ep;
  json_array_foreach(eps, i, ep) {
    char line[1024];
    if (fl_rep_ws_line(ep, line, sizeof(line))) {
      /* A WebSocket endpoint: its connections in a sentence, no charts
       * of requests it did not make. */
      fputs("<h4>WS ", o);
      text(o, fl_rep_str(ep, "path", "?"));
      fputs(" (", o);
      text(o, fl_rep_str(ep, "name", ""));
      fputs(")</h4>\n<p class=\"note\">", o);
      text(o, line);
      fputs("</p>\n", o);
      ws_table(o, ep);
      continue;
    }
    fputs("<h4>", o);
    text(o, fl_rep_str(ep, "method", "GET"));
    fputc(' ', o);
    text(o, fl_rep_str(ep, "path", "?"));
    fputs(" (", o);
    text(o, fl_rep_str(ep, "name", ""));
    fprintf(o, ")</h4>\n<p class=\"note\">%.0f requests",
            fl_rep_num(ep, "requests", 0));
    if (fl_rep_has_num(ep, "rate"))
      fprintf(o, " at %g per second", fl_rep_num(ep, "rate", 0));
    if (fl_rep_has_num(ep, "timeout"))
      fprintf(o, ", timeout %g s", fl_rep_num(ep, "timeout", 0));
    fputs(".</p>\n<div class=\"charts\">\n<figure>\n", o);
    char id[64];
    snprintf(id, sizeof(id), "s%zu-e%zu-rps", si, i);
    fl_rep_chart_requests(o, s, ep, id);
    fputs("<figcaption>Requests per second by status class; hatched: "
          "fault windows.</figcaption>\n</figure>\n<figure>\n",
          o);
    snprintf(id, sizeof(id), "s%zu-e%zu-lat", si, i);
    fl_rep_chart_latency(o, s, ep, id);
    fputs("<figcaption>Latency percentiles per second; hatched: fault "
          "windows.</figcaption>\n</figure>\n</div>\n",
          o);
    data_table(o, ep);
  }
}

static void target(FILE *o, const json_t *s, size_t si) {
  const json_t *t = json_object_get(s, "target");
  fputs("<h3>Target</h3>\n", o);
  if (!json_is_object(t)) {
    fputs("<p class=\"note\">No target was started.</p>\n", o);
    return;
  }
  fputs("<dl class=\"meta\">\n", o);
  meta_item(o, "Command", fl_rep_str(t, "command", NULL));
  char buf[96];
  if (fl_rep_has_num(t, "pid")) {
    snprintf(buf, sizeof(buf), "%.0f", fl_rep_num(t, "pid", 0));
    meta_item(o, "PID", buf);
  }
  const json_t *ex = json_object_get(t, "exit");
  if (fl_rep_has_num(ex, "code"))
    snprintf(buf, sizeof(buf), "exited with status %.0f",
             fl_rep_num(ex, "code", 0));
  else if (fl_rep_str(ex, "signal", NULL) != NULL)
    snprintf(buf, sizeof(buf), "killed by %.64s", fl_rep_str(ex, "signal", ""));
  else
    snprintf(buf, sizeof(buf), "alive at the end");
  meta_item(o, "Exit", buf);
  snprintf(buf, sizeof(buf), "%.0f", fl_rep_num(t, "restarts", 0));
  meta_item(o, "Restarts", buf);
  meta_item(o, "Log", fl_rep_str(t, "log", NULL));
  fputs("</dl>\n", o);
  if (json_array_size(json_object_get(t, "series")) > 0) {
    char id[64];
    fputs("<div class=\"charts\">\n<figure>\n", o);
    snprintf(id, sizeof(id), "s%zu-fds", si);
    fl_rep_chart_fds(o, s, id);
    fputs("<figcaption>Open file descriptors of the target.</figcaption>\n"
          "</figure>\n<figure>\n",
          o);
    snprintf(id, sizeof(id), "s%zu-rss", si);
    fl_rep_chart_rss(o, s, id);
    fputs("<figcaption>Resident memory of the target.</figcaption>\n"
          "</figure>\n</div>\n",
          o);
  }
}

/* The shim's recent injections, counted by operation and error. */
static void injections(FILE *o, const json_t *s) {
  json_t *inj = json_object_get(s, "injections");
  if (json_array_size(inj) == 0)
    return;
  json_t *groups = json_object();
  size_t i;
  json_t *e;
  json_array_foreach(inj, i, e) {
    /* The error is a name (ECONNREFUSED), or a number the shim could
     * not name. */
    char error[64], key[160];
    if (fl_rep_has_num(e, "error"))
      snprintf(error, sizeof(error), "%.0f", fl_rep_num(e, "error", 0));
    else
      snprintf(error, sizeof(error), "%.60s", fl_rep_str(e, "error", "?"));
    snprintf(key, sizeof(key), "%.60s\x1f%s", fl_rep_str(e, "op", "?"), error);
    json_t *g = json_object_get(groups, key);
    if (g == NULL) {
      g = json_pack("{s:s, s:s, s:i, s:f, s:f}", "op", fl_rep_str(e, "op", "?"),
                    "error", error, "n", 0, "first", fl_rep_num(e, "t", 0),
                    "last", fl_rep_num(e, "t", 0));
      if (g == NULL || json_object_set_new(groups, key, g) != 0)
        continue;
    }
    json_object_set_new(
        g, "n", json_integer(json_integer_value(json_object_get(g, "n")) + 1));
    json_object_set_new(g, "last", json_real(fl_rep_num(e, "t", 0)));
  }
  fprintf(o,
          "<h4>Recent injections</h4>\n<table>\n<caption>The last %zu "
          "of %.0f injections the shim recorded, by call and error</caption>\n"
          "<thead><tr><th scope=\"col\">Call</th><th scope=\"col\">Error"
          "</th><th scope=\"col\">Count</th><th scope=\"col\">First</th>"
          "<th scope=\"col\">Last</th></tr></thead>\n<tbody>\n",
          json_array_size(inj),
          fl_rep_num(s, "injections_total", (double)json_array_size(inj)));
  const char *key;
  json_t *g;
  json_object_foreach(groups, key, g) {
    fputs("<tr>", o);
    cell(o, "th", "scope=\"row\"", fl_rep_str(g, "op", ""));
    cell(o, "td", NULL, fl_rep_str(g, "error", ""));
    num_cell(o, fl_rep_num(g, "n", 0), "%.0f");
    num_cell(o, fl_rep_num(g, "first", 0), "%.2f s");
    num_cell(o, fl_rep_num(g, "last", 0), "%.2f s");
    fputs("</tr>\n", o);
  }
  fputs("</tbody>\n</table>\n", o);
  json_decref(groups);
}

static void log_tail(FILE *o, const json_t *s, size_t si) {
  const char *log = fl_rep_str(json_object_get(s, "target"), "log_tail", "");
  fprintf(o, "<h3 id=\"s%zu-log\">Target log (last lines)</h3>\n", si);
  if (log[0] == '\0') {
    fputs("<p class=\"note\">The target wrote nothing.</p>\n", o);
    return;
  }
  fprintf(o, "<pre class=\"log\" tabindex=\"0\" aria-labelledby=\"s%zu-log\">",
          si);
  text(o, log);
  fputs("</pre>\n", o);
}

static void scenario(FILE *o, const json_t *s, size_t si) {
  enum fl_rep_verdict v = fl_rep_verdict_of(s);
  fprintf(o,
          "<section class=\"scenario\" id=\"s%zu\" aria-labelledby=\"s%zu-h\">"
          "\n<h2 id=\"s%zu-h\">",
          si, si, si);
  text(o, fl_rep_str(s, "name", ""));
  fputs(" ", o);
  verdict(o, v);
  fputs("</h2>\n", o);
  if (fl_rep_str(s, "description", "")[0] != '\0')
    cell(o, "p", NULL, fl_rep_str(s, "description", ""));
  if (v != FL_REP_PASS && fl_rep_str(s, "reason", NULL) != NULL) {
    fputs("\n<p><strong>Why ", o);
    text(o, fl_rep_verdict_name(v));
    fputs(":</strong> ", o);
    text(o, fl_rep_str(s, "reason", ""));
    fputs("</p>", o);
  }
  fputc('\n', o);
  meta(o, s);
  expectations(o, s, si);
  faults(o, s);
  injections(o, s);
  traffic(o, s, si);
  target(o, s, si);
  if (v != FL_REP_PASS)
    log_tail(o, s, si);
  fputs("</section>\n", o);
}

int fl_report_html(const json_t *r, FILE *out) {
  head(out, r);
  overview(out, r);
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(r, "scenarios"), i, s) scenario(out, s, i);
  fputs("</main>\n<footer><p class=\"note\">Rendered by faultline from its "
        "result document (result.json); no script, no external "
        "asset.</p></footer>\n</body>\n</html>\n",
        out);
  fflush(out);
  return ferror(out) ? -EIO : 0;
}
