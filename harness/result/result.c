/*
 * A judged run's lifetime: creating and freeing it, and the verdicts'
 * names (one table, read by the writer and the progress lines).
 */
#include <stdlib.h>

#include "result.h"

static const char *const verdict_names[FL_VERDICT_COUNT] = {
    [FL_VERDICT_PASS] = "PASS",
    [FL_VERDICT_INCONCLUSIVE] = "INCONCLUSIVE",
    [FL_VERDICT_FAIL] = "FAIL",
    [FL_VERDICT_ERROR] = "ERROR",
};

const char *fl_verdict_name(enum fl_verdict v) {
  return v < FL_VERDICT_COUNT ? verdict_names[v] : "ERROR";
}

const char *fl_result_verdict(const struct fl_result_scenario *s) {
  return s != NULL ? fl_verdict_name(s->verdict) : "ERROR";
}

struct fl_result_scenario *fl_result_new(void) {
  struct fl_result_scenario *s = calloc(1, sizeof(*s));
  if (s != NULL) {
    s->verdict = FL_VERDICT_ERROR;
    s->target.pid = -1;
  }
  return s;
}

void fl_result_free(struct fl_result_scenario *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nendpoints; i++) {
    free(s->endpoints[i].series);
    if (s->endpoints[i].ws != NULL)
      free(s->endpoints[i].ws->series);
    free(s->endpoints[i].ws);
  }
  free(s->phases);
  free(s->faults);
  free(s->endpoints);
  free(s->expectations);
  free(s->target.series);
  free(s->target.log_tail);
  free(s->injections);
  free(s);
}
