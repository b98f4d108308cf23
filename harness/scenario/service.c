/*
 * Service files: how to start the target (command, dir, env), when it is
 * ready, and the dependencies it needs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "proxy/proxy.h"
#include "scenario_int.h"

/* The dependency's type: a kind of harness/deps/, named in its table. */
static int load_dep_kind(struct doc *d, const yaml_node_t *v, const char *name,
                         const fl_dep_kind_t **out) {
  char kinds[128];
  const char *type;
  yaml_node_t *t = fl_yaml_get(d, v, "type");
  fl_dep_kind_names(-1, kinds, sizeof(kinds));
  if (t == NULL)
    return fl_yaml_fail(d, v, "dependency '%s' needs a type (allowed: %s)",
                        name, kinds);
  int rc = fl_yaml_want_scalar(d, t, "type", &type);
  if (rc != 0)
    return rc;
  if ((*out = fl_dep_kind_find(type)) == NULL)
    return fl_yaml_fail(d, t, "unknown dependency type '%s' (allowed: %s)",
                        type, kinds);
  return 0;
}

/* address: for an external dependency only, and then required. */
static int load_dep_address(struct doc *d, const yaml_node_t *v,
                            struct fl_dep_decl *dep) {
  yaml_node_t *a = fl_yaml_get(d, v, "address");
  const char *addr;
  int rc;
  if (fl_dep_kind_managed(dep->kind))
    return a == NULL
               ? 0
               : fl_yaml_fail(d, a,
                              "a managed dependency gets its address from "
                              "faultline; 'address' is only for type external");
  if (a == NULL)
    return fl_yaml_fail(d, v,
                        "external dependency '%s' needs an address "
                        "(host:port)",
                        dep->name);
  if ((rc = fl_yaml_want_scalar(d, a, "address", &addr)) != 0 ||
      (rc = fl_yaml_dup(d, a, addr, &dep->address)) != 0)
    return rc;
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
    return fl_yaml_fail(d, a, "bad address '%s' (allowed: host:port)", addr);
  return 0;
}

/* protocol: for an external dependency, the protocol its proxy follows
 * (for protocol faults); a managed one speaks its kind's. */
static int load_dep_protocol(struct doc *d, const yaml_node_t *v,
                             struct fl_dep_decl *dep) {
  yaml_node_t *p = fl_yaml_get(d, v, "protocol");
  const char *name;
  char known[128];
  int rc;
  if (p == NULL)
    return 0;
  if (fl_dep_kind_managed(dep->kind))
    return fl_yaml_fail(d, p,
                        "a managed dependency speaks its type's protocol; "
                        "'protocol' is only for type external");
  if ((rc = fl_yaml_want_scalar(d, p, "protocol", &name)) != 0)
    return rc;
  fl_codec_names(known, sizeof(known));
  if (!fl_proxy_speaks(name))
    return fl_yaml_fail(d, p, "unknown protocol '%s' (allowed: %s)", name,
                        known);
  return fl_yaml_dup(d, p, name, &dep->protocol);
}

static int load_dep(struct doc *d, yaml_node_t *k, yaml_node_t *v,
                    struct fl_dep_decl *dep) {
  const char *name;
  int rc;
  if ((rc = fl_yaml_want_scalar(d, k, "a dependency name", &name)) != 0)
    return rc;
  for (const char *c = name; *c; c++)
    if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '_')
      return fl_yaml_fail(d, k,
                          "bad dependency name '%s' (allowed: lower-case "
                          "letters, digits and _)",
                          name);
  dep->pos = fl_yaml_pos(k);
  if ((rc = fl_yaml_dup(d, k, name, &dep->name)) != 0)
    return rc;
  if ((rc = fl_yaml_want_kind(d, v, YAML_MAPPING_NODE, "a dependency")) != 0 ||
      (rc = fl_yaml_check_keys(d, v, "a dependency",
                               "type address protocol routes broadcast")) !=
          0 ||
      (rc = load_dep_kind(d, v, name, &dep->kind)) != 0 ||
      (rc = load_dep_protocol(d, v, dep)) != 0 ||
      (rc = fl_service_load_routes(d, v, dep)) != 0 ||
      (rc = fl_service_load_broadcast(d, v, dep)) != 0)
    return rc;
  return load_dep_address(d, v, dep);
}

static int load_deps(struct doc *d, const yaml_node_t *n,
                     struct fl_service *s) {
  int rc = 0;
  if ((s->deps = fl_yaml_array(d, n, YAML_MAPPING_NODE, "dependencies",
                               sizeof(*s->deps))) == NULL)
    return FL_EBADSCENARIO;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++)
    if ((rc = load_dep(d, fl_yaml_node(d, p->key), fl_yaml_node(d, p->value),
                       &s->deps[s->ndeps++])) != 0 &&
        !fl_yaml_recover(d, rc))
      return rc;
  return 0;
}

static int load_command(struct doc *d, const yaml_node_t *n,
                        struct fl_service *s) {
  int rc;
  if (n->type == YAML_SCALAR_NODE) {
    s->argv = calloc(4, sizeof(char *));
    if (s->argv == NULL || (s->argv[0] = strdup("/bin/sh")) == NULL ||
        (s->argv[1] = strdup("-c")) == NULL ||
        (s->argv[2] = strdup(fl_yaml_scalar(n))) == NULL)
      return fl_yaml_fail(d, n, "out of memory");
    if (s->argv[2][0] == '\0')
      return fl_yaml_fail(d, n, "command is empty");
    return 0;
  }
  if ((s->argv = fl_yaml_array(d, n, YAML_SEQUENCE_NODE, "command",
                               sizeof(char *))) == NULL)
    return FL_EBADSCENARIO;
  if (fl_yaml_count(n) == 0)
    return fl_yaml_fail(d, n, "command is an empty list");
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start;
       it < n->data.sequence.items.top; it++)
    if ((rc = fl_yaml_string(d, fl_yaml_node(d, *it), "each command word",
                             &s->argv[i++])) != 0)
      return rc;
  return 0;
}

