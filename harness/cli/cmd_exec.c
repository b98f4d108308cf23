/*
 * faultline exec: run a command under the shim, with faults from its first
 * instruction, and exit with its status. The control segment lives as long
 * as this process; `faultline inject/clear/status --control PATH` change
 * and show the faults from another terminal meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "cli.h"
#include "control/control.h"
#include "faults/faults.h"
#include "proxy/proxy.h"

extern char **environ;

struct exec_state {
  uv_loop_t loop;
  uv_process_t child;
  uv_signal_t signals[3];
  int nsignals;
  int64_t exit_status;
  int term_signal;
  int exited;
  int forward_sigint;
  int spawned;
  fl_proxy_t **proxies; /* one per --proxy; NULL once closed */
  int nproxies;
};

static void close_proxies(struct exec_state *st) {
  for (int i = 0; i < st->nproxies; i++) {
    fl_proxy_close(st->proxies[i]);
    st->proxies[i] = NULL;
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  struct exec_state *st = p->data;
  st->exit_status = status;
  st->term_signal = sig;
  st->exited = 1;
  uv_close((uv_handle_t *)p, NULL);
  for (int i = 0; i < st->nsignals; i++)
    uv_close((uv_handle_t *)&st->signals[i], NULL);
  close_proxies(st); /* the loop ends once their handles are closed */
}

/* Signals meant for us are passed on; the child decides what they mean. */
static void on_signal(uv_signal_t *h, int sig) {
  struct exec_state *st = h->data;
  if (sig == SIGINT && !st->forward_sigint)
    return; /* the terminal sent it to the child's process group too */
  if (st->spawned && !st->exited)
    uv_process_kill(&st->child, sig);
}

/* Builds the child's environment: ours, with the shim prepended to
 * LD_PRELOAD and the control segment named. */
static char **child_env(const char *shim, const char *ctl) {
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + 3, sizeof(char *));
  if (env == NULL)
    return NULL;
  const char *old = getenv("LD_PRELOAD");
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], FL_CTL_ENV "=", sizeof(FL_CTL_ENV)) != 0)
      env[k++] = environ[i];
  char *pre = NULL, *cv = NULL;
  if (asprintf(&pre, "LD_PRELOAD=%s%s%s", shim, old && *old ? ":" : "",
               old ? old : "") < 0)
    pre = NULL;
  if (asprintf(&cv, "%s=%s", FL_CTL_ENV, ctl) < 0)
    cv = NULL;
  if (pre == NULL || cv == NULL) {
    free(pre);
    free(cv);
    free(env);
    return NULL;
  }
  env[k++] = pre;
  env[k++] = cv;
  return env;
}

static void free_env(char **env) {
  if (env == NULL)
    return;
  size_t n = 0;
  while (env[n] != NULL)
    n++;
  /* The last two entries are ours; the rest belong to environ. */
  free(env[n - 1]);
  free(env[n - 2]);
  free(env);
}

struct exec_opts {
  const char *control;
  const char **faults;
  int nfaults;
  const char **proxies;
  int nproxies;
  uint64_t seed;
  int have_seed;
  int quiet;
  char **argv;
};

static int take_opt(int c, const char *val, void *arg) {
  struct exec_opts *o = arg;
  switch (c) {
  case 'c':
    o->control = val;
    break;
  case 'f':
    o->faults[o->nfaults++] = val;
    break;
  case 'p':
    o->proxies[o->nproxies++] = val;
    break;
  case 's':
    if (fl_opt_seed(val, &o->seed) != 0)
      return FL_EXIT_USAGE;
    o->have_seed = 1;
    break;
  case 'q':
    o->quiet = 1;
    break;
  }
  return 0;
}

