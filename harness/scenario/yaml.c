/*
 * Walking a libyaml document (every node keeps its line and column): the
 * typed getters the schemas use, each failure reported as FILE:LINE:COL:
 * what was found, what is allowed. Also ${VAR} expansion.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "scenario_int.h"

int fl_yaml_fail(struct doc *d, const yaml_node_t *n, const char *fmt, ...) {
  if (d->failed)
    return FL_EBADSCENARIO;
  d->failed = 1;
  if (d->nerrors++ >= FL_YAML_MAX_ERRORS)
    return FL_EBADSCENARIO;
  size_t at = d->nerrors > 1 ? strlen(d->err) : 0;
  if (at > 0 && at + 1 < d->errlen)
    d->err[at++] = '\n';
  if (at >= d->errlen)
    return FL_EBADSCENARIO;
  int k = snprintf(d->err + at, d->errlen - at, "%s:%zu:%zu: ", d->file,
                   n ? n->start_mark.line + 1 : 1,
                   n ? n->start_mark.column + 1 : 1);
  if (k < 0 || (size_t)k >= d->errlen - at)
    return FL_EBADSCENARIO;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err + at + k, d->errlen - at - (size_t)k, fmt, ap);
  va_end(ap);
  return FL_EBADSCENARIO;
}

int fl_yaml_recover(struct doc *d, int rc) {
  if (rc != FL_EBADSCENARIO || !d->failed || d->nerrors >= FL_YAML_MAX_ERRORS)
    return 0;
  d->failed = 0;
  return 1;
}

struct fl_pos fl_yaml_pos(const yaml_node_t *n) {
  return (struct fl_pos){(int)n->start_mark.line + 1,
                         (int)n->start_mark.column + 1};
}

yaml_node_t *fl_yaml_node(struct doc *d, int id) {
  return yaml_document_get_node(&d->yd, id);
}

const char *fl_yaml_kind_name(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}

const char *fl_yaml_scalar(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                     : NULL;
}

int fl_yaml_want_scalar(struct doc *d, const yaml_node_t *n, const char *what,
                        const char **out) {
  if ((*out = fl_yaml_scalar(n)) == NULL)
    return fl_yaml_fail(d, n, "%s must be a scalar, found %s", what,
                        fl_yaml_kind_name(n));
  return 0;
}

int fl_yaml_want_kind(struct doc *d, const yaml_node_t *n, yaml_node_type_t t,
                      const char *what) {
  if (n->type == t)
    return 0;
  return fl_yaml_fail(d, n, "%s must be %s, found %s", what,
                      t == YAML_MAPPING_NODE ? "a mapping" : "a list",
                      fl_yaml_kind_name(n));
}

int fl_yaml_dup(struct doc *d, const yaml_node_t *n, const char *s,
                char **out) {
  if ((*out = strdup(s)) == NULL)
    return fl_yaml_fail(d, n, "out of memory");
  return 0;
}

/* Checks every key of a mapping against `allowed` (space-separated). */
int fl_yaml_check_keys(struct doc *d, const yaml_node_t *map, const char *where,
                       const char *allowed) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = fl_yaml_node(d, p->key);
    const char *key = fl_yaml_scalar(k);
    if (key == NULL)
      return fl_yaml_fail(d, k, "keys of %s must be scalars, found %s", where,
                          fl_yaml_kind_name(k));
    char buf[256];
    snprintf(buf, sizeof(buf), " %s ", allowed);
    char needle[128];
    snprintf(needle, sizeof(needle), " %s ", key);
    if (strstr(buf, needle) == NULL) {
      char list[256];
      snprintf(list, sizeof(list), "%s", allowed);
      for (char *c = list; *c; c++)
        if (*c == ' ')
          *c = ',';
      char pretty[512] = "";
      for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        snprintf(pretty + strlen(pretty), sizeof(pretty) - strlen(pretty),
                 "%s%s", pretty[0] ? ", " : "", tok);
      return fl_yaml_fail(d, k, "unknown key '%s' in %s (allowed: %s)", key,
                          where, pretty);
    }
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
      const char *prev = fl_yaml_scalar(fl_yaml_node(d, q->key));
      if (prev && strcmp(prev, key) == 0)
        return fl_yaml_fail(d, k, "duplicate key '%s' in %s", key, where);
    }
  }
  return 0;
}

int fl_yaml_string(struct doc *d, const yaml_node_t *n, const char *what,
                   char **out) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, what, &s);
  return rc != 0 ? rc : fl_yaml_dup(d, n, s, out);
}

size_t fl_yaml_count(const yaml_node_t *n) {
  if (n->type == YAML_MAPPING_NODE)
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (n->type == YAML_SEQUENCE_NODE)
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  return 0;
}

