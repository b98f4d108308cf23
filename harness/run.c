/*
 * The runner: each scenario goes S_DEPS → S_TARGET → S_RUNNING →
 * S_DRAINING → S_TEARDOWN → S_DONE on one libuv loop, driven by callbacks
 * (dependency ready, readiness probe, timeline timer, traffic drained,
 * process exit). Any failure or a signal jumps to S_TEARDOWN, which always
 * ends every process it started and removes every temporary file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "faultspec.h"
#include "live.h"
#include "paths.h"
#include "run_priv.h"

extern char **environ;

#define KILL_GRACE_MS 5000
#define PROBE_EVERY_MS 100

struct suite {
  uv_loop_t loop;
  const struct fl_run_opts *o;
  struct srun *runs;
  size_t nruns, next, active, finished;
  uv_signal_t sigint, sigterm;
  uv_timer_t live;
  int interrupted;
  char shim[PATH_MAX];
  char setpriv[PATH_MAX];
};

static void teardown(struct srun *r);
static void run_next(struct suite *s);

static double since(uint64_t from_ns) {
  return (double)(uv_hrtime() - from_ns) / 1e9;
}

static void say(const struct srun *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct srun *r, const char *fmt, ...) {
  if (r->suite->o->quiet)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fl_live_say(r->sc->name, msg);
}

static void fail(struct srun *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct srun *r, const char *fmt, ...) {
  if (r->error[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    say(r, "error: %s", r->error);
  }
  teardown(r);
}

static int mkdir_p(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* ---- variables ---- */

static fl_dep_t *dep_by_name(const struct srun *r, const char *name) {
  for (size_t i = 0; i < r->ndeps; i++)
    if (r->deps[i] != NULL && strcmp(fl_dep_name(r->deps[i]), name) == 0)
      return r->deps[i];
  return NULL;
}

static const char *lookup(const char *name, void *arg) {
  struct srun *r = arg;
  static char buf[512];
  if (strcmp(name, "PORT") == 0) {
    snprintf(buf, sizeof(buf), "%d", r->port);
    return buf;
  }
  if (strcmp(name, "DATA_DIR") == 0)
    return r->datadir;
  for (size_t i = 0; i < r->ndeps; i++) {
    const char *dn = fl_dep_name(r->deps[i]);
    size_t n = strlen(dn);
    if (strncasecmp(name, dn, n) != 0 || name[n] != '_')
      continue;
    const char *what = name + n + 1;
    if (strcmp(what, "HOST") == 0)
      return fl_dep_host(r->deps[i]);
    if (strcmp(what, "PORT") == 0) {
      snprintf(buf, sizeof(buf), "%d", fl_dep_port(r->deps[i]));
      return buf;
    }
    if (strcmp(what, "ADDR") == 0) {
      snprintf(buf, sizeof(buf), "%s:%d", fl_dep_host(r->deps[i]),
               fl_dep_port(r->deps[i]));
      return buf;
    }
    if (strcmp(what, "URL") == 0)
      return fl_dep_url(r->deps[i]);
  }
  return NULL;
}

/* ---- faults ---- */

/* Builds each fault's rule now that addresses are known. */
static int resolve_faults(struct srun *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->sc->nphases; i++)
    n += r->sc->phases[i].nfaults;
  r->faults = calloc(n + 1, sizeof(*r->faults));
  if (r->faults == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < r->sc->nphases; i++)
    for (size_t k = 0; k < r->sc->phases[i].nfaults; k++) {
      const struct fl_fault_decl *d = &r->sc->phases[i].faults[k];
      struct fault_state *f = &r->faults[r->nfaults++];
      f->decl = d;
      f->phase = r->sc->phases[i].name;
      f->on_t = f->off_t = -1;
      f->dep = dep_by_name(r, d->target);
      snprintf(f->name, sizeof(f->name), "%s %s", d->action, d->target);
      if (d->kind == FL_FAULT_PROCESS) {
        snprintf(f->spec, sizeof(f->spec), "%s %s", d->action, d->target);
        continue;
      }
      char target[512], e[512];
      if (f->dep != NULL && strcmp(d->action, "dns") != 0) {
        snprintf(target, sizeof(target), "%s:%d", fl_dep_host(f->dep),
                 fl_dep_port(f->dep));
      } else {
        char *x = fl_expand(d->target, lookup, r, e, sizeof(e));
        if (x == NULL) {
          fail(r, "%s:%d:%d: %s", r->sc->file, d->pos.line, d->pos.col, e);
          return -EINVAL;
        }
        snprintf(target, sizeof(target), "%s", x);
        free(x);
      }
      if (snprintf(f->spec, sizeof(f->spec), "%s@%s%s", d->action, target,
                   d->options) >= (int)sizeof(f->spec)) {
        fail(r, "%s:%d:%d: the fault is too long", r->sc->file, d->pos.line,
             d->pos.col);
        return -EINVAL;
      }
      if (fl_spec_parse(f->spec, &f->rule, e, sizeof(e)) != 0) {
        fail(r, "%s:%d:%d: %s", r->sc->file, d->pos.line, d->pos.col, e);
        return -EINVAL;
      }
    }
  return 0;
}

