/*
 * Inline SVG charts for the HTML report (see svg.h). One frame for all of
 * them: the x axis is the scenario's time in seconds since traffic started,
 * fault windows are hatched over the data and named in labelled bars
 * above the plot (one row per fault, so overlapping windows stay legible),
 * phase boundaries are dashed lines with the phase names on top.
 *
 * Colours are the Okabe-Ito palette, distinguishable with the common colour
 * vision deficiencies; lines also differ by dash pattern, and every chart's
 * <desc> says in words what the colours say.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "svg.h"

#define W 720.0    /* viewBox width */
#define PH 150.0   /* plot height */
#define LEFT 64.0  /* room for the y tick labels */
#define RIGHT 16.0 /* room for the last x tick label */
#define BELOW 60.0 /* x tick labels, the x axis title, the legend */
#define ROW 16.0   /* one fault label row above the plot */
#define MAX_ROWS 4 /* more faults share rows */
#define PW (W - LEFT - RIGHT)
#define FAULT "#4d4d4d" /* 8.5:1 on white; distinct from every series */
#define NDASH "\xe2\x80\x93"

struct chart {
  FILE *out;
  const json_t *scn;
  const char *id;
  double span;   /* seconds on the x axis */
  double top;    /* y of the plot's top edge */
  double height; /* of the whole chart */
  double ymax;
  double ystep;
  double yscale; /* tick label = value * yscale, in the y title's unit */
};

struct legend {
  const char *label;
  const char *color;
  const char *dash; /* NULL: a filled square */
};

static double cx(const struct chart *c, double t) {
  return LEFT + t / c->span * PW;
}

static double cy(const struct chart *c, double v) {
  return c->top + PH - fmin(v, c->ymax) / c->ymax * PH;
}

/* 1, 2 or 5 times a power of ten, near max/n. */
static double nice_step(double max, int n) {
  double raw = max / n;
  double mag = pow(10, floor(log10(raw)));
  double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static double fault_off(const struct chart *c, const json_t *f) {
  return fl_rep_num(f, "off", c->span);
}

/* Appends the fault windows and phases in words to a description. */
static void describe_context(FILE *m, const json_t *scn) {
  size_t i;
  json_t *e;
  json_t *faults = json_object_get(scn, "faults");
  if (json_array_size(faults) == 0)
    fputs(" No faults were switched on.", m);
  json_array_foreach(faults, i, e) {
    fprintf(m, "%s%s ", i == 0 ? " Fault windows: " : "; ",
            fl_rep_str(e, "name", "?"));
    if (!fl_rep_has_num(e, "on"))
      fputs("never switched on", m);
    else if (fl_rep_has_num(e, "off"))
      fprintf(m, "from %.1f s to %.1f s", fl_rep_num(e, "on", 0),
              fl_rep_num(e, "off", 0));
    else
      fprintf(m, "from %.1f s to the end", fl_rep_num(e, "on", 0));
    if (i + 1 == json_array_size(faults))
      fputc('.', m);
  }
  json_t *phases = json_object_get(scn, "phases");
  json_array_foreach(phases, i, e) {
    fprintf(m, "%s%s %g" NDASH "%g s", i == 0 ? " Phases: " : ", ",
            fl_rep_str(e, "name", "?"), fl_rep_num(e, "start", 0),
            fl_rep_num(e, "end", 0));
    if (i + 1 == json_array_size(phases))
      fputc('.', m);
  }
}

static void axes(struct chart *c, const char *ytitle) {
  FILE *o = c->out;
  fprintf(o,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
          "fill=\"#ffffff\" stroke=\"#767676\"/>\n",
          LEFT, c->top, PW, PH);
  for (double v = 0; v <= c->ymax + c->ystep / 2; v += c->ystep) {
    double y = cy(c, v);
    if (v > 0)
      fprintf(o,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
              "stroke=\"#d9d9d9\"/>\n",
              LEFT, y, LEFT + PW, y);
    fprintf(o,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
            "fill=\"#1a1a1a\">%.4g</text>\n",
            LEFT - 6, y + 4, v * c->yscale);
  }
  double xstep = nice_step(c->span, 8);
  xstep = xstep < 1 ? 1 : xstep;
  for (double t = 0; t <= c->span + 1e-9; t += xstep) {
    double x = cx(c, t);
    fprintf(o,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#767676\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "fill=\"#1a1a1a\">%g</text>\n",
            x, c->top + PH, x, c->top + PH + 4, x, c->top + PH + 16, t);
  }
  fprintf(o,
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
          "fill=\"#1a1a1a\">seconds since traffic started</text>\n",
          LEFT + PW / 2, c->top + PH + 31);
  fprintf(o,
          "<text transform=\"translate(14 %.1f) rotate(-90)\" "
          "text-anchor=\"middle\" fill=\"#1a1a1a\">",
          c->top + PH / 2);
  fl_rep_xml(o, ytitle, 0);
  fputs("</text>\n", o);
}

/* Hatched fault windows, over the data: the hatching is translucent, so
 * bars and lines stay readable through it. */
static void fault_windows(struct chart *c) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(c->scn, "faults"), i, f) {
    if (!fl_rep_has_num(f, "on"))
      continue; /* never switched on: no window */
    double x0 = cx(c, fl_rep_num(f, "on", 0));
    double x1 = cx(c, fault_off(c, f));
    fprintf(c->out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"url(#%s-h)\" stroke=\"" FAULT "\" "
            "stroke-width=\"1\"><title>",
            x0, c->top, fmax(x1 - x0, 1), PH, c->id);
    fl_rep_xmlf(c->out, "fault %s: %.1f" NDASH "%.1f s",
                fl_rep_str(f, "name", "?"), fl_rep_num(f, "on", 0),
                fault_off(c, f));
    fputs("</title></rect>\n", c->out);
  }
}

