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

/* Are the values at a and b the same JSON value? */
static int same(lua_State *L, int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  int t = lua_type(L, a);
  if (t != lua_type(L, b)) return 0;
  switch (t) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
    return lua_rawequal(L, a, b);
  case LUA_TSTRING: case LUA_TBOOLEAN: case LUA_TLIGHTUSERDATA:
    return lua_rawequal(L, a, b);
  case LUA_TTABLE: {
    if (depth > 200) return 0;
    if (lsr_json_is_array(L, a) != lsr_json_is_array(L, b)) return 0;
    luaL_checkstack(L, 8, "same");
    /* every key of a is in b with the same value, and b has no other key */
    lua_Integer na = 0, nb = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
      na++;
      lua_pushvalue(L, -2);
      lua_rawget(L, b);
      int eq = same(L, -1, -2, depth + 1);
      lua_pop(L, 2);
      if (!eq) { lua_pop(L, 1); return 0; }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) { nb++; lua_pop(L, 1); }
    return na == nb;
  }
  default: return 0;
  }
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
  FUZZ_CHECK(same(L, 1, 3, 0), "the round trip changed the value\ntext: %.*s", (int)(tn > 2000 ? 2000 : tn), text);
  cleanup();
  FUZZ_END();
  return 0;
}
