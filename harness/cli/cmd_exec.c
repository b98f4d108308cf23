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

static int parse_opts(int argc, char **argv, struct exec_opts *o) {
  static const struct option longs[] = {
      {"control", required_argument, NULL, 'c'},
      {"fault", required_argument, NULL, 'f'},
      {"proxy", required_argument, NULL, 'p'},
      {"seed", required_argument, NULL, 's'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof(*o));
  o->faults = calloc((size_t)argc, sizeof(char *));
  o->proxies = calloc((size_t)argc, sizeof(char *));
  if (o->faults == NULL || o->proxies == NULL)
    return FL_EXIT_ENV;
  opterr = 0;
  optind = 1;
  int c;
  /* '+': stop at the command, whose own options are not ours. */
  while ((c = getopt_long(argc, argv, "+c:f:p:s:qh", longs, NULL)) != -1) {
    switch (c) {
    case 'c':
      o->control = optarg;
      break;
    case 'f':
      o->faults[o->nfaults++] = optarg;
      break;
    case 'p':
      o->proxies[o->nproxies++] = optarg;
      break;
    case 's': {
      char *end;
      errno = 0;
      o->seed = strtoull(optarg, &end, 0);
      if (errno != 0 || *end != '\0' || optarg[0] == '-') {
        fl_say("bad --seed '%s' (allowed: a whole number)", optarg);
        return FL_EXIT_USAGE;
      }
      o->have_seed = 1;
      break;
    }
    case 'q':
      o->quiet = 1;
      break;
    case 'h':
      fl_usage("exec");
      return -1;
    default:
      fl_say("exec: unknown option '%s' (see faultline exec --help)",
             argv[optind - 1]);
      return FL_EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    fl_say("exec: no command given (usage: faultline exec [OPTIONS] -- "
           "COMMAND [ARG]...)");
    return FL_EXIT_USAGE;
  }
  o->argv = argv + optind;
  return 0;
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

/* --proxy HOST:PORT or [IPV6]:PORT; a host name is resolved to its first
 * address. Returns 0, or an exit status after saying what is wrong. */
static int parse_proxy(const char *arg, struct sockaddr_storage *ss) {
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
    fl_say("exec: bad --proxy '%s' (allowed: HOST:PORT or [IPV6]:PORT, the "
           "dependency's address)",
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
                         const struct sockaddr_storage *ups) {
  for (int i = 0; i < o->nproxies; i++) {
    int rc = fl_proxy_start(&st->loop, ctl, (const struct sockaddr *)&ups[i],
                            &st->proxies[i]);
    if (rc != 0) {
      fl_say("cannot start the proxy for %s: %s", o->proxies[i],
             fl_strerror(rc));
      return FL_EXIT_ENV;
    }
    st->nproxies++;
    char err[512];
    struct fl_rule rule;
    uint32_t id;
    if (fl_proxy_redirect_rule(st->proxies[i], o->proxies[i], &rule, err,
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

int fl_cmd_exec(int argc, char **argv) {
  struct exec_opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc != 0) {
    free(o.faults);
    free(o.proxies);
    return rc < 0 ? FL_EXIT_OK : rc;
  }
  int status = FL_EXIT_ENV;
  char tmpdir[PATH_MAX] = "", ctlpath[PATH_MAX], shim[PATH_MAX], prog[PATH_MAX];
  fl_control_t *ctl = NULL;
  struct fl_blackhole bh4 = {-1, -1, {0}}, bh6 = {-1, -1, {0}};
  char **env = NULL;
  struct fl_rule *rules = calloc((size_t)o.nfaults + 1, sizeof(*rules));
  struct sockaddr_storage *ups = calloc((size_t)o.nproxies + 1, sizeof(*ups));
  char err[512];
  struct exec_state st;
  int loop_ready = 0;

  memset(&st, 0, sizeof(st));
  st.proxies = calloc((size_t)o.nproxies + 1, sizeof(*st.proxies));
  if (rules == NULL || ups == NULL || st.proxies == NULL)
    goto out;
  /* Everything the user typed is checked before anything is started. */
  for (int i = 0; i < o.nfaults; i++)
    if (fl_spec_parse(o.faults[i], &rules[i], err, sizeof(err)) != 0) {
      fl_say("%s", err);
      status = FL_EXIT_USAGE;
      goto out;
    }
  for (int i = 0; i < o.nproxies; i++)
    if ((status = parse_proxy(o.proxies[i], &ups[i])) != 0)
      goto out;
  status = FL_EXIT_ENV;
  if ((rc = fl_find_program(o.argv[0], prog, sizeof(prog))) != 0) {
    fl_say("cannot run '%s': %s", o.argv[0], fl_strerror(rc));
    status = FL_EXIT_USAGE;
    goto out;
  }
  rc = fl_check_preloadable(prog);
  if (rc == FL_ESTATIC) {
    fl_say("%s is statically linked, so the shim cannot be preloaded into "
           "it; use proxy mode (stream faults) for such targets",
           prog);
    status = FL_EXIT_USAGE;
    goto out;
  }
  if (rc == FL_PRELOAD_GO && !o.quiet)
    fl_say("warning: %s is a Go program: it makes raw syscalls that the shim "
           "does not see; use proxy mode (stream faults) for such targets",
           prog);
  if (fl_find_shim(shim, sizeof(shim)) != 0) {
    fl_say("libfaultline-preload.so not found beside faultline or in "
           "../lib/faultline/ from it (set FAULTLINE_PRELOAD to its path)");
    goto out;
  }
  if (o.control != NULL) {
    snprintf(ctlpath, sizeof(ctlpath), "%s", o.control);
  } else {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/faultline-XXXXXX",
             t && *t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
      fl_say("cannot create a temporary folder in %s: %s", t ? t : "/tmp",
             strerror(errno));
      tmpdir[0] = '\0';
      goto out;
    }
    snprintf(ctlpath, sizeof(ctlpath), "%s/control", tmpdir);
  }
  if ((rc = fl_control_create(ctlpath, o.have_seed ? o.seed : fresh_seed(),
                              &ctl)) != 0) {
    fl_say("cannot create control segment %s: %s", ctlpath, fl_strerror(rc));
    status = rc == -EEXIST ? FL_EXIT_USAGE : FL_EXIT_ENV;
    goto out;
  }
  if ((rc = fl_blackhole_open(AF_INET, &bh4)) != 0) {
    fl_say("cannot open the loopback listener that hang needs: %s",
           fl_strerror(rc));
    goto out;
  }
  fl_blackhole_open(AF_INET6, &bh6); /* optional: no IPv6 loopback is fine */
  fl_control_set_blackholes(ctl, &bh4.addr,
                            bh6.listen_fd >= 0 ? &bh6.addr : NULL);
  for (int i = 0; i < o.nfaults; i++) {
    uint32_t id;
    if ((rc = fl_control_add(ctl, &rules[i], &id)) != 0) {
      fl_say("cannot install '%s': %s", o.faults[i], fl_strerror(rc));
      goto out;
    }
    if (!o.quiet)
      fl_say("rule %" PRIu32 ": %s", id, rules[i].spec);
  }
  if ((rc = uv_loop_init(&st.loop)) != 0) {
    fl_say("cannot set up the event loop: %s", uv_strerror(rc));
    goto out;
  }
  loop_ready = 1;
  if ((rc = start_proxies(&st, ctl, &o, ups)) != 0) {
    status = rc;
    goto out;
  }
  if (!o.quiet)
    fl_say("control %s (seed %" PRIu64 ")", ctlpath, fl_control_seed(ctl));
  if ((env = child_env(shim, ctlpath)) == NULL)
    goto out;

  st.forward_sigint = !isatty(STDIN_FILENO);
  rc = run_child(&st, prog, o.argv, env);
  if (rc != 0) {
    fl_say("cannot start '%s': %s", o.argv[0], uv_strerror(rc));
  } else if (st.term_signal != 0) {
    status = 128 + st.term_signal;
  } else {
    status = (int)st.exit_status;
  }

out:
  if (loop_ready) {
    close_proxies(&st);
    uv_run(&st.loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(&st.loop);
  }
  free(st.proxies);
  free(ups);
  free_env(env);
  fl_blackhole_close(&bh4);
  fl_blackhole_close(&bh6);
  if (ctl != NULL)
    fl_control_remove(ctl);
  if (tmpdir[0] != '\0')
    rmdir(tmpdir);
  free(rules);
  free(o.faults);
  free(o.proxies);
  return status;
}