/* Opens the chart: frame and axes. */
static void begin(struct chart *c, const char *title, const char *desc,
                  const char *ytitle, double datamax) {
  size_t nf = json_array_size(json_object_get(c->scn, "faults"));
  size_t rows = nf < MAX_ROWS ? nf : MAX_ROWS;
  c->span = fl_rep_span(c->scn);
  c->top = 22 + (double)rows * ROW;
  c->height = c->top + PH + BELOW;
  if (!(datamax > 0))
    datamax = 1;
  c->ystep = nice_step(datamax, 4);
  c->ymax = ceil(datamax / c->ystep - 1e-9) * c->ystep;
  FILE *o = c->out;
  fprintf(o,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" "
          "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
          "role=\"img\" aria-labelledby=\"%s-t %s-d\" "
          "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" "
          "font-size=\"11\">\n<title id=\"%s-t\">",
          W, c->height, W, c->height, c->id, c->id, c->id);
  fl_rep_xml(o, title, 0);
  fprintf(o, "</title>\n<desc id=\"%s-d\">", c->id);
  fl_rep_xml(o, desc, 0);
  fprintf(o,
          "</desc>\n<defs><pattern id=\"%s-h\" width=\"6\" height=\"6\" "
          "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
          "<rect width=\"6\" height=\"6\" fill=\"" FAULT
          "\" fill-opacity=\"0.08\"/><line x1=\"0\" y1=\"0\" x2=\"0\" "
          "y2=\"6\" stroke=\"" FAULT "\" stroke-opacity=\"0.4\" "
          "stroke-width=\"2\"/></pattern></defs>\n",
          c->id);
  axes(c, ytitle);
}

static void phase_marks(struct chart *c) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(c->scn, "phases"), i, p) {
    double start = fl_rep_num(p, "start", 0), end = fl_rep_num(p, "end", 0);
    double edges[2] = {start, end};
    for (int k = 0; k < 2; k++) {
      if (edges[k] <= 0 || edges[k] >= c->span - 1e-9 || (k == 0 && i > 0))
        continue; /* the plot's edges, or drawn as the previous end */
      double x = cx(c, edges[k]);
      fprintf(c->out,
              "<line x1=\"%.1f\" y1=\"4\" x2=\"%.1f\" y2=\"%.1f\" "
              "stroke=\"#3d3d3d\" stroke-dasharray=\"4 3\"/>\n",
              x, x, c->top + PH);
    }
    fprintf(c->out,
            "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\" "
            "font-weight=\"600\" fill=\"#1a1a1a\">",
            cx(c, (start + end) / 2));
    fl_rep_xml(c->out, fl_rep_str(p, "name", ""), 0);
    fputs("</text>\n", c->out);
  }
}

