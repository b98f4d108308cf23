/*
 * fl-bench-shim: what libfaultline-preload.so costs the program it is
 * preloaded into, on two real clients of a private redis-server
 * (redis-benchmark, unpipelined and pipelined, and a Python asyncio
 * client) and on a syscall-bound micro loop (send/recv round trips over a
 * loopback TCP pair). bench/README.md explains every figure.
 *
 * Configurations, always the same client binary:
 *   plain           no preload: the reference;
 *   shim idle       LD_PRELOAD=shim and FAULTLINE_CONTROL naming a real,
 *                   empty segment, so every wrapper does its real gate load;
 *   shim, 32 rules  the same with 32 rules aimed at other addresses: the
 *                   gate is open for connect and socket I/O, so each such
 *                   call walks the rule table and misses;
 *   shim recording  an empty segment with usage recording on (audit
 *                   discovery): connect, socket I/O, opens and lookups
 *                   take the slow path and count what they used; off,
 *                   recording costs nothing (shim idle is the same gate);
 *   fiu-run -x      libfiu's POSIX preload with no failure enabled: the
 *                   baseline a user would otherwise reach for.
 *
 * The client runs directly under LD_PRELOAD rather than via `faultline
 * exec`, so the runner's own process does not share the machine's cores
 * during the measurement; the segments are made with fl_control_create,
 * exactly as exec makes them.
 *
 * Each round runs every configuration, in an order rotated by one per
 * round, so drift in machine load spreads over all of them; the report
 * gives medians over rounds of three figures: throughput (what the goals
 * are stated on), the client's CPU time per request (wait4, or the
 * interpreter's own process_time for Python: blind to the server and to
 * the host's steal time), and the CPU time of two micro loops in a
 * re-executed copy of this program.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "faults/faults.h"

enum cfg { CFG_PLAIN, CFG_SHIM, CFG_SHIM32, CFG_REC, CFG_FIU, CFG_COUNT };
static const char *const cfg_names[CFG_COUNT] = {
    "plain", "shim idle", "shim, 32 rules", "shim recording", "fiu-run -x"};
/* What /proc/self/maps of a micro child must show in each configuration:
 * proof that the preload really happened. */
static const char *const cfg_preload[CFG_COUNT] = {
    "none", "faultline", "faultline", "faultline", "fiu"};

enum { MODE_P1, MODE_P16, MODE_COUNT };
static const int mode_pipeline[MODE_COUNT] = {1, 16};
enum { TEST_SET, TEST_GET, TEST_COUNT };
static const char *const test_names[TEST_COUNT] = {"SET", "GET"};
/* The micro loops: a send/recv round trip (4 intercepted calls), and a
 * recv() that fails at once with EAGAIN (1 call, almost no kernel work,
 * so the preload's own cost per call shows the most). */
enum { MICRO_RT, MICRO_EAGAIN, MICRO_COUNT };
static const char *const micro_names[MICRO_COUNT] = {"round trip",
                                                     "recv EAGAIN"};
static const int micro_calls[MICRO_COUNT] = {4, 1};

#define MAX_ROUNDS 51
#define CLIENTS "50"
/* A pipelined run moves this many times the requests of an unpipelined
 * one, so that both last long enough to measure. */
#define PIPELINED_SCALE 4
#define DECOY_RULES 32
#define GOAL_IDLE 0.98
#define GOAL_RULES 0.95
#define MICRO_WARMUP 2000
#define MICRO_BATCHES 20
/* The Python client: Debian's interpreter, not whatever python3 comes
 * first in PATH (a pyenv shim is a shell script: the preload would be
 * measured on bash too). Its connections run concurrently in one event
 * loop, each a strict request/response alternation of SET and GET. */
#define PYTHON "/usr/bin/python3"
#define PY_CONNS 16

/* The asyncio client, written into the temporary folder at set-up.
 * argv: PORT REQUESTS CONNS. Prints "REQ_PER_S CPU_US_PER_REQ PRELOAD",
 * timed from the first request to the last reply (interpreter start-up
 * and the connects excluded); CPU is process_time() over the same span.
 * asyncio's streams call sock.send() and sock.recv(): send() and recv()
 * in libc, on sockets the shim tracks (connect() made them). */
static const char py_client[] =
    "import asyncio, sys, time\n"
    "\n"
    "def preload():\n"
    "    what = 'none'\n"
    "    with open('/proc/self/maps') as f:\n"
    "        for line in f:\n"
    "            if 'libfaultline-preload' in line:\n"
    "                what = 'faultline'\n"
    "            elif 'fiu_posix_preload' in line:\n"
    "                what = 'fiu'\n"
    "    return what\n"
    "\n"
    "def cmd(*words):\n"
    "    out = b'*%d\\r\\n' % len(words)\n"
    "    for w in words:\n"
    "        out += b'$%d\\r\\n%s\\r\\n' % (len(w), w)\n"
    "    return out\n"
    "\n"
    "async def work(reader, writer, key, n):\n"
    "    set_cmd = cmd(b'SET', key, b'x' * 3)\n"
    "    get_cmd = cmd(b'GET', key)\n"
    "    for i in range(n):\n"
    "        writer.write(get_cmd if i & 1 else set_cmd)\n"
    "        line = await reader.readline()\n"
    "        if line[:1] == b'$':\n"
    "            size = int(line[1:])\n"
    "            if size >= 0:\n"
    "                await reader.readexactly(size + 2)\n"
    "        elif line[:1] != b'+':\n"
    "            raise SystemExit('unexpected reply %r' % line)\n"
    "\n"
    "async def main(port, total, conns):\n"
    "    pairs = [await asyncio.open_connection('127.0.0.1', port)\n"
    "             for _ in range(conns)]\n"
    "    per = total // conns\n"
    "    t0, c0 = time.perf_counter(), time.process_time()\n"
    "    await asyncio.gather(*(work(r, w, b'fl:py:%d' % k, per)\n"
    "                           for k, (r, w) in enumerate(pairs)))\n"
    "    t1, c1 = time.perf_counter(), time.process_time()\n"
    "    for r, w in pairs:\n"
    "        w.close()\n"
    "        await w.wait_closed()\n"
    "    done = per * conns\n"
    "    print('%.1f %.3f %s' % (done / (t1 - t0), (c1 - c0) * 1e6 / done,\n"
    "                            preload()))\n"
    "\n"
    "asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))\n";

