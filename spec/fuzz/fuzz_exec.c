/* fuzz_exec.c: the exec runner's output handling (engine/exec_runner.c).
 *
 * The input is what an app prints: a child (perl, binary-safe) is given it on
 * stdin and writes it back on stderr, then on stdout.  (The child's stdio
 * are socket pairs: `tee /dev/stderr` cannot open them.)  The done
 * callback must run exactly once, never synchronously, with the same bytes
 * back when they fit in max_output (4096), or with a failure that starts
 * "output exceeds the limit of 4096 bytes" (and carries stderr's tail) when
 * they do not.  No handle may be left open.  A process per input: slow. */
#include "fuzz_common.h"

#define MAX_OUTPUT 4096

typedef struct {
  int calls, ok;
  char *out;
  size_t len;
  char *failure;
} result;

static void done(void *ud, int ok, const char *out, size_t len, const char *failure) {
  result *r = ud;
  r->calls++;
  r->ok = ok;
  if (ok) {
    FUZZ_CHECK(out != NULL, "ok with no output");
    r->out = malloc(len + 1);
    memcpy(r->out, out, len);
    r->len = len;
  } else {
    FUZZ_CHECK(failure != NULL, "a failure without a message");
    r->failure = strdup(failure);
  }
}

static uv_loop_t loop;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  return 0;
}

static result r; /* static: an ignored check (FUZZ_IGNORE) frees it */

static void cleanup(void) {
  uv_run(&loop, UV_RUN_DEFAULT);
  free(r.out);
  free(r.failure);
  memset(&r, 0, sizeof r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, cleanup());
  memset(&r, 0, sizeof r);
  char *argv[] = {"/usr/bin/perl", "-e",
                  "binmode STDIN; binmode STDOUT; binmode STDERR; local $/; my $d = <STDIN>;"
                  " $d = '' unless defined $d; print STDERR $d; print $d;", NULL};
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  lsr_exec_req req = {.argv = argv, .env = env, .cwd = "/", .input = (const char *)data, .input_len = size,
                      .timeout = 2, .max_output = MAX_OUTPUT, .done = done, .ud = &r};
  lsr_exec_start(&loop, &req);
  FUZZ_CHECK(r.calls == 0, "done called synchronously");
  uv_run(&loop, UV_RUN_DEFAULT);
  FUZZ_CHECK(r.calls == 1, "done called %d times", r.calls);
  FUZZ_CHECK(!uv_loop_alive(&loop), "handles left open");
  if (size <= MAX_OUTPUT) {
    FUZZ_CHECK(r.ok, "%zu bytes failed: %s", size, r.failure);
    FUZZ_CHECK(r.len == size && memcmp(r.out, data, size) == 0, "%zu bytes came back as %zu other bytes",
               size, r.len);
  } else {
    FUZZ_CHECK(!r.ok, "%zu bytes accepted over the limit of %d", size, MAX_OUTPUT);
    static const char limit[] = "output exceeds the limit of 4096 bytes";
    FUZZ_CHECK(strncmp(r.failure, limit, sizeof limit - 1) == 0, "failure: %s", r.failure);
    FUZZ_CHECK(strlen(r.failure) < 1024 + 400, "failure message of %zu bytes", strlen(r.failure));
  }
  cleanup();
  FUZZ_END();
  return 0;
}
