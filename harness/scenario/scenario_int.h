/*
 * What the files that load service and scenario files share:
 * yaml.c (walking a libyaml document: typed getters that report
 * FILE:LINE:COL errors, and ${VAR} expansion), service.c (the
 * service-file schema), timeline.c (phases and their faults) and
 * scenario.c (the scenario-file schema: traffic, timeline, expect). Nothing
 * outside these files includes it.
 */
#ifndef FL_SCENARIO_PRIV_H
#define FL_SCENARIO_PRIV_H

#include <stddef.h>
#include <yaml.h>

#include "scenario.h"

struct doc {
  const char *file;
  yaml_document_t yd;
  char *err;
  size_t errlen;
  int failed;  /* the item being loaded has failed: say nothing more of it */
  int nerrors; /* errors said, one line each in err */
};

/* At most this many errors of one file are reported, as a compiler does. */
#define FL_YAML_MAX_ERRORS 20

/* yaml.c: the document and typed access to its nodes. Every
 * function that can fail returns 0 or FL_EBADSCENARIO, with the failure's
 * message (FILE:LINE:COL: ...) added to d->err as a line of its own; a
 * second failure of the same item (a cascade) adds nothing. */
int fl_yaml_fail(struct doc *d, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* After an item (an endpoint, a phase, an expectation...) failed with rc:
 * 1 when loading may go on with the next one, to report its errors too
 * (the file still fails); 0 when it must stop (rc is not a reported
 * error, or enough were). */
int fl_yaml_recover(struct doc *d, int rc);
struct fl_pos fl_yaml_pos(const yaml_node_t *n);
yaml_node_t *fl_yaml_node(struct doc *d, int id);
const char *fl_yaml_kind_name(const yaml_node_t *n);
/* The scalar's text, or NULL for a list or mapping. */
const char *fl_yaml_scalar(const yaml_node_t *n);
int fl_yaml_want_scalar(struct doc *d, const yaml_node_t *n, const char *what,
                        const char **out);
int fl_yaml_want_kind(struct doc *d, const yaml_node_t *n, yaml_node_type_t t,
                      const char *what);
int fl_yaml_dup(struct doc *d, const yaml_node_t *n, const char *s, char **out);
int fl_yaml_check_keys(struct doc *d, const yaml_node_t *map, const char *where,
                       const char *allowed);
/* fl_yaml_want_scalar, then a copy of it in *out. */
int fl_yaml_string(struct doc *d, const yaml_node_t *n, const char *what,
                   char **out);
/* The pairs of a mapping, the items of a list; 0 for a scalar. */
size_t fl_yaml_count(const yaml_node_t *n);
/* fl_yaml_want_kind(t), then a zeroed array of `size`-byte elements for
 * what `n` holds, plus one to end it; NULL after failing (the caller then
 * returns FL_EBADSCENARIO). */
void *fl_yaml_array(struct doc *d, const yaml_node_t *n, yaml_node_type_t t,
                    const char *what, size_t size);
/* routes: of an http dependency, into dep->config (routes.c). */
struct fl_dep_decl;
int fl_service_load_routes(struct doc *d, const yaml_node_t *v,
                           struct fl_dep_decl *dep);
/* broadcast: of a ws dependency, into dep->config (routes.c). */
int fl_service_load_broadcast(struct doc *d, const yaml_node_t *v,
                              struct fl_dep_decl *dep);
/* The value of `key` in a mapping, or NULL. */
yaml_node_t *fl_yaml_get(struct doc *d, const yaml_node_t *map,
                         const char *key);
int fl_yaml_duration(struct doc *d, const yaml_node_t *n, const char *what,
                     double *out);
int fl_yaml_positive(struct doc *d, const yaml_node_t *n, const char *what,
                     double *out);
/* Parses the file into d (whose root is then a mapping); 0, -errno when
 * it cannot be read, or FL_EBADSCENARIO. On 0 the caller deletes d->yd. */
int fl_yaml_load_doc(const char *path, struct doc *d, char *err, size_t errlen);
/* How one kind of file becomes its struct: load() fills a zeroed object
 * of `size` bytes from the document; release() frees a half-filled one. */
struct fl_yaml_schema {
  size_t size;
  int (*load)(struct doc *d, void *obj);
  void (*release)(void *obj);
};
/* Reads `path` into a new object of `schema`: 0, -errno when the file
 * cannot be read, or FL_EBADSCENARIO; `err` says why. */
int fl_yaml_load_file(const char *path, const struct fl_yaml_schema *schema,
                      void **out, char *err, size_t errlen);
/* A new absolute path for `rel`, relative to the folder of `file`; NULL
 * with errno set on failure. */
char *fl_yaml_relative_to(const char *file, const char *rel);

/* timeline.c: one phase of the timeline, with its faults. */
int fl_sc_load_phase(struct doc *d, yaml_node_t *n, struct fl_phase *ph,
                     const struct fl_phase *sc_first_phase);

/* ws.c: WebSocket endpoints. is_ws_request: is the request node
 * "WS ..."? load_ws: the endpoint v (mapping) whose request is req. */
int fl_sc_is_ws_request(const yaml_node_t *n);
int fl_sc_load_ws(struct doc *d, yaml_node_t *v, yaml_node_t *req,
                  struct fl_endpoint_decl *e);

#endif
