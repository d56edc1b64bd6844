/* json.c: JSON text <-> Lua values.  yajl does the parsing and the string
 * escaping; this file only builds Lua values.  Every yajl handle lives in a
 * userdata box so a Lua error (out of memory) in the middle frees it. */
#include "json.h"
#include "json_check.h"
#include "engine.h"
#include "runtime.h" /* lsr_limits_charge */
#include <lauxlib.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#define ARRAY_MT "luasoar.json.array"
#define DEC_MT "luasoar.json.decoder"
#define ENC_MT "luasoar.json.encoder"

/* [-0, +0, m] Give the userdata on top the metatable name (made once per
 * state) whose __gc frees what an error left behind. */
static void box_metatable(lua_State *L, const char *name, lua_CFunction gc) {
  if (luaL_newmetatable(L, name)) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

void lsr_json_init(lua_State *L) {
  if (luaL_newmetatable(L, ARRAY_MT)) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    /* shared by every run: out of their reach */
    lua_pushliteral(L, "json array");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

void lsr_json_push_array_mt(lua_State *L) { luaL_getmetatable(L, ARRAY_MT); }

int lsr_json_is_array(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, ARRAY_MT);
  int marked = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return marked;
}

void lsr_json_new_array(lua_State *L, int narr) {
  lua_createtable(L, narr, 0);
  luaL_setmetatable(L, ARRAY_MT);
}

/* ---- decoding ---- */

typedef struct {
  lua_State *L;
  yajl_handle h;
  int depth;
  int too_deep;
  int out_of_range;
  lua_Integer idx[LSR_JSON_MAX_DEPTH + 1]; /* next index per open array; 0 = object */
} dec_box;

static int dec_gc(lua_State *L) {
  dec_box *b = lua_touserdata(L, 1);
  if (b->h) yajl_free(b->h);
  b->h = NULL;
  return 0;
}

/* stack: ..., container, [key,] value  ->  ..., container */
static int add_value(dec_box *b) {
  lua_State *L = b->L;
  if (b->depth == 0) return 1; /* the root stays on the stack */
  if (b->idx[b->depth] > 0)
    lua_rawseti(L, -2, b->idx[b->depth]++);
  else
    lua_rawset(L, -3);
  return 1;
}

static int d_null(void *ctx) {
  dec_box *b = ctx;
  lua_pushlightuserdata(b->L, NULL);
  return add_value(b);
}

static int d_bool(void *ctx, int v) {
  dec_box *b = ctx;
  lua_pushboolean(b->L, v);
  return add_value(b);
}

static int d_number(void *ctx, const char *s, size_t n) {
  dec_box *b = ctx;
  char tmp[64];
  char *buf = n < sizeof tmp ? tmp : malloc(n + 1);
  if (!buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  int integral = strpbrk(buf, ".eE") == NULL;
  if (integral) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) integral = 0; /* too big for an integer: a float */
    else lua_pushinteger(b->L, (lua_Integer)v);
  }
  if (!integral) {
    double d = strtod(buf, NULL);
    if (isinf(d)) { /* JSON has no infinity: what could not be written back is refused */
      if (buf != tmp) free(buf);
      b->out_of_range = 1;
      return 0;
    }
    lua_pushnumber(b->L, d);
  }
  if (buf != tmp) free(buf);
  return add_value(b);
}

static int d_string(void *ctx, const unsigned char *s, size_t n) {
  dec_box *b = ctx;
  lua_pushlstring(b->L, (const char *)s, n);
  return add_value(b);
}

static int open_container(dec_box *b, int is_array) {
  if (b->depth >= LSR_JSON_MAX_DEPTH) { b->too_deep = 1; return 0; }
  luaL_checkstack(b->L, 4, "JSON nesting");
  if (is_array) lsr_json_new_array(b->L, 0);
  else lua_createtable(b->L, 0, 4);
  b->idx[++b->depth] = is_array ? 1 : 0;
  return 1;
}

static int close_container(dec_box *b) {
  b->depth--;
  return add_value(b);
}

