/*
 * HTTP-date (RFC 9110 5.6.7), as a header(Retry-After) expectation checks
 * it; declared in expect.h.
 */
#define _GNU_SOURCE
#include "expect.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>

static const char *const day_short[7] = {"Mon", "Tue", "Wed", "Thu",
                                         "Fri", "Sat", "Sun"};
static const char *const day_long[7] = {"Monday",   "Tuesday", "Wednesday",
                                        "Thursday", "Friday",  "Saturday",
                                        "Sunday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

/* Exactly n digits at *s; advances past them. */
static int digits(const char **s, int n, int *v) {
  *v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*s)[i]))
      return -1;
    *v = *v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  return 0;
}

static int lit(const char **s, const char *w) {
  size_t n = strlen(w);
  if (strncmp(*s, w, n) != 0)
    return -1;
  *s += n;
  return 0;
}

static int month_name(const char **s, int *m) {
  for (int i = 0; i < 12; i++)
    if (lit(s, months[i]) == 0) {
      *m = i + 1;
      return 0;
    }
  return -1;
}

/* "HH:MM:SS" with a leap second allowed, as the RFC does. */
static int time_of_day(const char **s, int *h, int *mi, int *sec) {
  if (digits(s, 2, h) || lit(s, ":") || digits(s, 2, mi) || lit(s, ":") ||
      digits(s, 2, sec))
    return -1;
  return *h < 24 && *mi < 60 && *sec <= 60 ? 0 : -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, int m, int d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : n[m - 1];
}

/* RFC 850's two-digit year: the most recent year with those digits that
 * is not more than 50 years in the future. */
static int full_year(int yy) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  int cur = tm.tm_year + 1900;
  int y = cur / 100 * 100 + yy;
  return y > cur + 50 ? y - 100 : y;
}

int fl_http_date_parse(const char *s, long long *out) {
  int wd = -1, y = 0, m = 1, d = 0, h = 0, mi = 0, sec = 0, rc;
  size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
  for (int i = 0; i < 7; i++)
    if ((n == 3 && strncmp(s, day_short[i], 3) == 0) ||
        (n == strlen(day_long[i]) && strncmp(s, day_long[i], n) == 0))
      wd = i;
  if (wd < 0)
    return -EINVAL;
  const char *p = s + n;
  if (n == 3 && p[0] == ',') { /* Sun, 06 Nov 1994 08:49:37 GMT */
    rc = lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, " ") ||
         month_name(&p, &m) || lit(&p, " ") || digits(&p, 4, &y) ||
         lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " GMT");
  } else if (n > 3) { /* Sunday, 06-Nov-94 08:49:37 GMT */
    rc = lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, "-") ||
         month_name(&p, &m) || lit(&p, "-") || digits(&p, 2, &y) ||
         lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " GMT");
    if (rc == 0)
      y = full_year(y);
  } else { /* Sun Nov  6 08:49:37 1994 */
    rc = lit(&p, " ") || month_name(&p, &m) || lit(&p, " ");
    if (rc == 0 && p[0] == ' ') {
      p++;
      rc = digits(&p, 1, &d);
    } else if (rc == 0) {
      rc = digits(&p, 2, &d);
    }
    rc = rc || lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " ") ||
         digits(&p, 4, &y);
  }
  if (rc != 0 || *p != '\0' || d < 1 || d > days_in_month(y, m))
    return -EINVAL;
  long long days = days_from_civil(y, m, d);
  /* 1970-01-01 was a Thursday: index 3 from Monday. */
  if (((days % 7 + 7 + 3) % 7) != wd)
    return -EINVAL;
  *out = days * 86400 + h * 3600 + mi * 60 + sec;
  return 0;
}
