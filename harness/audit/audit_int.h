/* Discovery's insides, shared by discover.c (the session and its request
 * windows), endpoints.c (where the endpoints come from), http.c (one
 * request) and print.c (the result on a terminal, and freeing it). */
#ifndef FL_AUDIT_INT_H
#define FL_AUDIT_INT_H

#include <stddef.h>

#include "audit.h"

/* One blocking request (libcurl easy) within timeout seconds. *status
 * gets the HTTP status (0 on a transport error), *secs the time taken;
 * when body_out is not NULL it gets the response body (the caller frees;
 * NULL on error). Returns 0, or -errno / FL_ESTART-like when the request
 * could not be made at all. */
int fl_audit_http(const char *base_url, const struct fl_audit_endpoint *e,
                  double timeout, int *status, double *secs, char **body_out);

/* Reads an --endpoints file into out[0..*n): FL_EBADSCENARIO with
 * FILE:LINE:COL in err when it is malformed, -errno when unreadable. */
int fl_audit_endpoints_load(const char *path, struct fl_audit_endpoint **out,
                            size_t *n, char *err, size_t errlen);
/* The endpoints an OpenAPI document (JSON text) declares, with path
 * parameters filled from examples or small integers and JSON bodies from
 * their schemas. FL_EBADSCENARIO with err when it is not one. */
int fl_audit_endpoints_openapi(const char *json, const char *where,
                               struct fl_audit_endpoint **out, size_t *n,
                               char *err, size_t errlen);
/* Gives every endpoint a short unique name (from its path and method)
 * when it has none. 0 or -ENOMEM. */
int fl_audit_name_endpoints(struct fl_audit_endpoint *e, size_t n);
void fl_audit_endpoint_free(struct fl_audit_endpoint *e);

/* Adds a use (kind, name copied) to *uses unless there already; 0 or
 * -ENOMEM. */
int fl_audit_add_use(struct fl_use **uses, size_t *n, enum fl_use_kind kind,
                     const char *name);

#endif