static int cmp_event(const void *a, const void *b) {
  const struct timeline_event *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->on - y->on; /* offs before ons at the same instant */
}

static int build_timeline(struct srun *r) {
  size_t cap = 16;
  r->events = malloc(cap * sizeof(*r->events));
  r->phase_start = calloc(r->sc->nphases + 1, sizeof(double));
  if (r->events == NULL || r->phase_start == NULL)
    return -ENOMEM;
  double t = 0;
  size_t fi = 0;
  for (size_t i = 0; i < r->sc->nphases; i++) {
    const struct fl_phase *ph = &r->sc->phases[i];
    r->phase_start[i] = t;
    for (size_t k = 0; k < ph->nfaults; k++, fi++) {
      const struct fl_fault_decl *d = &ph->faults[k];
      double from = t + (d->at > 0 ? d->at : 0),
             to = t + (d->until >= 0 ? d->until : ph->duration);
      double step = d->every > 0 ? d->every : to - from;
      for (double on = from; on < to - 1e-9; on += 2 * step) {
        double off = on + step < to ? on + step : to;
        if (r->nevents + 2 > cap) {
          cap *= 2;
          struct timeline_event *bigger =
              realloc(r->events, cap * sizeof(*r->events));
          if (bigger == NULL)
            return -ENOMEM;
          r->events = bigger;
        }
        r->events[r->nevents++] = (struct timeline_event){on, 1, fi};
        r->events[r->nevents++] = (struct timeline_event){off, 0, fi};
      }
    }
    t += ph->duration;
  }
  r->phase_start[r->sc->nphases] = t;
  r->total = t;
  qsort(r->events, r->nevents, sizeof(*r->events), cmp_event);
  return 0;
}

static void harvest_rule(struct srun *r, struct fault_state *f) {
  struct fl_rule_view v;
  if (f->id != 0 && fl_control_rule(r->ctl, f->id, &v) >= 0) {
    f->matched += v.matched;
    f->delivered += v.injected;
  }
}

static void on_process_fault(fl_dep_t *dep, int rc, void *arg) {
  struct fault_state *f = arg;
  (void)dep;
  if (rc == 0 && f->on)
    f->delivered++;
}

static enum fl_dep_fault inverse(int fault) {
  switch (fault) {
  case FL_DEP_KILL:
  case FL_DEP_STOP:
    return FL_DEP_START;
  case FL_DEP_PAUSE:
    return FL_DEP_RESUME;
  case FL_DEP_SATURATE:
    return FL_DEP_UNSATURATE;
  default:
    return (enum fl_dep_fault) - 1;
  }
}

static void switch_fault(struct srun *r, struct fault_state *f, int on) {
  double now = r->traffic ? fl_traffic_now(r->traffic) : 0;
  if (on == f->on)
    return;
  if (f->decl->kind == FL_FAULT_PROCESS) {
    f->on = on;
    int what = on ? f->decl->process : (int)inverse(f->decl->process);
    if (what >= 0 && fl_dep_fault(f->dep, (enum fl_dep_fault)what,
                                  on ? on_process_fault : NULL, f) != 0)
      say(r, "warning: %s%s could not be applied: %s", on ? "" : "lifting ",
          f->name, fl_dep_error(f->dep));
  } else if (on) {
    int rc = fl_control_add(r->ctl, &f->rule, &f->id);
    if (rc != 0) {
      say(r, "warning: cannot install %s: %s", f->spec, fl_strerror(rc));
      return;
    }
    f->on = 1;
  } else {
    harvest_rule(r, f);
    fl_control_clear(r->ctl, f->id);
    f->id = 0;
    f->on = 0;
  }
  if (on) {
    f->switches++;
    if (f->on_t < 0)
      f->on_t = now;
  } else {
    f->off_t = now;
  }
  say(r, "t=%.2fs %s %s", now, on ? "on: " : "off:", f->spec);
}