/* env: { NAME: VALUE }; each value's ${...} must expand (checked now,
 * expanded when the target starts). */
static int load_env(struct doc *d, const yaml_node_t *n, struct fl_service *s) {
  int rc = 0;
  if ((s->env = fl_yaml_array(d, n, YAML_MAPPING_NODE, "env",
                              sizeof(*s->env))) == NULL)
    return FL_EBADSCENARIO;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key), *val = fl_yaml_node(d, p->value);
    struct fl_kv *kv = &s->env[s->nenv++];
    kv->pos = fl_yaml_pos(val);
    if ((rc = fl_yaml_string(d, k, "an env name", &kv->key)) != 0 ||
        (rc = fl_yaml_string(d, val, "an env value", &kv->value)) != 0)
      return rc;
    char e[128];
    char *x = fl_expand(kv->value, NULL, NULL, e, sizeof(e));
    if (x == NULL)
      return fl_yaml_fail(d, val, "%s", e);
    free(x);
  }
  return 0;
}

/* ready: { http: /path | tcp: ..., timeout: DURATION } */
static int load_ready(struct doc *d, const yaml_node_t *n,
                      struct fl_service *s) {
  int rc;
  if ((rc = fl_yaml_want_kind(d, n, YAML_MAPPING_NODE, "ready")) != 0 ||
      (rc = fl_yaml_check_keys(d, n, "ready", "http tcp timeout")) != 0)
    return rc;
  yaml_node_t *h = fl_yaml_get(d, n, "http"), *t = fl_yaml_get(d, n, "tcp"),
              *to = fl_yaml_get(d, n, "timeout");
  if (h != NULL && t != NULL)
    return fl_yaml_fail(d, t, "ready takes http or tcp, not both");
  if (h != NULL) {
    const char *v;
    if ((rc = fl_yaml_want_scalar(d, h, "ready.http", &v)) != 0)
      return rc;
    if (v[0] != '/')
      return fl_yaml_fail(d, h,
                          "bad ready.http '%s' (allowed: a path such as "
                          "/health)",
                          v);
    if ((rc = fl_yaml_dup(d, h, v, &s->ready_http)) != 0)
      return rc;
  }
  if (to != NULL &&
      (rc = fl_yaml_duration(d, to, "ready.timeout", &s->ready_timeout)) != 0)
    return rc;
  return 0;
}

static int load_service(struct doc *d, void *obj) {
  struct fl_service *s = obj;
  yaml_node_t *root = yaml_document_get_root_node(&d->yd), *n;
  const char *v;
  int rc = fl_yaml_dup(d, NULL, d->file, &s->file);
  if (rc != 0 ||
      (rc = fl_yaml_check_keys(d, root, "a service file",
                               "service description command dir env ready "
                               "dependencies")) != 0)
    return rc;
  if ((n = fl_yaml_get(d, root, "service")) == NULL)
    return fl_yaml_fail(d, root, "a service file needs 'service: NAME'");
  if ((rc = fl_yaml_string(d, n, "service", &s->name)) != 0)
    return rc;
  if ((n = fl_yaml_get(d, root, "command")) == NULL)
    return fl_yaml_fail(d, root, "service '%s' needs a command", s->name);
  if ((rc = load_command(d, n, s)) != 0)
    return rc;
  n = fl_yaml_get(d, root, "dir");
  if (n != NULL && (rc = fl_yaml_want_scalar(d, n, "dir", &v)) != 0)
    return rc;
  if ((s->dir = fl_yaml_relative_to(d->file, n ? v : ".")) == NULL)
    return fl_yaml_fail(d, n ? n : root, "cannot resolve dir: %s",
                        strerror(errno));
  /* env, ready and dependencies: each one's errors are reported. */
  s->ready_timeout = 30;
  if ((n = fl_yaml_get(d, root, "env")) != NULL &&
      (rc = load_env(d, n, s)) != 0 && !fl_yaml_recover(d, rc))
    return rc;
  if ((n = fl_yaml_get(d, root, "ready")) != NULL &&
      (rc = load_ready(d, n, s)) != 0 && !fl_yaml_recover(d, rc))
    return rc;
  if ((n = fl_yaml_get(d, root, "dependencies")) != NULL &&
      (rc = load_deps(d, n, s)) != 0 && !fl_yaml_recover(d, rc))
    return rc;
  return 0;
}

static void release_service(void *s) { fl_service_free(s); }

int fl_service_load(const char *path, struct fl_service **out, char *err,
                    size_t errlen) {
  static const struct fl_yaml_schema schema = {sizeof(struct fl_service),
                                               load_service, release_service};
  void *s;
  int rc = fl_yaml_load_file(path, &schema, &s, err, errlen);
  *out = s;
  return rc;
}

void fl_service_free(struct fl_service *s) {
  if (s == NULL)
    return;
  free(s->file);
  free(s->name);
  for (size_t i = 0; s->argv && s->argv[i]; i++)
    free(s->argv[i]);
  free(s->argv);
  free(s->dir);
  for (size_t i = 0; i < s->nenv; i++) {
    free(s->env[i].key);
    free(s->env[i].value);
  }
  free(s->env);
  free(s->ready_http);
  for (size_t i = 0; i < s->ndeps; i++) {
    free(s->deps[i].name);
    free(s->deps[i].address);
    free(s->deps[i].protocol);
    free(s->deps[i].config);
  }
  free(s->deps);
  free(s);
}