/* A labelled bar above the plot per fault: its name and times in words. */
static void fault_labels(struct chart *c) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(c->scn, "faults"), i, f) {
    if (!fl_rep_has_num(f, "on"))
      continue; /* never switched on: no window */
    double on = fl_rep_num(f, "on", 0), off = fault_off(c, f);
    double x0 = cx(c, on), x1 = cx(c, off);
    double y = 22 + (double)(i % MAX_ROWS) * ROW;
    char label[256];
    snprintf(label, sizeof(label), "fault: %s, %.1f" NDASH "%.1f s",
             fl_rep_str(f, "name", "?"), on, off);
    /* Roughly 6 px per character at 11 px: keep the label inside. */
    double width = (double)fl_rep_width(label) * 6;
    int right = x0 + width > W - RIGHT;
    fprintf(c->out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"3\" "
            "fill=\"" FAULT "\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"%s\" fill=\"" FAULT "\">",
            x0, y + 10, fmax(x1 - x0, 1), right ? x1 - 3 : x0 + 3, y + 7,
            right ? "end" : "start");
    fl_rep_xml(c->out, label, 0);
    fputs("</text>\n", c->out);
  }
}

static void legend(struct chart *c, const struct legend *items, size_t n) {
  double x = LEFT, y = c->top + PH + 50;
  FILE *o = c->out;
  for (size_t i = 0; i < n; i++) {
    if (items[i].dash == NULL)
      fprintf(o,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" "
              "fill=\"%s\"/>\n",
              x, y - 9, items[i].color);
    else if (strcmp(items[i].dash, "hatch") == 0)
      fprintf(o,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" "
              "fill=\"url(#%s-h)\" stroke=\"" FAULT "\"/>\n",
              x, y - 9, c->id);
    else
      fprintf(o,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
              "stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"%s\"/>\n",
              x, y - 4, x + 18, y - 4, items[i].color, items[i].dash);
    fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#1a1a1a\">%s</text>\n",
            x + 22, y, items[i].label);
    x += 30 + strlen(items[i].label) * 6.2;
  }
}

/* Closes the chart: fault windows, phase marks and fault labels over the
 * data, then the legend. */
static void end(struct chart *c, const struct legend *items, size_t n) {
  fault_windows(c);
  phase_marks(c);
  fault_labels(c);
  struct legend all[8];
  size_t k = 0;
  for (size_t i = 0; i < n && k < 6; i++)
    all[k++] = items[i];
  if (json_array_size(json_object_get(c->scn, "faults")) > 0)
    all[k++] = (struct legend){"fault window", FAULT, "hatch"};
  if (json_array_size(json_object_get(c->scn, "phases")) > 1)
    all[k++] = (struct legend){"phase boundary", "#3d3d3d", "4 3"};
  legend(c, all, k);
  fputs("</svg>\n", c->out);
}

/* ---- Requests per second, stacked by status class. ---- */

static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx", "error"};
static const char *const class_colors[] = {"#009E73", "#56B4E9", "#E69F00",
                                           "#D55E00", "#3D2A6B"};
#define NCLASSES 5

static void endpoint_label(char *buf, size_t size, const json_t *ep) {
  snprintf(buf, size, "%s %s (%s)", fl_rep_str(ep, "method", "GET"),
           fl_rep_str(ep, "path", "?"), fl_rep_str(ep, "name", "?"));
}