/* ---- sampling ---- */

static void sample_target(struct srun *r) {
  if (!r->target_alive || r->traffic == NULL)
    return;
  char path[64];
  int pid = r->target.pid, fds = 0;
  snprintf(path, sizeof(path), "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    fds += e->d_name[0] != '.';
  closedir(d);
  long pages = 0, rss = 0;
  snprintf(path, sizeof(path), "/proc/%d/statm", pid);
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  if (r->nsamples == r->samples_cap) {
    size_t cap = r->samples_cap ? r->samples_cap * 2 : 64;
    struct sample *bigger = realloc(r->samples, cap * sizeof(*bigger));
    if (bigger == NULL)
      return;
    r->samples = bigger;
    r->samples_cap = cap;
  }
  r->samples[r->nsamples++] = (struct sample){
      fl_traffic_now(r->traffic), fds, rss * (sysconf(_SC_PAGESIZE) / 1024)};
}

static void on_sample(uv_timer_t *t) { sample_target(t->data); }

static void collect_injections(struct srun *r) {
  struct fl_event_view buf[256];
  for (;;) {
    int n = fl_control_events(r->ctl, &r->ring_since, buf, 256);
    if (n <= 0)
      break;
    struct fl_event_view *bigger =
        realloc(r->injections, (r->ninjections + (size_t)n) * sizeof(*buf));
    if (bigger == NULL)
      break;
    r->injections = bigger;
    memcpy(r->injections + r->ninjections, buf, (size_t)n * sizeof(*buf));
    r->ninjections += (size_t)n;
  }
}

/* ---- timeline ---- */

static void on_drained(void *arg) {
  struct srun *r = arg;
  r->t_end_ns = uv_hrtime();
  say(r, "traffic done");
  teardown(r);
}

static void end_traffic(struct srun *r) {
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].on)
      switch_fault(r, &r->faults[i], 0);
  sample_target(r);
  collect_injections(r);
  uv_timer_stop(&r->sampler);
  r->state = S_DRAINING;
  fl_traffic_stop(r->traffic, on_drained, r);
}

static void on_tick(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->state != S_RUNNING)
    return;
  double now = fl_traffic_now(r->traffic);
  while (r->next_event < r->nevents && r->events[r->next_event].t <= now) {
    const struct timeline_event *e = &r->events[r->next_event++];
    switch_fault(r, &r->faults[e->fault], e->on);
  }
  collect_injections(r);
  if (now >= r->total) {
    end_traffic(r);
    return;
  }
  double next = r->total;
  if (r->next_event < r->nevents && r->events[r->next_event].t < next)
    next = r->events[r->next_event].t;
  double wait = next - fl_traffic_now(r->traffic);
  uv_timer_start(&r->timer, on_tick, wait > 0 ? (uint64_t)(wait * 1000) : 0, 0);
}

static void begin_traffic(struct srun *r) {
  int rc = fl_traffic_new(&r->suite->loop, r->base_url, &r->traffic);
  if (rc != 0) {
    fail(r, "cannot set up traffic: %s", fl_strerror(rc));
    return;
  }
  static const char *const capture[] = {"Retry-After", NULL};
  for (size_t i = 0; i < r->sc->nendpoints; i++) {
    const struct fl_endpoint_decl *d = &r->sc->endpoints[i];
    struct fl_endpoint_spec e = {.name = d->name,
                                 .method = d->method,
                                 .path = d->path,
                                 .body = d->body,
                                 .headers = (const char *const *)d->headers,
                                 .rate = d->rate,
                                 .timeout = d->timeout,
                                 .capture = capture};
    if ((rc = fl_traffic_add(r->traffic, &e)) < 0) {
      fail(r, "cannot add endpoint %s: %s", d->name, fl_strerror(rc));
      return;
    }
  }
  if (build_timeline(r) != 0) {
    fail(r, "out of memory");
    return;
  }
  r->state = S_RUNNING;
  r->t_traffic_ns = uv_hrtime();
  if ((rc = fl_traffic_start(r->traffic)) != 0) {
    fail(r, "cannot start traffic: %s", fl_strerror(rc));
    return;
  }
  say(r, "target ready after %.1fs; traffic for %.1fs", since(r->t_begin_ns),
      r->total);
  sample_target(r);
  uv_timer_start(&r->sampler, on_sample, 1000, 1000);
  on_tick(&r->timer);
}

