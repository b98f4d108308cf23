/*
 * Helpers the renderers share: reading the result's fields with a default,
 * verdicts, durations, and escaping for each output language. Internal to
 * reports/ (prefix fl_rep_).
 *
 * Every string from the result is untrusted: names, expectation texts and
 * above all the target's log may hold markup, quotes and terminal control
 * sequences. Each output language has exactly one escaping function here,
 * and renderers print result strings only through it.
 */
#ifndef FL_REPORTS_FMT_H
#define FL_REPORTS_FMT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

enum fl_rep_verdict {
  FL_REP_PASS,
  FL_REP_INCONCLUSIVE,
  FL_REP_FAIL,
  FL_REP_ERROR,
  FL_REP_NVERDICTS
};

/* The verdict named by s ("PASS"...), or -1. */
int fl_rep_verdict(const char *s);
/* The verdict of obj's "verdict" field; ERROR when missing or unknown, so
 * a damaged entry never reads as a pass. */
enum fl_rep_verdict fl_rep_verdict_of(const json_t *obj);
/* "PASS", "FAIL", "INCONCLUSIVE", "ERROR". */
const char *fl_rep_verdict_name(enum fl_rep_verdict v);

/* obj[key] as a string, or dflt when missing or not a string. */
const char *fl_rep_str(const json_t *obj, const char *key, const char *dflt);
/* obj[key] as a number (integer or real), or dflt. */
double fl_rep_num(const json_t *obj, const char *key, double dflt);
/* 1 when obj[key] is a number. */
int fl_rep_has_num(const json_t *obj, const char *key);

/* An expectation's verdict besides the four: NOT_JUDGED, for one the run
 * had nothing to judge on (the target did not start). */
#define FL_REP_NOT_JUDGED "NOT_JUDGED"
/* 1 when expectation e was not judged. */
int fl_rep_not_judged(const json_t *e);
/* Counts a scenario's expectations: all of them into *total (may be NULL),
 * returns how many failed (neither passed nor were left unjudged). */
int fl_rep_failed(const json_t *scenario, int *total);
/* How many of a scenario's expectations were not judged. */
int fl_rep_unjudged(const json_t *scenario);

/* A duration for people: "850 ms", "21.3 s", "4 min 05 s", "1 h 02 min". */
void fl_rep_duration(char *buf, size_t size, double seconds);

/* The scenario's time axis: the end of its last phase, series sample or
 * fault switch, in seconds since its first phase started (at least 1). */
double fl_rep_span(const json_t *scenario);

/* Text for XML and HTML, safe in element content and in attribute values
 * quoted with " or '. Control characters become their visible Unicode
 * pictures (ESC shows as U+241B); tab, CR and LF are kept in content and
 * written as character references in attributes (attr set). */
void fl_rep_xml(FILE *out, const char *s, int attr);
/* Formatted text through fl_rep_xml (content, not attribute). */
__attribute__((format(printf, 2, 3))) void fl_rep_xmlf(FILE *out,
                                                       const char *fmt, ...);

/* Text for one cell of a GitHub Markdown table (or inline text not at the
 * start of a line): emphasis, link, code and strikethrough punctuation,
 * '<' (HTML) and '&' (entities) backslash-escaped, pipes escaped, line
 * breaks as spaces. */
void fl_rep_md(FILE *out, const char *s);

/* Text for a terminal: control characters (C0, DEL and C1, which could
 * move the cursor or change colours) shown as '?'. */
void fl_rep_plain(FILE *out, const char *s);
/* Display width of UTF-8 text in columns, counting one per code point. */
size_t fl_rep_width(const char *s);

/* ws.c: a WebSocket endpoint's figures in one sentence into buf; 1, or
 * 0 (nothing written) when ep is no WebSocket endpoint. */
int fl_rep_ws_line(const json_t *ep, char *buf, size_t size);

#endif
