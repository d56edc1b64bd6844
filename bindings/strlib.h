/* strlib.h: what the charged string and table functions share (strlib.c,
 * strpattern.c, tablib.c): the meter that adds their steps to the current
 * run's instruction budget. */
#ifndef LSR_STRLIB_H
#define LSR_STRLIB_H
#include "runtime.h"
#include <stddef.h>

#define uc(c) ((unsigned char)(c))
#define LSR_STEP_CHUNK 1024
#define LSR_BYTES_PER_STEP 16 /* bytes copied or compared for one step */
/* Instructions per step, measured against a loop of VM instructions (about
 * 3 ns each): a matcher step takes about two, a table element read and
 * written through the API (perhaps through a C metamethod) about eight. */
#define LSR_MATCH_WEIGHT 2
#define LSR_ELEMENT_WEIGHT 8

typedef struct {
  lua_State *L;
  lsr_engine *eng; /* NULL: no engine behind this state */
  long long tick;  /* steps left before the next charge */
  long long weight; /* instructions per step */
} lsr_meter;

void lsr_meter_init(lsr_meter *m, lua_State *L, long long weight);
/* charge what was counted since the last charge; raise when over budget */
void lsr_meter_pay(lsr_meter *m);
#define SPEND(m, n) do { if (((m)->tick -= (n)) < 0) lsr_meter_pay(m); } while (0)

/* Lua's 1-based start position: negative from the end, clipped to [1, inf) */
size_t lsr_start_pos(lua_Integer pos, size_t len);

extern const luaL_Reg lsr_pattern_fns[]; /* find, match, gmatch, gsub (strpattern.c) */
extern const luaL_Reg lsr_table_fns[];   /* move, concat, insert, remove, sort (tablib.c) */
#endif