/* ---- the target ---- */

static void on_target_exit(uv_process_t *p, int64_t status, int sig) {
  struct srun *r = p->data;
  r->target_alive = 0;
  r->target_exits++;
  r->exit_code = status;
  r->exit_signal = sig;
  r->exit_t = r->traffic ? fl_traffic_now(r->traffic) : 0;
  uv_close((uv_handle_t *)p, NULL);
  uv_timer_stop(&r->killer);
  if (r->state == S_TARGET) {
    char how[64];
    if (sig != 0)
      snprintf(how, sizeof(how), "was killed by signal %d (%s)", sig,
               strsignal(sig));
    else
      snprintf(how, sizeof(how), "exited with status %lld", (long long)status);
    fail(r, "the target %s while starting; see %s", how, r->log_path);
    return;
  }
  if (r->state == S_RUNNING || r->state == S_DRAINING)
    say(r, "the target ended (%s %d) during the run", sig ? "signal" : "status",
        sig ? sig : (int)status);
  if (r->state == S_TEARDOWN)
    teardown(r);
}

static void on_probe(int status, void *arg) {
  struct srun *r = arg;
  r->probing = 0;
  if (r->state != S_TARGET)
    return;
  if (status >= 200 && status < 300)
    begin_traffic(r);
}

static int tcp_ready(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

static void on_ready_check(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->state != S_TARGET)
    return;
  if (since(r->t_begin_ns) > r->ready_deadline) {
    fail(r, "the target was not ready within %.0fs (%s %s); see %s",
         r->sv->ready_timeout, r->sv->ready_http ? "GET" : "TCP port",
         r->sv->ready_http ? r->sv->ready_http : "", r->log_path);
    return;
  }
  if (r->sv->ready_http == NULL) {
    if (tcp_ready(r->port)) {
      begin_traffic(r);
      return;
    }
  } else if (!r->probing) {
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", r->base_url, r->sv->ready_http);
    r->probing = 1;
    if (fl_http_probe(&r->suite->loop, url, 1.0, on_probe, r) != 0)
      r->probing = 0;
  }
  uv_timer_start(&r->timer, on_ready_check, PROBE_EVERY_MS, 0);
}

static char **target_env(struct srun *r, char *err, size_t errlen) {
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + r->sv->nenv + 3, sizeof(char *));
  if (env == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int skip = strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
               strncmp(environ[i], FL_CTL_ENV "=", sizeof(FL_CTL_ENV)) == 0;
    for (size_t j = 0; j < r->sv->nenv && !skip; j++) {
      size_t l = strlen(r->sv->env[j].key);
      skip = strncmp(environ[i], r->sv->env[j].key, l) == 0 &&
             environ[i][l] == '=';
    }
    if (!skip && (env[k++] = strdup(environ[i])) == NULL)
      goto oom;
  }
  for (size_t j = 0; j < r->sv->nenv; j++) {
    char *v = fl_expand(r->sv->env[j].value, lookup, r, err, errlen);
    if (v == NULL)
      goto bad;
    int rc = asprintf(&env[k], "%s=%s", r->sv->env[j].key, v);
    free(v);
    if (rc < 0)
      goto oom;
    k++;
  }
  if (asprintf(&env[k++], "LD_PRELOAD=%s", r->suite->shim) < 0 ||
      asprintf(&env[k++], "%s=%s", FL_CTL_ENV, fl_control_path(r->ctl)) < 0)
    goto oom;
  return env;
oom:
  snprintf(err, errlen, "out of memory");
bad:
  for (size_t i = 0; i < k; i++)
    free(env[i]);
  free(env);
  return NULL;
}