struct opts {
  int rounds;
  long requests;
  long micro_iters;
  long py_requests;
  const char *out;
  int quick;
};

struct samples {
  double redis[MODE_COUNT][TEST_COUNT][CFG_COUNT][MAX_ROUNDS]; /* req/s */
  double cpu[MODE_COUNT][CFG_COUNT][MAX_ROUNDS];    /* client CPU us/request */
  double micro[MICRO_COUNT][CFG_COUNT][MAX_ROUNDS]; /* CPU ns per loop */
  double micro_wall[CFG_COUNT][MAX_ROUNDS];         /* wall ns per round trip */
  double py[CFG_COUNT][MAX_ROUNDS];                 /* asyncio client req/s */
  double py_cpu[CFG_COUNT][MAX_ROUNDS];             /* its CPU us/request */
  int rounds;
};

/* Everything cleanup() must undo, global so that it also runs from
 * atexit(). The signal handler touches only bench_stop and bench_child. */
static struct {
  char dir[PATH_MAX]; /* our temporary folder; "" when none */
  char self[PATH_MAX];
  char shim[PATH_MAX + 32]; /* the copy in dir that clients preload */
  char shim_src[PATH_MAX];  /* the build's shim it was copied from */
  char shim_built[32];      /* the build's mtime, for the report */
  char fifo[PATH_MAX + 16]; /* fiu-run's control fifo prefix, in dir */
  char py[PATH_MAX + 32];   /* the asyncio client script, in dir */
  /* [0] empty, [1] with the decoy rules, [2] empty, recording usage */
  fl_control_t *ctl[3];
  char **env[CFG_COUNT];
  pid_t redis;
  int port;
  char redis_version[256];
  char py_version[64];
  struct bench_other other; /* other work on the machine in the rounds */
} g;

/* ---- cleanup, on every exit path ---------------------------------- */

/* redis-server exits within milliseconds of SIGTERM when it has nothing
 * to save; do not let a wedged one hold us up. */
static void stop_redis(void) { bench_stop_child(&g.redis, 0, 3000); }

static void cleanup(void) {
  stop_redis();
  for (int i = 0; i < 3; i++) {
    if (g.ctl[i] != NULL)
      fl_control_remove(g.ctl[i]);
    g.ctl[i] = NULL;
  }
  for (int c = 0; c < CFG_COUNT; c++) {
    bench_env_free(g.env[c]);
    g.env[c] = NULL;
  }
  fl_rm_tree(g.dir);
  g.dir[0] = '\0';
}

/* ---- environments and processes ---------------------------------- */

/* Puts fiu-run's own arguments at the front of argv; returns how many. */
static int fiu_prefix(enum cfg c, const char *argv[]) {
  if (c != CFG_FIU)
    return 0;
  argv[0] = "fiu-run";
  argv[1] = "-x";
  argv[2] = "-f";
  argv[3] = g.fifo;
  return 4;
}

/* A preload that did not take is a measurement of the wrong thing: refuse
 * it rather than report it. */
static int preload_failed(const char *log) {
  char buf[4096];
  int fd = open(log, O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return strstr(buf, "ld.so") != NULL ||
         strstr(buf, "faultline: ignoring") != NULL;
}

/* Runs argv to completion with its stdout in out and the CPU time it
 * used in *cpu_s. 0 when it exited 0 and the preload (if any) took;
 * otherwise says why and returns -1. */
static int run_capture(const char *const argv[], char **envp, char *out,
                       size_t size, int timeout_s, double *cpu_s) {
  char log[PATH_MAX + 16];
  snprintf(log, sizeof(log), "%s/stderr.log", g.dir);
  int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err < 0) {
    bench_say("%s: %s", log, strerror(errno));
    return -1;
  }
  struct bench_spawn s = {
      (char *const *)argv, envp, {BENCH_FD_NULL, BENCH_FD_KEEP, err}, 0};
  int status = 0;
  int rc = bench_capture(&s, out, size, timeout_s, &status, cpu_s);
  close(err);
  if (bench_stop)
    return -1;
  if (rc != 0 && rc != -ETIMEDOUT) {
    bench_say("cannot run %s: %s", argv[0], strerror(-rc));
    return -1;
  }
  if (rc != 0 || status != 0) {
    bench_say("%s %s (exit status %d)", argv[0],
              rc != 0 ? "did not finish in time" : "failed", status);
    bench_show_tail(log, 2048);
    return -1;
  }
  if (preload_failed(log)) {
    bench_say("%s ran, but its preload did not take", argv[0]);
    bench_show_tail(log, 2048);
    return -1;
  }
  return 0;
}