void fl_rep_chart_requests(FILE *out, const json_t *scn, const json_t *ep,
                           const char *id) {
  json_t *series = json_object_get(ep, "series");
  double totals[NCLASSES] = {0}, peak = 0;
  size_t i;
  json_t *s;
  json_array_foreach(series, i, s) {
    double sum = 0;
    for (int k = 0; k < NCLASSES; k++) {
      totals[k] += fl_rep_num(s, classes[k], 0);
      sum += fl_rep_num(s, classes[k], 0);
    }
    peak = fmax(peak, sum);
  }
  char what[512], title[600];
  endpoint_label(what, sizeof(what), ep);
  snprintf(title, sizeof(title), "Requests per second by status: %s", what);
  char *desc = NULL;
  size_t desclen = 0;
  FILE *m = open_memstream(&desc, &desclen);
  if (m != NULL) {
    fprintf(m,
            "Stacked bars of requests per second for %s, by the second "
            "they were scheduled in. Totals: 2xx %.0f, 3xx %.0f, 4xx %.0f, "
            "5xx %.0f, transport errors %.0f; peak %.0f per second.",
            what, totals[0], totals[1], totals[2], totals[3], totals[4], peak);
    describe_context(m, scn);
    fclose(m);
  }
  struct chart c = {out, scn, id, .yscale = 1};
  begin(&c, title, desc != NULL ? desc : title, "requests per second", peak);
  free(desc);
  double slot = PW / c.span;
  double gap = fmin(1, slot * 0.15);
  json_array_foreach(series, i, s) {
    double t = fl_rep_num(s, "t", 0), base = 0;
    fputs("<g><title>", out);
    fl_rep_xmlf(out,
                "t=%g s: %.0f 2xx, %.0f 3xx, %.0f 4xx, %.0f 5xx, %.0f "
                "errors",
                t, fl_rep_num(s, "2xx", 0), fl_rep_num(s, "3xx", 0),
                fl_rep_num(s, "4xx", 0), fl_rep_num(s, "5xx", 0),
                fl_rep_num(s, "error", 0));
    fputs("</title>", out);
    for (int k = 0; k < NCLASSES; k++) {
      double n = fl_rep_num(s, classes[k], 0);
      if (n <= 0)
        continue;
      double y0 = cy(&c, base), y1 = cy(&c, base + n);
      fprintf(out,
              "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
              "fill=\"%s\"/>",
              cx(&c, t) + gap / 2, y1, fmax(slot - gap, 0.5), y0 - y1,
              class_colors[k]);
      base += n;
    }
    fputs("</g>\n", out);
  }
  struct legend items[NCLASSES];
  for (int k = 0; k < NCLASSES; k++)
    items[k] = (struct legend){classes[k], class_colors[k], NULL};
  end(&c, items, NCLASSES);
}

/* ---- Lines: latency percentiles, fds, RSS. ---- */

/* One polyline of series[].key (scaled), broken where a value is null;
 * a lone point between gaps is drawn as a dot. Points sit at the middle
 * of their second when `mid` is set. */
static void line(struct chart *c, const json_t *series, const char *key,
                 double scale, const char *color, const char *dash,
                 const char *name, int mid) {
  FILE *o = c->out;
  fprintf(o,
          "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
          "stroke-linejoin=\"round\" stroke-dasharray=\"%s\" d=\"",
          color, dash);
  size_t i, n = json_array_size(series);
  int run = 0;
  for (i = 0; i < n; i++) {
    json_t *s = json_array_get(series, i);
    if (!fl_rep_has_num(s, key)) {
      run = 0;
      continue;
    }
    double t = fl_rep_num(s, "t", 0) + (mid ? 0.5 : 0);
    fprintf(o, "%s%.2f,%.2f", run ? " L" : " M", cx(c, t),
            cy(c, fl_rep_num(s, key, 0) * scale));
    run = 1;
  }
  fprintf(o, "\"><title>%s</title></path>\n", name);
  for (i = 0; i < n; i++) {
    json_t *s = json_array_get(series, i);
    int prev = i > 0 && fl_rep_has_num(json_array_get(series, i - 1), key);
    int next = fl_rep_has_num(json_array_get(series, i + 1), key);
    if (!fl_rep_has_num(s, key) || prev || next)
      continue;
    double t = fl_rep_num(s, "t", 0) + (mid ? 0.5 : 0);
    fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n",
            cx(c, t), cy(c, fl_rep_num(s, key, 0) * scale), color);
  }
}

