/* fuzz_copy.c: lsr_json_copy (bindings/json_copy.c) against the JSON round
 * trip it stands for.  The input is a little program that builds a Lua value
 * in state A (tables marked as arrays or not, holes, an "n" field, keys of
 * every type, shared and cyclic tables, floats with NaN and infinities,
 * strings that are not UTF-8, functions).  Then, strict and lenient:
 *   expected = decode(encode(v)) in A        (or the encoder refuses)
 *   copied   = copy(v) into B, and back: decode(encode(copy)) in A
 *   here     = copy(v) within A
 * All refuse, or all give the same value. */
#include "fuzz_common.h"
#include "json.h"
#include <math.h>

static lua_State *A, *B;

static void cleanup(void) {
  if (A) lua_close(A);
  if (B) lua_close(B);
  A = B = NULL;
}

/* ---- building a value: one byte an op, operands after it ---- */

typedef struct {
  const uint8_t *p, *end;
} reader;

static int next_byte(reader *r) { return r->p < r->end ? *r->p++ : -1; }

/* Ops work on A's stack; tables made are also kept in slot 1 (a list), so
 * later ops can reuse them (shared tables, cycles). */
static int build(lua_State *L) {
  reader *r = lua_touserdata(L, 1);
  luaL_checkstack(L, 80, "build"); /* up to 60 values, and a few more per op */
  lua_settop(L, 1);
  lua_newtable(L); /* 2: every table made */
  int made = 0;
  int c;
  while ((c = next_byte(r)) >= 0 && lua_gettop(L) < 60) {
    int top = lua_gettop(L);
    switch (c % 16) {
    case 0: lua_pushinteger(L, (lua_Integer)(next_byte(r) - 128) * (c > 128 ? 1000000007LL : 1)); break;
    case 1: { /* a float, some of them odd */
      int b = next_byte(r);
      double d = b < 0 ? 0.5 : b == 0 ? NAN : b == 1 ? INFINITY : b == 2 ? -INFINITY : b == 3 ? 1e308 * 10
                 : b == 4 ? -0.0 : b == 5 ? 3.0 : (b - 128) / 7.0;
      lua_pushnumber(L, d);
      break;
    }
    case 2: { /* a string of the next n bytes, as they are (not always UTF-8) */
      int n = next_byte(r);
      n = n < 0 ? 0 : n % 12;
      if (r->end - r->p < n) n = (int)(r->end - r->p);
      lua_pushlstring(L, (const char *)r->p, (size_t)n);
      r->p += n;
      break;
    }
    case 3: lua_pushboolean(L, c & 16); break;
    case 4: lua_pushnil(L); break;
    case 5: lua_pushlightuserdata(L, NULL); break;
    case 6: lua_newtable(L); goto keep;
    case 7: lsr_json_new_array(L, 0); goto keep;
    case 8: lua_pushcfunction(L, build); break;
    case 9: { /* t[k] = v: v on top, k below, t below that */
      if (top < 5 || !lua_istable(L, top - 2) || lua_isnil(L, top - 1)) break;
      if (lua_type(L, top - 1) == LUA_TNUMBER && isnan(lua_tonumber(L, top - 1))) break;
      lua_rawset(L, top - 2);
      break;
    }
    case 10: /* t[#t + 1] = v */
      if (top < 4 || !lua_istable(L, top - 1)) break;
      lua_rawseti(L, top - 1, (lua_Integer)lua_rawlen(L, top - 1) + 1);
      break;
    case 11: { /* reuse a table made earlier */
      if (!made) break;
      int k = next_byte(r);
      lua_rawgeti(L, 2, (k < 0 ? 0 : k) % made + 1);
      break;
    }
    case 12: /* t.n = integer */
      if (top < 3 || !lua_istable(L, top)) break;
      lua_pushinteger(L, next_byte(r) % 8);
      lua_setfield(L, top, "n");
      break;
    case 13: if (top > 2) lua_pop(L, 1); break;
    case 14: /* t[i] = v with a hole */
      if (top < 4 || !lua_istable(L, top - 1)) break;
      lua_rawseti(L, top - 1, (lua_Integer)lua_rawlen(L, top - 1) + 2);
      break;
    default: lua_pushinteger(L, c); break;
    }
    continue;
  keep:
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, ++made);
  }
  if (lua_gettop(L) < 3) lua_pushinteger(L, 0);
  return 1; /* the value on top */
}

/* ---- the two ways ---- */

static int encode(lua_State *L) {
  lsr_json_encode(L, 1, (int)lua_tointeger(L, 2));
  return 1;
}

static int decode(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  char err[256];
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0) luaL_error(L, "decode: %s", err);
  return 1;
}

/* [-0, +1 or 0] decode(encode(value at idx)) in L; 0 if refused */
static int round_trip(lua_State *L, int idx, int lenient) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, encode);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, lenient);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) { lua_pop(L, 1); return 0; }
  lua_pushcfunction(L, decode);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { lua_pop(L, 1); return 0; }
  return 1;
}

static void check(int value, int lenient) {
  char err[300];
  int top = lua_gettop(A);
  int expected = round_trip(A, value, lenient);                    /* top + 1 */
  int copied = lsr_json_copy(A, value, B, lenient, err, sizeof err) == 0;
  FUZZ_CHECK(expected == copied, "lenient %d: the round trip %s, the copy %s (%s)", lenient,
             expected ? "accepts" : "refuses", copied ? "accepts" : "refuses", copied ? "" : err);
  if (copied) {
    /* back into A by the round trip of B's value: text, then A */
    lua_pushcfunction(B, encode);
    lua_insert(B, -2);
    lua_pushinteger(B, 0);
    if (lua_pcall(B, 2, 1, 0) != LUA_OK) fuzz_fail(__FILE__, __LINE__, "the copy does not encode: %s", lua_tostring(B, -1));
    size_t n;
    const char *text = lua_tolstring(B, -1, &n);
    lua_pushcfunction(A, decode);
    lua_pushlstring(A, text, n);
    lua_pop(B, 1);
    if (lua_pcall(A, 1, 1, 0) != LUA_OK) fuzz_fail(__FILE__, __LINE__, "the copy's text does not decode: %s", lua_tostring(A, -1));
    FUZZ_CHECK(fuzz_same(A, top + 1, -1, 0), "lenient %d: the copy differs from the round trip", lenient);
  }
  /* within one state (through its spare thread): the same answer, the same value */
  int here = lsr_json_copy(A, value, A, lenient, err, sizeof err) == 0;
  FUZZ_CHECK(here == expected, "lenient %d: within A the copy %s", lenient, here ? "accepts" : "refuses");
  if (here) FUZZ_CHECK(fuzz_same(A, top + 1, -1, 0), "lenient %d: the copy within A differs", lenient);
  lua_settop(A, top);
  lua_settop(B, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, cleanup());
  A = luaL_newstate();
  B = luaL_newstate();
  FUZZ_CHECK(A && B, "luaL_newstate");
  lsr_json_init(A);
  lsr_json_init(B);
  reader r = {data, data + size};
  lua_pushcfunction(A, build);
  lua_pushlightuserdata(A, &r);
  if (lua_pcall(A, 1, 1, 0) != LUA_OK) fuzz_fail(__FILE__, __LINE__, "build: %s", lua_tostring(A, -1));
  check(1, 0);
  check(1, 1);
  cleanup();
  FUZZ_END();
  return 0;
}