static void free_strv(char **v) {
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

/* A dependency that stream faults aim at is reached through a proxy for
 * the whole run: the shim redirects the target's connections to it, and
 * the proxy applies the faults' rules as they are switched. */
static int start_proxies(struct srun *r) {
  r->proxies = calloc(r->ndeps + 1, sizeof(*r->proxies));
  if (r->proxies == NULL) {
    fail(r, "out of memory");
    return -ENOMEM;
  }
  for (size_t i = 0; i < r->ndeps; i++) {
    int wanted = 0;
    for (size_t k = 0; k < r->nfaults; k++)
      wanted |= r->faults[k].dep == r->deps[i] &&
                r->faults[k].decl->kind == FL_FAULT_SHIM &&
                FL_ACT_IS_PROXY(r->faults[k].rule.action);
    if (!wanted)
      continue;
    struct sockaddr_in up = {.sin_family = AF_INET,
                             .sin_port =
                                 htons((uint16_t)fl_dep_port(r->deps[i]))};
    if (inet_pton(AF_INET, fl_dep_host(r->deps[i]), &up.sin_addr) != 1) {
      fail(r, "dependency %s: stream faults need an IPv4 address, not %s",
           fl_dep_name(r->deps[i]), fl_dep_host(r->deps[i]));
      return -EINVAL;
    }
    int rc = fl_proxy_start(&r->suite->loop, r->ctl,
                            (const struct sockaddr *)&up, &r->proxies[i]);
    if (rc != 0) {
      fail(r, "cannot start the proxy for %s: %s", fl_dep_name(r->deps[i]),
           fl_strerror(rc));
      return rc;
    }
    char target[96], e[256] = "";
    struct fl_rule rule;
    uint32_t id;
    snprintf(target, sizeof(target), "%s:%d", fl_dep_host(r->deps[i]),
             fl_dep_port(r->deps[i]));
    if (fl_proxy_redirect_rule(r->proxies[i], target, &rule, e, sizeof(e)) !=
            0 ||
        (rc = fl_control_add(r->ctl, &rule, &id)) != 0) {
      fail(r, "cannot redirect %s to its proxy: %s", fl_dep_name(r->deps[i]),
           e[0] ? e : fl_strerror(rc));
      return -EINVAL;
    }
    say(r, "%s reached through the proxy on 127.0.0.1:%d",
        fl_dep_name(r->deps[i]), fl_proxy_port(r->proxies[i]));
  }
  return 0;
}

static void start_target(struct srun *r) {
  char err[FL_ERRLEN];
  r->state = S_TARGET;
  if ((r->port = fl_free_port()) < 0) {
    fail(r, "no free loopback port for the target");
    return;
  }
  snprintf(r->base_url, sizeof(r->base_url), "http://127.0.0.1:%d", r->port);
  /* Faults marked 'at: start' are on before the target's first
   * instruction; the timeline's first switch-on then finds them on. */
  if (resolve_faults(r) != 0 || start_proxies(r) != 0)
    return;
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].decl->at < 0)
      switch_fault(r, &r->faults[i], 1);
  size_t argc = 0;
  while (r->sv->argv[argc] != NULL)
    argc++;
  /* setpriv makes the target die with us even if we are SIGKILLed. */
  int wrap = r->suite->setpriv[0] != '\0';
  char **argv = calloc(argc + 5, sizeof(char *));
  char **env = target_env(r, err, sizeof(err));
  if (argv == NULL || env == NULL) {
    free(argv);
    free_strv(env);
    fail(r, "%s: %s", r->sv->file, env == NULL ? err : "out of memory");
    return;
  }
  size_t k = 0;
  if (wrap) {
    argv[k++] = strdup(r->suite->setpriv);
    argv[k++] = strdup("--pdeathsig");
    argv[k++] = strdup("KILL");
    argv[k++] = strdup("--");
  }
  r->command[0] = '\0';
  for (size_t i = 0; i < argc; i++) {
    argv[k] = fl_expand(r->sv->argv[i], lookup, r, err, sizeof(err));
    if (argv[k] == NULL) {
      free_strv(argv);
      free_strv(env);
      fail(r, "%s: %s", r->sv->file, err);
      return;
    }
    size_t at = strlen(r->command);
    snprintf(r->command + at, sizeof(r->command) - at, "%s%s", at ? " " : "",
             argv[k]);
    k++;
  }
  if (snprintf(r->log_path, sizeof(r->log_path), "%s/target.log", r->outdir) >=
      (int)sizeof(r->log_path))
    r->log_path[0] = '\0';
  r->log_fd = open(r->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (r->log_fd < 0) {
    free_strv(argv);
    free_strv(env);
    fail(r, "cannot create %s: %s", r->log_path, strerror(errno));
    return;
  }
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_INHERIT_FD, .data.fd = r->log_fd},
      {.flags = UV_INHERIT_FD, .data.fd = r->log_fd}};
  uv_process_options_t po = {.file = argv[0],
                             .args = argv,
                             .env = env,
                             .cwd = r->sv->dir,
                             .exit_cb = on_target_exit,
                             .flags = UV_PROCESS_DETACHED,
                             .stdio = stdio,
                             .stdio_count = 3};
  r->target.data = r;
  int rc = uv_spawn(&r->suite->loop, &r->target, &po);
  free_strv(argv);
  free_strv(env);
  if (rc != 0) {
    uv_close((uv_handle_t *)&r->target, NULL);
    fail(r, "cannot start the target '%s' in %s: %s", r->sv->argv[0],
         r->sv->dir, uv_strerror(rc));
    return;
  }
  r->target_spawned = r->target_alive = 1;
  say(r, "target pid %d: %s", r->target.pid, r->command);
  r->ready_deadline = since(r->t_begin_ns) + r->sv->ready_timeout;
  uv_timer_start(&r->timer, on_ready_check, PROBE_EVERY_MS, 0);
}