static int d_start_map(void *ctx) { return open_container(ctx, 0); }
static int d_end_map(void *ctx) { return close_container(ctx); }
static int d_start_array(void *ctx) { return open_container(ctx, 1); }
static int d_end_array(void *ctx) { return close_container(ctx); }
static int d_key(void *ctx, const unsigned char *s, size_t n) {
  dec_box *b = ctx;
  lua_pushlstring(b->L, (const char *)s, n);
  return 1;
}

static const yajl_callbacks dec_callbacks = {
  d_null, d_bool, NULL, NULL, d_number, d_string,
  d_start_map, d_key, d_end_map, d_start_array, d_end_array,
};

int lsr_json_decode(lua_State *L, const char *text, size_t len, char *err, size_t errlen) {
  luaL_checkstack(L, 8, "JSON decode");
  dec_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->L = L;
  b->h = NULL;
  b->depth = 0;
  b->too_deep = 0;
  b->out_of_range = 0;
  box_metatable(L, DEC_MT, dec_gc);
  int base = lua_gettop(L); /* the box */
  b->h = yajl_alloc(&dec_callbacks, NULL, b);
  lsr_json_strict(b->h);
  int at_end = 0;
  int ok = yajl_parse(b->h, (const unsigned char *)text, len) == yajl_status_ok &&
           (at_end = 1, yajl_complete_parse(b->h) == yajl_status_ok);
  if (!ok) {
    if (b->too_deep || b->out_of_range) {
      int line, col;
      size_t off = yajl_get_bytes_consumed(b->h);
      lsr_offset_to_linecol(text, len, off ? off - 1 : 0, &line, &col);
      if (b->too_deep)
        snprintf(err, errlen, "line %d, column %d: nesting deeper than %d levels", line, col, LSR_JSON_MAX_DEPTH);
      else
        snprintf(err, errlen, "line %d, column %d: a number out of range", line, col);
    } else {
      lsr_json_error(b->h, text, len, at_end, err, errlen);
    }
  }
  yajl_free(b->h);
  b->h = NULL;
  if (!ok) {
    lua_settop(L, base - 1);
    return -1;
  }
  lua_remove(L, base); /* stack: value */
  return 0;
}

/* ---- encoding ---- */

typedef struct { yajl_gen g; } enc_box;

static int enc_gc(lua_State *L) {
  enc_box *b = lua_touserdata(L, 1);
  if (b->g) yajl_gen_free(b->g);
  b->g = NULL;
  return 0;
}

static void gen_str(lua_State *L, yajl_gen g, const char *s, size_t n) {
  /* a table met many times ({t, t} nested forty deep: 2^40 values) makes the
   * text exponential in the size of the data: each value and its bytes are
   * charged to the current run's instruction budget (limits.c), at about the
   * time they take: 16 instructions a value, one per 2 bytes of string */
  if (lsr_limits_charge(lsr_engine_if(L), 1 + (long long)(n / 2))) lsr_limits_raise(L);
  yajl_gen_status st = yajl_gen_string(g, (const unsigned char *)s, n);
  if (st == yajl_gen_invalid_string) luaL_error(L, "cannot encode a string that is not valid UTF-8 as JSON");
  if (st != yajl_gen_status_ok) luaL_error(L, "cannot encode as JSON (yajl_gen status %d)", (int)st);
}

static void gen_float(lua_State *L, yajl_gen g, lua_Number d, int lenient) {
  char buf[40];
  if (isnan(d) || isinf(d)) {
    if (!lenient) luaL_error(L, "cannot encode %s as JSON", isnan(d) ? "NaN" : "an infinite number");
    snprintf(buf, sizeof buf, "\"%s\"", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    gen_str(L, g, buf + 1, strlen(buf) - 2);
    return;
  }
  for (int prec = 15; prec <= 17; prec++) { /* the shortest text that reads back the same */
    snprintf(buf, sizeof buf, "%.*g", prec, (double)d);
    if (strtod(buf, NULL) == d) break;
  }
  if (!strpbrk(buf, ".eE")) strcat(buf, ".0"); /* stays a float when decoded */
  yajl_gen_number(g, buf, strlen(buf));
}

int lsr_json_array_len(lua_State *L, int idx, int mt, lua_Integer *n) {
  *n = (lua_Integer)lua_rawlen(L, idx);
  if (lua_getmetatable(L, idx)) {
    int marked = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    if (marked) {
      /* rows with missing values carry their length in n (table.pack) */
      lua_getfield(L, idx, "n");
      if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= *n) *n = lua_tointeger(L, -1);
      lua_pop(L, 1);
      return 1;
    }
  }
  if (*n == 0) return 0;
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (++count > *n) { lua_pop(L, 1); return 0; }
  }
  return count == *n;
}

