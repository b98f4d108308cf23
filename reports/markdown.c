/*
 * The Markdown summary: small enough for a pull-request comment, shaped
 * for GitHub's renderer (job summaries use the same one). Verdicts carry
 * an emoji and the word, so they read without colour and in plain text.
 */
#include <errno.h>
#include <string.h>

#include "fmt.h"
#include "report.h"

/* Lines of the target's log shown per scenario that did not pass. */
#define LOG_LINES 15

static const char *const emoji[FL_REP_NVERDICTS] = {
    [FL_REP_PASS] = "\xe2\x9c\x85",                     /* ✅ */
    [FL_REP_INCONCLUSIVE] = "\xe2\x9a\xa0\xef\xb8\x8f", /* ⚠️ */
    [FL_REP_FAIL] = "\xe2\x9d\x8c",                     /* ❌ */
    [FL_REP_ERROR] = "\xe2\x9b\x94",                    /* ⛔ */
};

static void verdict(FILE *out, enum fl_rep_verdict v) {
  fprintf(out, "%s %s", emoji[v], fl_rep_verdict_name(v));
}

static void suite_line(FILE *out, const json_t *r) {
  int counts[FL_REP_NVERDICTS] = {0};
  json_t *scns = json_object_get(r, "scenarios");
  size_t i;
  json_t *s;
  json_array_foreach(scns, i, s) counts[fl_rep_verdict_of(s)]++;
  char dur[32];
  fl_rep_duration(dur, sizeof(dur), fl_rep_num(r, "duration", -1));
  enum fl_rep_verdict v = fl_rep_verdict_of(r);
  fprintf(out, "## %s faultline: %s\n\n", emoji[v], fl_rep_verdict_name(v));
  fprintf(out,
          "**%zu scenario%s** in %s: %s %d passed \xc2\xb7 %s %d failed "
          "\xc2\xb7 %s %d inconclusive \xc2\xb7 %s %d error%s  \n",
          json_array_size(scns), json_array_size(scns) == 1 ? "" : "s", dur,
          emoji[FL_REP_PASS], counts[FL_REP_PASS], emoji[FL_REP_FAIL],
          counts[FL_REP_FAIL], emoji[FL_REP_INCONCLUSIVE],
          counts[FL_REP_INCONCLUSIVE], emoji[FL_REP_ERROR],
          counts[FL_REP_ERROR], counts[FL_REP_ERROR] == 1 ? "" : "s");
  fputs("faultline ", out);
  fl_rep_md(out, fl_rep_str(r, "faultline", "?"));
  fputs(", started ", out);
  fl_rep_md(out, fl_rep_str(r, "started", "?"));
  fputs("\n\n", out);
}

static void verdict_table(FILE *out, const json_t *scns) {
  fputs("| Scenario | Service | Verdict | Duration | Failed |\n"
        "|:--|:--|:--|--:|--:|\n",
        out);
  size_t i;
  json_t *s;
  json_array_foreach(scns, i, s) {
    int total;
    int failed = fl_rep_failed(s, &total);
    char dur[32];
    fl_rep_duration(dur, sizeof(dur), fl_rep_num(s, "duration", -1));
    fputs("| ", out);
    fl_rep_md(out, fl_rep_str(s, "name", ""));
    fputs(" | ", out);
    fl_rep_md(out, fl_rep_str(json_object_get(s, "service"), "name", "-"));
    fputs(" | ", out);
    verdict(out, fl_rep_verdict_of(s));
    fprintf(out, " | %s | %d of %d |\n", dur, failed, total);
  }
  fputc('\n', out);
}

static void failed_table(FILE *out, const json_t *s) {
  if (fl_rep_failed(s, NULL) == 0)
    return;
  fputs("| Phase | Endpoint | Expectation | Expected | Observed |\n"
        "|:--|:--|:--|:--|:--|\n",
        out);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(s, "expectations"), i, e) {
    if (fl_rep_verdict_of(e) == FL_REP_PASS || fl_rep_not_judged(e))
      continue;
    const char *cells[] = {
        fl_rep_str(e, "phase", "always"), fl_rep_str(e, "endpoint", "-"),
        fl_rep_str(e, "text", ""), fl_rep_str(e, "expected", "-"),
        fl_rep_str(e, "observed", "-")};
    for (size_t c = 0; c < sizeof(cells) / sizeof(cells[0]); c++) {
      fputs("| ", out);
      fl_rep_md(out, cells[c]);
      fputc(' ', out);
    }
    fputs("|\n", out);
  }
  fputc('\n', out);
}

