/*
 * fl-bench-proxy-http: what the proxy's HTTP/1.1 codec (harness/proxy/
 * http.c) costs pass-through traffic when no protocol fault is on. wrk
 * (keep-alive, -c20, one thread) fetches a static file from nginx:
 *   direct   to nginx;
 *   bytes    through fl_proxy with no protocol (bytes only);
 *   http     through fl_proxy following HTTP (protocol "http").
 * Both proxies run on one libuv loop in a thread of this program, with an
 * empty control segment. Each round runs the three in an order rotated by
 * one, for a 1 KiB and a 64 KiB body; the report gives the median over
 * rounds of http/bytes and bytes/direct requests per second, paired within
 * a round. Usage: fl-bench-proxy-http [--rounds N] [--seconds S]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "proxy/proxy.h"

enum { DIRECT, BYTES, HTTP, NCFG };
static const char *const names[NCFG] = {"direct", "bytes", "http"};
static const char *const files[2] = {"1k", "64k"};
#define MAX_ROUNDS 21

static struct {
  char dir[PATH_MAX];
  pid_t nginx;
  int port[NCFG];
  uv_loop_t loop;
  uv_async_t stop;
  fl_control_t *ctl;
  fl_proxy_t *proxy[NCFG];
  pthread_t thread;
} g;

static int write_file(const char *path, const char *text, size_t n) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  int ok = fwrite(text, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static int start_nginx(void) {
  char www[PATH_MAX + 8], conf[PATH_MAX + 16], path[PATH_MAX + 32];
  static char text[8 * PATH_MAX + 1024];
  snprintf(www, sizeof(www), "%s/www", g.dir);
  mkdir(www, 0755);
  static char body[65536];
  memset(body, 'x', sizeof(body));
  snprintf(path, sizeof(path), "%s/1k", www);
  if (write_file(path, body, 1024) != 0)
    return -1;
  snprintf(path, sizeof(path), "%s/64k", www);
  if (write_file(path, body, sizeof(body)) != 0)
    return -1;
  g.port[DIRECT] = fl_free_port();
  if ((size_t)snprintf(
          text, sizeof(text),
          "daemon off;\nmaster_process off;\nworker_processes 1;\n"
          "pid %1$s/nginx.pid;\nerror_log %1$s/error.log warn;\n"
          "events { worker_connections 4096; }\n"
          "http {\n  access_log off;\n  client_body_temp_path %1$s/tmp;\n"
          "  proxy_temp_path %1$s/tmp;\n  fastcgi_temp_path %1$s/tmp;\n"
          "  uwsgi_temp_path %1$s/tmp;\n  scgi_temp_path %1$s/tmp;\n"
          "  keepalive_requests 100000000;\n"
          "  server { listen 127.0.0.1:%2$d; root %1$s/www; }\n}\n",
          g.dir, g.port[DIRECT]) >= sizeof(text))
    return -1;
  snprintf(conf, sizeof(conf), "%s/nginx.conf", g.dir);
  if (write_file(conf, text, strlen(text)) != 0)
    return -1;
  g.nginx = fork();
  if (g.nginx == 0) {
    execl("/usr/sbin/nginx", "nginx", "-c", conf, "-e", "/dev/null",
          (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 100; i++) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "curl -sf -o /dev/null http://127.0.0.1:%d/1k",
             g.port[DIRECT]);
    if (system(cmd) == 0)
      return 0;
    bench_sleep_ms(50);
  }
  return -1;
}

static void on_stop(uv_async_t *a) {
  for (int i = BYTES; i < NCFG; i++)
    fl_proxy_close(g.proxy[i]);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&g.loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_proxies(void) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  if (fl_control_create(path, 1, &g.ctl) != 0 || uv_loop_init(&g.loop) != 0)
    return -1;
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = BYTES; i < NCFG; i++) {
    struct fl_proxy_opts o = {.protocol = i == HTTP ? "http" : NULL};
    if (fl_proxy_start_with(&g.loop, g.ctl, (struct sockaddr *)&up, &o,
                            &g.proxy[i]) != 0)
      return -1;
    g.port[i] = fl_proxy_port(g.proxy[i]);
  }
  if (uv_async_init(&g.loop, &g.stop, on_stop) != 0 ||
      pthread_create(&g.thread, NULL, loop_main, NULL) != 0)
    return -1;
  return 0;
}

/* One wrk run; its requests per second, or -1. */
static double wrk(int cfg, const char *file, int seconds) {
  char cmd[256], line[512];
  snprintf(cmd, sizeof(cmd), "wrk -t1 -c20 -d%ds http://127.0.0.1:%d/%s 2>&1",
           seconds, g.port[cfg], file);
  FILE *p = popen(cmd, "r");
  double rps = -1;
  while (p != NULL && fgets(line, sizeof(line), p) != NULL)
    if (strncmp(line, "Requests/sec:", 13) == 0)
      rps = strtod(line + 13, NULL);
  if (p != NULL && pclose(p) != 0)
    rps = -1;
  return rps;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  long rounds = 5, seconds = 3;
  bench_init("fl-bench-proxy-http");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--rounds") == 0)
      bench_parse_long(argv[i + 1], "--rounds", 1, MAX_ROUNDS, &rounds);
    else if (strcmp(argv[i], "--seconds") == 0)
      bench_parse_long(argv[i + 1], "--seconds", 1, 60, &seconds);
  }
  if (bench_need_program("wrk", "wrk") != 0 ||
      bench_need_program("nginx", "nginx-light") != 0)
    return FL_EXIT_ENV;
  snprintf(g.dir, sizeof(g.dir), "/tmp/fl-bench-http-XXXXXX");
  int status = FL_EXIT_ENV;
  if (mkdtemp(g.dir) == NULL || start_nginx() != 0 || start_proxies() != 0) {
    bench_say("cannot start nginx or the proxies");
    goto out;
  }
  double rps[2][NCFG][MAX_ROUNDS], codec[2][MAX_ROUNDS], hop[2][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++)
    for (int f = 0; f < 2; f++)
      for (int k = 0; k < NCFG; k++) {
        int c = (k + r) % NCFG;
        if ((rps[f][c][r] = wrk(c, files[f], (int)seconds)) <= 0) {
          bench_say("wrk failed (%s, %s)", names[c], files[f]);
          goto out;
        }
      }
  printf("fl-bench-proxy-http: wrk -t1 -c20 -d%lds, %ld rounds, nginx on "
         "loopback\n",
         seconds, rounds);
  printf("%-6s %12s %12s %12s %14s %14s\n", "body", "direct rps", "bytes rps",
         "http rps", "http/bytes", "bytes/direct");
  for (int f = 0; f < 2; f++) {
    double m[NCFG];
    for (int r = 0; r < rounds; r++) {
      codec[f][r] = rps[f][HTTP][r] / rps[f][BYTES][r];
      hop[f][r] = rps[f][BYTES][r] / rps[f][DIRECT][r];
    }
    for (int c = 0; c < NCFG; c++)
      m[c] = median(rps[f][c], (int)rounds);
    printf("%-6s %12.0f %12.0f %12.0f %14.3f %14.3f\n", files[f], m[DIRECT],
           m[BYTES], m[HTTP], median(codec[f], (int)rounds),
           median(hop[f], (int)rounds));
  }
  status = FL_EXIT_OK;
out:
  if (g.thread) {
    uv_async_send(&g.stop);
    pthread_join(g.thread, NULL);
    uv_loop_close(&g.loop);
  }
  if (g.nginx > 0) {
    kill(g.nginx, SIGTERM);
    waitpid(g.nginx, NULL, 0);
  }
  fl_control_remove(g.ctl);
  char rm[PATH_MAX + 16];
  snprintf(rm, sizeof(rm), "rm -rf %s", g.dir);
  if (g.dir[0] == '/' && system(rm) != 0)
    bench_say("could not remove %s", g.dir);
  return status;
}
