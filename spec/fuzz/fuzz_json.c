/* fuzz_json.c: the JSON decoder, lsr_json_decode (bindings/json.c), on a
 * fresh Lua state per input, with a differential round trip: whatever it
 * accepts must encode again (lsr_json_encode, strict) and decode to an equal
 * value (same types, integers stay integers, arrays stay arrays).  A refusal
 * must come with a "line L, column C: reason" message. */
#include "fuzz_common.h"
#include "json.h"

/* [-0, +1] decode the string at idx, or raise with the message */
static int decode(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  char err[256] = "";
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int encode(lua_State *L) {
  lsr_json_encode(L, 1, 0);
  return 1;
}

static lua_State *L; /* static: an ignored check (FUZZ_IGNORE) closes it */

static void cleanup(void) {
  if (L) lua_close(L);
  L = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, cleanup());
  L = luaL_newstate();
  FUZZ_CHECK(L, "luaL_newstate");
  lsr_json_init(L);
  lua_pushcfunction(L, decode);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) /* out of memory, a Lua error escaping */
    fuzz_fail(__FILE__, __LINE__, "decode raised: %s", lua_tostring(L, -1));
  if (lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING) { /* refused */
    const char *err = lua_tostring(L, -1);
    FUZZ_CHECK(strncmp(err, "line ", 5) == 0 && strstr(err, ", column "), "refusal message: '%s'", err);
    cleanup();
    FUZZ_END();
    return 0;
  }
  lua_settop(L, 1);                    /* 1: the value */
  FUZZ_CHECK(lua_gettop(L) == 1, "decode left %d values", lua_gettop(L));
  lua_pushcfunction(L, encode);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) /* 2: the JSON text */
    fuzz_fail(__FILE__, __LINE__, "an accepted document does not encode again: %s", lua_tostring(L, -1));
  size_t tn;
  const char *text = lua_tolstring(L, 2, &tn);
  lua_pushcfunction(L, decode);
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK || lua_isnil(L, -2))
    fuzz_fail(__FILE__, __LINE__, "the encoded text does not decode: %s\ntext: %.*s", lua_tostring(L, -1),
              (int)(tn > 2000 ? 2000 : tn), text);
  lua_pop(L, 1);                       /* 3: the value again */
  FUZZ_CHECK(fuzz_same(L, 1, 3, 0), "the round trip changed the value\ntext: %.*s", (int)(tn > 2000 ? 2000 : tn), text);
  cleanup();
  FUZZ_END();
  return 0;
}