/* mt: the stack index of the array metatable (looked up once per encode) */
static void gen_value(lua_State *L, yajl_gen g, int idx, int depth, int lenient, int mt) {
  if (depth > LSR_JSON_MAX_DEPTH)
    luaL_error(L, "cannot encode as JSON: nesting deeper than %d levels (a table that contains itself?)",
               LSR_JSON_MAX_DEPTH);
  luaL_checkstack(L, 6, "JSON encode");
  if (lsr_limits_charge(lsr_engine_if(L), 16)) lsr_limits_raise(L); /* as in gen_str */
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: yajl_gen_null(g); return;
  case LUA_TBOOLEAN: yajl_gen_bool(g, lua_toboolean(L, idx)); return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) yajl_gen_integer(g, (long long)lua_tointeger(L, idx));
    else gen_float(L, g, lua_tonumber(L, idx), lenient);
    return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    gen_str(L, g, s, n);
    return;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { yajl_gen_null(g); return; }
    break;
  case LUA_TTABLE: {
    lua_Integer n;
    if (lsr_json_array_len(L, idx, mt, &n)) {
      yajl_gen_array_open(g);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        gen_value(L, g, -1, depth + 1, lenient, mt);
        lua_pop(L, 1);
      }
      yajl_gen_array_close(g);
      return;
    }
    yajl_gen_map_open(g);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      /* stack: key, value */
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        gen_str(L, g, k, kn);
      } else if (lua_type(L, -2) == LUA_TNUMBER) {
        lua_pushvalue(L, -2);
        size_t kn;
        const char *k = lua_tolstring(L, -1, &kn); /* converts the copy only */
        gen_str(L, g, k, kn);
        lua_pop(L, 1);
      } else if (lenient) {
        lua_pop(L, 1);
        continue;
      } else {
        luaL_error(L, "cannot encode a table key of type %s as JSON", luaL_typename(L, -2));
      }
      gen_value(L, g, -1, depth + 1, lenient, mt);
      lua_pop(L, 1);
    }
    yajl_gen_map_close(g);
    return;
  }
  default: break;
  }
  if (!lenient) luaL_error(L, "cannot encode a %s value as JSON", luaL_typename(L, idx));
  char buf[64];
  snprintf(buf, sizeof buf, "<%s>", luaL_typename(L, idx));
  gen_str(L, g, buf, strlen(buf));
}

void lsr_json_encode(lua_State *L, int idx, int lenient) {
  idx = lua_absindex(L, idx);
  enc_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->g = NULL;
  box_metatable(L, ENC_MT, enc_gc);
  b->g = yajl_gen_alloc(NULL);
  yajl_gen_config(b->g, yajl_gen_validate_utf8, 1);
  luaL_getmetatable(L, ARRAY_MT);
  gen_value(L, b->g, idx, 0, lenient, lua_gettop(L));
  lua_pop(L, 1);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(b->g, &buf, &len);
  lua_pushlstring(L, (const char *)buf, len);
  yajl_gen_free(b->g);
  b->g = NULL;
  lua_remove(L, -2); /* the box */
}

/* ---- the `json` module a playbook can require ---- */

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[256];
  /* linear, but charged (one instruction per 4 bytes, about its time): a loop
   * decoding a big text would do megabytes of work per instruction */
  if (lsr_limits_charge(lsr_engine_if(L), (long long)(n / 4))) lsr_limits_raise(L);
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0)
    return luaL_error(L, "json.decode: invalid JSON at %s", err);
  return 1;
}

static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lsr_json_encode(L, 1, 0);
  return 1;
}

int lsr_json_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"decode", l_decode}, {"encode", l_encode}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
