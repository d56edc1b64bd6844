/* json_copy.c: a value of one Lua state copied into another as a JSON round
 * trip would give it (lsr_json_decode(lsr_json_encode(v))), without the text:
 * the same arrays and objects (is_array's rule, the array marker), number
 * keys as their text, null for nil, floats kept, the same refusals (what
 * JSON cannot hold, strings that are not UTF-8, nesting past the limit),
 * or, lenient, the same strings in their place.
 *
 * It runs in a protected call of the destination state; the source is only
 * read (no allocation there: its stack is grown with lua_checkstack, number
 * keys are formatted here), so an error of either side unwinds the
 * destination's call alone. */
#include "json.h"
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_MT "luasoar.json.array"

typedef struct {
  lua_State *from, *to;
  int lenient;
  int from_mt;          /* the source's array metatable, at this index of from */
  int to_mt;            /* the destination's, at this index of to */
  int src;              /* the value, at this index of from */
} copier;

/* yajl's check (yajl_string_validate_utf8): the shape of each sequence.
 * ASCII, most of what crosses, is skipped eight bytes at a time. */
static int utf8_ok(const unsigned char *s, size_t n) {
  size_t i = 0;
  for (uint64_t w; i + 8 <= n; i += 8) {
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ull) break;
  }
  for (; i < n; i++) {
    int more = s[i] <= 0x7f ? 0 : (s[i] >> 5) == 0x6 ? 1 : (s[i] >> 4) == 0xe ? 2 : (s[i] >> 3) == 0x1e ? 3 : -1;
    if (more < 0) return 0;
    for (; more > 0; more--)
      if (++i >= n || (s[i] >> 6) != 0x2) return 0;
  }
  return 1;
}

static void copy_string(copier *c, const char *s, size_t n) {
  if (!utf8_ok((const unsigned char *)s, n))
    luaL_error(c->to, "cannot encode a string that is not valid UTF-8 as JSON");
  lua_pushlstring(c->to, s, n);
}

/* what JSON cannot hold: refused (what: "NaN", ...; NULL: the value's type),
 * or, lenient, the string lsr_json_encode writes instead */
static void copy_odd(copier *c, int idx, const char *what, const char *instead) {
  if (!c->lenient) {
    if (what) luaL_error(c->to, "cannot encode %s as JSON", what);
    luaL_error(c->to, "cannot encode a %s value as JSON", luaL_typename(c->from, idx));
  }
  if (instead) lua_pushstring(c->to, instead);
  else lua_pushfstring(c->to, "<%s>", luaL_typename(c->from, idx));
}

static void copy_value(copier *c, int idx, int depth);

static void copy_table(copier *c, int idx, int depth) {
  lua_State *F = c->from, *T = c->to;
  lua_Integer n;
  if (lsr_json_array_len(F, idx, c->from_mt, &n)) { /* the encoder's rule, read on the source */
    lua_createtable(T, n > 0 && n < (1 << 24) ? (int)n : 0, 0);
    lua_pushvalue(T, c->to_mt);
    lua_setmetatable(T, -2);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(F, idx, i);
      copy_value(c, -1, depth + 1);
      lua_pop(F, 1);
      lua_rawseti(T, -2, i);
    }
    return;
  }
  lua_createtable(T, 0, 4);
  lua_pushnil(F);
  while (lua_next(F, idx)) { /* key, value */
    int kt = lua_type(F, -2);
    if (kt == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(F, -2, &kn);
      copy_string(c, k, kn);
    } else if (kt == LUA_TNUMBER) { /* the text lua_tostring gives, made here */
      char buf[64];
      if (lua_isinteger(F, -2)) {
        snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(F, -2));
      } else {
        snprintf(buf, sizeof buf, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(F, -2));
        if (buf[strspn(buf, "-0123456789")] == 0) strcat(buf, ".0"); /* looks like an int */
      }
      lua_pushstring(T, buf);
    } else if (c->lenient) {
      lua_pop(F, 1);
      continue;
    } else {
      luaL_error(T, "cannot encode a table key of type %s as JSON", luaL_typename(F, -2));
    }
    copy_value(c, -1, depth + 1);
    lua_pop(F, 1);
    lua_rawset(T, -3);
  }
}