/* ---- prerequisites and set-up ------------------------------------ */

/* Names the Debian package of each missing tool in one sentence. */
static int check_tools(void) {
  int rc = bench_need_program("redis-server", "redis-server");
  rc |= bench_need_program("redis-benchmark", "redis-tools");
  rc |= bench_need_program("fiu-run", "fiu-utils");
  if (access(PYTHON, X_OK) != 0) {
    bench_say("%s not found: install it with 'apt-get install python3'",
              PYTHON);
    rc = -1;
  }
  if (access("/usr/lib/fiu/fiu_posix_preload.so", R_OK) != 0) {
    bench_say("/usr/lib/fiu/fiu_posix_preload.so not found: install it with "
              "'apt-get install libfiu0'");
    rc = -1;
  }
  if (fl_find_shim(g.shim_src, sizeof(g.shim_src)) != 0) {
    bench_say("libfaultline-preload.so not found beside fl-bench-shim; build "
              "it, or set FAULTLINE_PRELOAD to its path");
    rc = -1;
  }
  return rc;
}

/* Rules that can never match this benchmark's traffic (all of it goes to
 * 127.0.0.1) but open the gate: refuse for connect, reset for socket I/O.
 * Every connect and every I/O call on a connected socket then walks the
 * whole rule table, which is the shim's worst idle-ish case. */
static int add_decoy_rules(fl_control_t *c, int n) {
  for (int i = 0; i < n; i++) {
    char spec[64], err[256];
    struct fl_rule rule;
    uint32_t id;
    snprintf(spec, sizeof(spec), "%s@10.9.%d.%d:1234",
             i % 2 == 0 ? "refuse" : "reset", i / 200, i % 200 + 1);
    if (fl_spec_parse(spec, &rule, err, sizeof(err)) != 0) {
      bench_say("decoy rule %s: %s", spec, err);
      return -1;
    }
    int rc = fl_control_add(c, &rule, &id);
    if (rc != 0) {
      bench_say("cannot add decoy rule %s: %s", spec, fl_strerror(rc));
      return -1;
    }
  }
  return 0;
}

/* Clients preload a private copy of the shim: the build's copy may be
 * rebuilt while a long run is under way, and a table mixing two shims
 * would measure neither. */
static int copy_shim(void) {
  struct stat st;
  snprintf(g.shim, sizeof(g.shim), "%s/libfaultline-preload.so", g.dir);
  int rc = stat(g.shim_src, &st) != 0
               ? -errno
               : bench_copy_file(g.shim_src, g.shim, 0755);
  if (rc != 0) {
    bench_say("cannot copy %s to %s: %s", g.shim_src, g.shim, strerror(-rc));
    return -1;
  }
  strftime(g.shim_built, sizeof(g.shim_built), "%Y-%m-%d %H:%M",
           localtime(&st.st_mtime));
  return 0;
}

static int make_segment(int which, const char *name, int rules) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/%s", g.dir, name);
  int rc = fl_control_create(path, 0x5eed, &g.ctl[which]);
  if (rc != 0) {
    bench_say("cannot create control segment %s: %s", path, fl_strerror(rc));
    return -1;
  }
  return add_decoy_rules(g.ctl[which], rules);
}

static int setup(void) {
  int rc = bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench");
  if (rc != 0) {
    bench_say("cannot make a temporary folder %s: %s", g.dir, strerror(-rc));
    g.dir[0] = '\0';
    return -1;
  }
  snprintf(g.fifo, sizeof(g.fifo), "%s/fiu-ctrl", g.dir);
  snprintf(g.py, sizeof(g.py), "%s/asyncio_client.py", g.dir);
  if ((rc = bench_write_file(g.py, py_client)) != 0) {
    bench_say("cannot write %s: %s", g.py, strerror(-rc));
    return -1;
  }
  if ((rc = bench_self(g.self, sizeof(g.self))) != 0) {
    bench_say("cannot find this program in /proc/self/exe: %s", strerror(-rc));
    return -1;
  }
  if (copy_shim() != 0 || make_segment(0, "control-idle", 0) != 0 ||
      make_segment(1, "control-rules", DECOY_RULES) != 0 ||
      make_segment(2, "control-record", 0) != 0 ||
      fl_control_set_recording(g.ctl[2], 1) != 0)
    return -1;
  g.env[CFG_PLAIN] = bench_env(NULL, NULL);
  g.env[CFG_SHIM] = bench_env(g.shim, fl_control_path(g.ctl[0]));
  g.env[CFG_SHIM32] = bench_env(g.shim, fl_control_path(g.ctl[1]));
  g.env[CFG_REC] = bench_env(g.shim, fl_control_path(g.ctl[2]));
  g.env[CFG_FIU] = bench_env(NULL, NULL); /* fiu-run sets its own LD_PRELOAD */
  for (int c = 0; c < CFG_COUNT; c++)
    if (g.env[c] == NULL) {
      bench_say("out of memory");
      return -1;
    }
  return 0;
}

/* ---- the redis server -------------------------------------------- */

/* redis may still lose the race for a port free a moment ago, which
 * start_redis() answers by trying another. */
