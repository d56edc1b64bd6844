/* test_fuzz_datapath.c: the datapath fuzz harness (spec/fuzz/fuzz_datapath.c) run without
 * libFuzzer over its seed corpus; with arguments, over those files instead
 * (e.g. a crash input: build/test_fuzz_datapath spec/fuzz/crashes/datapath-...). */
#include "../fuzz/fuzz_datapath.c"
#define FUZZ_HARNESS "datapath"
#define FUZZ_HAS_INIT 1
#include "../fuzz/replay_main.h"
