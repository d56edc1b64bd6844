/* test_exec_runner.c: the exec runner's state machine.  Its done callback
 * must run exactly once per child, whatever happens first (exit, EOF on the
 * pipes, timeout, kill, failure to start), and never synchronously. */
#include "engine.h"
#include "exec_runner.h"
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

typedef struct {
  int calls, ok;
  char out[256], failure[2048];
  double seconds;       /* from start to done */
} result;

/* processes whose command line contains mark (the reaper must leave none) */
static int count_marked(const char *mark) {
  int n = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i < len; i++) if (!buf[i]) buf[i] = ' ';
    buf[len] = 0;
    if (strstr(buf, mark)) n++;
  }
  if (d) closedir(d);
  return n;
}

static void done(void *ud, int ok, const char *out, size_t len, const char *failure) {
  result *r = ud;
  r->calls++;
  r->ok = ok;
  if (out) snprintf(r->out, sizeof r->out, "%.*s", (int)len, out);
  if (failure) snprintf(r->failure, sizeof r->failure, "%s", failure);
  r->seconds = (double)uv_hrtime() / 1e9 - r->seconds;
}

static result run(const char *script, const char *input, double timeout, size_t max, int kill_it) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  result r = {.seconds = (double)uv_hrtime() / 1e9};
  char *argv[] = {"sh", "-c", (char *)script, NULL};
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  lsr_exec_req req = {.argv = argv, .env = env, .cwd = ".", .input = input, .input_len = strlen(input),
                      .timeout = timeout, .max_output = max, .done = done, .ud = &r};
  lsr_exec_proc *p = lsr_exec_start(&loop, &req);
  CHECK(r.calls == 0, "done called synchronously for %s", script);
  if (kill_it) lsr_exec_kill(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  lsr_exec_reaper_close(&loop); /* its SIGCHLD watcher is on this loop */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "handles left open after %s", script);
  CHECK(r.calls == 1, "done called %d times for %s", r.calls, script);
  return r;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* as luasoar run and serve do: orphans of the apps come to us */
  CHECK(lsr_exec_subreaper() == 0, "cannot become a subreaper");
  result r = run("cat", "{\"x\":1}", 5, 1024, 0);
  CHECK(r.ok && strcmp(r.out, "{\"x\":1}") == 0, "cat: ok=%d out=%s", r.ok, r.out);

  r = run("echo oops >&2; exit 4", "", 5, 1024, 0);
  CHECK(!r.ok && strcmp(r.failure, "exited with status 4; stderr: oops") == 0, "exit 4: %s", r.failure);

  r = run("exec 1>&-; sleep 30", "", 0.3, 1024, 0);
  CHECK(!r.ok && strcmp(r.failure, "timed out after 0.3s") == 0, "timeout: %s", r.failure);

  r = run("sleep 30", "", 5, 1024, 1);
  CHECK(!r.ok && strcmp(r.failure, "cancelled") == 0, "kill: %s", r.failure);

  r = run("head -c 5000 /dev/zero", "", 5, 100, 0);
  CHECK(!r.ok && strcmp(r.failure, "output exceeds the limit of 100 bytes") == 0, "too big: %s", r.failure);

  r = run("kill -9 $$", "", 5, 100, 0);
  CHECK(!r.ok && strcmp(r.failure, "crashed: killed by signal 9 (Killed)") == 0, "signal: %s", r.failure);

  /* a child that exits without reading a large stdin: no SIGPIPE, one report */
  char *big = malloc(1 << 20);
  memset(big, 'x', 1 << 20);
  big[(1 << 20) - 1] = 0;
  r = run("exit 0", big, 5, 100, 0);
  CHECK(r.ok && r.out[0] == 0, "early exit: ok=%d", r.ok);
  free(big);

  /* stderr longer than the kept tail: the last bytes are kept */
  r = run("i=0; while [ $i -lt 300 ]; do echo line$i >&2; i=$((i+1)); done; exit 1", "", 5, 100, 0);
  CHECK(!r.ok && strstr(r.failure, "line299") && !strstr(r.failure, "line0 "), "tail: %s", r.failure);

  /* a command that does not exist */
  uv_loop_t loop;
  uv_loop_init(&loop);
  result r2 = {0};
  char *argv[] = {"/nonexistent/cmd", NULL};
  lsr_exec_req req = {.argv = argv, .cwd = ".", .input = "", .timeout = 1, .max_output = 10, .done = done, .ud = &r2};
  lsr_exec_start(&loop, &req);
  CHECK(r2.calls == 0, "start failure reported synchronously");
  uv_run(&loop, UV_RUN_DEFAULT);
  lsr_exec_reaper_close(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "handles left after start failure");
  CHECK(r2.calls == 1 && !r2.ok && strcmp(r2.failure, "cannot start '/nonexistent/cmd': no such file or directory") == 0,
        "start failure: calls=%d %s", r2.calls, r2.failure);

  /* a daemon that left the group and holds stdout: the app's answer counts,
   * the daemon is killed, and the run ends soon after the app exits (0.2 s) */
  r = run("echo '{\"a\":1}'; setsid sleep 427.5 & sleep 0.2", "", 5, 1024, 0);
  CHECK(r.ok && strcmp(r.out, "{\"a\":1}\n") == 0, "daemon: ok=%d out=%s failure=%s", r.ok, r.out, r.failure);
  CHECK(r.seconds < 0.2 + 0.5, "daemon: ended %.3f s after start", r.seconds);
  printf("daemon holding stdout: the app run ended %.0f ms after the app's exit\n", (r.seconds - 0.2) * 1000);
  CHECK(count_marked("sleep 427.5") == 0, "daemon left alive");

  /* the same past the deadline: the app is killed at it, the daemon after */
  r = run("setsid sleep 427.6 & sleep 30", "", 0.3, 1024, 0);
  CHECK(!r.ok && strcmp(r.failure, "timed out after 0.3s") == 0, "daemon timeout: %s", r.failure);
  CHECK(r.seconds < 0.3 + 0.5, "daemon timeout: ended %.3f s after start", r.seconds);
  CHECK(count_marked("sleep 427.6") == 0, "daemon of a timed-out app left alive");

  /* daemons of daemons (each setsid'd, each parent gone): all of them */
  r = run("setsid sh -c 'setsid sleep 427.7 & setsid sleep 427.7 & sleep 427.7' & sleep 0.2; echo '{}'", "", 5, 1024, 0);
  CHECK(r.ok && strcmp(r.out, "{}\n") == 0, "daemons: ok=%d %s", r.ok, r.failure);
  CHECK(count_marked("sleep 427.7") == 0, "%d daemons of daemons left alive", count_marked("sleep 427.7"));

  /* an orphan inside the group of a live app is spared until that app exits */
  r = run("m=427.8; (sleep $m &); sleep 0.3; n=$(pgrep -fc 'slee[p] 427[.]8'); echo \"{\\\"n\\\":$n}\"", "", 5, 1024, 0);
  CHECK(r.ok && strcmp(r.out, "{\"n\":1}\n") == 0, "orphan in group: ok=%d out=%s %s", r.ok, r.out, r.failure);
  CHECK(count_marked("sleep 427.8") == 0, "orphan in the group left alive");

  long killed, reaped;
  lsr_exec_reaper_stats(&killed, &reaped);
  CHECK(killed >= 5 && reaped >= 5, "reaper: killed %ld, reaped %ld", killed, reaped);
  /* and no child of ours is left, not even a zombie */
  char kids[256] = "";
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *c = fopen(path, "r");
    if (!c) continue;
    size_t len = strlen(kids);
    len += fread(kids + len, 1, sizeof kids - 1 - len, c);
    kids[len] = 0;
    fclose(c);
  }
  if (d) closedir(d);
  CHECK(kids[0] == 0, "children left: %s", kids);

  printf("%s\n", failures ? "exec runner: FAILED" : "exec runner: all checks passed");
  return failures != 0;
}