void *fl_yaml_array(struct doc *d, const yaml_node_t *n, yaml_node_type_t t,
                    const char *what, size_t size) {
  if (fl_yaml_want_kind(d, n, t, what) != 0)
    return NULL;
  void *p = calloc(fl_yaml_count(n) + 1, size);
  if (p == NULL)
    fl_yaml_fail(d, n, "out of memory");
  return p;
}

yaml_node_t *fl_yaml_get(struct doc *d, const yaml_node_t *map,
                         const char *key) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    const char *k = fl_yaml_scalar(fl_yaml_node(d, p->key));
    if (k && strcmp(k, key) == 0)
      return fl_yaml_node(d, p->value);
  }
  return NULL;
}

int fl_yaml_duration(struct doc *d, const yaml_node_t *n, const char *what,
                     double *out) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, what, &s);
  if (rc != 0)
    return rc;
  /* "250ms", "2s", "1.5s", "1m", or a bare number of seconds. */
  if (fl_parse_duration(s, strlen(s), FL_UNITS_BARE, out) != 0)
    return fl_yaml_fail(
        d, n,
        "bad duration '%s' for %s (allowed: a number with ms, s or "
        "m, e.g. 250ms, 2s, 1m)",
        s, what);
  return 0;
}

int fl_yaml_positive(struct doc *d, const yaml_node_t *n, const char *what,
                     double *out) {
  const char *s;
  int rc = fl_yaml_want_scalar(d, n, what, &s);
  if (rc != 0)
    return rc;
  /* "50", "50/s" (or "600/m"), up to a bound that keeps a typo from
   * flooding the target. */
  double v = 0;
  if (fl_parse_rate(s, strlen(s), &v) != 0 || v <= 0 || v > 100000)
    return fl_yaml_fail(
        d, n, "bad %s '%s' (allowed: a number above 0, e.g. 50)", what, s);
  *out = v;
  return 0;
}

/* Scenario and service files are a few kilobytes; the bounds keep a
 * hostile or mistaken file from costing minutes: libyaml's scanner is
 * quadratic in flow nesting (100 000 nested '[' took over 20 s). */
#define FL_YAML_MAX_BYTES (4u << 20)
#define FL_YAML_MAX_DEPTH 64
#define FL_YAML_MAX_NODES 50000
#define FL_YAML_MAX_ANCHORS 256
#define FL_STR_(x) #x
#define FL_STR(x) FL_STR_(x)

/* Reads the whole file into *buf (NUL-terminated), at most
 * FL_YAML_MAX_BYTES; a regular file is measured before it is read. */
static int read_all(const char *path, char **buf, size_t *len, char *err,
                    size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  int e = 0;
  /* A regular file's buffer is its size (plus one, to see it grew); a
   * pipe's is the limit. */
  size_t cap = FL_YAML_MAX_BYTES + 1;
  int regular = f != NULL && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
  if (f == NULL)
    e = errno;
  else if (regular && st.st_size > (off_t)FL_YAML_MAX_BYTES)
    e = EFBIG;
  else if (regular)
    cap = (size_t)st.st_size + 1;
  char *b = e == 0 ? malloc(cap + 1) : NULL;
  if (e == 0 && b == NULL)
    e = ENOMEM;
  size_t n = b != NULL ? fread(b, 1, cap, f) : 0;
  if (b != NULL && ferror(f))
    e = errno != 0 ? errno : EIO;
  else if (n > FL_YAML_MAX_BYTES)
    e = EFBIG;
  if (f != NULL)
    fclose(f);
  if (e == EFBIG)
    snprintf(err, errlen,
             "%s: too large (more than %u MB; a scenario or "
             "service file is a few kilobytes)",
             path, FL_YAML_MAX_BYTES >> 20);
  else if (e != 0)
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
  if (e != 0) {
    free(b);
    return -e;
  }
  b[n] = '\0';
  *buf = b;
  *len = n;
  return 0;
}

static int syntax_error(const char *path, const yaml_parser_t *p, char *err,
                        size_t errlen) {
  snprintf(err, errlen, "%s:%zu:%zu: not valid YAML: %s", path,
           p->problem_mark.line + 1, p->problem_mark.column + 1,
           p->problem ? p->problem : "parse error");
  return FL_EBADSCENARIO;
}

/* What the walk over the events counts. Nodes are weighed as the code
 * that reads the tree will visit them: an alias costs the size of the
 * node it names, so a few aliases of aliases cannot make it walk billions
 * of nodes. */
struct shape {
  long nodes;
  int depth;
  long open[FL_YAML_MAX_DEPTH + 1]; /* nodes counted when each level began */
  int anchor_of[FL_YAML_MAX_DEPTH + 1];
  int nanchors;
  char *anchor[FL_YAML_MAX_ANCHORS];
  long anchor_size[FL_YAML_MAX_ANCHORS];
};

