/* strlib.c: the string and table functions whose running time does not
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
#include "runtime.h"
#include <ctype.h>
#include <limits.h>
#include <string.h>

#define LSR_STEP_CHUNK 1024
#define LSR_BYTES_PER_STEP 16 /* bytes copied or compared for one step */
/* Instructions per step, measured against a loop of VM instructions (about
 * 3 ns each): a matcher step takes about two, a table element read and
 * written through the API (perhaps through a C metamethod) about eight. */
#define LSR_MATCH_WEIGHT 2
#define LSR_ELEMENT_WEIGHT 8

long long lsr_strlib_free_budget = 0;

/* ---- charging ---- */

typedef struct {
  lua_State *L;
  lsr_engine *eng; /* NULL: no engine behind this state */
  long long tick;  /* steps left before the next charge */
  long long weight; /* instructions per step */
} meter;

static void meter_init(meter *m, lua_State *L, long long weight) {
  m->L = L;
  m->weight = weight;
  m->eng = lsr_engine_if(L);
  m->tick = LSR_STEP_CHUNK;
}

/* charge what was counted since the last charge; raise when over budget */
static void meter_pay(meter *m) {
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

#define SPEND(m, n) do { if (((m)->tick -= (n)) < 0) meter_pay(m); } while (0)

/* ---- the pattern matcher ---- */

#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define MAX_DEPTH 200   /* MAXCCALLS of lstrlib.c: nested matcher calls */
#define CAP_OPEN (-1)   /* a capture not closed yet */
#define CAP_POS (-2)    /* a position capture, () */
#define ESC '%'
#define uc(c) ((unsigned char)(c))

typedef struct {
  const char *src, *src_end; /* the subject, and its end (a '\0' follows) */
  const char *pat_end;       /* end of the pattern (a '\0' follows) */
  lua_State *L;
  int depth;                 /* nested calls left */
  int ncap;                  /* captures opened so far */
  struct {
    const char *start;
    ptrdiff_t len;           /* or CAP_OPEN, CAP_POS */
  } cap[MAX_CAPTURES];
  meter m;
} matcher;

static const char *m_match(matcher *ms, const char *s, const char *p);

/* Just past the single-character class at p ('x', '.', '%x', '[set]'). */
static const char *class_end(matcher *ms, const char *p) {
  char c = *p++;
  if (c == ESC) {
    if (p == ms->pat_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c != '[') return p;
  if (*p == '^') p++;
  do { /* the first character is part of the set, even a ']' */
    if (p == ms->pat_end) luaL_error(ms->L, "malformed pattern (missing ']')");
    c = *p++;
    if (c == ESC && p < ms->pat_end) p++; /* '%]' does not close */
  } while (*p != ']');
  return p + 1;
}

/* Does c belong to the class %cl? (letters: ctype classes, upper case the
 * complement; anything else stands for itself) */
static int in_class(int c, int cl) {
  int r;
  switch (tolower(cl)) {
  case 'a': r = isalpha(c); break;
  case 'c': r = iscntrl(c); break;
  case 'd': r = isdigit(c); break;
  case 'g': r = isgraph(c); break;
  case 'l': r = islower(c); break;
  case 'p': r = ispunct(c); break;
  case 's': r = isspace(c); break;
  case 'u': r = isupper(c); break;
  case 'w': r = isalnum(c); break;
  case 'x': r = isxdigit(c); break;
  case 'z': r = c == 0; break;
  default: return cl == c;
  }
  if (isupper(cl)) return !r;
  return r != 0;
}

/* Does c belong to the set that opens at p ('[') and closes at last (']')? */
static int in_set(int c, const char *p, const char *last) {
  int found = 1;
  if (p[1] == '^') {
    found = 0;
    p++;
  }
  for (p++; p < last; p++) {
    if (*p == ESC) {
      p++;
      if (in_class(c, uc(*p))) return found;
    } else if (p[1] == '-' && p + 2 < last) {
      if (uc(p[0]) <= c && c <= uc(p[2])) return found;
      p += 2;
    } else if (uc(*p) == c) {
      return found;
    }
  }
  return !found;
}

/* Does the character at s match the class p .. ep? (never at the end) */
static int one_char(matcher *ms, const char *s, const char *p, const char *ep) {
  if (s >= ms->src_end) return 0;
  int c = uc(*s);
  switch (*p) {
  case '.': return 1;
  case ESC: return in_class(c, uc(p[1]));
  case '[': return in_set(c, p, ep - 1);
  default: return uc(*p) == c;
  }
}

/* %bxy at s (p points at x) */
static const char *balanced(matcher *ms, const char *s, const char *p) {
  if (p >= ms->pat_end - 1) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != p[0]) return NULL;
  char open = p[0], close = p[1];
  int level = 1;
  while (++s < ms->src_end) {
    SPEND(&ms->m, 1);
    if (*s == close) {
      if (--level == 0) return s + 1;
    } else if (*s == open) {
      level++;
    }
  }
  return NULL;
}

/* item* or item+ (s past the first one): as many as possible, then fewer */
static const char *greedy(matcher *ms, const char *s, const char *p, const char *ep) {
  ptrdiff_t n = 0;
  while (one_char(ms, s + n, p, ep)) {
    SPEND(&ms->m, 1);
    n++;
  }
  for (; n >= 0; n--) {
    const char *r = m_match(ms, s + n, ep + 1);
    if (r) return r;
  }
  return NULL;
}

/* item-: as few as possible, then one more */
static const char *lazy(matcher *ms, const char *s, const char *p, const char *ep) {
  for (;;) {
    const char *r = m_match(ms, s, ep + 1);
    if (r) return r;
    if (!one_char(ms, s, p, ep)) return NULL;
    s++;
  }
}

static const char *open_capture(matcher *ms, const char *s, const char *p, ptrdiff_t what) {
  int i = ms->ncap;
  if (i >= MAX_CAPTURES) luaL_error(ms->L, "too many captures");
  ms->cap[i].start = s;
  ms->cap[i].len = what;
  ms->ncap = i + 1;
  const char *r = m_match(ms, s, p);
  if (!r) ms->ncap--;
  return r;
}

static const char *close_capture(matcher *ms, const char *s, const char *p) {
  int i = ms->ncap - 1;
  while (i >= 0 && ms->cap[i].len != CAP_OPEN) i--;
  if (i < 0) luaL_error(ms->L, "invalid pattern capture");
  ms->cap[i].len = s - ms->cap[i].start;
  const char *r = m_match(ms, s, p);
  if (!r) ms->cap[i].len = CAP_OPEN;
  return r;
}

/* %1 .. %9 in a pattern: the text of a closed capture again */
static const char *backref(matcher *ms, const char *s, int digit) {
  int i = digit - '1';
  if (i < 0 || i >= ms->ncap || ms->cap[i].len == CAP_OPEN)
    luaL_error(ms->L, "invalid capture index %%%d", i + 1);
  size_t len = (size_t)ms->cap[i].len; /* a position capture: huge, never matches */
  if ((size_t)(ms->src_end - s) < len) return NULL;
  for (size_t off = 0; off < len; off += 256) { /* charged per chunk compared */
    size_t k = len - off < 256 ? len - off : 256;
    SPEND(&ms->m, 1);
    if (memcmp(ms->cap[i].start + off, s + off, k) != 0) return NULL;
  }
  return s + len;
}

/* The end of a match of p .. pat_end at s, or NULL.  Recursive where a
 * choice must be undone (captures, repetitions, '?'), a loop elsewhere, so
 * the depth limit falls where stock Lua's does. */
static const char *m_match(matcher *ms, const char *s, const char *p) {
  if (ms->depth-- == 0) luaL_error(ms->L, "pattern too complex");
  for (;;) {
    SPEND(&ms->m, 1);
    if (p == ms->pat_end) break;
    if (*p == '(') {
      s = p[1] == ')' ? open_capture(ms, s, p + 2, CAP_POS) : open_capture(ms, s, p + 1, CAP_OPEN);
      break;
    }
    if (*p == ')') {
      s = close_capture(ms, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == ms->pat_end) { /* '$' elsewhere is a plain character */
      if (s != ms->src_end) s = NULL;
      break;
    }
    if (*p == ESC && p[1] == 'b') {
      s = balanced(ms, s, p + 2);
      if (!s) break;
      p += 4;
      continue;
    }
    if (*p == ESC && p[1] == 'f') {
      p += 2;
      if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
      const char *ep = class_end(ms, p);
      int before = s == ms->src ? '\0' : uc(s[-1]);
      int here = uc(*s); /* at the end: the '\0' that follows */
      if (!in_set(before, p, ep - 1) && in_set(here, p, ep - 1)) {
        p = ep;
        continue;
      }
      s = NULL;
      break;
    }
    if (*p == ESC && isdigit(uc(p[1]))) {
      s = backref(ms, s, uc(p[1]));
      if (!s) break;
      p += 2;
      continue;
    }
    /* a single-character class and its optional repetition */
    const char *ep = class_end(ms, p);
    if (!one_char(ms, s, p, ep)) {
      if (*ep == '*' || *ep == '?' || *ep == '-') { /* zero of it will do */
        p = ep + 1;
        continue;
      }
      s = NULL;
      break;
    }
    if (*ep == '?') {
      const char *r = m_match(ms, s + 1, ep + 1);
      if (r) {
        s = r;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (*ep == '+') {
      s = greedy(ms, s + 1, p, ep);
      break;
    }
    if (*ep == '*') {
      s = greedy(ms, s, p, ep);
      break;
    }
    if (*ep == '-') {
      s = lazy(ms, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  ms->depth++;
  return s;
}

static void matcher_init(matcher *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
  ms->L = L;
  ms->depth = MAX_DEPTH;
  ms->src = s;
  ms->src_end = s + ls;
  ms->pat_end = p + lp;
  ms->ncap = 0;
  meter_init(&ms->m, L, LSR_MATCH_WEIGHT);
}

/* Capture i, as a string (its length, *start set) or a position (pushed;
 * returns CAP_POS).  With no capture, capture 0 is the whole match s .. e. */
static ptrdiff_t get_capture(matcher *ms, int i, const char *s, const char *e, const char **start) {
  if (i >= ms->ncap) {
    if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    *start = s;
    return e - s;
  }
  ptrdiff_t len = ms->cap[i].len;
  *start = ms->cap[i].start;
  if (len == CAP_OPEN) luaL_error(ms->L, "unfinished capture");
  else if (len == CAP_POS) lua_pushinteger(ms->L, (ms->cap[i].start - ms->src) + 1);
  return len;
}

static void push_capture(matcher *ms, int i, const char *s, const char *e) {
  const char *start;
  ptrdiff_t len = get_capture(ms, i, s, e, &start);
  if (len != CAP_POS) lua_pushlstring(ms->L, start, (size_t)len);
}

/* Push the captures (the whole match if none and s is given); their number. */
static int push_captures(matcher *ms, const char *s, const char *e) {
  int n = ms->ncap == 0 && s ? 1 : ms->ncap;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_capture(ms, i, s, e);
  return n;
}

/* Pattern characters that make a find more than a plain search. */
static int has_specials(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (p[i] && strchr("^$*+?.([%-", p[i])) return 1;
  return 0;
}

/* Plain search of needle in hay, charged per candidate and per chunk compared. */
static const char *plain_find(meter *m, const char *hay, size_t lh, const char *needle, size_t ln) {
  if (ln == 0) return hay;
  if (ln > lh) return NULL;
  const char *end = hay + (lh - ln) + 1; /* last start + 1 */
  while (hay < end) {
    const char *c = memchr(hay, needle[0], (size_t)(end - hay));
    if (!c) return NULL;
    SPEND(m, 1 + (long long)((c - hay) >> 12)); /* memchr's scan, coarsely */
    size_t off = 1;
    while (off < ln) {
      size_t k = ln - off < 256 ? ln - off : 256;
      SPEND(m, 1);
      if (memcmp(c + off, needle + off, k) != 0) break;
      off += k;
    }
    if (off >= ln) return c;
    hay = c + 1;
  }
  return NULL;
}

/* Lua's 1-based start position: negative from the end, clipped to [1, inf) */
static size_t start_pos(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    meter m;
    meter_init(&m, L, LSR_MATCH_WEIGHT);
    const char *at = plain_find(&m, s + init, ls - init, p, lp);
    meter_pay(&m);
    if (at) {
      lua_pushinteger(L, (at - s) + 1);
      lua_pushinteger(L, (at - s) + (lua_Integer)lp);
      return 2;
    }
  } else {
    matcher ms;
    int anchored = *p == '^';
    if (anchored) {
      p++;
      lp--;
    }
    matcher_init(&ms, L, s, ls, p, lp);
    const char *from = s + init;
    for (;;) {
      ms.ncap = 0;
      const char *e = m_match(&ms, from, p);
      if (e) {
        meter_pay(&ms.m);
        if (find) {
          lua_pushinteger(L, (from - s) + 1);
          lua_pushinteger(L, e - s);
          return push_captures(&ms, NULL, NULL) + 2;
        }
        return push_captures(&ms, from, e);
      }
      if (anchored || from >= ms.src_end) break;
      from++;
    }
    meter_pay(&ms.m);
  }
  luaL_pushfail(L);
  return 1;
}

static int str_find(lua_State *L) { return find_or_match(L, 1); }
static int str_match(lua_State *L) { return find_or_match(L, 0); }

/* gmatch's iterator; upvalues: subject, pattern, state.  '^' is an ordinary
 * character here, as in Lua 5.4. */
typedef struct {
  const char *next;      /* where the next search starts */
  const char *last_end;  /* end of the last match: an empty match there is skipped */
  const char *pat;
  matcher ms;
} gmatch_state;

static int gmatch_next(lua_State *L) {
  gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
  g->ms.L = L; /* the iterator may be called from another coroutine */
  /* Stock Lua leaves the depth count as an error (pattern too complex) left
   * it, and a later call then recurses without limit; start afresh instead. */
  g->ms.depth = MAX_DEPTH;
  meter_init(&g->ms.m, L, LSR_MATCH_WEIGHT);
  for (const char *from = g->next; from <= g->ms.src_end; from++) {
    g->ms.ncap = 0;
    const char *e = m_match(&g->ms, from, g->pat);
    if (e && e != g->last_end) {
      meter_pay(&g->ms.m);
      g->next = g->last_end = e;
      return push_captures(&g->ms, from, e);
    }
  }
  meter_pay(&g->ms.m);
  return 0;
}

static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); /* the subject and the pattern stay alive as upvalues */
  gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
  if (init > ls) init = ls + 1;
  matcher_init(&g->ms, L, s, ls, p, lp);
  g->next = s + init;
  g->pat = p;
  g->last_end = NULL;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* a replacement string (argument 3) with its %0 .. %9 and %% */
static void add_string(matcher *ms, luaL_Buffer *b, const char *s, const char *e) {
  lua_State *L = ms->L;
  size_t l;
  const char *r = lua_tolstring(L, 3, &l);
  const char *esc;
  while ((esc = memchr(r, ESC, l)) != NULL) {
    SPEND(&ms->m, 1 + (long long)((esc - r) / LSR_BYTES_PER_STEP));
    luaL_addlstring(b, r, (size_t)(esc - r));
    esc++; /* at most the '\0' after the string */
    if (*esc == ESC) {
      luaL_addchar(b, ESC);
    } else if (*esc == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit(uc(*esc))) {
      const char *start;
      ptrdiff_t len = get_capture(ms, *esc - '1', s, e, &start);
      if (len == CAP_POS) luaL_addvalue(b);
      else luaL_addlstring(b, start, (size_t)len);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", ESC);
    }
    l -= (size_t)(esc + 1 - r);
    r = esc + 1;
  }
  SPEND(&ms->m, (long long)(l / LSR_BYTES_PER_STEP));
  luaL_addlstring(b, r, l);
}

/* Add the replacement of the match s .. e; nonzero if it changed the text. */
static int add_replacement(matcher *ms, luaL_Buffer *b, const char *s, const char *e, int type) {
  lua_State *L = ms->L;
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (type == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: the match stays */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

static int str_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *last_end = NULL;
  int type = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  int anchored = *p == '^';
  lua_Integer n = 0;
  int changed = 0;
  luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION || type == LUA_TTABLE, 3,
                   "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchored) {
    p++;
    lp--;
  }
  matcher ms;
  matcher_init(&ms, L, src, ls, p, lp);
  while (n < max) {
    ms.ncap = 0;
    const char *e = m_match(&ms, src, p);
    if (e && e != last_end) {
      n++;
      changed |= add_replacement(&ms, &b, src, e, type);
      src = last_end = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchored) break;
  }
  if (changed) SPEND(&ms.m, (long long)((ms.src_end - src) / LSR_BYTES_PER_STEP)); /* the rest, copied */
  meter_pay(&ms.m);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
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
  size_t from = start_pos(luaL_checkinteger(L, 2), l);
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
    meter m;
    meter_init(&m, L, LSR_ELEMENT_WEIGHT);
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
    meter_pay(&m);
  }
  lua_pushvalue(L, dst);
  return 1;
}

static void concat_field(lua_State *L, meter *m, luaL_Buffer *b, lua_Integer i) {
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
  meter m;
  meter_init(&m, L, LSR_ELEMENT_WEIGHT);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; i < last; i++) {
    SPEND(&m, 1 + (long long)(lsep / (LSR_BYTES_PER_STEP * LSR_ELEMENT_WEIGHT)));
    concat_field(L, &m, &b, i);
    luaL_addlstring(&b, sep, lsep);
  }
  if (i == last) concat_field(L, &m, &b, i);
  meter_pay(&m);
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
    meter m;
    meter_init(&m, L, LSR_ELEMENT_WEIGHT);
    for (lua_Integer i = e; i > pos; i--) {
      SPEND(&m, 1);
      lua_geti(L, 1, i - 1);
      lua_seti(L, 1, i);
    }
    meter_pay(&m);
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
  meter m;
  meter_init(&m, L, LSR_ELEMENT_WEIGHT);
  for (; pos < size; pos++) {
    SPEND(&m, 1);
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
  }
  meter_pay(&m);
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

static int less(lua_State *L, meter *m, int a, int b) {
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

static idx_t split(lua_State *L, meter *m, idx_t lo, idx_t up) {
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

static void sort_range(lua_State *L, meter *m, idx_t lo, idx_t up, unsigned int rnd) {
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
    meter m;
    meter_init(&m, L, LSR_ELEMENT_WEIGHT);
    sort_range(L, &m, 1, (idx_t)n, 0);
    meter_pay(&m);
  }
  return 0;
}

/* ---- installing them ---- */

static void replace(lua_State *L, const char *lib, const luaL_Reg *fns) {
  lua_getglobal(L, lib);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

void lsr_strlib_install(lua_State *L) {
  static const luaL_Reg str[] = {
    {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}, {"rep", str_rep},
    {"sub", str_sub}, {"upper", str_upper}, {"lower", str_lower}, {"reverse", str_reverse}, {NULL, NULL},
  };
  static const luaL_Reg tab[] = {
    {"move", tab_move}, {"concat", tab_concat}, {"insert", tab_insert}, {"remove", tab_remove},
    {"sort", tab_sort}, {NULL, NULL},
  };
  replace(L, "string", str);
  replace(L, "table", tab);
}
