/*
 * The proxy against hostile and broken peers, in its own process: a
 * `faultline exec --proxy` whose command (a Python client under the shim,
 * so its connections go through the proxy) reads the proxy's /proc entries
 * while it keeps 50 connections that never send, 20 that send one byte a
 * second and 10 000 opened at once, with the proxy's soft descriptor limit
 * at 1024 so that it runs out of descriptors. Meanwhile a normal client's
 * PING round trips on a connection opened before must stay fast. A second
 * dependency accepts and closes at once, or sends half a greeting and
 * closes: the proxy ends those connections only.
 *
 * What must hold: the proxy's fds never pass its limit and come back once
 * the flood goes; its RSS stays small; it does not spin on accept (CPU
 * share during the flood); the connections it cannot take are closed at
 * once rather than left hanging in the backlog; a new client is served
 * after; the normal client never waits more than 200 ms.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static const char hostile_py[] =
    "import resource\n"
    "h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))\n"
    "import json, os, socket, sys, threading, time, selectors\n"
    "rport, bport = int(sys.argv[1]), int(sys.argv[2])\n"
    "ppid = os.getppid()\n"
    "out = {\"proxy_comm\": open(\"/proc/%d/comm\" % ppid).read().strip()}\n"
    "def fds(): return len(os.listdir(\"/proc/%d/fd\" % ppid))\n"
    "def rss_kb():\n"
    "    for l in open(\"/proc/%d/status\" % ppid):\n"
    "        if l.startswith(\"VmRSS:\"): return int(l.split()[1])\n"
    "def cpu():\n"
    "    f = open(\"/proc/%d/stat\" % ppid).read().rsplit(\")\", "
    "1)[1].split()\n"
    "    return (int(f[11]) + int(f[12])) / os.sysconf(\"SC_CLK_TCK\")\n"
    "def ping(s):\n"
    "    t = time.monotonic(); s.sendall(b\"PING\\r\\n\"); buf = b\"\"\n"
    "    while not buf.endswith(b\"\\r\\n\"):\n"
    "        c = s.recv(100)\n"
    "        if not c: raise OSError(\"closed\")\n"
    "        buf += c\n"
    "    assert buf == b\"+PONG\\r\\n\", buf\n"
    "    return (time.monotonic() - t) * 1000\n"
    "def conn(port, timeout=5):\n"
    "    s = socket.create_connection((\"127.0.0.1\", port), timeout=timeout); "
    "return s\n"
    "normal = conn(rport)\n"
    "base = sorted(ping(normal) for _ in range(50))\n"
    "out[\"base_ms_p50\"] = base[25]; out[\"fds_before\"] = fds(); "
    "out[\"rss_before_kb\"] = rss_kb()\n"
    "# idle and slow clients\n"
    "idle = [conn(rport) for _ in range(50)]\n"
    "slow = [conn(rport) for _ in range(20)]\n"
    "stop = threading.Event()\n"
    "def dribble():\n"
    "    msg = b\"PING\\r\\n\"; i = 0\n"
    "    while not stop.is_set():\n"
    "        for s in slow:\n"
    "            try: s.send(msg[i % len(msg):i % len(msg) + 1])\n"
    "            except OSError: pass\n"
    "        i += 1; stop.wait(1.0)\n"
    "threading.Thread(target=dribble, daemon=True).start()\n"
    "# the flood: 10 000 non-blocking connects at once\n"
    "flood = []\n"
    "for _ in range(10000):\n"
    "    s = socket.socket(); s.setblocking(False)\n"
    "    try: s.connect((\"127.0.0.1\", rport))\n"
    "    except BlockingIOError: pass\n"
    "    except OSError: s.close(); continue\n"
    "    flood.append(s)\n"
    "out[\"flood_opened\"] = len(flood)\n"
    "lat, fd_max, rss_max = [], 0, 0\n"
    "c0, t0 = cpu(), time.monotonic()\n"
    "while time.monotonic() - t0 < 4:\n"
    "    lat.append(ping(normal)); fd_max = max(fd_max, fds()); rss_max = "
    "max(rss_max, rss_kb())\n"
    "    time.sleep(0.02)\n"
    "out[\"cpu_share_during_flood\"] = (cpu() - c0) / (time.monotonic() - t0)\n"
    "lat.sort()\n"
    "out[\"flood_ms_p50\"] = lat[len(lat) // 2]; out[\"flood_ms_max\"] = "
    "lat[-1]\n"
    "out[\"fds_max\"] = fd_max; out[\"rss_max_kb\"] = rss_max\n"
    "# what the flood's connections saw: served, closed (shed) or still "
    "pending\n"
    "closed = 0\n"
    "for s in flood:\n"
    "    try:\n"
    "        s.setblocking(True); s.settimeout(0.001)\n"
    "        if s.recv(1) == b\"\": closed += 1\n"
    "    except (socket.timeout, BlockingIOError): pass\n"
    "    except OSError: closed += 1\n"
    "out[\"flood_closed_by_proxy\"] = closed\n"
    "for s in flood: s.close()\n"
    "stop.set()\n"
    "for s in idle + slow: s.close()\n"
    "# recovery: within 5 s the proxy's fds come back and a new client is "
    "served\n"
    "t0 = time.monotonic()\n"
    "while fds() > out[\"fds_before\"] + 5 and time.monotonic() - t0 < 5: "
    "time.sleep(0.05)\n"
    "out[\"fds_after\"] = fds()\n"
    "fresh = conn(rport); out[\"fresh_ms\"] = ping(fresh); fresh.close()\n"
    "# a dependency that closes mid-handshake: each such connection ends "
    "alone\n"
    "ends = 0\n"
    "for _ in range(20):\n"
    "    s = conn(bport)\n"
    "    s.settimeout(5)\n"
    "    data = b\"\"\n"
    "    while True:\n"
    "        c = s.recv(100)\n"
    "        if not c: break\n"
    "        data += c\n"
    "    ends += 1; s.close()\n"
    "out[\"broken_dep_connections_ended\"] = ends\n"
    "out[\"normal_after_broken_ms\"] = ping(normal)\n"
    "print(json.dumps(out)); sys.stdout.flush()\n";

/* A dependency that closes mid-handshake: every other connection gets
 * half of a PostgreSQL-like greeting first. */