static int wait_redis(int port, int timeout_ms) {
  long long end = bench_now_ns() + timeout_ms * 1000000LL;
  while (bench_now_ns() < end && !bench_stop) {
    if (waitpid(g.redis, NULL, WNOHANG) == g.redis) {
      g.redis = 0; /* exited: the port was taken, or a bad option */
      return -1;
    }
    if (bench_redis_pong(port))
      return 0;
    bench_sleep_ms(20);
  }
  return -1;
}

/* Our own redis-server, never preloaded, without persistence, so the
 * client is the only thing that differs between configurations. */
static int start_redis(void) {
  char log[PATH_MAX + 16], port[16];
  snprintf(log, sizeof(log), "%s/redis.log", g.dir);
  for (int attempt = 0; attempt < 3 && !bench_stop; attempt++) {
    g.port = fl_free_port();
    snprintf(port, sizeof(port), "%d", g.port);
    /* No persistence, logs to stdout (our log file), in the foreground;
     * one option and its value per line. */
    // clang-format off
    const char *argv[] = {"redis-server",
                          "--port", port,
                          "--bind", "127.0.0.1",
                          "--save", "",
                          "--appendonly", "no",
                          "--dir", g.dir,
                          "--logfile", "",
                          "--daemonize", "no",
                          NULL};
    // clang-format on
    int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct bench_spawn s = {
        (char *const *)argv, g.env[CFG_PLAIN], {BENCH_FD_NULL, err, err}, 0};
    int rc = err < 0 ? -errno : bench_spawn(&s, &g.redis);
    if (err >= 0)
      close(err);
    if (rc != 0) {
      g.redis = 0;
      bench_say("cannot run redis-server: %s", strerror(-rc));
      return -1;
    }
    if (wait_redis(g.port, 5000) == 0)
      return 0;
    stop_redis();
  }
  bench_say("redis-server would not start on 127.0.0.1");
  bench_show_tail(log, 2048);
  return -1;
}

/* ---- the redis workload ------------------------------------------ */

/* One redis-benchmark run of SET then GET in configuration c: the
 * throughput of each and the client's CPU seconds for the whole run. */
static int redis_run(enum cfg c, int mode, long requests,
                     double rps[TEST_COUNT], double *cpu_s) {
  char port[16], n[32], pipeline[8], out[4096];
  snprintf(port, sizeof(port), "%d", g.port);
  snprintf(n, sizeof(n), "%ld", requests);
  snprintf(pipeline, sizeof(pipeline), "%d", mode_pipeline[mode]);
  const char *argv[24];
  int k = fiu_prefix(c, argv);
  /* Unpipelined or -P 16, CSV out; one option and its value per line. */
  // clang-format off
  const char *bench[] = {"redis-benchmark",
                         "-h", "127.0.0.1",
                         "-p", port,
                         "-t", "set,get",
                         "-n", n,
                         "-c", CLIENTS,
                         "-P", pipeline,
                         "--csv",
                         NULL};
  // clang-format on
  memcpy(&argv[k], bench, sizeof(bench));
  /* Generous: even at 5,000 req/s on a loaded machine it finishes. */
  int timeout = 60 + (int)(TEST_COUNT * requests / 5000);
  if (run_capture(argv, g.env[c], out, sizeof(out), timeout, cpu_s) != 0)
    return -1;
  struct bench_redis_fig fig[TEST_COUNT];
  if (bench_redis_csv(out, test_names, TEST_COUNT, 0, fig) != 0)
    return -1;
  for (int t = 0; t < TEST_COUNT; t++)
    rps[t] = fig[t].rps;
  return 0;
}

static void redis_version(void) {
  const char *argv[] = {"redis-benchmark", "--version", NULL};
  char out[256];
  double cpu;
  snprintf(g.redis_version, sizeof(g.redis_version), "redis-benchmark");
  if (run_capture(argv, g.env[CFG_PLAIN], out, sizeof(out), 10, &cpu) == 0) {
    out[strcspn(out, "\n")] = '\0';
    snprintf(g.redis_version, sizeof(g.redis_version), "%s", out);
  }
}

/* ---- the Python asyncio client ------------------------------------ */

/* One run of the asyncio client in configuration c: its throughput and
 * its CPU us per request, both over the requests only. */
static int py_run(enum cfg c, long requests, double *rps, double *cpu_us) {
  char port[16], n[32], conns[16], out[256], preload[32];
  double cpu_s;
  snprintf(port, sizeof(port), "%d", g.port);
  snprintf(n, sizeof(n), "%ld", requests);
  snprintf(conns, sizeof(conns), "%d", PY_CONNS);
  const char *argv[12];
  int k = fiu_prefix(c, argv);
  argv[k++] = PYTHON;
  argv[k++] = "-I"; /* isolated: no user site, no PYTHON* variables */
  argv[k++] = g.py;
  argv[k++] = port;
  argv[k++] = n;
  argv[k++] = conns;
  argv[k] = NULL;
  /* Generous: even at 2,000 req/s on a loaded machine it finishes. */
  int timeout = 60 + (int)(requests / 2000);
  if (run_capture(argv, g.env[c], out, sizeof(out), timeout, &cpu_s) != 0)
    return -1;
  if (sscanf(out, "%lf %lf %31s", rps, cpu_us, preload) != 3 || *rps <= 0 ||
      strcmp(preload, cfg_preload[c]) != 0) {
    bench_say("asyncio client under %s: expected preload %s, it said: %s",
              cfg_names[c], cfg_preload[c], out);
    return -1;
  }
  return 0;
}