/* The largest series[].key and where it is. */
static double series_max(const json_t *series, const char *key, double *at) {
  double m = 0;
  size_t i;
  json_t *s;
  json_array_foreach(series, i, s) {
    if (fl_rep_has_num(s, key) && fl_rep_num(s, key, 0) > m) {
      m = fl_rep_num(s, key, 0);
      if (at != NULL)
        *at = fl_rep_num(s, "t", 0);
    }
  }
  return m;
}

void fl_rep_chart_latency(FILE *out, const json_t *scn, const json_t *ep,
                          const char *id) {
  static const char *const keys[] = {"p50", "p95", "p99"};
  static const char *const colors[] = {"#0072B2", "#E69F00", "#D55E00"};
  static const char *const dashes[] = {"none", "7 3", "2 2"};
  json_t *series = json_object_get(ep, "series");
  double peak = 0, at = 0, p50max = series_max(series, "p50", NULL);
  for (int k = 0; k < 3; k++)
    peak = fmax(peak, series_max(series, keys[k], k == 2 ? &at : NULL));
  size_t i, empty = 0;
  json_t *s;
  json_array_foreach(series, i, s) empty += !fl_rep_has_num(s, "p50");
  char what[512], title[600];
  endpoint_label(what, sizeof(what), ep);
  snprintf(title, sizeof(title), "Latency p50, p95, p99 per second: %s", what);
  char *desc = NULL;
  size_t desclen = 0;
  FILE *m = open_memstream(&desc, &desclen);
  if (m != NULL) {
    fprintf(m,
            "Lines of the median (p50, solid), p95 (dashed) and p99 "
            "(dotted) latency per second for %s, in milliseconds. Highest "
            "p50 %.1f ms; highest p99 %.1f ms at %g s; %zu of %zu seconds "
            "had no completed request.",
            what, p50max * 1000, series_max(series, "p99", NULL) * 1000, at,
            empty, json_array_size(series));
    describe_context(m, scn);
    fclose(m);
  }
  struct chart c = {out, scn, id, .yscale = 1000};
  begin(&c, title, desc != NULL ? desc : title, "latency (ms)", peak);
  free(desc);
  struct legend items[3];
  for (int k = 0; k < 3; k++) {
    line(&c, series, keys[k], 1, colors[k], dashes[k], keys[k], 1);
    items[k] = (struct legend){keys[k], colors[k], dashes[k]};
  }
  end(&c, items, 3);
}

static void target_chart(FILE *out, const json_t *scn, const char *id,
                         const char *key, double scale, const char *unit,
                         const char *title, const char *ytitle,
                         const char *name) {
  json_t *series = json_object_get(json_object_get(scn, "target"), "series");
  double at = 0, peak = series_max(series, key, &at) * scale;
  double first = 0, last = 0;
  size_t n = json_array_size(series);
  if (n > 0) {
    first = fl_rep_num(json_array_get(series, 0), key, 0) * scale;
    last = fl_rep_num(json_array_get(series, n - 1), key, 0) * scale;
  }
  char *desc = NULL;
  size_t desclen = 0;
  FILE *m = open_memstream(&desc, &desclen);
  if (m != NULL) {
    fprintf(m,
            "The target's %s, one sample per second: %.4g%s at the start, "
            "%.4g%s at the end, highest %.4g%s at %g s.",
            name, first, unit, last, unit, peak, unit, at);
    describe_context(m, scn);
    fclose(m);
  }
  struct chart c = {out, scn, id, .yscale = 1};
  begin(&c, title, desc != NULL ? desc : title, ytitle, peak);
  free(desc);
  line(&c, series, key, scale, "#0072B2", "none", name, 0);
  struct legend item = {name, "#0072B2", "none"};
  end(&c, &item, 1);
}

void fl_rep_chart_fds(FILE *out, const json_t *scn, const char *id) {
  target_chart(out, scn, id, "fds", 1, "",
               "Open file descriptors of the target", "open fds",
               "open file descriptors");
}

void fl_rep_chart_rss(FILE *out, const json_t *scn, const char *id) {
  target_chart(out, scn, id, "rss_kb", 1.0 / 1024, " MB",
               "Resident memory of the target", "RSS (MB)", "resident memory");
}
