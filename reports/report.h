/*
 * Reports: everything a person reads about a run, rendered from the run's
 * result document alone (docs/result.md). The runner calls the renderers
 * at the end of `faultline run`; `faultline report RESULT.json` calls them
 * again later.
 *
 * Every function returns 0 or a negative errno-style code. The renderers
 * only read the result; they never keep a reference to it. They write to
 * `out` with stdio and return -EIO when `out` has an error afterwards (the
 * caller still owns and closes `out`).
 */
#ifndef FL_REPORT_H
#define FL_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The result format's version this code reads and writes. */
#define FL_RESULT_VERSION 1

/*
 * Reads and checks the result document at `path`. On success *out is a new
 * reference the caller releases with json_decref(). On failure *out is
 * NULL, `err` holds one sentence naming the file and what is wrong with it
 * (the line and column of a syntax error, a foreign document, a missing or
 * mistyped field with its place, e.g. scenarios[1].verdict), and the
 * return is -errno when the file cannot be read, or -EBADMSG when its
 * content is not a faultline result this version understands.
 */
int fl_report_load(const char *path, json_t **out, char *err, size_t errlen);

/*
 * Checks an in-memory result as fl_report_load does; `name` stands for the
 * document in the message (a file name, or "result").
 */
int fl_report_check(const json_t *result, const char *name, char *err,
                    size_t errlen);

/* One self-contained HTML page: no external assets, no script; charts are
 * inline SVG; a print stylesheet is included. */
int fl_report_html(const json_t *result, FILE *out);

/* A compact GitHub-flavoured Markdown summary (CI job summary, PR
 * comment): the suite verdict, a verdict table, then the failed
 * expectations of every scenario that did not pass. */
int fl_report_markdown(const json_t *result, FILE *out);

/* JUnit XML (the Ant schema Jenkins and most CI systems read): one
 * testsuite per scenario, one testcase per expectation. See junit.c for
 * how ERROR and INCONCLUSIVE scenarios are represented. */
int fl_report_junit(const json_t *result, FILE *out);

/* The end-of-run table for a terminal. ANSI colour only when `color` is
 * set; the caller decides (a TTY, and NO_COLOR unset). Verdicts are always
 * spelled out, so the table reads the same without colour. */
int fl_report_summary(const json_t *result, FILE *out, int color);

/*
 * Joins the results of a suite's shards (`faultline run --shard I/N`) into
 * one: their scenarios in the order given, counts and verdict computed
 * again, started at the earliest shard's start and lasting until the last
 * one's end. Each doc is checked as fl_report_check does (names[i] stands
 * for it in messages); a scenario (file and service) found in two of them
 * is an error. *out is a new reference. 0, -EBADMSG or -EINVAL with one
 * sentence in err.
 */
int fl_report_merge(json_t *const *docs, const char *const *names, size_t n,
                    json_t **out, char *err, size_t errlen);

/*
 * The audit's failure-propagation matrix (`faultline audit`, a document of
 * format "faultline-audit"): dependency x fault rows, one cell per
 * endpoint. Markdown (a table per dependency), one self-contained HTML
 * page (a heat map whose cells link to the case's timeline in
 * run/report.html), and a one-screen terminal summary (colour as for
 * fl_report_summary).
 */
int fl_audit_markdown(const json_t *matrix, FILE *out);
int fl_audit_html(const json_t *matrix, FILE *out);
int fl_audit_summary(const json_t *matrix, FILE *out, int color);

#endif