static const char broken_py[] =
    "import socket, sys, threading\n"
    "l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, "
    "1)\n"
    "l.bind((\"127.0.0.1\", int(sys.argv[1]))); l.listen(64)\n"
    "n = 0\n"
    "while True:\n"
    "    c, _ = l.accept(); n += 1\n"
    "    if n % 2: c.sendall(b\"\\x00\\x00\\x00\\x4eR\")  # half a greeting\n"
    "    c.close()\n";

static struct t_redis redis;
static char tmp[256];
static pid_t broken_pid = -1;

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  cr_assert_eq(fclose(f), 0);
}

static void setup(void) {
  cr_assert_eq(t_mkdtemp(tmp), 0);
  cr_assert_eq(t_redis_start(&redis), 0);
}

static void teardown(void) {
  if (broken_pid > 0) {
    kill(broken_pid, SIGKILL);
    waitpid(broken_pid, NULL, 0);
  }
  t_redis_stop(&redis);
  t_rmtree(tmp);
}

/* The number after "key": in the JSON line. */
static double field(const char *json, const char *key) {
  char needle[64];
  snprintf(needle, sizeof(needle), "\"%s\": ", key);
  const char *at = strstr(json, needle);
  cr_assert_not_null(at, "no %s in %s", key, json);
  return strtod(at + strlen(needle), NULL);
}

Test(proxy_hostile, floods_idlers_dribblers_and_broken_peers, .init = setup,
     .fini = teardown, .timeout = 120) {
  char hostile[300], broken[300], cmd[2048], rport[16], bport[16];
  snprintf(hostile, sizeof(hostile), "%s/hostile.py", tmp);
  snprintf(broken, sizeof(broken), "%s/broken.py", tmp);
  write_text(hostile, hostile_py);
  write_text(broken, broken_py);
  int bp = t_free_port();
  snprintf(rport, sizeof(rport), "%d", redis.port);
  snprintf(bport, sizeof(bport), "%d", bp);
  broken_pid = fork();
  if (broken_pid == 0) {
    execlp("python3", "python3", broken, bport, (char *)NULL);
    _exit(127);
  }
  cr_assert_eq(t_wait_port(bp, 10000), 0);

  snprintf(cmd, sizeof(cmd),
           "ulimit -Sn 1024 && exec '%s' exec --quiet --proxy 127.0.0.1:%s "
           "--proxy 127.0.0.1:%s -- python3 '%s' %s %s",
           T_FAULTLINE, rport, bport, hostile, rport, bport);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 90000, &r), 0);
  cr_assert_eq(r.status, 0, "exit %d\nstdout: %s\nstderr: %s", r.status, r.out,
               r.err);
  const char *j = r.out;
  cr_log_info("%s", j);
  cr_assert(strstr(j, "\"proxy_comm\": \"faultline\"") != NULL, "%s", j);
  cr_expect_eq(field(j, "flood_opened"), 10000);
  cr_expect_leq(field(j, "fds_max"), 1024, "the proxy passed its fd limit");
  cr_expect_lt(field(j, "rss_max_kb") - field(j, "rss_before_kb"), 32 * 1024,
               "the proxy's RSS grew by more than 32 MB");
  cr_expect_lt(field(j, "cpu_share_during_flood"), 0.5,
               "the proxy spins on accept");
  cr_expect_gt(field(j, "flood_closed_by_proxy"), 5000,
               "connections the proxy could not take were left hanging");
  cr_expect_lt(field(j, "flood_ms_max"), 200,
               "a normal client's round trip was slowed");
  cr_expect_leq(field(j, "fds_after"), field(j, "fds_before") + 5,
                "the proxy's fds did not come back");
  cr_expect_lt(field(j, "fresh_ms"), 1000);
  cr_expect_eq(field(j, "broken_dep_connections_ended"), 20);
  cr_expect_lt(field(j, "normal_after_broken_ms"), 200);
  t_run_free(&r);
}
