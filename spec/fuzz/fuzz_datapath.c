/* fuzz_datapath.c: the datapath parser, hooks.parse_datapath
 * (bindings/lua/10_datapath.lua), called with the input as a Lua string.
 *
 * It must never raise: it returns a spec table, nil and a reason (malformed),
 * or nil alone (the string does not look like a datapath: a literal).  A
 * second call (answered from the parser's cache) must give the same answer.
 * A spec must carry its text and well-formed steps.
 *
 * The parser is Lua, which libFuzzer's instrumentation does not see: a line
 * hook on the engine's main thread (where the call runs) feeds pairs of
 * consecutive Lua lines to libFuzzer as extra counters, so inputs that take
 * new paths through the parser are kept. */
#include "fuzz_common.h"

static lsr_engine *eng;
static fuzz_run_result res;

#define LUA_EDGES (1 << 14)
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_edges[LUA_EDGES];
static unsigned prev_line;

static void line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar)) return;
  uint64_t h = (uint64_t)(uintptr_t)ar->source * 0x9E3779B97F4A7C15ull + (uint64_t)ar->currentline;
  unsigned cur = (unsigned)(h ^ (h >> 29)) & (LUA_EDGES - 1);
  lua_edges[cur ^ prev_line]++;
  prev_line = cur >> 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  eng = fuzz_engine(NULL, NULL, &res);
  lua_sethook(eng->L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

/* [-0, +2] parse_datapath(s) as two results, or abort if it raised */
static void parse(lua_State *L, const uint8_t *data, size_t size) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->hooks_ref);
  FUZZ_CHECK(lua_getfield(L, -1, "parse_datapath") == LUA_TFUNCTION, "hooks.parse_datapath is missing");
  lua_remove(L, -2);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK)
    fuzz_fail(__FILE__, __LINE__, "parse_datapath raised: %s", lua_tostring(L, -1));
}

static void check_steps(lua_State *L, int spec) {
  if (lua_getfield(L, spec, "steps") == LUA_TNIL) { lua_pop(L, 1); return; }
  FUZZ_CHECK(lua_istable(L, -1), "spec.steps is a %s", luaL_typename(L, -1));
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    FUZZ_CHECK(lua_rawgeti(L, -1, i) == LUA_TTABLE, "steps[%d] is not a table", (int)i);
    int kinds = (lua_getfield(L, -1, "iter") != LUA_TNIL) + (lua_getfield(L, -2, "index") != LUA_TNIL) +
                (lua_getfield(L, -3, "field") != LUA_TNIL);
    FUZZ_CHECK(kinds == 1, "steps[%d] is not exactly one of iter, index, field", (int)i);
    if (!lua_isnil(L, -1))
      FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0, "steps[%d].field is empty", (int)i);
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, lua_settop(eng->L, 0));
  lua_State *L = eng->L;
  prev_line = 0;
  parse(L, data, size); /* spec, err */
  int t1 = lua_type(L, -2), e1 = lua_type(L, -1);
  if (t1 == LUA_TTABLE) {
    FUZZ_CHECK(e1 == LUA_TNIL, "a spec and an error");
    size_t n;
    lua_getfield(L, -2, "text");
    const char *text = lua_tolstring(L, -1, &n);
    FUZZ_CHECK(text && n == size && memcmp(text, data, size) == 0, "spec.text is not the datapath");
    lua_pop(L, 1);
    FUZZ_CHECK(lua_getfield(L, -2, "kind") == LUA_TSTRING, "spec.kind is not a string");
    lua_pop(L, 1);
    check_steps(L, lua_absindex(L, -2));
  } else {
    FUZZ_CHECK(t1 == LUA_TNIL, "parse_datapath returned a %s", lua_typename(L, t1));
    FUZZ_CHECK(e1 == LUA_TNIL || e1 == LUA_TSTRING, "its reason is a %s", lua_typename(L, e1));
  }
  /* again: from the cache, the same answer */
  parse(L, data, size);
  FUZZ_CHECK(lua_type(L, -2) == t1 && lua_type(L, -1) == e1, "the cached answer differs");
  /* (only datapaths of up to 512 bytes are cached) */
  if (t1 == LUA_TTABLE && size <= 512) FUZZ_CHECK(lua_rawequal(L, -2, -4), "the cached spec is another table");
  if (e1 == LUA_TSTRING) FUZZ_CHECK(lua_rawequal(L, -1, -3), "the cached reason differs");
  lua_settop(L, 0);
  FUZZ_END();
  return 0;
}