static void copy_value(copier *c, int idx, int depth) {
  lua_State *F = c->from, *T = c->to;
  if (!lua_checkstack(F, 4)) luaL_error(T, "JSON copy: out of stack");
  luaL_checkstack(T, 6, "JSON copy");
  idx = lua_absindex(F, idx);
  switch (lua_type(F, idx)) {
  case LUA_TNIL: lua_pushlightuserdata(T, NULL); return;
  case LUA_TBOOLEAN: lua_pushboolean(T, lua_toboolean(F, idx)); return;
  case LUA_TNUMBER:
    if (lua_isinteger(F, idx)) {
      lua_pushinteger(T, lua_tointeger(F, idx));
    } else {
      lua_Number d = lua_tonumber(F, idx);
      if (isnan(d)) copy_odd(c, idx, "NaN", "nan");
      else if (isinf(d)) copy_odd(c, idx, "an infinite number", d > 0 ? "inf" : "-inf");
      else lua_pushnumber(T, d);
    }
    return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(F, idx, &n);
    copy_string(c, s, n);
    return;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(F, idx) == NULL) { lua_pushlightuserdata(T, NULL); return; }
    break;
  case LUA_TTABLE:
    /* the decoder opens no table at this depth: the round trip fails there */
    if (depth >= LSR_JSON_MAX_DEPTH)
      luaL_error(T, "cannot encode as JSON: nesting deeper than %d levels (a table that contains itself?)",
                 LSR_JSON_MAX_DEPTH);
    copy_table(c, idx, depth);
    return;
  default: break;
  }
  copy_odd(c, idx, NULL, NULL);
}

static int copy_protected(lua_State *T) {
  copier *c = lua_touserdata(T, 1);
  lsr_json_init(T); /* the marker of arrays exists there too */
  luaL_getmetatable(T, ARRAY_MT);
  c->to_mt = lua_gettop(T);
  copy_value(c, c->src, 0);
  return 1;
}

/* A thread of L's state kept to copy onto: a copy reads its source's stack
 * while it builds on its destination's, so the two must differ. */
static lua_State *spare_thread(lua_State *L) {
  static const char key = 0;
  lua_State *T;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) == LUA_TTHREAD) {
    T = lua_tothread(L, -1);
  } else {
    lua_pop(L, 1);
    T = lua_newthread(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
  }
  lua_pop(L, 1);
  return T;
}

int lsr_json_copy(lua_State *from, int idx, lua_State *to, int lenient, char *err, size_t errlen) {
  if (from == to) { /* within one state: through its spare thread */
    idx = lua_absindex(from, idx);
    if (!lua_checkstack(from, 2)) {
      snprintf(err, errlen, "JSON copy: out of stack");
      return -1;
    }
    lua_State *T = spare_thread(from);
    if (lsr_json_copy(from, idx, T, lenient, err, errlen) < 0) return -1;
    lua_xmove(T, to, 1);
    return 0;
  }
  copier c = {from, to, lenient, 0, 0, lua_absindex(from, idx)};
  if (!lua_checkstack(from, 8)) {
    snprintf(err, errlen, "JSON copy: out of stack");
    return -1;
  }
  luaL_getmetatable(from, ARRAY_MT);
  c.from_mt = lua_gettop(from);
  lua_pushcfunction(to, copy_protected);
  lua_pushlightuserdata(to, &c);
  int rc = lua_pcall(to, 1, 1, 0);
  lua_settop(from, c.from_mt - 1);
  if (rc != LUA_OK) {
    snprintf(err, errlen, "%s", lua_type(to, -1) == LUA_TSTRING ? lua_tostring(to, -1) : "JSON copy failed");
    lua_pop(to, 1);
    return -1;
  }
  return 0;
}