/* What each WebSocket endpoint's connections did, a line each. */
static void ws_lines(FILE *out, const json_t *s) {
  size_t i, n = 0;
  json_t *ep;
  char line[1024];
  json_array_foreach(json_object_get(s, "endpoints"), i, ep) {
    if (!fl_rep_ws_line(ep, line, sizeof(line)))
      continue;
    fputs("- WebSocket **", out);
    fl_rep_md(out, fl_rep_str(ep, "name", ""));
    fputs("**: ", out);
    fl_rep_md(out, line);
    fputc('\n', out);
    n++;
  }
  if (n > 0)
    fputc('\n', out);
}

/* Expectations the run had nothing to judge on, named on one line. */
static void unjudged(FILE *out, const json_t *s) {
  int n = fl_rep_unjudged(s), k = 0;
  if (n == 0)
    return;
  fprintf(out, "%d not judged (the target did not start): ", n);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(s, "expectations"), i, e) {
    if (!fl_rep_not_judged(e))
      continue;
    fputs(k++ ? ", " : "", out);
    fl_rep_md(out, fl_rep_str(e, "phase", "always"));
    if (fl_rep_str(e, "endpoint", NULL) != NULL) {
      fputs(" / ", out);
      fl_rep_md(out, fl_rep_str(e, "endpoint", ""));
    }
    fputs(": ", out);
    fl_rep_md(out, fl_rep_str(e, "text", ""));
  }
  fputs("\n\n", out);
}

/* Faults that never fired: the usual cause of INCONCLUSIVE. */
static void undelivered(FILE *out, const json_t *s) {
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(s, "faults"), i, f) {
    if (fl_rep_num(f, "delivered", 0) > 0)
      continue;
    fputs("- fault **", out);
    fl_rep_md(out, fl_rep_str(f, "name", ""));
    fputs("** (", out);
    fl_rep_md(out, fl_rep_str(f, "spec", "?"));
    fprintf(out, ") was never delivered (%.0f calls matched)%s\n",
            fl_rep_num(f, "matched", 0),
            json_is_true(json_object_get(f, "optional"))
                ? ": optional, it proves nothing either way"
                : "");
  }
}

/* The longest run of backticks in s, so a fence can be longer. */
static int longest_backticks(const char *s) {
  int best = 0, run = 0;
  for (; *s != '\0'; s++) {
    run = *s == '`' ? run + 1 : 0;
    best = run > best ? run : best;
  }
  return best;
}

/* The last LOG_LINES lines of the target's log, folded away. */
static void log_tail(FILE *out, const json_t *s) {
  const char *log = fl_rep_str(json_object_get(s, "target"), "log_tail", "");
  size_t len = strlen(log);
  while (len > 0 && log[len - 1] == '\n')
    len--;
  if (len == 0)
    return;
  const char *start = log + len;
  for (int lines = 0; start > log && lines < LOG_LINES;)
    if (*--start == '\n')
      lines++;
  if (*start == '\n')
    start++;
  int fence = longest_backticks(log) + 1;
  fence = fence < 3 ? 3 : fence;
  fputs("<details><summary>Target log (last lines)</summary>\n\n", out);
  for (int i = 0; i < fence; i++)
    fputc('`', out);
  fputs("text\n", out);
  /* Inside a fence nothing is interpreted; only control characters are
   * made visible (a terminal-oriented log often carries colour codes). */
  for (const char *p = start; p < log + len; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('\n', out);
  for (int i = 0; i < fence; i++)
    fputc('`', out);
  fputs("\n\n</details>\n\n", out);
}

static void details(FILE *out, const json_t *scns) {
  size_t i;
  json_t *s;
  json_array_foreach(scns, i, s) {
    enum fl_rep_verdict v = fl_rep_verdict_of(s);
    if (v == FL_REP_PASS)
      continue;
    fputs("### ", out);
    verdict(out, v);
    fputs(": ", out);
    fl_rep_md(out, fl_rep_str(s, "name", ""));
    fputs(" (", out);
    fl_rep_md(out, fl_rep_str(json_object_get(s, "service"), "name", "-"));
    fputs(")\n\n", out);
    fl_rep_md(out, fl_rep_str(s, "reason", ""));
    fputs("\n\n", out);
    failed_table(out, s);
    ws_lines(out, s);
    unjudged(out, s);
    if (v == FL_REP_INCONCLUSIVE) {
      undelivered(out, s);
      fputc('\n', out);
    }
    log_tail(out, s);
  }
}

int fl_report_markdown(const json_t *r, FILE *out) {
  json_t *scns = json_object_get(r, "scenarios");
  suite_line(out, r);
  verdict_table(out, scns);
  details(out, scns);
  fflush(out);
  return ferror(out) ? -EIO : 0;
}
