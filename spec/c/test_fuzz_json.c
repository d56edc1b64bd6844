/* test_fuzz_json.c: the json fuzz harness (spec/fuzz/fuzz_json.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead
 * (e.g. a crash input: build/test_fuzz_json spec/fuzz/crashes/json-...). */
#include "../fuzz/fuzz_json.c"
#define FUZZ_HARNESS "json"
#define FUZZ_HAS_INIT 0
#include "../fuzz/replay_main.h"
