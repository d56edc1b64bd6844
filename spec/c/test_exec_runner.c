/* test_exec_runner.c: the exec runner's state machine.  Its done callback
 * must run exactly once per child, whatever happens first (exit, EOF on the
 * pipes, timeout, kill, failure to start), and never synchronously. */
#include "engine.h"
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
} result;

static void done(void *ud, int ok, const char *out, size_t len, const char *failure) {
  result *r = ud;
  r->calls++;
  r->ok = ok;
  if (out) snprintf(r->out, sizeof r->out, "%.*s", (int)len, out);
  if (failure) snprintf(r->failure, sizeof r->failure, "%s", failure);
}

static result run(const char *script, const char *input, double timeout, size_t max, int kill_it) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  result r = {0};
  char *argv[] = {"sh", "-c", (char *)script, NULL};
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  lsr_exec_req req = {.argv = argv, .env = env, .cwd = ".", .input = input, .input_len = strlen(input),
                      .timeout = timeout, .max_output = max, .done = done, .ud = &r};
  lsr_exec_proc *p = lsr_exec_start(&loop, &req);
  CHECK(r.calls == 0, "done called synchronously for %s", script);
  if (kill_it) lsr_exec_kill(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "handles left open after %s", script);
  CHECK(r.calls == 1, "done called %d times for %s", r.calls, script);
  return r;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
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
  CHECK(uv_loop_close(&loop) == 0, "handles left after start failure");
  CHECK(r2.calls == 1 && !r2.ok && strcmp(r2.failure, "cannot start '/nonexistent/cmd': no such file or directory") == 0,
        "start failure: calls=%d %s", r2.calls, r2.failure);

  printf("%s\n", failures ? "exec runner: FAILED" : "exec runner: all checks passed");
  return failures != 0;
}