/* Remembers an anchor's name; its index, or -1 past the table's end (an
 * alias of it then counts 1: the parser does not need more anchors than
 * this for files of the size allowed, and the bound is for the walk). */
static int name_anchor(struct shape *sh, const yaml_char_t *name, long size) {
  if (name == NULL || sh->nanchors == FL_YAML_MAX_ANCHORS)
    return -1;
  sh->anchor[sh->nanchors] = strdup((const char *)name);
  sh->anchor_size[sh->nanchors] = size;
  return sh->nanchors++;
}

static long alias_size(const struct shape *sh, const yaml_char_t *name) {
  for (int i = sh->nanchors - 1; i >= 0; i--)
    if (sh->anchor[i] != NULL && strcmp(sh->anchor[i], (const char *)name) == 0)
      return sh->anchor_size[i] > 0 ? sh->anchor_size[i] : 1;
  return 1;
}

/* Counts one event; the limit it breaks, or NULL. */
static const char *count_event(struct shape *sh, const yaml_event_t *ev) {
  const yaml_char_t *anchor = NULL;
  switch (ev->type) {
  case YAML_SEQUENCE_START_EVENT:
    anchor = ev->data.sequence_start.anchor;
    /* fall through */
  case YAML_MAPPING_START_EVENT:
    if (ev->type == YAML_MAPPING_START_EVENT)
      anchor = ev->data.mapping_start.anchor;
    if (sh->depth == FL_YAML_MAX_DEPTH)
      return "nested too deeply (more than " FL_STR(
          FL_YAML_MAX_DEPTH) " levels of lists and mappings)";
    sh->open[sh->depth] = sh->nodes++;
    sh->anchor_of[sh->depth++] = name_anchor(sh, anchor, 0);
    break;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    sh->depth--;
    if (sh->anchor_of[sh->depth] >= 0)
      sh->anchor_size[sh->anchor_of[sh->depth]] =
          sh->nodes - sh->open[sh->depth];
    break;
  case YAML_SCALAR_EVENT:
    sh->nodes++;
    name_anchor(sh, ev->data.scalar.anchor, 1);
    break;
  case YAML_ALIAS_EVENT:
    sh->nodes += alias_size(sh, ev->data.alias.anchor);
    break;
  default:
    break;
  }
  if (sh->nodes > FL_YAML_MAX_NODES)
    return "too many values (more than " FL_STR(
        FL_YAML_MAX_NODES) ", counting what aliases repeat)";
  return NULL;
}

/* Walks the events to check the syntax and bound the nesting and the
 * number of values before libyaml builds a tree; stops at the first
 * limit broken. */
static int check_shape(const char *path, const char *buf, size_t len, char *err,
                       size_t errlen) {
  yaml_parser_t p;
  yaml_event_t ev;
  struct shape *sh = calloc(1, sizeof(*sh));
  int rc = 0;
  if (sh == NULL) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -ENOMEM;
  }
  yaml_parser_initialize(&p);
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  for (int done = 0; !done && rc == 0;) {
    if (!yaml_parser_parse(&p, &ev)) {
      rc = syntax_error(path, &p, err, errlen);
      break;
    }
    const char *why = count_event(sh, &ev);
    if (why != NULL) {
      snprintf(err, errlen, "%s:%zu:%zu: %s", path, ev.start_mark.line + 1,
               ev.start_mark.column + 1, why);
      rc = FL_EBADSCENARIO;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  for (int i = 0; i < sh->nanchors; i++)
    free(sh->anchor[i]);
  free(sh);
  return rc;
}

static int parse_doc(const char *path, struct doc *d, char *err,
                     size_t errlen) {
  char *buf;
  size_t len;
  int rc = read_all(path, &buf, &len, err, errlen);
  if (rc != 0)
    return rc;
  rc = check_shape(path, buf, len, err, errlen);
  if (rc == 0) {
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &d->yd))
      rc = syntax_error(path, &p, err, errlen);
    yaml_parser_delete(&p);
  }
  free(buf);
  return rc;
}

int fl_yaml_load_doc(const char *path, struct doc *d, char *err,
                     size_t errlen) {
  memset(d, 0, sizeof(*d));
  d->file = path;
  d->err = err;
  d->errlen = errlen;
  int rc = parse_doc(path, d, err, errlen);
  if (rc != 0)
    return rc;
  yaml_node_t *root = yaml_document_get_root_node(&d->yd);
  if (root == NULL) {
    yaml_document_delete(&d->yd);
    snprintf(err, errlen,
             "%s:1:1: empty file (expected a mapping with "
             "'scenario:' or 'service:')",
             path);
    return FL_EBADSCENARIO;
  }
  if (root->type != YAML_MAPPING_NODE) {
    rc = fl_yaml_fail(d, root, "the file must be a mapping, found %s",
                      fl_yaml_kind_name(root));
    yaml_document_delete(&d->yd);
    return rc;
  }
  return 0;
}

