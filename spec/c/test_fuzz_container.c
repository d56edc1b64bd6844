/* test_fuzz_container.c: the container fuzz harness (spec/fuzz/fuzz_container.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead
 * (e.g. a crash input: build/test_fuzz_container spec/fuzz/crashes/container-...). */
#include "../fuzz/fuzz_container.c"
#define FUZZ_HARNESS "container"
#define FUZZ_HAS_INIT 1
#include "../fuzz/replay_main.h"