/* ---- dependencies ---- */

static void on_dep_ready(fl_dep_t *dep, int rc, void *arg) {
  struct srun *r = arg;
  if (r->state != S_DEPS)
    return;
  if (rc != 0) {
    fail(r, "dependency %s did not start: %s", fl_dep_name(dep),
         fl_dep_error(dep));
    return;
  }
  say(r, "%s ready on %s:%d", fl_dep_name(dep), fl_dep_host(dep),
      fl_dep_port(dep));
  if (++r->deps_ready == r->ndeps)
    start_target(r);
}

static void begin(struct srun *r) {
  struct suite *s = r->suite;
  r->state = S_DEPS;
  r->t_begin_ns = uv_hrtime();
  time_t now = time(NULL);
  strftime(r->started_iso, sizeof(r->started_iso), "%Y-%m-%dT%H:%M:%SZ",
           gmtime(&now));
  uv_timer_init(&s->loop, &r->timer);
  uv_timer_init(&s->loop, &r->sampler);
  uv_timer_init(&s->loop, &r->killer);
  r->timer.data = r->sampler.data = r->killer.data = r;
  r->timers_open = 1;
  r->log_fd = -1;
  r->bh4.listen_fd = r->bh4.fill_fd = r->bh6.listen_fd = r->bh6.fill_fd = -1;

  char err[FL_ERRLEN];
  int rc;
  if ((rc = fl_scenario_check(r->sc, r->sv, err, sizeof(err))) != 0) {
    fail(r, "%s", err);
    return;
  }
  if ((rc = mkdir_p(r->outdir)) != 0) {
    fail(r, "cannot create %s: %s", r->outdir, strerror(-rc));
    return;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(r->workdir, sizeof(r->workdir), "%s/faultline-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(r->workdir) == NULL) {
    r->workdir[0] = '\0';
    fail(r, "cannot create a temporary folder: %s", strerror(errno));
    return;
  }
  chmod(r->workdir, 0755); /* postgres runs as its own user inside it */
  char ctl[PATH_MAX];
  if (snprintf(r->datadir, sizeof(r->datadir), "%s/data", r->workdir) >=
          (int)sizeof(r->datadir) ||
      snprintf(ctl, sizeof(ctl), "%s/control", r->workdir) >=
          (int)sizeof(ctl)) {
    fail(r, "TMPDIR is too long");
    return;
  }
  uint64_t seed = s->o->have_seed ? s->o->seed : r->sc->seed;
  if (mkdir(r->datadir, 0700) != 0 ||
      (rc = fl_control_create(ctl, seed, &r->ctl)) != 0) {
    fail(r, "cannot set up %s: %s", r->workdir,
         rc ? fl_strerror(rc) : strerror(errno));
    return;
  }
  if ((rc = fl_blackhole_open(AF_INET, &r->bh4)) != 0) {
    fail(r, "cannot open the listener that hang needs: %s", fl_strerror(rc));
    return;
  }
  fl_blackhole_open(AF_INET6, &r->bh6);
  fl_control_set_blackholes(r->ctl, &r->bh4.addr,
                            r->bh6.listen_fd >= 0 ? &r->bh6.addr : NULL);

  r->ndeps = r->sv->ndeps;
  r->deps = calloc(r->ndeps + 1, sizeof(*r->deps));
  if (r->deps == NULL) {
    fail(r, "out of memory");
    return;
  }
  size_t external = 0;
  for (size_t i = 0; i < r->ndeps; i++) {
    const struct fl_dep_decl *d = &r->sv->deps[i];
    if (d->type == FL_DEP_EXTERNAL) {
      rc = fl_dep_external(d->name, d->address, &r->deps[i]);
      external++;
    } else {
      rc = fl_dep_start(&s->loop, (enum fl_dep_type)d->type, d->name,
                        r->workdir, on_dep_ready, r, &r->deps[i]);
    }
    if (rc != 0) {
      fail(r, "cannot start dependency %s: %s", d->name,
           r->deps[i] ? fl_dep_error(r->deps[i]) : fl_strerror(rc));
      return;
    }
  }
  r->deps_ready = external;
  say(r, "starting (service %s, %zu dependencies)", r->sv->name, r->ndeps);
  if (r->deps_ready == r->ndeps)
    start_target(r);
}

/* ---- teardown ---- */

static void finish(struct srun *r) {
  if (r->ctl != NULL) {
    collect_injections(r);
    fl_control_remove(r->ctl);
    r->ctl = NULL;
  }
  fl_blackhole_close(&r->bh4);
  fl_blackhole_close(&r->bh6);
  if (r->log_fd >= 0)
    close(r->log_fd);
  r->log_fd = -1;
  fl_rm_tree_async(&r->suite->loop, r->workdir, NULL, NULL);
  if (r->t_end_ns == 0)
    r->t_end_ns = uv_hrtime();
  if (r->result == NULL)
    r->result = fl_result_scenario(r);
  r->state = S_DONE;
  say(r, "%s", fl_result_verdict(r->result));
  if (r->timers_open) {
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_close((uv_handle_t *)&r->sampler, NULL);
    uv_close((uv_handle_t *)&r->killer, NULL);
    r->timers_open = 0;
  }
  struct suite *s = r->suite;
  s->active--;
  s->finished++;
  run_next(s);
}

static void on_dep_freed(void *arg) {
  struct srun *r = arg;
  if (++r->deps_freed == r->ndeps)
    finish(r);
}

static void on_traffic_freed(void *arg) {
  struct srun *r = arg;
  r->traffic_closing = 0;
  teardown(r);
}

static void on_kill_deadline(uv_timer_t *t) {
  struct srun *r = t->data;
  if (r->target_alive)
    kill(-r->target.pid, SIGKILL);
}

/* Ends what is running, one step per call: every callback that completes a
 * step calls it again. */
static void teardown(struct srun *r) {
  if (r->state == S_DONE)
    return;
  if (r->state != S_TEARDOWN) {
    r->state = S_TEARDOWN;
    uv_timer_stop(&r->timer);
    uv_timer_stop(&r->sampler);
    if (r->traffic != NULL && r->ctl != NULL) {
      for (size_t i = 0; i < r->nfaults; i++)
        if (r->faults[i].on && r->faults[i].decl->kind != FL_FAULT_PROCESS)
          switch_fault(r, &r->faults[i], 0);
      collect_injections(r);
    }
  }
  if (r->target_alive) {
    if (!uv_is_active((uv_handle_t *)&r->killer)) {
      kill(-r->target.pid, SIGTERM);
      uv_timer_start(&r->killer, on_kill_deadline, KILL_GRACE_MS, 0);
    }
    return; /* on_target_exit calls us again */
  }
  if (r->traffic_closing)
    return; /* on_traffic_freed calls us again */
  if (r->traffic != NULL) {
    /* The records go with the traffic object: judge first. */
    r->result = fl_result_scenario(r);
    fl_traffic_t *t = r->traffic;
    r->traffic = NULL;
    r->traffic_closing = 1;
    fl_traffic_free(t, on_traffic_freed, r);
    return;
  }
  for (size_t i = 0; r->proxies != NULL && i < r->ndeps; i++)
    if (r->proxies[i] != NULL) {
      fl_proxy_close(r->proxies[i]);
      r->proxies[i] = NULL;
    }
  if (r->deps_freed < r->ndeps && r->deps != NULL) {
    size_t n = r->ndeps;
    for (size_t i = 0; i < n; i++) {
      fl_dep_t *d = r->deps[i];
      r->deps[i] = NULL;
      if (d != NULL)
        fl_dep_free(d, on_dep_freed, r);
      else
        on_dep_freed(r);
    }
    return;
  }
  finish(r);
}

/* ---- the suite ---- */

static void on_signal(uv_signal_t *h, int sig) {
  struct suite *s = h->data;
  if (s->interrupted++) {
    fprintf(stderr, "faultline: second signal, killing everything\n");
    for (size_t i = 0; i < s->nruns; i++)
      if (s->runs[i].target_alive)
        kill(-s->runs[i].target.pid, SIGKILL);
    return;
  }
  fprintf(stderr, "faultline: %s: stopping and cleaning up\n", strsignal(sig));
  for (size_t i = 0; i < s->nruns; i++) {
    struct srun *r = &s->runs[i];
    if (r->state != S_NEW && r->state != S_DONE)
      fail(r, "interrupted by %s", strsignal(sig));
  }
  s->next = s->nruns; /* start nothing more */
  run_next(s);
}

static void on_live(uv_timer_t *t) {
  struct suite *s = t->data;
  fl_live_draw(s->runs, s->nruns);
}

static void run_next(struct suite *s) {
  int jobs = s->o->jobs > 0 ? s->o->jobs : 1;
  while (!s->interrupted && s->next < s->nruns && s->active < (size_t)jobs) {
    struct srun *r = &s->runs[s->next++];
    s->active++;
    begin(r);
  }
  if (s->active == 0 && (s->next >= s->nruns || s->interrupted)) {
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->live, NULL);
    if (!s->o->quiet)
      fl_live_end();
  }
}

