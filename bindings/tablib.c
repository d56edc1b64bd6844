/* tablib.c: table.move, concat, insert, remove and sort, one step per
 * element moved, joined, shifted or compared, charged to the run (strlib.h). */
#include "strlib.h"
#include <limits.h>
#include <string.h>

/* ---- table functions: one step per element ---- */

#define TAB_R 1
#define TAB_W 2
#define TAB_L 4

/* a table, or a value with the metamethods that make it act as one */
static void check_table(lua_State *L, int arg, int what) {
  if (lua_type(L, arg) == LUA_TTABLE) return;
  int n = 1;
  if (lua_getmetatable(L, arg)) {
    static const char *const need[] = {"__index", "__newindex", "__len"};
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
      if (!(what & (1 << i))) continue;
      lua_pushstring(L, need[i]);
      n++;
      ok = lua_rawget(L, -n) != LUA_TNIL;
    }
    if (ok) {
      lua_pop(L, n);
      return;
    }
  }
  luaL_checktype(L, arg, LUA_TTABLE); /* raises the usual error */
}

static lua_Integer table_len(lua_State *L, int arg, int what) {
  check_table(L, arg, what | TAB_L);
  return luaL_len(L, arg);
}

static int tab_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  int dst = !lua_isnoneornil(L, 5) ? 5 : 1;
  check_table(L, 1, TAB_R);
  check_table(L, dst, TAB_W);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    lsr_meter m;
    lsr_meter_init(&m, L, LSR_ELEMENT_WEIGHT);
    if (t > e || t <= f || (dst != 1 && !lua_compare(L, 1, dst, LUA_OPEQ))) {
      for (lua_Integer i = 0; i < n; i++) {
        SPEND(&m, 1);
        lua_geti(L, 1, f + i);
        lua_seti(L, dst, t + i);
      }
    } else {
      for (lua_Integer i = n - 1; i >= 0; i--) {
        SPEND(&m, 1);
        lua_geti(L, 1, f + i);
        lua_seti(L, dst, t + i);
      }
    }
    lsr_meter_pay(&m);
  }
  lua_pushvalue(L, dst);
  return 1;
}

static void concat_field(lua_State *L, lsr_meter *m, luaL_Buffer *b, lua_Integer i) {
  lua_geti(L, 1, i);
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid value (%s) at index %I in table for 'concat'", luaL_typename(L, -1), (LUAI_UACINT)i);
  size_t n;
  lua_tolstring(L, -1, &n);
  SPEND(m, (long long)(n / (LSR_BYTES_PER_STEP * LSR_ELEMENT_WEIGHT))); /* its bytes: one instruction per 16 */
  luaL_addvalue(b);
}

static int tab_concat(lua_State *L) {
  lua_Integer last = table_len(L, 1, TAB_R);
  size_t lsep;
  const char *sep = luaL_optlstring(L, 2, "", &lsep);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  last = luaL_optinteger(L, 4, last);
  lsr_meter m;
  lsr_meter_init(&m, L, LSR_ELEMENT_WEIGHT);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; i < last; i++) {
    SPEND(&m, 1 + (long long)(lsep / (LSR_BYTES_PER_STEP * LSR_ELEMENT_WEIGHT)));
    concat_field(L, &m, &b, i);
    luaL_addlstring(&b, sep, lsep);
  }
  if (i == last) concat_field(L, &m, &b, i);
  lsr_meter_pay(&m);
  luaL_pushresult(&b);
  return 1;
}

static int tab_insert(lua_State *L) {
  lua_Integer e = table_len(L, 1, TAB_R | TAB_W);
  e = (lua_Integer)((lua_Unsigned)e + 1u); /* first free slot */
  lua_Integer pos;
  switch (lua_gettop(L)) {
  case 2:
    pos = e;
    break;
  case 3: {
    pos = luaL_checkinteger(L, 2);
    luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
    lsr_meter m;
    lsr_meter_init(&m, L, LSR_ELEMENT_WEIGHT);
    for (lua_Integer i = e; i > pos; i--) {
      SPEND(&m, 1);
      lua_geti(L, 1, i - 1);
      lua_seti(L, 1, i);
    }
    lsr_meter_pay(&m);
    break;
  }
  default:
    return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos);
  return 0;
}