int fl_yaml_load_file(const char *path, const struct fl_yaml_schema *schema,
                      void **out, char *err, size_t errlen) {
  struct doc d;
  *out = NULL;
  int rc = fl_yaml_load_doc(path, &d, err, errlen);
  if (rc != 0)
    return rc;
  void *obj = calloc(1, schema->size);
  rc = obj != NULL ? schema->load(&d, obj)
                   : fl_yaml_fail(&d, NULL, "out of memory");
  if (rc == 0 && d.nerrors > 0) /* items failed, and loading went on */
    rc = FL_EBADSCENARIO;
  yaml_document_delete(&d.yd);
  if (rc != 0) {
    if (obj != NULL)
      schema->release(obj);
    return rc;
  }
  *out = obj;
  return 0;
}

/* An absolute path for `rel`, relative to the folder of `file`. */
char *fl_yaml_relative_to(const char *file, const char *rel) {
  char *out = NULL;
  if (rel[0] == '/')
    return strdup(rel);
  char dir[PATH_MAX];
  if (realpath(file, dir) == NULL)
    return NULL;
  char *slash = strrchr(dir, '/');
  if (slash != NULL)
    *slash = '\0';
  if (asprintf(&out, "%s/%s", dir, rel) < 0)
    return NULL;
  return out;
}

int fl_yaml_kind(const char *path) {
  char err[FL_ERRLEN];
  struct doc d;
  int rc = fl_yaml_load_doc(path, &d, err, sizeof(err));
  if (rc != 0)
    return rc;
  yaml_node_t *root = yaml_document_get_root_node(&d.yd);
  int kind = fl_yaml_get(&d, root, "service") != NULL &&
             !fl_yaml_get(&d, root, "scenario");
  yaml_document_delete(&d.yd);
  return kind;
}

/* The value of the ${NAME} at p (p[0..1] is "${"); *end gets what follows
 * it. NULL, with err set, for a bad or unknown name. */
static const char *expand_var(const char *in, const char *p, const char **end,
                              const char *(*lookup)(const char *name,
                                                    void *arg),
                              void *arg, char *err, size_t errlen) {
  const char *close = strchr(p + 2, '}');
  char name[128];
  size_t n = close ? (size_t)(close - p - 2) : 0;
  if (close == NULL || n == 0 || n >= sizeof(name)) {
    snprintf(err, errlen, "unterminated or empty ${...} in '%s'", in);
    return NULL;
  }
  memcpy(name, p + 2, n);
  name[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_') {
      snprintf(err, errlen,
               "bad variable name '%s' in '%s' (allowed: "
               "letters, digits and _)",
               name, in);
      return NULL;
    }
  const char *val = lookup ? lookup(name, arg) : "";
  if (val == NULL)
    val = getenv(name);
  if (val == NULL)
    snprintf(err, errlen,
             "unknown variable ${%s} (not provided by "
             "faultline and not set in the environment)",
             name);
  *end = close + 1;
  return val;
}

/* Appends val to the growing string *out (len used, cap allocated).
 * 0, or -ENOMEM (then *out is freed). */
static int append(char **out, size_t *len, size_t *cap, const char *val) {
  size_t vl = strlen(val);
  if (*len + vl + 1 > *cap) {
    *cap = (*len + vl + 1) * 2;
    char *bigger = realloc(*out, *cap);
    if (bigger == NULL) {
      free(*out);
      *out = NULL;
      return -ENOMEM;
    }
    *out = bigger;
  }
  memcpy(*out + *len, val, vl);
  *len += vl;
  return 0;
}

char *fl_expand(const char *in,
                const char *(*lookup)(const char *name, void *arg), void *arg,
                char *err, size_t errlen) {
  size_t cap = strlen(in) + 64, len = 0;
  char *out = malloc(cap);
  for (const char *p = in; *p && out != NULL;) {
    const char *val;
    char one[2] = {0, 0};
    if (p[0] == '$' && p[1] == '$') {
      val = "$";
      p += 2;
    } else if (p[0] == '$' && p[1] == '{') {
      if ((val = expand_var(in, p, &p, lookup, arg, err, errlen)) == NULL) {
        free(out);
        return NULL;
      }
    } else {
      one[0] = *p++;
      val = one;
    }
    append(&out, &len, &cap, val);
  }
  if (out == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  out[len] = '\0';
  return out;
}