static void py_version(void) {
  const char *argv[] = {
      PYTHON, "-c", "import platform; print(platform.python_version())", NULL};
  char out[64];
  double cpu;
  snprintf(g.py_version, sizeof(g.py_version), "3");
  if (run_capture(argv, g.env[CFG_PLAIN], out, sizeof(out), 10, &cpu) == 0) {
    out[strcspn(out, "\n")] = '\0';
    snprintf(g.py_version, sizeof(g.py_version), "%s", out);
  }
}

/* ---- the micro benchmark ----------------------------------------- */

/* A connected loopback TCP pair: client made by connect() (so the shim
 * tracks it, as it tracks a real client's connections), server by
 * accept(). Nagle off on both: every send is one segment, one wakeup. */
static int tcp_pair(int *client, int *server) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0)
    return -1;
  *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof(a)) != 0)
    return -1;
  *server = accept(l, NULL, NULL);
  close(l);
  if (*server < 0)
    return -1;
  setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return 0;
}

/* One byte there and back, all in this thread: four intercepted calls per
 * round trip and no scheduler wakeup between processes, so the figure is
 * syscall cost plus whatever the preload adds. */
static int ping_pong(int client, int server, long n) {
  char b = 'x';
  for (long i = 0; i < n; i++)
    if (send(client, &b, 1, 0) != 1 || recv(server, &b, 1, 0) != 1 ||
        send(server, &b, 1, 0) != 1 || recv(client, &b, 1, 0) != 1)
      return -1;
  return 0;
}

/* Which fault-injection preload /proc/self/maps shows in this process. */
static const char *mapped_preload(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  const char *what = "none";
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    if (strstr(line, "libfaultline-preload") != NULL)
      what = "faultline";
    else if (strstr(line, "fiu_posix_preload") != NULL)
      what = "fiu";
  }
  if (f != NULL)
    fclose(f);
  return what;
}

static long long cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* recv() on the tracked client socket with nothing queued: the cheapest
 * socket call there is, so what the preload adds is most of its cost. */
