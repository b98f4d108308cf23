/*
 * The HTML report's charts: inline SVG over a scenario's time axis, with
 * its fault windows shaded and labelled and its phase boundaries marked on
 * every chart. Each chart is a standalone well-formed SVG element with
 * role="img", a <title> and a <desc> that states in words what the chart
 * shows (totals, peaks, the windows), so nothing is conveyed by colour or
 * by the picture alone. Presentation is in attributes, not the page's
 * stylesheet, so a chart looks the same when copied out of the page.
 *
 * `id` must be unique in the page: it prefixes the ids inside the chart.
 */
#ifndef FL_REPORTS_SVG_H
#define FL_REPORTS_SVG_H

#include <jansson.h>
#include <stdio.h>

/* Requests per second of endpoint `ep`, stacked by status class. */
void fl_rep_chart_requests(FILE *out, const json_t *scn, const json_t *ep,
                           const char *id);
/* Latency p50/p95/p99 per second of endpoint `ep`. */
void fl_rep_chart_latency(FILE *out, const json_t *scn, const json_t *ep,
                          const char *id);
/* The target's open file descriptors over time (target.series[].fds). */
void fl_rep_chart_fds(FILE *out, const json_t *scn, const char *id);
/* The target's resident memory over time (target.series[].rss_kb). */
void fl_rep_chart_rss(FILE *out, const json_t *scn, const char *id);

#endif