static int tab_remove(lua_State *L) {
  lua_Integer size = table_len(L, 1, TAB_R | TAB_W);
  lua_Integer pos = luaL_optinteger(L, 2, size);
  if (pos != size)
    luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 1, "position out of bounds");
  lua_geti(L, 1, pos);
  lsr_meter m;
  lsr_meter_init(&m, L, LSR_ELEMENT_WEIGHT);
  for (; pos < size; pos++) {
    SPEND(&m, 1);
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
  }
  lsr_meter_pay(&m);
  lua_pushnil(L);
  lua_seti(L, 1, pos);
  return 1;
}

/* table.sort: the stock quicksort's steps (the same comparisons in the same
 * order, so the same result and the same "invalid order function" errors),
 * one step per comparison. */
typedef unsigned int idx_t;

static void put2(lua_State *L, idx_t i, idx_t j) {
  lua_seti(L, 1, i);
  lua_seti(L, 1, j);
}

static int less(lua_State *L, lsr_meter *m, int a, int b) {
  SPEND(m, 1);
  if (lua_isnil(L, 2)) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, a - 1);
  lua_pushvalue(L, b - 2);
  lua_call(L, 2, 1);
  int r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static idx_t split(lua_State *L, lsr_meter *m, idx_t lo, idx_t up) {
  idx_t i = lo, j = up - 1; /* the pivot is on the stack, and at up - 1 */
  for (;;) {
    while (lua_geti(L, 1, ++i), less(L, m, -1, -2)) {
      if (i == up - 1) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    while (lua_geti(L, 1, --j), less(L, m, -3, -1)) {
      if (j < i) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    if (j < i) {
      lua_pop(L, 1);
      put2(L, up - 1, i);
      return i;
    }
    put2(L, i, j);
  }
}

static unsigned int pivot_noise(void) {
  /* stock Lua mixes clock() and time(); any value will do, it only breaks
   * up a pathological series of partitions */
  static unsigned int x = 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

static void sort_range(lua_State *L, lsr_meter *m, idx_t lo, idx_t up, unsigned int rnd) {
  while (lo < up) {
    lua_geti(L, 1, lo);
    lua_geti(L, 1, up);
    if (less(L, m, -1, -2)) put2(L, lo, up);
    else lua_pop(L, 2);
    if (up - lo == 1) return;
    idx_t p;
    if (up - lo < 100u || rnd == 0) {
      p = (lo + up) / 2;
    } else {
      idx_t r4 = (up - lo) / 4;
      p = rnd % (r4 * 2) + (lo + r4);
    }
    lua_geti(L, 1, p);
    lua_geti(L, 1, lo);
    if (less(L, m, -2, -1)) {
      put2(L, p, lo);
    } else {
      lua_pop(L, 1);
      lua_geti(L, 1, up);
      if (less(L, m, -1, -2)) put2(L, p, up);
      else lua_pop(L, 2);
    }
    if (up - lo == 2) return;
    lua_geti(L, 1, p);
    lua_pushvalue(L, -1);
    lua_geti(L, 1, up - 1);
    put2(L, p, up - 1);
    p = split(L, m, lo, up);
    idx_t n;
    if (p - lo < up - p) {
      sort_range(L, m, lo, p - 1, rnd);
      n = p - lo;
      lo = p + 1;
    } else {
      sort_range(L, m, p + 1, up, rnd);
      n = up - p;
      up = p - 1;
    }
    if ((up - lo) / 128 > n) rnd = pivot_noise();
  }
}

static int tab_sort(lua_State *L) {
  lua_Integer n = table_len(L, 1, TAB_R | TAB_W);
  if (n > 1) {
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lsr_meter m;
    lsr_meter_init(&m, L, LSR_ELEMENT_WEIGHT);
    sort_range(L, &m, 1, (idx_t)n, 0);
    lsr_meter_pay(&m);
  }
  return 0;
}

const luaL_Reg lsr_table_fns[] = {
  {"move", tab_move}, {"concat", tab_concat}, {"insert", tab_insert}, {"remove", tab_remove},
  {"sort", tab_sort}, {NULL, NULL},
};
