/*
 * The target process: the variables its command and environment may use,
 * spawning it under the shim, waiting until it is ready (HTTP or TCP), its
 * exit, and sampling its open descriptors and memory from /proc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "run_int.h"

extern char **environ;

#define PROBE_EVERY_MS 100

const char *fl_target_lookup(const char *name, void *arg) {
  struct srun *r = arg;
  static char buf[512];
  if (strcmp(name, "PORT") == 0) {
    snprintf(buf, sizeof(buf), "%d", r->port);
    return buf;
  }
  if (strcmp(name, "DATA_DIR") == 0)
    return r->x->datadir;
  for (size_t i = 0; i < r->ndeps; i++) {
    const char *dn = fl_dep_name(r->deps[i]);
    size_t n = strlen(dn);
    if (strncasecmp(name, dn, n) != 0 || name[n] != '_')
      continue;
    /* Another dependency's name may start with this one's ("db_x"). */
    const char *v = fl_dep_var(r->deps[i], name + n + 1, buf, sizeof(buf));
    if (v != NULL)
      return v;
  }
  return NULL;
}

void fl_target_sample(struct srun *r) {
  if (!r->target_alive || r->traffic == NULL)
    return;
  struct fl_result_sample s = {.t = fl_traffic_now(r->traffic)};
  if (fl_target_count_fds(r, &s) != 0)
    return;
  if (r->nsamples == r->samples_cap) {
    size_t cap = r->samples_cap ? r->samples_cap * 2 : 64;
    struct fl_result_sample *bigger =
        realloc(r->samples, cap * sizeof(*bigger));
    if (bigger == NULL)
      return;
    r->samples = bigger;
    r->samples_cap = cap;
  }
  r->samples[r->nsamples++] = s;
}

void fl_target_on_sample(uv_timer_t *t) { fl_target_sample(t->data); }

/* The first attempt's handle is closed: the control start may begin. */
static void on_target_closed(uv_handle_t *h) { fl_start_closed(h->data); }

static void on_target_exit(uv_process_t *p, int64_t status, int sig) {
  struct srun *r = p->data;
  fl_tlog_drain(r->tlog);
  r->target_alive = 0;
  r->target_exits++;
  r->exit_code = status;
  r->exit_signal = sig;
  r->exit_t = r->traffic ? fl_traffic_now(r->traffic) : 0;
  uv_close((uv_handle_t *)p, on_target_closed);
  uv_timer_stop(&r->killer);
  if (r->state == S_TARGET && r->control != 1) {
    char how[64];
    if (sig != 0)
      snprintf(how, sizeof(how), "was killed by signal %d (%s)", sig,
               strsignal(sig));
    else
      snprintf(how, sizeof(how), "exited with status %lld", (long long)status);
    fl_start_failed(r, how);
    return;
  }
  if (r->state == S_RUNNING || r->state == S_DRAINING)
    fl_run_say(r, "the target ended (%s %d) during the run",
               sig ? "signal" : "status", sig ? sig : (int)status);
  if (r->state == S_TEARDOWN)
    fl_run_teardown(r);
}

