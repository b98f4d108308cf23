/*
 * Sharding a suite over CI jobs: `faultline run --shard I/N` takes a
 * deterministic share of the scenario files, balanced by the length of
 * their timelines, so that N jobs given the same files split them without
 * talking to each other and finish at about the same time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

struct item {
  int file;       /* index into the caller's list */
  double seconds; /* the timeline's length */
  const char *name;
};

/* Longest first; equal lengths by file name, then by position, so that the
 * order (and so the split) does not depend on how the files were listed. */
static int by_length(const void *a, const void *b) {
  const struct item *x = a, *y = b;
  if (x->seconds != y->seconds)
    return x->seconds > y->seconds ? -1 : 1;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : x->file - y->file;
}

static int timeline_length(const char *file, double *seconds, char *err,
                           size_t errlen) {
  struct fl_scenario *sc = NULL;
  int rc = fl_scenario_load(file, &sc, err, errlen);
  if (rc != 0)
    return rc;
  *seconds = 0;
  for (size_t i = 0; i < sc->nphases; i++)
    *seconds += sc->phases[i].duration;
  fl_scenario_free(sc);
  return 0;
}

/* Greedy longest-processing-time: each file, longest first, goes to the
 * shard with the least time so far (the lowest-numbered on a tie). */
static void assign(const struct item *items, int n, int count, int index,
                   int *keep) {
  double *load = calloc((size_t)count, sizeof(*load));
  for (int i = 0; i < n; i++) {
    int best = 0;
    for (int s = 1; load != NULL && s < count; s++)
      if (load[s] < load[best])
        best = s;
    if (load != NULL)
      load[best] += items[i].seconds;
    else
      best = i % count; /* out of memory: still deterministic */
    keep[items[i].file] = best == index - 1;
  }
  free(load);
}

int fl_shard_select(char *const *files, int nfiles, int index, int count,
                    int *keep, char *err, size_t errlen) {
  if (count < 1 || index < 1 || index > count) {
    snprintf(err, errlen, "bad shard %d/%d (allowed: I/N with 1 <= I <= N)",
             index, count);
    return -EINVAL;
  }
  struct item *items =
      calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof(*items));
  if (items == NULL)
    return -ENOMEM;
  for (int i = 0; i < nfiles; i++) {
    const char *slash = strrchr(files[i], '/');
    items[i] = (struct item){i, 0, slash ? slash + 1 : files[i]};
    int rc = timeline_length(files[i], &items[i].seconds, err, errlen);
    if (rc != 0) {
      free(items);
      return rc;
    }
  }
  qsort(items, (size_t)nfiles, sizeof(*items), by_length);
  assign(items, nfiles, count, index, keep);
  free(items);
  return 0;
}
