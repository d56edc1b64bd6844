/* test_fuzz_copy.c: the copy fuzz harness (spec/fuzz/fuzz_copy.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead. */
#include "../fuzz/fuzz_copy.c"
#define FUZZ_HARNESS "copy"
#define FUZZ_HAS_INIT 0
#include "../fuzz/replay_main.h"
