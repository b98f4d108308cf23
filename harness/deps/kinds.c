/*
 * The kinds of dependency: one ops table each (deps_int.h), listed here
 * once. A new kind is its own file with its table, plus one line below.
 */
#define _GNU_SOURCE
#include "deps_int.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

extern const struct fl_dep_kind fl_dep_postgres_kind, fl_dep_redis_kind,
    fl_dep_http_kind, fl_dep_ws_kind;

/* An address only: nothing to run, no fault applies. */
const struct fl_dep_kind fl_dep_external_kind = {.name = "external"};

static const struct fl_dep_kind *const kinds[] = {
    &fl_dep_postgres_kind, &fl_dep_redis_kind,    &fl_dep_http_kind,
    &fl_dep_ws_kind,       &fl_dep_external_kind,
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

const fl_dep_kind_t *fl_dep_kind_find(const char *name) {
  for (size_t i = 0; name != NULL && i < NKINDS; i++)
    if (strcmp(kinds[i]->name, name) == 0)
      return kinds[i];
  return NULL;
}

const char *fl_dep_kind_name(const fl_dep_kind_t *k) { return k->name; }

int fl_dep_kind_managed(const fl_dep_kind_t *k) {
  return k->spawn_server != NULL;
}

int fl_dep_kind_resets(const fl_dep_kind_t *k) { return k->reset != NULL; }

int fl_dep_kind_supports(const fl_dep_kind_t *k, enum fl_dep_fault f) {
  return (unsigned)f < 32 && (k->faults & FAULT_BIT(f)) != 0;
}

const char *fl_dep_kind_names(int fault, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < NKINDS; i++) {
    if (fault >= 0 && !fl_dep_kind_supports(kinds[i], (enum fl_dep_fault)fault))
      continue;
    int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", kinds[i]->name);
    if (w < 0 || (size_t)w >= size - n)
      break;
    n += (size_t)w;
  }
  return buf;
}

/* Each folder in `dir`, and (depth 2) each folder in those: a run keeps
 * its servers' folders at the top, the pool (harness/run/pool.c) one
 * level down. */
static void reap_in(const char *dir, int depth) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
    char path[PATH_MAX];
    if (e->d_name[0] == '.' || e->d_type != DT_DIR ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
            sizeof(path))
      continue;
    for (size_t i = 0; i < NKINDS; i++)
      if (kinds[i]->reap != NULL)
        kinds[i]->reap(path);
    if (depth > 1)
      reap_in(path, depth - 1);
  }
  if (d != NULL)
    closedir(d);
}

void fl_dep_reap_folder(const char *workdir) { reap_in(workdir, 2); }
