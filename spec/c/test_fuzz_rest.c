/* test_fuzz_rest.c: the REST bodies fuzz harness (spec/fuzz/fuzz_rest.c) run
 * without libFuzzer over its seed corpus (or the files given). */
#include "../fuzz/fuzz_rest.c"
#define FUZZ_HARNESS "rest"
#define FUZZ_HAS_INIT 1
#include "../fuzz/replay_main.h"
