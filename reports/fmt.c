#include "fmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const verdict_names[FL_REP_NVERDICTS] = {
    [FL_REP_PASS] = "PASS",
    [FL_REP_INCONCLUSIVE] = "INCONCLUSIVE",
    [FL_REP_FAIL] = "FAIL",
    [FL_REP_ERROR] = "ERROR",
};

int fl_rep_verdict(const char *s) {
  for (int v = 0; s != NULL && v < FL_REP_NVERDICTS; v++)
    if (strcmp(s, verdict_names[v]) == 0)
      return v;
  return -1;
}

enum fl_rep_verdict fl_rep_verdict_of(const json_t *obj) {
  int v = fl_rep_verdict(fl_rep_str(obj, "verdict", NULL));
  return v < 0 ? FL_REP_ERROR : (enum fl_rep_verdict)v;
}

const char *fl_rep_verdict_name(enum fl_rep_verdict v) {
  return v < FL_REP_NVERDICTS ? verdict_names[v] : "ERROR";
}

const char *fl_rep_str(const json_t *obj, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s != NULL ? s : dflt;
}

double fl_rep_num(const json_t *obj, const char *key, double dflt) {
  json_t *v = json_object_get(obj, key);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

int fl_rep_has_num(const json_t *obj, const char *key) {
  return json_is_number(json_object_get(obj, key));
}

int fl_rep_not_judged(const json_t *e) {
  return strcmp(fl_rep_str(e, "verdict", ""), FL_REP_NOT_JUDGED) == 0;
}

int fl_rep_unjudged(const json_t *scenario) {
  int n = 0;
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(scenario, "expectations"), i, e) n +=
      fl_rep_not_judged(e);
  return n;
}

int fl_rep_failed(const json_t *scenario, int *total) {
  json_t *exps = json_object_get(scenario, "expectations");
  int failed = 0;
  size_t i;
  json_t *e;
  json_array_foreach(exps, i, e) failed +=
      fl_rep_verdict_of(e) != FL_REP_PASS && !fl_rep_not_judged(e);
  if (total != NULL)
    *total = (int)json_array_size(exps);
  return failed;
}

void fl_rep_duration(char *buf, size_t size, double s) {
  if (!isfinite(s) || s < 0)
    snprintf(buf, size, "unknown");
  else if (s < 1)
    snprintf(buf, size, "%.0f ms", s * 1000);
  else if (s < 60)
    snprintf(buf, size, "%.1f s", s);
  else if (s < 3600)
    snprintf(buf, size, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
  else
    snprintf(buf, size, "%d h %02d min", (int)(s / 3600),
             (int)fmod(s / 60, 60));
}

/* The largest `key` (+ width) over the objects of array obj[name]. */
static double array_max(const json_t *obj, const char *name, const char *key,
                        double width, double m) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(obj, name), i, e) {
    if (fl_rep_has_num(e, key))
      m = fmax(m, fl_rep_num(e, key, 0) + width);
  }
  return m;
}

double fl_rep_span(const json_t *scn) {
  double m = array_max(scn, "phases", "end", 0, 1);
  m = array_max(scn, "faults", "on", 0, m);
  m = array_max(scn, "faults", "off", 0, m);
  size_t i;
  json_t *ep;
  json_array_foreach(json_object_get(scn, "endpoints"), i, ep) m =
      array_max(ep, "series", "t", 1, m);
  return array_max(json_object_get(scn, "target"), "series", "t", 1, m);
}

/* Writes the UTF-8 encoding of the control picture for byte c (U+2400 +
 * c, U+2421 for DEL). */
static void control_picture(FILE *out, unsigned char c) {
  unsigned cp = c == 0x7f ? 0x2421 : 0x2400 + c;
  fputc(0xe0 | (cp >> 12), out);
  fputc(0x80 | ((cp >> 6) & 0x3f), out);
  fputc(0x80 | (cp & 0x3f), out);
}

void fl_rep_xml(FILE *out, const char *s, int attr) {
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    switch (*p) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    case '\t':
    case '\n':
    case '\r':
      if (attr)
        fprintf(out, "&#%d;", *p);
      else
        fputc(*p == '\r' ? '\n' : *p, out);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f) {
        control_picture(out, *p);
      } else if (p[0] == 0xef && p[1] == 0xbf &&
                 (p[2] == 0xbe || p[2] == 0xbf)) {
        /* U+FFFE and U+FFFF are not XML characters. */
        fputs("\xef\xbf\xbd", out);
        p += 2;
      } else {
        fputc(*p, out);
      }
    }
  }
}

void fl_rep_xmlf(FILE *out, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fl_rep_xml(out, buf, 0);
}

void fl_rep_md(FILE *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    if (strchr("\\`*_[]<|~&", *p) != NULL) {
      fputc('\\', out);
      fputc(*p, out);
    } else if (*p == '\n' || *p == '\r' || *p == '\t') {
      fputc(' ', out);
    } else if (*p < 0x20 || *p == 0x7f) {
      control_picture(out, *p);
    } else {
      fputc(*p, out);
    }
  }
}

void fl_rep_plain(FILE *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      fputc('?', out);
    } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
      fputc('?', out); /* C1 controls, e.g. U+009B (CSI) */
      p++;
    } else {
      fputc(*p, out);
    }
  }
}

size_t fl_rep_width(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
    n += (*p & 0xc0) != 0x80;
  return n;
}