static int load_runs(struct suite *s, char *const *files, int nfiles, char *err,
                     size_t errlen) {
  s->runs = calloc((size_t)nfiles, sizeof(*s->runs));
  if (s->runs == NULL)
    return -ENOMEM;
  for (int i = 0; i < nfiles; i++) {
    struct srun *r = &s->runs[s->nruns];
    r->suite = s;
    int rc = fl_scenario_load(files[i], &r->sc, err, errlen);
    if (rc != 0)
      return rc;
    s->nruns++;
    const char *svc =
        s->o->service_file ? s->o->service_file : r->sc->service_file;
    if (svc == NULL) {
      snprintf(err, errlen,
               "%s: no service to run against (add 'service: FILE' or pass "
               "--service FILE)",
               files[i]);
      return FL_EBADSCENARIO;
    }
    if ((rc = fl_service_load(svc, &r->sv, err, errlen)) != 0)
      return rc;
    if ((rc = fl_scenario_check(r->sc, r->sv, err, errlen)) != 0)
      return rc;
    /* One output folder per scenario, named after it (and its service
     * when the same scenario appears twice). */
    snprintf(r->outdir, sizeof(r->outdir), "%s/%s", s->o->out_dir, r->sc->name);
    for (size_t j = 0; j + 1 < s->nruns; j++)
      if (strcmp(s->runs[j].outdir, r->outdir) == 0) {
        snprintf(r->outdir, sizeof(r->outdir), "%s/%s-%s-%d", s->o->out_dir,
                 r->sc->name, r->sv->name, i);
        break;
      }
  }
  return 0;
}

