/* strlib.c (with strpattern.c and tablib.c): the string and table functions whose running time does not
 * follow the size of their input, rewritten so that their work is charged to
 * the current run's instruction budget (limits.c) and stops when the budget
 * is spent.  Stock Lua runs them in C, where the count hook never fires:
 * string.rep("", math.maxinteger) or ("a"):rep(200000):find(".-.-.-.-b")
 * would hold the engine for hours.
 *
 *   - the pattern functions find, match, gmatch, gsub: a matcher of our own
 *     with the semantics of Lua 5.4's (the same results, the same errors with
 *     the same messages, "pattern too complex" at the same depth), that counts
 *     its steps: each attempt at a pattern item, each character a repetition
 *     or %b scans, each chunk a plain search or a back reference compares,
 *     each escape of a gsub replacement string;
 *   - string.rep: charged for its repetitions and its bytes once its result
 *     is allocated, before the copies; rep of an empty string with an empty
 *     separator is "" at once;
 *   - table.move, table.concat, table.insert, table.remove, table.sort: per
 *     element moved, joined, shifted or compared (a table with __len and
 *     __index can claim any length, and C functions as metamethods run
 *     without the hook);
 *   - string.sub, upper, lower, reverse, and the bytes rep, concat and gsub
 *     copy: per byte, so that a loop over a big string does not do megabytes
 *     of work per instruction.
 *
 * A step is charged as the instructions of about the same time
 * (LSR_MATCH_WEIGHT, LSR_ELEMENT_WEIGHT, LSR_BYTES_PER_STEP), in chunks of
 * LSR_STEP_CHUNK steps.  When no run is current (engine code) they behave as
 * stock Lua's and nothing is charged.  A harness without an engine may set
 * lsr_strlib_free_budget to a number of instructions: the calls made while it
 * is set share it, and once it is spent they raise "pattern step budget
 * exceeded" (the fuzzer uses it so that its stock side, which cannot be
 * interrupted, only runs inputs known to be small); 0: no budget. */
#include "strlib.h"
#include <ctype.h>
#include <limits.h>
#include <string.h>

long long lsr_strlib_free_budget = 0;

/* ---- charging ---- */


void lsr_meter_init(lsr_meter *m, lua_State *L, long long weight) {
  m->L = L;
  m->weight = weight;
  m->eng = lsr_engine_if(L);
  m->tick = LSR_STEP_CHUNK;
}

/* charge what was counted since the last charge; raise when over budget */
void lsr_meter_pay(lsr_meter *m) {
  long long n = (LSR_STEP_CHUNK - m->tick) * m->weight;
  m->tick = LSR_STEP_CHUNK;
  if (n <= 0) return;
  if (m->eng && m->eng->current) {
    if (lsr_limits_charge(m->eng, n)) lsr_limits_raise(m->L);
  } else if (lsr_strlib_free_budget != 0) {
    if (lsr_strlib_free_budget > 0) lsr_strlib_free_budget -= n;
    if (lsr_strlib_free_budget <= 0) {
      lsr_strlib_free_budget = -1; /* spent: every later charge raises too */
      luaL_error(m->L, "pattern step budget exceeded");
    }
  }
}

size_t lsr_start_pos(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

/* ---- string.rep ---- */

static int str_rep(lua_State *L) {
  size_t l, lsep;
  const char *s = luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char *sep = luaL_optlstring(L, 3, "", &lsep);
  size_t max = sizeof(size_t) < sizeof(int) ? (size_t)~(size_t)0 : (size_t)INT_MAX; /* MAXSIZE */
  if (n <= 0 || l + lsep == 0) { /* nothing to repeat: "" at once, however many times */
    lua_pushliteral(L, "");
    return 1;
  }
  if (l + lsep < l || l + lsep > max / (size_t)n) return luaL_error(L, "resulting string too large");
  size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, total); /* over the memory cap: fails here, as stock */
  /* a copy per repetition, and the bytes: charged before the work */
  if (lsr_limits_charge(lsr_engine_if(L), (long long)n + (long long)(total / LSR_BYTES_PER_STEP))) lsr_limits_raise(L);
  for (lua_Integer i = 0; i < n; i++) {
    memcpy(out, s, l);
    out += l;
    if (lsep && i + 1 < n) {
      memcpy(out, sep, lsep);
      out += lsep;
    }
  }
  luaL_pushresultsize(&b, total);
  return 1;
}

/* ---- sub, upper, lower, reverse: linear, charged for their bytes ----
 * One instruction for a copy of a 50 MB string would let a loop run for
 * hours within its budget: sub counts an instruction per LSR_BYTES_PER_STEP
 * bytes (a copy), upper, lower and reverse one per 2 (a call per byte). */

static void charge_bytes(lua_State *L, size_t n, size_t per) {
  if (n >= per && lsr_limits_charge(lsr_engine_if(L), (long long)(n / per))) lsr_limits_raise(L);
}

/* an end position: negative from the end, clipped to [0, len] */
static size_t end_pos(lua_State *L, int arg, lua_Integer def, size_t len) {
  lua_Integer pos = luaL_optinteger(L, arg, def);
  if (pos > (lua_Integer)len) return len;
  if (pos >= 0) return (size_t)pos;
  if (pos < -(lua_Integer)len) return 0;
  return len + (size_t)pos + 1;
}

static int str_sub(lua_State *L) {
  size_t l;
  const char *s = luaL_checklstring(L, 1, &l);
  size_t from = lsr_start_pos(luaL_checkinteger(L, 2), l);
  size_t to = end_pos(L, 3, -1, l);
  if (from > to) {
    lua_pushliteral(L, "");
    return 1;
  }
  charge_bytes(L, to - from + 1, LSR_BYTES_PER_STEP); /* a copy */
  lua_pushlstring(L, s + from - 1, to - from + 1);
  return 1;
}

/* upper, lower, reverse: one byte for one byte */
static int map_bytes(lua_State *L, int how) {
  size_t l;
  luaL_Buffer b;
  const char *s = luaL_checklstring(L, 1, &l);
  charge_bytes(L, l, 2); /* a function call per byte: one instruction per 2 bytes */
  char *out = luaL_buffinitsize(L, &b, l);
  for (size_t i = 0; i < l; i++)
    out[i] = how == 'u' ? (char)toupper(uc(s[i])) : how == 'l' ? (char)tolower(uc(s[i])) : s[l - i - 1];
  luaL_pushresultsize(&b, l);
  return 1;
}

static int str_upper(lua_State *L) { return map_bytes(L, 'u'); }
static int str_lower(lua_State *L) { return map_bytes(L, 'l'); }
static int str_reverse(lua_State *L) { return map_bytes(L, 'r'); }

/* ---- installing them ---- */

static void replace(lua_State *L, const char *lib, const luaL_Reg *fns) {
  lua_getglobal(L, lib);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

void lsr_strlib_install(lua_State *L) {
  static const luaL_Reg str[] = {
    {"rep", str_rep}, {"sub", str_sub}, {"upper", str_upper}, {"lower", str_lower}, {"reverse", str_reverse}, {NULL, NULL},
  };
  replace(L, "string", str);
  replace(L, "string", lsr_pattern_fns);
  replace(L, "table", lsr_table_fns);
}
