/* The faultline command as a user meets it: exit statuses, what it says on
 * bad input (and that it then runs nothing), the control segment's life,
 * and the shim's one-line refusal of a segment it must not trust. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faults/faults.h"
#include "support.h"

static struct {
  char dir[256];
  struct t_run run;
  struct t_proc live;
} S;

static void setup(void) {
  memset(&S, 0, sizeof(S));
  cr_assert_eq(t_mkdtemp(S.dir), 0);
}

static void teardown(void) {
  if (S.live.pid > 0)
    t_finish(&S.live, 5000);
  t_run_free(&S.run);
  t_rmtree(S.dir);
}

TestSuite(cli, .init = setup, .fini = teardown);

/* dir/name, in a static buffer of its own per call site slot. */
static char *in_dir(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", S.dir, name);
  return buf;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Runs argv (NULL-terminated) with extra environment `env`; the status. */
static int run_env(char *const env[], char *const argv[]) {
  t_run_free(&S.run);
  cr_assert_eq(t_run(argv, env, NULL, 20000, &S.run), 0, "cannot run %s",
               argv[0]);
  return S.run.status;
}

/* Runs the faultline binary with the given arguments (NULL-terminated). */
static int fl(const char *arg, ...) {
  char *argv[32];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  va_list ap;
  va_start(ap, arg);
  for (const char *a = arg; a != NULL && n < 31; a = va_arg(ap, const char *))
    argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  return run_env(NULL, argv);
}

static int count_char(const char *s, char c) {
  int n = 0;
  for (; *s != '\0'; s++)
    n += *s == c;
  return n;
}

#define ASSERT_STATUS(want)                                                    \
  cr_assert_eq(S.run.status, want, "exited %d, expected %d; stderr:\n%s",      \
               S.run.status, want, S.run.err)
#define ASSERT_ERR_HAS(needle)                                                 \
  cr_assert(strstr(S.run.err, needle) != NULL, "stderr lacks '%s':\n%s",       \
            needle, S.run.err)

/* ---- faultline exec: the command's status is ours ---- */

Test(cli, exec_passes_exit_status, .timeout = 30) {
  fl("exec", "--quiet", "--", "/bin/true", NULL);
  ASSERT_STATUS(0);
  fl("exec", "--quiet", "--", "/bin/sh", "-c", "exit 7", NULL);
  ASSERT_STATUS(7);
  fl("exec", "--quiet", "--", "sh", "-c", "exit 255", NULL); /* PATH */
  ASSERT_STATUS(255);
  fl("exec", "--quiet", "--fault", "refuse@127.0.0.1:1", "--", "/bin/sh", "-c",
     "exit 3", NULL);
  ASSERT_STATUS(3);
  cr_assert_str_eq(S.run.err, "", "--quiet printed:\n%s", S.run.err);
}

Test(cli, exec_killed_by_signal_is_128_plus_n, .timeout = 30) {
  fl("exec", "--quiet", "--", "/bin/sh", "-c", "kill -TERM $$", NULL);
  ASSERT_STATUS(128 + 15);
  fl("exec", "--quiet", "--", "/bin/sh", "-c", "kill -KILL $$", NULL);
  ASSERT_STATUS(128 + 9);
}

/* Bad input gives 2, says why, and never starts the command, which would
 * leave a marker file. */
Test(cli, exec_bad_usage_runs_nothing, .timeout = 30) {
  char mark[300], touch[320];
  in_dir(mark, sizeof(mark), "ran");
  snprintf(touch, sizeof(touch), "touch '%s'", mark);

  fl("exec", "--fault", "refus@127.0.0.1:6379", "--", "/bin/sh", "-c", touch,
     NULL);
  ASSERT_STATUS(2);
  cr_assert_str_eq(S.run.err,
                   "faultline: bad fault spec 'refus@127.0.0.1:6379': unknown "
                   "action 'refus' (allowed: refuse, reset, hang, delay, "
                   "limit, exhaust, dns, enospc, eio, redirect)\n");
  /* One bad spec among good ones is enough. */
  fl("exec", "--fault", "refuse@127.0.0.1:6379", "--fault",
     "delay@127.0.0.1:6379,ms=x", "--", "/bin/sh", "-c", touch, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("bad fault spec 'delay@127.0.0.1:6379,ms=x'");

  fl("exec", "--bogus", "--", "/bin/sh", "-c", touch, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("unknown option '--bogus'");

  fl("exec", "--seed", "many", "--", "/bin/sh", "-c", touch, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("bad --seed 'many'");

  fl("exec", "--fault", "refuse@127.0.0.1:6379", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("no command given");
  fl("exec", "--", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("no command given");

  cr_assert(!exists(mark), "the command ran despite bad usage");
}

Test(cli, exec_missing_command, .timeout = 30) {
  char missing[300];
  in_dir(missing, sizeof(missing), "no-such-program");
  fl("exec", "--", missing, NULL);
  ASSERT_STATUS(2);
  char want[400];
  snprintf(want, sizeof(want),
           "faultline: cannot run '%s': No such file or directory\n", missing);
  cr_assert_str_eq(S.run.err, want);
  fl("exec", "--", "faultline-no-such-command", NULL); /* a PATH search */
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("cannot run 'faultline-no-such-command'");
  /* A file that is not executable. */
  char plain[300];
  in_dir(plain, sizeof(plain), "plain");
  FILE *f = fopen(plain, "w");
  cr_assert_not_null(f);
  fclose(f);
  fl("exec", "--", plain, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("Permission denied");
}

/* busybox-static's busybox: ldd says it is no dynamic executable. */
static int busybox_is_static(void) {
  if (access("/bin/busybox", X_OK) != 0)
    return 0;
  char *ldd[] = {"ldd", "/bin/busybox", NULL};
  run_env(NULL, ldd);
  return strstr(S.run.out, "not a dynamic executable") != NULL ||
         strstr(S.run.err, "not a dynamic executable") != NULL;
}

/* A statically linked program cannot take the shim: refused, not run. */
Test(cli, exec_static_binary, .timeout = 60) {
  char src[300], bin[300], mark[300];
  in_dir(src, sizeof(src), "static.c");
  in_dir(bin, sizeof(bin), "static");
  in_dir(mark, sizeof(mark), "ran");
  if (access("/usr/lib/x86_64-linux-gnu/libc.a", R_OK) == 0) {
    FILE *f = fopen(src, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "#include <stdio.h>\nint main(void) {\n"
            "  FILE *f = fopen(\"%s\", \"w\");\n"
            "  return f == NULL;\n}\n",
            mark);
    fclose(f);
    char *cc[] = {"cc", "-static", "-o", bin, src, NULL};
    run_env(NULL, cc);
    cr_assert_eq(S.run.status, 0, "cc -static failed:\n%s", S.run.err);
  } else if (busybox_is_static()) {
    snprintf(bin, sizeof(bin), "/bin/busybox");
  } else {
    cr_skip_test("no libc.a for cc -static and no busybox: no static binary");
  }
  /* It is a working program on its own. */
  char *direct[] = {bin, NULL};
  if (strcmp(bin, "/bin/busybox") != 0) {
    run_env(NULL, direct);
    cr_assert_eq(S.run.status, 0);
    cr_assert(exists(mark));
    unlink(mark);
  }
  fl("exec", "--", bin, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("statically linked");
  cr_assert_eq(count_char(S.run.err, '\n'), 1, "more than one line:\n%s",
               S.run.err);
  cr_assert(!exists(mark), "the static program was run anyway");
}

/* ---- the control segment's life ---- */

/* The path in "faultline: control PATH (seed N)". */
static void control_path_from(const char *err, char *out, size_t size) {
  const char *p = strstr(err, "faultline: control ");
  cr_assert_not_null(p, "no control path on stderr:\n%s", err);
  p += strlen("faultline: control ");
  const char *end = strstr(p, " (seed ");
  cr_assert_not_null(end, "%s", err);
  snprintf(out, size, "%.*s", (int)(end - p), p);
}

Test(cli, exec_removes_its_temporary_control, .timeout = 30) {
  char tmpenv[300], ctl[PATH_MAX];
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", S.dir);
  char *env[] = {tmpenv, NULL};
  /* The command finds its segment named in the environment, mode 0600. */
  char *argv[] = {T_FAULTLINE,
                  "exec",
                  "--",
                  "/bin/sh",
                  "-c",
                  "test -f \"$FAULTLINE_CONTROL\" && "
                  "stat -c %a \"$FAULTLINE_CONTROL\" && exit 5",
                  NULL};
  run_env(env, argv);
  ASSERT_STATUS(5);
  cr_assert_str_eq(S.run.out, "600\n");
  control_path_from(S.run.err, ctl, sizeof(ctl));
  cr_assert(strncmp(ctl, S.dir, strlen(S.dir)) == 0,
            "control %s not under TMPDIR %s", ctl, S.dir);
  cr_assert(!exists(ctl), "%s is left behind", ctl);
  char *slash = strrchr(ctl, '/');
  *slash = '\0';
  cr_assert(!exists(ctl), "its folder %s is left behind", ctl);

  /* Also when the command is killed. */
  char *killed[] = {T_FAULTLINE, "exec",       "--", "/bin/sh",
                    "-c",        "kill -9 $$", NULL};
  run_env(env, killed);
  ASSERT_STATUS(137);
  control_path_from(S.run.err, ctl, sizeof(ctl));
  cr_assert(!exists(ctl), "%s is left behind after a kill", ctl);
}

Test(cli, exec_control_path, .timeout = 30) {
  char ctl[300];
  in_dir(ctl, sizeof(ctl), "ctl");
  fl("exec", "--quiet", "--control", ctl, "--", "/bin/sh", "-c",
     "test \"$FAULTLINE_CONTROL\" = \"$0\" && test -f \"$0\"", ctl, NULL);
  ASSERT_STATUS(0);
  cr_assert(!exists(ctl), "--control %s is left behind", ctl);

  /* A path that exists already is refused and left alone. */
  FILE *f = fopen(ctl, "w");
  cr_assert_not_null(f);
  fputs("precious\n", f);
  fclose(f);
  fl("exec", "--control", ctl, "--", "/bin/true", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("cannot create control segment");
  ASSERT_ERR_HAS("File exists");
  f = fopen(ctl, "r");
  cr_assert_not_null(f, "the existing file was removed");
  char buf[64] = "";
  cr_assert_not_null(fgets(buf, sizeof(buf), f));
  fclose(f);
  cr_assert_str_eq(buf, "precious\n", "the existing file was changed");
}

/* Signals sent to faultline exec reach the command, whose status is then
 * faultline's; the control segment is removed all the same. */
Test(cli, exec_forwards_signals, .timeout = 30) {
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    char ctl[300], name[32];
    snprintf(name, sizeof(name), "ctl%zu", i);
    in_dir(ctl, sizeof(ctl), name);
    char *argv[] = {T_FAULTLINE,
                    "exec",
                    "--quiet",
                    "--control",
                    ctl,
                    "--",
                    "/bin/sh",
                    "-c",
                    "trap 'echo got-signal; exit 9' TERM INT HUP; "
                    "echo ready; while :; do sleep 0.05; done",
                    NULL};
    cr_assert_eq(t_spawn(&S.live, argv, NULL, 0), 0);
    cr_assert_eq(t_expect(&S.live, "ready", NULL, 0, 10000), 0);
    cr_assert(exists(ctl));
    cr_assert_eq(kill(S.live.pid, sigs[i]), 0); /* faultline only */
    cr_assert_eq(t_expect(&S.live, "got-signal", NULL, 0, 5000), 0,
                 "signal %d did not reach the command", sigs[i]);
    int st = t_finish(&S.live, 5000);
    cr_assert_eq(st, 9, "faultline exec exited %d after signal %d", st,
                 sigs[i]);
    cr_assert(!exists(ctl), "%s is left behind after signal %d", ctl, sigs[i]);
  }
}

/* ---- inject / clear / status ---- */

/* A live `faultline exec` whose command waits for its stdin to close. */
static void start_live(const char *ctl) {
  char *argv[] = {T_FAULTLINE, "exec",      "--quiet",
                  "--control", (char *)ctl, "--",
                  "/bin/sh",   "-c",        "echo ready; read x; exit 0",
                  NULL};
  cr_assert_eq(t_spawn(&S.live, argv, NULL, 0), 0);
  cr_assert_eq(t_expect(&S.live, "ready", NULL, 0, 10000), 0,
               "faultline exec did not start its command");
}

Test(cli, inject_clear_status_live, .timeout = 30) {
  char ctl[300];
  in_dir(ctl, sizeof(ctl), "ctl");
  start_live(ctl);

  fl("status", "--control", ctl, NULL);
  ASSERT_STATUS(0);
  cr_assert(strstr(S.run.out, "no active rules") != NULL, "%s", S.run.out);

  fl("inject", "--control", ctl, "refuse@127.0.0.1:6379", NULL);
  ASSERT_STATUS(0);
  cr_assert_str_eq(S.run.out, "rule 1: refuse@127.0.0.1:6379\n");

  /* Malformed: 2 and the spec's error; with a good one, neither is added. */
  fl("inject", "--control", ctl, "hang@127.0.0.1:99999", NULL);
  ASSERT_STATUS(2);
  cr_assert_str_eq(S.run.err,
                   "faultline: bad fault spec 'hang@127.0.0.1:99999': bad "
                   "port '99999' (allowed: 1-65535)\n");
  fl("inject", "--control", ctl, "dns@db.internal", "eio@relative/*", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("bad fault spec 'eio@relative/*'");
  cr_assert_str_eq(S.run.out, "", "something was installed:\n%s", S.run.out);
  fl("inject", "--control", ctl, NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("no fault given");

  fl("status", "--control", ctl, NULL);
  ASSERT_STATUS(0);
  cr_assert(strstr(S.run.out, "refuse@127.0.0.1:6379") != NULL, "%s",
            S.run.out);
  cr_assert(strstr(S.run.out, "db.internal") == NULL,
            "half of a refused inject was installed:\n%s", S.run.out);
  cr_assert(strstr(S.run.out, "99999") == NULL, "%s", S.run.out);

  fl("clear", "--control", ctl, "7", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("no rule 7");
  fl("clear", "--control", ctl, "x", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("bad rule 'x'");
  fl("clear", "--control", ctl, "1", NULL);
  ASSERT_STATUS(0);
  fl("status", "--control", ctl, NULL);
  cr_assert(strstr(S.run.out, "no active rules") != NULL, "%s", S.run.out);

  cr_assert_eq(t_finish(&S.live, 10000), 0);
  cr_assert(!exists(ctl));
}

/* Every control command against a path that is no segment: 2, and why. */
static void assert_control_refused(const char *path, const char *why) {
  const char *cmds[][2] = {
      {"inject", "refuse@127.0.0.1:6379"}, {"clear", "all"}, {"status", NULL}};
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    fl(cmds[i][0], "--control", path, cmds[i][1], NULL);
    cr_assert_eq(S.run.status, 2, "%s on %s exited %d:\n%s", cmds[i][0], path,
                 S.run.status, S.run.err);
    char want[600];
    snprintf(want, sizeof(want),
             "faultline: %s: cannot open control segment %s: %s\n", cmds[i][0],
             path, why);
    cr_assert_str_eq(S.run.err, want);
    cr_assert_str_eq(S.run.out, "");
  }
}

static void write_file(const char *path, const void *data, size_t n,
                       mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  cr_assert_geq(fd, 0, "cannot create %s", path);
  cr_assert_eq(write(fd, data, n), (ssize_t)n);
  cr_assert_eq(fchmod(fd, mode), 0);
  close(fd);
}

static void random_bytes(void *buf, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY);
  cr_assert_geq(fd, 0);
  cr_assert_eq(read(fd, buf, n), (ssize_t)n);
  close(fd);
}

Test(cli, control_commands_refuse_foreign_files, .timeout = 30) {
  char missing[300], foreign[300], zeros[300];
  in_dir(missing, sizeof(missing), "missing");
  in_dir(foreign, sizeof(foreign), "foreign");
  in_dir(zeros, sizeof(zeros), "zeros");
  unsigned char junk[100];
  random_bytes(junk, sizeof(junk));
  write_file(foreign, junk, sizeof(junk), 0600);
  /* The right size, but no magic. */
  char *z = calloc(1, FL_CTL_TOTAL_SIZE);
  cr_assert_not_null(z);
  write_file(zeros, z, FL_CTL_TOTAL_SIZE, 0600);
  free(z);

  assert_control_refused(missing, "No such file or directory");
  assert_control_refused(foreign, "not a valid faultline control segment");
  assert_control_refused(zeros, "not a valid faultline control segment");
  assert_control_refused(S.dir, "Is a directory");
  /* Nothing was written into them. */
  struct stat st;
  cr_assert_eq(stat(foreign, &st), 0);
  cr_assert_eq(st.st_size, 100);

  fl("status", NULL); /* neither --control nor FAULTLINE_CONTROL */
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("no control segment");
}

/* ---- the shim and segments it must not use ---- */

/* Runs /bin/true with the shim and FAULTLINE_CONTROL=path; checks that it
 * still succeeds and that stderr is exactly one refusal line giving why. */
static void assert_shim_ignores(const char *path, const char *why) {
  char pre[400], ctl[400];
  snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", T_SHIM);
  snprintf(ctl, sizeof(ctl), FL_CTL_ENV "=%s", path);
  char *env[] = {pre, ctl, NULL};
  char *argv[] = {"/bin/true", NULL};
  run_env(env, argv);
  cr_assert_eq(S.run.status, 0, "/bin/true exited %d under the shim with %s",
               S.run.status, path);
  char want[800];
  snprintf(want, sizeof(want), "faultline: ignoring control segment %s: %s\n",
           path, why);
  cr_assert_str_eq(S.run.err, want);
}

Test(cli, shim_ignores_untrusted_segments, .timeout = 30) {
  char real[300], copy[300], open_copy[300], cut[300], foreign[300], zeros[300],
      missing[300], copycmd[1100];
  in_dir(real, sizeof(real), "control");
  in_dir(copy, sizeof(copy), "copy");
  in_dir(open_copy, sizeof(open_copy), "world-readable");
  in_dir(cut, sizeof(cut), "truncated");
  in_dir(foreign, sizeof(foreign), "foreign");
  in_dir(zeros, sizeof(zeros), "zeros");
  in_dir(missing, sizeof(missing), "missing");

  /* Real segments, copied while faultline exec keeps one. */
  snprintf(copycmd, sizeof(copycmd),
           "cp \"$FAULTLINE_CONTROL\" '%s' && cp \"$FAULTLINE_CONTROL\" '%s' "
           "&& cp \"$FAULTLINE_CONTROL\" '%s'",
           copy, open_copy, cut);
  fl("exec", "--quiet", "--control", real, "--fault", "refuse@127.0.0.1:1",
     "--", "/bin/sh", "-c", copycmd, NULL);
  ASSERT_STATUS(0);
  cr_assert_eq(chmod(copy, 0600), 0);
  cr_assert_eq(chmod(open_copy, 0644), 0);
  cr_assert_eq(chmod(cut, 0600), 0);
  cr_assert_eq(truncate(cut, FL_CTL_TOTAL_SIZE / 2), 0);

  /* A good copy is used without a word: the refusals below are real. */
  char pre[400], ctl[400];
  snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", T_SHIM);
  snprintf(ctl, sizeof(ctl), FL_CTL_ENV "=%s", copy);
  char *env[] = {pre, ctl, NULL};
  char *argv[] = {"/bin/true", NULL};
  run_env(env, argv);
  ASSERT_STATUS(0);
  cr_assert_str_eq(S.run.err, "", "a good segment was refused");

  unsigned char junk[100];
  random_bytes(junk, sizeof(junk));
  write_file(foreign, junk, sizeof(junk), 0600);
  char *z = calloc(1, FL_CTL_TOTAL_SIZE);
  cr_assert_not_null(z);
  write_file(zeros, z, FL_CTL_TOTAL_SIZE, 0600);
  free(z);

  assert_shim_ignores(foreign, "wrong size (truncated or foreign file)");
  assert_shim_ignores(cut, "wrong size (truncated or foreign file)");
  assert_shim_ignores(open_copy,
                      "readable or writable by others (must be 0600)");
  assert_shim_ignores(zeros, "not a faultline control segment (bad magic)");
  assert_shim_ignores(missing, "No such file or directory");
  assert_shim_ignores(S.dir, "Is a directory");
  if (geteuid() == 0) { /* root can give a good copy to someone else */
    cr_assert_eq(chown(copy, 65534, 65534), 0);
    assert_shim_ignores(copy, "owned by another user");
  }
}

/* A listening socket on a free loopback port (nobody accepts: the
 * backlog completes connects); its port. */
static int listen_port(int *fd) {
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(*fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(listen(*fd, 16), 0);
  cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
  return ntohs(a.sin_port);
}

/* The shim's first-use set-up with dlsym or mmap refusing it (tests/nodlsym.c):
 * the target runs as if the shim were absent. */
static void run_refused_dlsym(const char *mode, const char *host, int port,
                              const char *fault) {
  char pre[600], nod[64], script[600], file[300], portarg[16], spec[64];
  int nommap = strcmp(mode, "mmap") == 0;
  snprintf(pre, sizeof(pre), "LD_PRELOAD=%s %s", T_SHIM,
           FL_TEST_BUILD_DIR "/libfl-test-nodlsym.so");
  snprintf(nod, sizeof(nod), nommap ? "FL_TEST_NOMMAP=1" : "FL_TEST_NODLSYM=%s",
           mode);
  snprintf(portarg, sizeof(portarg), "%d", port);
  /* Resolves (when host is a name), connects, writes a file. */
  snprintf(script, sizeof(script),
           "import socket, sys\n"
           "h, p, f = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
           "if not h[0].isdigit(): h = socket.getaddrinfo(h, p)[0][4][0]\n"
           "s = socket.socket(); s.settimeout(5)\n"
           "try:\n  s.connect((h, p))\n"
           "except ConnectionRefusedError:\n  print('refused'); sys.exit(0)\n"
           "open(f, 'w').write('x'); print('ok')\n");
  in_dir(file, sizeof(file), "written");
  if (fault == NULL) {
    char *env[] = {pre, nod, NULL};
    char *argv[] = {
        "/usr/bin/python3", "-c", script, (char *)host, portarg, file, NULL};
    run_env(env, argv);
    return;
  }
  /* Under faultline exec: the shim first, the refusing dlsym after it. */
  snprintf(pre, sizeof(pre), "LD_PRELOAD=%s",
           FL_TEST_BUILD_DIR "/libfl-test-nodlsym.so");
  snprintf(spec, sizeof(spec), "%s@%s:%d", fault, host, port);
  char *env[] = {pre, nod, NULL};
  char *argv[] = {T_FAULTLINE,
                  "exec",
                  "--quiet",
                  "--fault",
                  spec,
                  "--",
                  "/usr/bin/python3",
                  "-c",
                  script,
                  (char *)host,
                  portarg,
                  file,
                  NULL};
  run_env(env, argv);
}

Test(cli, shim_without_dlsym_runs_as_if_absent, .timeout = 60) {
#if defined(__SANITIZE_ADDRESS__)
  /* The refusing dlsym is built uninstrumented, for the plain build's
   * uninstrumented shim: the sanitizer build has nothing to add here. */
  cr_skip_test("plain build only");
#endif
  int lfd, port = listen_port(&lfd);
  /* RTLD_NEXT refused: libc is asked directly, nothing is said, and
   * names, connects and files work. */
  run_refused_dlsym("next", "localhost", port, NULL);
  cr_assert_eq(S.run.status, 0, "stderr:\n%s", S.run.err);
  cr_assert_str_eq(S.run.out, "ok\n");
  cr_assert_str_eq(S.run.err, "");
  /* ... and the faults still act, through what libc gave. */
  run_refused_dlsym("next", "127.0.0.1", port, "refuse");
  cr_assert_eq(S.run.status, 0, "stderr:\n%s", S.run.err);
  cr_assert_str_eq(S.run.out, "refused\n");
  /* Every lookup refused: the wrappers go to the kernel, said once. */
  run_refused_dlsym("all", "127.0.0.1", port, NULL);
  cr_assert_eq(S.run.status, 0, "stderr:\n%s", S.run.err);
  cr_assert_str_eq(S.run.out, "ok\n");
  cr_assert(strncmp(S.run.err, "faultline: cannot find libc's ", 30) == 0 &&
                count_char(S.run.err, '\n') == 1,
            "stderr:\n%s", S.run.err);
  /* The control segment cannot be mapped: no fault acts (the connect
   * goes through), and that is said once. */
  run_refused_dlsym("mmap", "127.0.0.1", port, "refuse");
  cr_assert_eq(S.run.status, 0, "stderr:\n%s", S.run.err);
  cr_assert_str_eq(S.run.out, "ok\n");
  cr_assert(strncmp(S.run.err, "faultline: ignoring control segment ", 36) ==
                    0 &&
                strstr(S.run.err, "Cannot allocate memory") != NULL &&
                count_char(S.run.err, '\n') == 1,
            "stderr:\n%s", S.run.err);
  close(lfd);
}

/* ---- help ---- */

Test(cli, help_faults_mentions_every_action, .timeout = 30) {
  fl("help", "faults", NULL);
  ASSERT_STATUS(0);
  cr_assert_str_eq(S.run.err, "");
  const struct fl_fault_type *t;
  for (size_t i = 0; (t = fl_fault_at(i)) != NULL; i++) {
    char needle[64];
    snprintf(needle, sizeof(needle), "\n  %s%s", t->name,
             t->kind == FL_FAULT_PROCESS ? ": " : "@");
    cr_expect(strstr(S.run.out, needle) != NULL,
              "'faultline help faults' does not mention %s", t->name);
  }
  fl("help", "list", NULL);
  ASSERT_STATUS(0);
  cr_expect(strstr(S.run.out, "usage: faultline list") != NULL, "%s",
            S.run.out);
  fl("list", "--help", NULL);
  ASSERT_STATUS(0);
  fl("list", "extra", NULL);
  ASSERT_STATUS(2);
  fl("help", "nonsense", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("unknown topic 'nonsense'");
  fl(NULL);
  ASSERT_STATUS(2);
  fl("explode", NULL);
  ASSERT_STATUS(2);
  ASSERT_ERR_HAS("unknown command 'explode'");
}

/* faultline alone (faultline-run not installed beside it): the scenario
 * commands say what is missing instead of failing obscurely. */
Test(cli, runner_missing_is_named, .timeout = 30) {
  char copy[300], cmd[700];
  in_dir(copy, sizeof(copy), "faultline");
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", T_FAULTLINE, copy);
  cr_assert_eq(system(cmd), 0);
  char *argv[] = {copy, "validate", "x.yaml", NULL};
  run_env(NULL, argv);
  ASSERT_STATUS(3);
  ASSERT_ERR_HAS("cannot find faultline-run beside the faultline program");
  char *list[] = {copy, "list", NULL};
  run_env(NULL, list);
  ASSERT_STATUS(0); /* the light commands need nothing else */
}

/* `cmake --install`: bin/faultline finds lib/faultline/faultline-run and
 * the shim from there, and so does the runner (a scenario whose target
 * dies at start gets as far as starting it: exit 3 for that reason, not
 * for a missing shim). */
Test(cli, installed_layout_works, .timeout = 120) {
  char prefix[300], cmd[1200], fl_bin[400], svc[400], sc[400];
  in_dir(prefix, sizeof(prefix), "prefix");
  snprintf(cmd, sizeof(cmd),
           "cmake --install '%s' --prefix '%s' >/dev/null 2>&1",
           FL_TEST_BUILD_DIR, prefix);
  cr_assert_eq(system(cmd), 0, "%s failed", cmd);
  snprintf(fl_bin, sizeof(fl_bin), "%s/bin/faultline", prefix);
  char *exec[] = {fl_bin, "exec", "--quiet", "--", "/bin/true", NULL};
  run_env(NULL, exec);
  ASSERT_STATUS(0);

  snprintf(cmd, sizeof(cmd), "%s/share/faultline/scenarios/db-down.yaml",
           prefix);
  char *val[] = {fl_bin, "validate", cmd, NULL};
  run_env(NULL, val);
  ASSERT_STATUS(0);

  in_dir(svc, sizeof(svc), "svc.yaml");
  in_dir(sc, sizeof(sc), "s.yaml");
  FILE *f = fopen(svc, "w");
  cr_assert_not_null(f);
  fputs("service: dies\ncommand: \"exit 3\"\n"
        "ready: { tcp: true, timeout: 5s }\n",
        f);
  fclose(f);
  f = fopen(sc, "w");
  cr_assert_not_null(f);
  fputs("scenario: s\nservice: svc.yaml\ntraffic:\n"
        "  root: { request: GET /, rate: 5 }\n"
        "timeline:\n  - phase: a\n    duration: 1s\n",
        f);
  fclose(f);
  char out[300], tmpenv[320];
  in_dir(out, sizeof(out), "out");
  snprintf(tmpenv, sizeof(tmpenv), "TMPDIR=%s", S.dir);
  char *env[] = {tmpenv, "FAULTLINE_PRELOAD=", NULL};
  char *run[] = {fl_bin, "run", "--quiet", "--out", out, sc, NULL};
  run_env(env, run);
  ASSERT_STATUS(3);
  cr_expect(strstr(S.run.out, "exited with status 3 while starting") != NULL,
            "%s\n%s", S.run.out, S.run.err);
}