static void free_runs(struct suite *s) {
  for (size_t i = 0; i < s->nruns; i++) {
    struct srun *r = &s->runs[i];
    fl_scenario_free(r->sc);
    fl_service_free(r->sv);
    free(r->deps);
    free(r->proxies);
    free(r->faults);
    free(r->events);
    free(r->phase_start);
    free(r->samples);
    free(r->injections);
    json_decref(r->result);
  }
  free(s->runs);
}

int fl_run_suite(char *const *files, int nfiles, const struct fl_run_opts *o,
                 json_t **result, char *err, size_t errlen) {
  struct suite s;
  memset(&s, 0, sizeof(s));
  s.o = o;
  *result = NULL;
  int rc = load_runs(&s, files, nfiles, err, errlen);
  if (rc == 0 && fl_find_shim(s.shim, sizeof(s.shim)) != 0) {
    snprintf(err, errlen,
             "libfaultline-preload.so not found beside the "
             "faultline binary (set FAULTLINE_PRELOAD to its path)");
    rc = FL_ENOSHIM;
  }
  if (rc != 0) {
    free_runs(&s);
    return rc;
  }
  if (fl_find_program("setpriv", s.setpriv, sizeof(s.setpriv)) != 0)
    s.setpriv[0] = '\0';
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&s.loop);
  uv_signal_init(&s.loop, &s.sigint);
  uv_signal_init(&s.loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_timer_init(&s.loop, &s.live);
  s.live.data = &s;
  if (!o->quiet && fl_live_tty())
    uv_timer_start(&s.live, on_live, 500, 500);

  time_t now = time(NULL);
  char started[32];
  strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  uint64_t t0 = uv_hrtime();
  run_next(&s);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  uv_loop_close(&s.loop);

  json_t *list = json_array();
  for (size_t i = 0; i < s.nruns; i++)
    if (s.runs[i].result != NULL)
      json_array_append(list, s.runs[i].result);
  *result = fl_result_suite(list, started, since(t0));
  int interrupted = s.interrupted;
  free_runs(&s);
  return interrupted ? -EINTR : 0;
}
