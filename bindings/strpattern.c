/* strpattern.c: find, match, gmatch and gsub over a pattern matcher of our
 * own with Lua 5.4's semantics, its steps charged to the run (strlib.h). */
#include "strlib.h"
#include <ctype.h>
#include <limits.h>
#include <string.h>

/* ---- the pattern matcher ---- */

#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define MAX_DEPTH 200   /* MAXCCALLS of lstrlib.c: nested matcher calls */
#define CAP_OPEN (-1)   /* a capture not closed yet */
#define CAP_POS (-2)    /* a position capture, () */
#define ESC '%'

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
  lsr_meter m;
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
  lsr_meter_init(&ms->m, L, LSR_MATCH_WEIGHT);
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
static const char *plain_find(lsr_meter *m, const char *hay, size_t lh, const char *needle, size_t ln) {
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


static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = lsr_start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    lsr_meter m;
    lsr_meter_init(&m, L, LSR_MATCH_WEIGHT);
    const char *at = plain_find(&m, s + init, ls - init, p, lp);
    lsr_meter_pay(&m);
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
        lsr_meter_pay(&ms.m);
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
    lsr_meter_pay(&ms.m);
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
  lsr_meter_init(&g->ms.m, L, LSR_MATCH_WEIGHT);
  for (const char *from = g->next; from <= g->ms.src_end; from++) {
    g->ms.ncap = 0;
    const char *e = m_match(&g->ms, from, g->pat);
    if (e && e != g->last_end) {
      lsr_meter_pay(&g->ms.m);
      g->next = g->last_end = e;
      return push_captures(&g->ms, from, e);
    }
  }
  lsr_meter_pay(&g->ms.m);
  return 0;
}

static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = lsr_start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
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
  lsr_meter_pay(&ms.m);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

const luaL_Reg lsr_pattern_fns[] = {
  {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}, {NULL, NULL},
};