static void on_probe(int status, void *arg) {
  struct srun *r = arg;
  r->probing = 0;
  if (r->state != S_TARGET)
    return;
  if (status >= 200 && status < 300)
    fl_start_ready(r);
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
  if (r->state != S_TARGET || r->control == 1)
    return;
  if (fl_run_since(r->t_begin_ns) > r->ready_deadline) {
    char how[128];
    snprintf(how, sizeof(how), "was not ready within %.0fs (%s%s)",
             r->sv->ready_timeout, r->sv->ready_http ? "GET " : "TCP port",
             r->sv->ready_http ? r->sv->ready_http : "");
    fl_start_failed(r, how);
    return;
  }
  if (r->sv->ready_http == NULL) {
    if (tcp_ready(r->port)) {
      fl_start_ready(r);
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
    char *v = fl_expand(r->sv->env[j].value, fl_target_lookup, r, err, errlen);
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

/* The port, and the faults marked 'at: start' on before the target's
 * first instruction (the timeline's first switch-on then finds them on).
 * 0, or the run has failed. */
static int prepare(struct srun *r) {
  if ((r->port = fl_free_port()) < 0) {
    fl_run_fail(r, "no free loopback port for the target");
    return -1;
  }
  snprintf(r->base_url, sizeof(r->base_url), "http://127.0.0.1:%d", r->port);
  if (fl_timeline_resolve_faults(r) != 0 || fl_timeline_start_proxies(r) != 0)
    return -1;
  for (size_t i = 0; i < r->nfaults; i++)
    if (r->faults[i].decl->at < 0)
      fl_timeline_switch(r, &r->faults[i], 1);
  return 0;
}

/* The service's command, expanded, behind setpriv when we have it (the
 * target then dies with us even if we are SIGKILLed); r->x->command gets it
 * as one line. NULL with `err` set. */
static char **target_argv(struct srun *r, char *err, size_t errlen) {
  size_t argc = 0;
  while (r->sv->argv[argc] != NULL)
    argc++;
  char **argv = calloc(argc + 5, sizeof(char *));
  if (argv == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  size_t k = 0;
  if (r->suite->setpriv[0] != '\0') {
    const char *wrap[] = {r->suite->setpriv, "--pdeathsig", "KILL", "--"};
    for (size_t i = 0; i < 4; i++)
      argv[k++] = strdup(wrap[i]);
  }
  r->x->command[0] = '\0';
  for (size_t i = 0; i < argc; i++) {
    argv[k] = fl_expand(r->sv->argv[i], fl_target_lookup, r, err, errlen);
    if (argv[k] == NULL) {
      free_strv(argv);
      return NULL;
    }
    size_t at = strlen(r->x->command);
    snprintf(r->x->command + at, sizeof(r->x->command) - at, "%s%s",
             at ? " " : "", argv[k]);
    k++;
  }
  return argv;
}

/* OUTDIR/target.log, the target's stdout and stderr (target-control.log
 * for the control start, start.c). */
static int open_log(struct srun *r, int *child_fd) {
  if (snprintf(r->x->log_path, sizeof(r->x->log_path), "%s/%s", r->outdir,
               r->control ? "target-control.log" : "target.log") >=
      (int)sizeof(r->x->log_path))
    r->x->log_path[0] = '\0';
  return fl_tlog_open(&r->suite->loop, r->x->log_path, &r->tlog, child_fd);
}

static int spawn(struct srun *r, char **argv, char **env, int log_fd) {
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_INHERIT_FD, .data.fd = log_fd},
                                   {.flags = UV_INHERIT_FD, .data.fd = log_fd}};
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
  if (rc != 0)
    uv_close((uv_handle_t *)&r->target, NULL);
  return rc;
}

void fl_target_start(struct srun *r) {
  r->state = S_TARGET;
  if (prepare(r) == 0)
    fl_target_launch(r);
}

void fl_target_launch(struct srun *r) {
  char err[FL_ERRLEN];
  char **argv = target_argv(r, err, sizeof(err)), **env = NULL;
  if (argv == NULL || (env = target_env(r, err, sizeof(err))) == NULL) {
    free_strv(argv);
    fl_run_fail(r, "%s: %s", r->sv->file, err);
    return;
  }
  int log_fd = -1, rc = open_log(r, &log_fd);
  if (rc != 0) {
    fl_run_fail(r, "cannot create %s: %s", r->x->log_path, uv_strerror(rc));
  } else if ((rc = spawn(r, argv, env, log_fd)) != 0) {
    fl_run_fail(r, "cannot start the target '%s' in %s: %s", r->sv->argv[0],
                r->sv->dir, uv_strerror(rc));
  }
  if (log_fd >= 0)
    close(log_fd); /* the target's now */
  free_strv(argv);
  free_strv(env);
  if (rc != 0)
    return;
  r->target_spawned = r->target_alive = 1;
  r->t_spawn_ns = uv_hrtime();
  fl_run_say(r, "target pid %d: %s", r->target.pid, r->x->command);
  r->ready_deadline = fl_run_since(r->t_begin_ns) + r->sv->ready_timeout;
  uv_timer_start(&r->timer, on_ready_check, PROBE_EVERY_MS, 0);
}
