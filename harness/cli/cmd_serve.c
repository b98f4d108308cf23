/*
 * faultline serve: the Toxiproxy-compatible control server (serve/) on a
 * libuv loop until SIGINT or SIGTERM, which close the proxies and remove
 * the control segment (a temporary one unless --control names it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "cli.h"
#include "control/control.h"
#include "serve/serve.h"

struct serve_run {
  const char *listen, *token, *control;
  uint64_t seed;
  int have_seed, quiet;
  char tmpdir[PATH_MAX], ctlpath[PATH_MAX];
  uv_loop_t loop;
  uv_signal_t signals[2];
  fl_serve_t *server;
};

static int read_opts(struct serve_run *x, int argc, char **argv) {
  static const struct option longs[] = {
      {"listen", required_argument, NULL, 'l'},
      {"token", required_argument, NULL, 't'},
      {"control", required_argument, NULL, 'c'},
      {"seed", required_argument, NULL, 's'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
    if (c == 'h') {
      fl_usage("serve");
      return -1;
    } else if (c == 'l') {
      x->listen = optarg;
    } else if (c == 't') {
      x->token = optarg;
    } else if (c == 'c') {
      x->control = optarg;
    } else if (c == 'q') {
      x->quiet = 1;
    } else if (c == 's') {
      if (fl_opt_seed(optarg, &x->seed) != 0)
        return FL_EXIT_USAGE;
      x->have_seed = 1;
    } else {
      return fl_opt_bad("serve", c, argv[optind - 1]);
    }
  }
  if (optind < argc) {
    fl_say("serve: unexpected argument '%s' (serve takes options only)",
           argv[optind]);
    return FL_EXIT_USAGE;
  }
  if (x->token == NULL)
    x->token = getenv("FAULTLINE_TOKEN");
  if (x->token != NULL && *x->token == '\0') {
    fl_say("serve: --token must not be empty");
    return FL_EXIT_USAGE;
  }
  return 0;
}

/* The control segment's path: --control, or a fresh temporary folder's. */
static int control_path(struct serve_run *x) {
  if (x->control != NULL) {
    if (snprintf(x->ctlpath, sizeof(x->ctlpath), "%s", x->control) >=
        (int)sizeof(x->ctlpath)) {
      fl_say("serve: --control: path too long");
      return FL_EXIT_USAGE;
    }
    return 0;
  }
  /* Named after us, as exec's: a killed server's folder is reaped by the
   * next one. */
  fl_reap_folders("serve", NULL);
  int rc = fl_make_tmpdir("serve", x->tmpdir, sizeof(x->tmpdir));
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

static void on_signal(uv_signal_t *h, int sig) {
  struct serve_run *x = h->data;
  (void)sig;
  fl_serve_close(x->server);
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&x->signals[i], NULL);
}

static uint64_t fresh_seed(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return ((uint64_t)t.tv_sec * 1000000007u) ^ (uint64_t)t.tv_nsec ^
         ((uint64_t)getpid() << 32);
}

/* Starts the server on the loop; an exit status. */
static int start(struct serve_run *x, fl_control_t *ctl) {
  struct sockaddr_storage at;
  char err[512];
  if (fl_serve_parse_addr(x->listen, &at, err, sizeof(err)) != 0) {
    fl_say("serve: --listen: %s", err);
    return FL_EXIT_USAGE;
  }
  struct fl_serve_opts o = {(struct sockaddr *)&at, x->token};
  int rc = fl_serve_start(&x->loop, ctl, &o, &x->server, err, sizeof(err));
  if (rc != 0) {
    fl_say("serve: %s", err);
    return rc == FL_EUSAGE ? FL_EXIT_USAGE : FL_EXIT_ENV;
  }
  int sigs[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    uv_signal_init(&x->loop, &x->signals[i]);
    x->signals[i].data = x;
    uv_signal_start(&x->signals[i], on_signal, sigs[i]);
  }
  if (!x->quiet) {
    int v6 = at.ss_family == AF_INET6;
    char host[300];
    const char *colon = strrchr(x->listen, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - x->listen), x->listen);
    fl_say("serve: Toxiproxy API on http://%s:%d%s (control segment %s)",
           *host ? host : (v6 ? "[::1]" : "127.0.0.1"),
           fl_serve_port(x->server),
           x->token ? ", requests need Authorization: Bearer TOKEN" : "",
           x->ctlpath);
  }
  return FL_EXIT_OK;
}

int fl_cmd_serve(int argc, char **argv) {
  struct serve_run x = {.listen = "127.0.0.1:8474"};
  int status = read_opts(&x, argc, argv);
  if (status != 0)
    return status < 0 ? FL_EXIT_OK : status;
  if ((status = control_path(&x)) != 0)
    return status;
  fl_control_t *ctl = NULL;
  char err[512];
  int rc = fl_control_setup(x.ctlpath, x.have_seed ? x.seed : fresh_seed(),
                            &ctl, err, sizeof(err));
  if (rc != 0) {
    fl_say("serve: %s", err);
    status = rc == -EEXIST ? FL_EXIT_USAGE : FL_EXIT_ENV;
  } else if (uv_loop_init(&x.loop) != 0) {
    fl_say("serve: cannot set up the event loop");
    status = FL_EXIT_ENV;
  } else {
    status = start(&x, ctl);
    uv_run(&x.loop, UV_RUN_DEFAULT); /* until a signal closes everything */
    uv_loop_close(&x.loop);
  }
  if (ctl != NULL)
    fl_control_remove(ctl);
  if (x.tmpdir[0] != '\0')
    fl_rm_tree(x.tmpdir);
  return status;
}
