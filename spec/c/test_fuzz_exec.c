/* test_fuzz_exec.c: the exec fuzz harness (spec/fuzz/fuzz_exec.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead
 * (e.g. a crash input: build/test_fuzz_exec spec/fuzz/crashes/exec-...). */
#include "../fuzz/fuzz_exec.c"
#define FUZZ_HARNESS "exec"
#define FUZZ_HAS_INIT 1
#include "../fuzz/replay_main.h"
