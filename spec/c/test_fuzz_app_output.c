/* test_fuzz_app_output.c: the app_output fuzz harness (spec/fuzz/fuzz_app_output.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead
 * (e.g. a crash input: build/test_fuzz_app_output spec/fuzz/crashes/app_output-...). */
#include "../fuzz/fuzz_app_output.c"
#define FUZZ_HARNESS "app_output"
#define FUZZ_HAS_INIT 1
#include "../fuzz/replay_main.h"
