/* test_fuzz_pattern.c: the pattern fuzz harness (spec/fuzz/fuzz_pattern.c)
 * run without libFuzzer over its seed corpus: our matcher and stock Lua's
 * agree on every seed.  With arguments, over those files instead (e.g. a
 * crash input: build/test_fuzz_pattern spec/fuzz/crashes/pattern-...). */
#include "../fuzz/fuzz_pattern.c"
#define FUZZ_HARNESS "pattern"
#define FUZZ_HAS_INIT 0
#include "../fuzz/replay_main.h"