/* Returns 0, -1 after --help, or an exit status after saying why. */
static int parse_opts(int argc, char **argv, struct exec_opts *o) {
  static const struct option longs[] = {
      {"control", required_argument, NULL, 'c'},
      {"fault", required_argument, NULL, 'f'},
      {"proxy", required_argument, NULL, 'p'},
      {"seed", required_argument, NULL, 's'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  /* '+': stop at the command, whose own options are not ours. */
  static const struct fl_opts spec = {
      "exec", "+c:f:p:s:qh", longs, take_opt,
      "no command given (usage: faultline exec [OPTIONS] -- COMMAND "
      "[ARG]...)"};
  memset(o, 0, sizeof(*o));
  o->faults = calloc((size_t)argc, sizeof(char *));
  o->proxies = calloc((size_t)argc, sizeof(char *));
  if (o->faults == NULL || o->proxies == NULL)
    return FL_EXIT_ENV;
  int rc = fl_opt_parse(&spec, argc, argv, o);
  o->argv = argv + optind;
  return rc;
}

static uint64_t fresh_seed(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return ((uint64_t)t.tv_sec * 1000000007u) ^ (uint64_t)t.tv_nsec ^
         ((uint64_t)getpid() << 32);
}

static int run_child(struct exec_state *st, const char *file, char **argv,
                     char **env) {
  uv_process_options_t po;
  memset(&po, 0, sizeof(po));
  uv_stdio_container_t stdio[3];
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  po.file = file;
  po.args = argv;
  po.env = env;
  po.exit_cb = on_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  st->child.data = st;
  /* Handlers first: a signal that arrives as soon as the command runs
   * must be passed on, not kill us and orphan it. */
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(&st->loop, &st->signals[i]);
    st->signals[i].data = st;
    uv_signal_start(&st->signals[i], on_signal, sigs[i]);
    st->nsignals++;
  }
  int rc = uv_spawn(&st->loop, &st->child, &po);
  if (rc != 0) {
    for (int i = 0; i < st->nsignals; i++)
      uv_close((uv_handle_t *)&st->signals[i], NULL);
    return rc;
  }
  st->spawned = 1;
  uv_run(&st->loop, UV_RUN_DEFAULT);
  return 0;
}

/* --proxy [PROTO=]HOST:PORT or [PROTO=][IPV6]:PORT; a host name is
 * resolved to its first address. PROTO is a protocol the proxy follows
 * (for protocol faults such as http_error), *proto set to it or NULL and
 * *addr to what follows it. Returns 0, or an exit status after saying
 * what is wrong. */
static int parse_proxy(const char *arg, struct sockaddr_storage *ss,
                       char *proto, size_t protolen, const char **addr) {
  const char *eq = strchr(arg, '=');
  proto[0] = '\0';
  *addr = arg;
  if (eq != NULL) {
    char known[256];
    size_t pl = (size_t)(eq - arg);
    if (pl < protolen) {
      memcpy(proto, arg, pl);
      proto[pl] = '\0';
    }
    if (pl >= protolen || !fl_proxy_speaks(proto)) {
      fl_codec_names(known, sizeof(known));
      fl_say("exec: --proxy '%s': unknown protocol '%.*s' (allowed: %s)", arg,
             (int)pl, arg, known);
      return FL_EXIT_USAGE;
    }
    arg = *addr = eq + 1;
  }
  char host[256];
  const char *from = arg, *port = NULL;
  size_t n = 0;
  if (arg[0] == '[') {
    const char *close = strchr(arg, ']');
    if (close != NULL && close[1] == ':')
      port = close + 2, from = arg + 1, n = (size_t)(close - arg - 1);
  } else {
    const char *colon = strchr(arg, ':');
    if (colon != NULL && strrchr(arg, ':') == colon)
      port = colon + 1, n = (size_t)(colon - arg);
  }
  char *end = NULL;
  long num = port != NULL && *port != '\0' ? strtol(port, &end, 10) : 0;
  if (n == 0 || n >= sizeof(host) || end == NULL || *end != '\0' || num < 1 ||
      num > 65535) {
    fl_say("exec: bad --proxy '%s' (allowed: [PROTO=]HOST:PORT or "
           "[PROTO=][IPV6]:PORT, the dependency's address)",
           arg);
    return FL_EXIT_USAGE;
  }
  memcpy(host, from, n);
  host[n] = '\0';
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
    fl_say("exec: --proxy '%s': cannot resolve host '%s'", arg, host);
    return FL_EXIT_USAGE;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

/* Starts a proxy per --proxy on the loop, and redirects the command's
 * connections to that address through it for the whole run, so that
 * faults switched later reach connections that already exist. */
static int start_proxies(struct exec_state *st, fl_control_t *ctl,
                         const struct exec_opts *o,
                         const struct sockaddr_storage *ups, char (*protos)[32],
                         const char **addrs) {
  for (int i = 0; i < o->nproxies; i++) {
    struct fl_proxy_opts popts = {.protocol = protos[i][0] ? protos[i] : NULL};
    int rc =
        fl_proxy_start_with(&st->loop, ctl, (const struct sockaddr *)&ups[i],
                            &popts, &st->proxies[i]);
    if (rc != 0) {
      fl_say("cannot start the proxy for %s: %s", o->proxies[i],
             fl_strerror(rc));
      return FL_EXIT_ENV;
    }
    st->nproxies++;
    char err[512];
    struct fl_rule rule;
    uint32_t id;
    if (fl_proxy_redirect_rule(st->proxies[i], addrs[i], &rule, err,
                               sizeof(err)) != 0) {
      fl_say("%s", err);
      return FL_EXIT_USAGE;
    }
    if ((rc = fl_control_add(ctl, &rule, &id)) != 0) {
      fl_say("cannot install '%s': %s", rule.spec, fl_strerror(rc));
      return FL_EXIT_ENV;
    }
    if (!o->quiet)
      fl_say("rule %" PRIu32 ": %s", id, rule.spec);
  }
  return 0;
}

/* Everything one `faultline exec` takes. Each step below returns 0 or the
 * exit status to stop with; exec_close gives back whatever was taken. */
struct exec_run {
  struct exec_opts o;
  struct fl_rule *rules;        /* one per --fault */
  struct sockaddr_storage *ups; /* one per --proxy */
  char (*protos)[32];           /* its protocol, "" for bytes only */
  const char **addrs;           /* its HOST:PORT */
  char prog[PATH_MAX], shim[PATH_MAX], ctlpath[PATH_MAX];
  char tmpdir[PATH_MAX]; /* ours to remove when set (no --control) */
  fl_control_t *ctl;
  char **env;
  struct exec_state st;
  int loop_ready;
};

/* Everything the user typed is checked before anything is started. */
static int check_args(struct exec_run *x) {
  const struct exec_opts *o = &x->o;
  x->rules = calloc((size_t)o->nfaults + 1, sizeof(*x->rules));
  x->ups = calloc((size_t)o->nproxies + 1, sizeof(*x->ups));
  x->st.proxies = calloc((size_t)o->nproxies + 1, sizeof(*x->st.proxies));
  x->protos = calloc((size_t)o->nproxies + 1, sizeof(*x->protos));
  x->addrs = calloc((size_t)o->nproxies + 1, sizeof(*x->addrs));
  if (x->rules == NULL || x->ups == NULL || x->st.proxies == NULL ||
      x->protos == NULL || x->addrs == NULL)
    return FL_EXIT_ENV;
  char err[512];
  for (int i = 0; i < o->nfaults; i++)
    if (fl_spec_parse(o->faults[i], &x->rules[i], err, sizeof(err)) != 0) {
      fl_say("%s", err);
      return FL_EXIT_USAGE;
    }
  for (int i = 0; i < o->nproxies; i++) {
    int status = parse_proxy(o->proxies[i], &x->ups[i], x->protos[i],
                             sizeof(x->protos[i]), &x->addrs[i]);
    if (status != 0)
      return status;
  }
  return 0;
}

/* The command's program, whether the shim can reach it, and the shim. */
static int find_target(struct exec_run *x) {
  const char *cmd = x->o.argv[0];
  int rc = fl_find_program(cmd, x->prog, sizeof(x->prog));
  if (rc != 0) {
    fl_say("cannot run '%s': %s", cmd, fl_strerror(rc));
    return FL_EXIT_USAGE;
  }
  rc = fl_check_preloadable(x->prog);
  if (rc == FL_ESTATIC) {
    fl_say("%s is statically linked, so the shim cannot be preloaded into "
           "it; use proxy mode (stream faults) for such targets",
           x->prog);
    return FL_EXIT_USAGE;
  }
  if (rc == FL_PRELOAD_GO && !x->o.quiet)
    fl_say("warning: %s is a Go program: it makes raw syscalls that the shim "
           "does not see; use proxy mode (stream faults) for such targets",
           x->prog);
  if (fl_find_shim(x->shim, sizeof(x->shim)) != 0) {
    fl_say("libfaultline-preload.so not found beside faultline or in "
           "../lib/faultline/ from it (set FAULTLINE_PRELOAD to its path)");
    return FL_EXIT_ENV;
  }
  return 0;
}

/* --control, else "control" in a temporary folder of ours. */
static int control_path(struct exec_run *x) {
  if (x->o.control != NULL) {
    snprintf(x->ctlpath, sizeof(x->ctlpath), "%s", x->o.control);
    return 0;
  }
  /* Named after us, so that a later exec can tell it is stale should we
   * be killed: it then removes it. */
  fl_reap_folders("exec", NULL);
  int rc = fl_make_tmpdir("exec", x->tmpdir, sizeof(x->tmpdir));
  if (rc != 0) {
    const char *t = getenv("TMPDIR");
    fl_say("cannot create a temporary folder in %s: %s", t && *t ? t : "/tmp",
           strerror(-rc));
    return FL_EXIT_ENV;
  }
  if (snprintf(x->ctlpath, sizeof(x->ctlpath), "%s/control", x->tmpdir) >=
      (int)sizeof(x->ctlpath)) {
    fl_say("TMPDIR is too long");
    return FL_EXIT_ENV;
  }
  return 0;
}

/* The control segment, with the --fault rules installed. */
static int make_control(struct exec_run *x) {
  const struct exec_opts *o = &x->o;
  int rc = control_path(x);
  if (rc != 0)
    return rc;
  char err[512];
  rc = fl_control_setup(x->ctlpath, o->have_seed ? o->seed : fresh_seed(),
                        &x->ctl, err, sizeof(err));
  if (rc != 0) {
    fl_say("%s", err);
    return rc == -EEXIST ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  for (int i = 0; i < o->nfaults; i++) {
    uint32_t id;
    if ((rc = fl_control_add(x->ctl, &x->rules[i], &id)) != 0) {
      fl_say("cannot install '%s': %s", o->faults[i], fl_strerror(rc));
      return FL_EXIT_ENV;
    }
    if (!o->quiet)
      fl_say("rule %" PRIu32 ": %s", id, x->rules[i].spec);
  }
  return 0;
}

/* The loop with the proxies on it, and the command's environment. */
static int start_loop(struct exec_run *x) {
  int rc = uv_loop_init(&x->st.loop);
  if (rc != 0) {
    fl_say("cannot set up the event loop: %s", uv_strerror(rc));
    return FL_EXIT_ENV;
  }
  x->loop_ready = 1;
  if ((rc = start_proxies(&x->st, x->ctl, &x->o, x->ups, x->protos,
                          x->addrs)) != 0)
    return rc;
  if (!x->o.quiet)
    fl_say("control %s (seed %" PRIu64 ")", x->ctlpath,
           fl_control_seed(x->ctl));
  x->env = child_env(x->shim, x->ctlpath);
  return x->env != NULL ? 0 : FL_EXIT_ENV;
}

/* Runs the command to its end; its exit status, or 128 + its signal. */
static int run_target(struct exec_run *x) {
  x->st.forward_sigint = !isatty(STDIN_FILENO);
  int rc = run_child(&x->st, x->prog, x->o.argv, x->env);
  if (rc != 0) {
    fl_say("cannot start '%s': %s", x->o.argv[0], uv_strerror(rc));
    return FL_EXIT_ENV;
  }
  if (x->st.term_signal != 0)
    return 128 + x->st.term_signal;
  return (int)x->st.exit_status;
}

static void exec_close(struct exec_run *x) {
  if (x->loop_ready) {
    close_proxies(&x->st);
    uv_run(&x->st.loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(&x->st.loop);
  }
  free(x->st.proxies);
  free(x->ups);
  free(x->protos);
  free(x->addrs);
  free_env(x->env);
  fl_control_remove(x->ctl);
  if (x->tmpdir[0] != '\0')
    rmdir(x->tmpdir);
  free(x->rules);
  free(x->o.faults);
  free(x->o.proxies);
}

int fl_cmd_exec(int argc, char **argv) {
  static int (*const steps[])(struct exec_run *) = {
      check_args, find_target, make_control, start_loop, run_target};
  struct exec_run x;
  memset(&x, 0, sizeof(x));
  int status = parse_opts(argc, argv, &x.o);
  for (size_t i = 0; status == 0 && i < sizeof(steps) / sizeof(steps[0]); i++)
    status = steps[i](&x);
  exec_close(&x);
  return status < 0 ? FL_EXIT_OK : status;
}