static int eagain_loop(int client, int server, long n) {
  char b;
  (void)server;
  for (long i = 0; i < n; i++)
    if (recv(client, &b, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
      return -1;
  return 0;
}

typedef int (*micro_loop)(int client, int server, long n);

/* CPU ns per loop of the cheapest of MICRO_BATCHES equal batches. Noise
 * (other jobs, cache pollution, steal) only ever adds time, so the
 * minimum is the figure closest to the calls' own cost. */
static int best_batch(micro_loop loop, int client, int server, long iters,
                      double *best) {
  long per = iters / MICRO_BATCHES > 0 ? iters / MICRO_BATCHES : 1;
  *best = 0;
  for (int b = 0; b < MICRO_BATCHES; b++) {
    long long c0 = cpu_ns();
    if (loop(client, server, per) != 0)
      return -1;
    double ns = (double)(cpu_ns() - c0) / (double)per;
    if (b == 0 || ns < *best)
      *best = ns;
  }
  return 0;
}

/* The re-executed child: prints "WALL_NS RT_CPU_NS EAGAIN_CPU_NS
 * PRELOAD", wall time per round trip over the whole run and the best
 * batch of each loop. Neither loop blocks (each recv finds its byte
 * already queued, or fails at once), so the thread's CPU time is the
 * whole cost, minus the host's steal. */
static int micro_child(const char *iters_arg) {
  long iters = strtol(iters_arg, NULL, 10);
  int client, server;
  double rt, eagain;
  if (iters <= 0 || tcp_pair(&client, &server) != 0 ||
      ping_pong(client, server, MICRO_WARMUP) != 0) {
    fprintf(stderr, "micro benchmark set-up failed: %s\n", strerror(errno));
    return 1;
  }
  long long t0 = bench_now_ns();
  if (best_batch(ping_pong, client, server, iters, &rt) != 0) {
    fprintf(stderr, "round trip failed: %s\n", strerror(errno));
    return 1;
  }
  double wall = (double)(bench_now_ns() - t0) / (double)iters;
  if (best_batch(eagain_loop, client, server, iters, &eagain) != 0) {
    fprintf(stderr, "recv on an empty socket did not fail with EAGAIN\n");
    return 1;
  }
  printf("%.1f %.1f %.1f %s\n", wall, rt, eagain, mapped_preload());
  return 0;
}

/* One micro run in configuration c: wall ns per round trip and CPU ns
 * per loop of each micro loop. */
static int micro_run(enum cfg c, long iters, double *wall,
                     double cpu[MICRO_COUNT]) {
  char n[32], out[256], preload[32];
  double cpu_s;
  snprintf(n, sizeof(n), "%ld", iters);
  const char *argv[8];
  int k = fiu_prefix(c, argv);
  argv[k++] = g.self;
  argv[k++] = "--micro-child";
  argv[k++] = n;
  argv[k] = NULL;
  if (run_capture(argv, g.env[c], out, sizeof(out), 60 + (int)(iters / 20000),
                  &cpu_s))
    return -1;
  if (sscanf(out, "%lf %lf %lf %31s", wall, &cpu[MICRO_RT], &cpu[MICRO_EAGAIN],
             preload) != 4 ||
      strcmp(preload, cfg_preload[c]) != 0) {
    bench_say("micro benchmark under %s: expected preload %s, child said: %s",
              cfg_names[c], cfg_preload[c], out);
    return -1;
  }
  return 0;
}

/* ---- what else the machine was doing ------------------------------ */

/* ---- rounds ------------------------------------------------------ */

/* The configuration at position i of round r: rotated by one per round,
 * so each configuration runs early, late and next to each other one. */
static enum cfg cfg_at(int round, int i) {
  return (enum cfg)((i + round) % CFG_COUNT);
}

static int redis_round(const struct opts *o, int r, struct samples *s) {
  for (int m = 0; m < MODE_COUNT; m++) {
    long n = m == MODE_P16 ? o->requests * PIPELINED_SCALE : o->requests;
    for (int i = 0; i < CFG_COUNT; i++) {
      enum cfg c = cfg_at(r, i);
      double rps[TEST_COUNT], cpu_s;
      if (redis_run(c, m, n, rps, &cpu_s) != 0)
        return -1;
      for (int t = 0; t < TEST_COUNT; t++)
        s->redis[m][t][c][r] = rps[t];
      s->cpu[m][c][r] = cpu_s * 1e6 / (double)(n * TEST_COUNT);
      fprintf(stderr,
              "round %d/%d  -P %-2d  %-15s SET %9.0f  GET %9.0f req/s  "
              "client CPU %.2f us/req\n",
              r + 1, o->rounds, mode_pipeline[m], cfg_names[c], rps[TEST_SET],
              rps[TEST_GET], s->cpu[m][c][r]);
    }
  }
  return 0;
}

static int py_round(const struct opts *o, int r, struct samples *s) {
  for (int i = 0; i < CFG_COUNT; i++) {
    enum cfg c = cfg_at(r, i);
    if (py_run(c, o->py_requests, &s->py[c][r], &s->py_cpu[c][r]) != 0)
      return -1;
    fprintf(stderr,
            "round %d/%d  python %-15s asyncio %9.0f req/s  "
            "client CPU %.2f us/req\n",
            r + 1, o->rounds, cfg_names[c], s->py[c][r], s->py_cpu[c][r]);
  }
  return 0;
}

static int micro_round(const struct opts *o, int r, struct samples *s) {
  for (int i = 0; i < CFG_COUNT; i++) {
    enum cfg c = cfg_at(r, i);
    double cpu[MICRO_COUNT];
    if (micro_run(c, o->micro_iters, &s->micro_wall[c][r], cpu) != 0)
      return -1;
    for (int k = 0; k < MICRO_COUNT; k++)
      s->micro[k][c][r] = cpu[k];
    fprintf(stderr,
            "round %d/%d  micro  %-15s round trip %7.1f CPU ns (%7.1f "
            "wall), recv EAGAIN %6.1f CPU ns\n",
            r + 1, o->rounds, cfg_names[c], cpu[MICRO_RT], s->micro_wall[c][r],
            cpu[MICRO_EAGAIN]);
  }
  return 0;
}

static int run_rounds(const struct opts *o, struct samples *s) {
  s->rounds = o->rounds;
  /* The running redis-server's CPU is ours too, not other work. */
  struct bench_load start, end;
  bench_load_mark(&start, g.redis);
  for (int r = 0; r < o->rounds; r++)
    if (redis_round(o, r, s) != 0 || py_round(o, r, s) != 0 ||
        micro_round(o, r, s) != 0)
      return -1;
  bench_load_mark(&end, g.redis);
  g.other = bench_load_between(&start, &end);
  return 0;
}

/* ---- the report -------------------------------------------------- */

/* Every ratio in the report is speed relative to plain, above 1 when
 * faster, so one set of goals reads the same in every table: config ÷
 * plain for a rate, plain ÷ config for a cost. Each is taken within a
 * round, against the plain run of the same round (run a few seconds
 * apart), and summarised over rounds: load that comes and goes between
 * rounds cancels out of it, where it would not out of a ratio of
 * medians. */
static void ratios(const double *v0, size_t stride, int n, int is_cost,
                   struct bench_summary ratio[CFG_COUNT]) {
  const double *plain = v0 + (size_t)CFG_PLAIN * stride;
  for (int c = 0; c < CFG_COUNT; c++) {
    const double *v = v0 + (size_t)c * stride;
    double per[MAX_ROUNDS];
    for (int r = 0; r < n; r++)
      per[r] = is_cost ? plain[r] / v[r] : v[r] / plain[r];
    bench_summarize(per, (size_t)n, &ratio[c]);
  }
}

/* Goals met out of those checked, for the closing summary. */
struct tally {
  int met, checked;
  double worst;
};

struct goals {
  struct tally idle, rules, fiu;
};

static const char *check(struct tally *t, int ok, double value) {
  if (t->checked == 0 || value < t->worst)
    t->worst = value;
  t->checked++;
  t->met += ok;
  return ok ? "met" : "**MISSED**";
}

/* The goal column of configuration c, on the median per-round ratios. */
static void goal_cell(FILE *f, enum cfg c, const double ratio[CFG_COUNT],
                      struct goals *gl) {
  if (c == CFG_SHIM)
    fprintf(f, "≥ %.2f: %s", GOAL_IDLE,
            check(&gl->idle, ratio[c] >= GOAL_IDLE, ratio[c]));
  else if (c == CFG_SHIM32)
    fprintf(f, "≥ %.2f: %s", GOAL_RULES,
            check(&gl->rules, ratio[c] >= GOAL_RULES, ratio[c]));
  else if (c == CFG_FIU)
    fprintf(f, "shim idle ahead: %s",
            check(&gl->fiu, ratio[CFG_SHIM] > ratio[c],
                  ratio[CFG_SHIM] - ratio[c]));
}

/* The four rows of one workload: median, spread, ratio, and with calls
 * > 0 the time added per intercepted call, then the goal. */
static void rows(FILE *f, const char *workload, const double *v0, size_t stride,
                 int n, int is_cost, int digits, int calls, struct goals *gl) {
  struct bench_summary sum[CFG_COUNT], per[CFG_COUNT];
  double ratio[CFG_COUNT];
  for (int c = 0; c < CFG_COUNT; c++)
    bench_summarize(v0 + (size_t)c * stride, (size_t)n, &sum[c]);
  ratios(v0, stride, n, is_cost, per);
  for (int c = 0; c < CFG_COUNT; c++)
    ratio[c] = per[c].median;
  for (int c = 0; c < CFG_COUNT; c++) {
    fprintf(f, "| %s | %s | %.*f | %.*f – %.*f | %.3f | %.2f – %.2f | ",
            workload, cfg_names[c], digits, sum[c].median, digits, sum[c].min,
            digits, sum[c].max, ratio[c], per[c].min, per[c].max);
    if (calls > 0)
      fprintf(f, "%+.1f | ", (sum[c].median - sum[CFG_PLAIN].median) / calls);
    goal_cell(f, (enum cfg)c, ratio, gl);
    fprintf(f, " |\n");
  }
}

static void throughput_table(FILE *f, const struct samples *s,
                             struct goals *gl) {
  fprintf(f, "| workload | configuration | median req/s | min – max "
             "| ÷ plain | its min – max | goal |\n"
             "|---|---|--:|--:|--:|--:|---|\n");
  for (int m = 0; m < MODE_COUNT; m++)
    for (int t = 0; t < TEST_COUNT; t++) {
      char label[32];
      snprintf(label, sizeof(label), "redis-benchmark %s -P %d", test_names[t],
               mode_pipeline[m]);
      rows(f, label, s->redis[m][t][0], MAX_ROUNDS, s->rounds, 0, 0, 0, gl);
    }
  rows(f, "Python asyncio SET/GET", s->py[0], MAX_ROUNDS, s->rounds, 0, 0, 0,
       gl);
}

static void cpu_table(FILE *f, const struct samples *s, struct goals *gl) {
  fprintf(f, "| workload | configuration | median µs/request | min – max "
             "| plain ÷ config | its min – max | goal |\n"
             "|---|---|--:|--:|--:|--:|---|\n");
  for (int m = 0; m < MODE_COUNT; m++) {
    char label[32];
    snprintf(label, sizeof(label), "redis-benchmark SET+GET -P %d",
             mode_pipeline[m]);
    rows(f, label, s->cpu[m][0], MAX_ROUNDS, s->rounds, 1, 3, 0, gl);
  }
  rows(f, "Python asyncio SET/GET", s->py_cpu[0], MAX_ROUNDS, s->rounds, 1, 3,
       0, gl);
}

/* The per-call column spreads the difference over the loop's intercepted
 * calls: 4 for a round trip, 1 for an EAGAIN recv. */
static void micro_table(FILE *f, const struct samples *s, struct goals *gl) {
  fprintf(f, "| loop | configuration | median CPU ns/loop | min – max "
             "| plain ÷ config | its min – max | ns added per call | goal |\n"
             "|---|---|--:|--:|--:|--:|--:|---|\n");
  for (int k = 0; k < MICRO_COUNT; k++)
    rows(f, micro_names[k], s->micro[k][0], MAX_ROUNDS, s->rounds, 1, 0,
         micro_calls[k], gl);
}

static void tally_line(FILE *f, const char *what, const struct tally *t,
                       const char *worst) {
  fprintf(f, "  - %s: met in %d of %d (worst ", what, t->met, t->checked);
  fprintf(f, worst, t->worst);
  fprintf(f, ")\n");
}

static void summary_lines(FILE *f, const char *title, const struct goals *gl) {
  fprintf(f, "- %s\n", title);
  tally_line(f, "shim idle ≥ 0.98 × plain", &gl->idle, "%.3f");
  tally_line(f, "shim with 32 non-matching rules ≥ 0.95 × plain", &gl->rules,
             "%.3f");
  tally_line(f, "shim idle ahead of fiu-run -x", &gl->fiu,
             "margin %+.3f × plain");
}

static void context(FILE *f, const struct opts *o, const char *cmdline) {
  fprintf(f, "## faultline shim overhead\n\n");
  bench_print_context(f, cmdline);
  fprintf(f, "; shim %s built %s\n\n", g.shim_src, g.shim_built);
  fprintf(f,
          "Clients of a private redis-server on 127.0.0.1 (no persistence, "
          "never preloaded): %s, `-t set,get -c %s`, `-n %ld` unpipelined "
          "and `-n %ld` with `-P 16`; a Python %s asyncio client (streams, "
          "%d connections in one event loop, each alternating SET and GET "
          "request/response), %ld requests. %d round%s, configurations "
          "interleaved in rotating order; median and min – max over "
          "rounds. Every ratio is speed relative to plain (above 1 = "
          "faster), taken within each round against that round's plain "
          "run: median over rounds, and its min – max.\n\n",
          g.redis_version, CLIENTS, o->requests, o->requests * PIPELINED_SCALE,
          g.py_version, PY_CONNS, o->py_requests, o->rounds,
          o->rounds == 1 ? "" : "s");
  bench_print_other(f, &g.other, "during the rounds", "",
                    g.other.cores + g.other.steal > 0.1
                        ? " The machine was not quiet: the throughput rows "
                          "carry that noise (see the ratios' min – max); the "
                          "CPU and micro rows are less sensitive to it."
                        : "");
}

struct report_args {
  const struct opts *o;
  const struct samples *s;
  const char *cmdline;
};

static void report(FILE *f, const void *arg) {
  const struct report_args *a = arg;
  const struct opts *o = a->o;
  const struct samples *s = a->s;
  const char *cmdline = a->cmdline;
  struct goals tput = {{0}}, cpu = {{0}}, micro = {{0}};
  context(f, o, cmdline);
  fprintf(f, "### Client throughput (req/s, higher is better)\n\n");
  throughput_table(f, s, &tput);
  fprintf(f, "\n### Client CPU per request (lower is better)\n\n"
             "User + system CPU of the client process: for redis-benchmark "
             "from wait4, over both tests of a run; for Python its own "
             "process_time() over the requests (start-up excluded). What "
             "the preload adds, without the server, the scheduler or the "
             "host's steal time.\n\n");
  cpu_table(f, s, &cpu);
  fprintf(f,
          "\n### Micro: calls on a loopback TCP pair (lower is better)"
          "\n\n"
          "One thread, %ld loops of each kind per run. Round trip: "
          "1 byte send/recv there and back, 4 intercepted calls (2 on "
          "the connect()ed socket the shim tracks, 2 on the accepted "
          "one). recv EAGAIN: recv(MSG_DONTWAIT) on the tracked socket "
          "with nothing queued. Thread CPU time per loop in the cheapest "
          "of %d equal batches.\n\n",
          o->micro_iters, MICRO_BATCHES);
  micro_table(f, s, &micro);
  fprintf(f, "\n### Goals\n\n");
  summary_lines(f, "throughput (the stated goals)", &tput);
  summary_lines(f, "client CPU per request", &cpu);
  summary_lines(f, "micro loops", &micro);
}

/* ---- options and main -------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: fl-bench-shim [--quick] [--rounds N] [--requests N]\n"
          "                     [--py-requests N] [--micro-iters N] "
          "[--out FILE]\n"
          "Measures what libfaultline-preload.so costs redis-benchmark and a\n"
          "Python asyncio client (plain, shim idle, shim with 32\n"
          "non-matching rules, fiu-run -x) and a send/recv micro loop;\n"
          "prints a Markdown table.\n"
          "  --quick          1 round, few requests: a smoke test\n"
          "  --rounds N       rounds of all configurations (default 5)\n"
          "  --requests N     requests per unpipelined redis-benchmark run\n"
          "                   (default 100000; pipelined runs do %d times\n"
          "                   as many)\n"
          "  --py-requests N  requests per asyncio client run (default "
          "40000)\n"
          "  --micro-iters N  round trips per micro run (default 200000)\n"
          "  --out FILE       also write the table to FILE\n",
          PIPELINED_SCALE);
}

/* Explicit options win over --quick's defaults, in any order. */
static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"rounds", required_argument, NULL, 'r'},
      {"requests", required_argument, NULL, 'n'},
      {"micro-iters", required_argument, NULL, 'm'},
      {"py-requests", required_argument, NULL, 'p'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long rounds = -1, requests = -1, iters = -1, py = -1;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) >
         0) {
    int rc = 0;
    if (ch == 'r')
      rc = bench_parse_long(optarg, "--rounds", 1, MAX_ROUNDS, &rounds);
    else if (ch == 'n')
      rc = bench_parse_long(optarg, "--requests", 1000, 100000000, &requests);
    else if (ch == 'm')
      rc = bench_parse_long(optarg, "--micro-iters", 1000, 1000000000, &iters);
    else if (ch == 'p')
      rc = bench_parse_long(optarg, "--py-requests", 1000, 100000000, &py);
    if (rc != 0)
      return -1;
  }
  if (ch < 0)
    return -1;
  o->rounds = (int)(rounds > 0 ? rounds : o->quick ? 1 : 5);
  o->requests = requests > 0 ? requests : o->quick ? 10000 : 100000;
  o->micro_iters = iters > 0 ? iters : o->quick ? 20000 : 200000;
  o->py_requests = py > 0 ? py : o->quick ? 4000 : 40000;
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-shim");
  if (argc == 3 && strcmp(argv[1], "--micro-child") == 0)
    return micro_child(argv[2]);
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (check_tools() != 0)
    return FL_EXIT_ENV;
  static struct samples s; /* large: keep it off the stack */
  char cmdline[1024];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  atexit(cleanup);
  bench_catch_signals(SIGTERM, SIGTERM);
  if (setup() != 0 || start_redis() != 0)
    return FL_EXIT_ENV;
  redis_version();
  py_version();
  if (run_rounds(&o, &s) != 0) {
    if (bench_stop)
      bench_say("interrupted; cleaned up");
    return bench_stop ? 130 : FL_EXIT_ENV;
  }
  struct report_args ra = {&o, &s, cmdline};
  return bench_emit(o.out, report, &ra) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
