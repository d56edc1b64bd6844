/* luaopen.c: `require "luasoar"` from busted.  The engine runs in a Lua state
 * of its own (the same code as `luasoar run`); what comes back to the caller
 * is the run's JSON report decoded into the caller's state. */
#include "json.h"
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#define ENGINE_MT "luasoar.engine"

void lsr_coverage_line(void *ud, const char *file, int line, int hit);
int lsr_coverage_enabled(void);
extern const char lsr_testing_lua[];
extern const size_t lsr_testing_lua_len;

typedef struct {
  char *action, *asset; /* asset NULL: any asset */
  int fn_ref;           /* handler in the caller's state; LUA_NOREF: the real app */
} mod_stub;

typedef struct {
  char *kind, *ref;
  int fn_ref;
} mod_named_stub;

typedef struct {
  lsr_engine *eng;
  lua_State *L;         /* the caller's thread during start/wait */
  mod_named_stub *named;  /* custom functions and child playbooks */
  int nnamed;
  int prompt_ref;       /* fn(prompt) -> responses, delay */
  lsr_gen **gens;
  int ngens;
  int *reports;         /* reports of runs that ended, not yet collected (refs) */
  int nreports;
  lua_State *T;         /* a thread of the caller's state the reports are built on */
  int thread_ref;
  lsr_test_hooks hooks;
  mod_stub *stubs;
  int nstubs;
  int strict;           /* an action with no stub fails the run (not on a stub's real) */
  int records_ref;      /* run_id -> {actions = {...}, calls = {...}} */
} mod_engine;

/* ---- test hooks: stubs and records, in the caller's state ---- */

/* The stub's number (1-based); 0: the real app runs; NO_STUB: none, and the
 * engine is strict (not for an app that is not installed: can_run asks, and
 * starting it fails already). */
#define NO_STUB (-1)
static int stub_for(void *ud, const char *action, const lsr_asset *asset) {
  mod_engine *m = ud;
  int generic = 0;
  for (int i = m->nstubs - 1; i >= 0; i--) { /* the latest stub wins */
    mod_stub *s = &m->stubs[i];
    if (strcmp(s->action, action) != 0) continue;
    if (s->asset && strcmp(s->asset, asset->name) == 0) return s->fn_ref == LUA_NOREF ? 0 : i + 1;
    if (!s->asset && !generic) generic = i + 1;
  }
  if (generic) return m->stubs[generic - 1].fn_ref != LUA_NOREF ? generic : 0;
  return m->strict && asset->app->runner != LSR_RUNNER_STUB ? NO_STUB : 0;
}

/* A strict engine met an action with no stub: the run fails, saying how to
 * stub it or let the real app run. */
static void refuse_unstubbed(mod_engine *m, lsr_app_run *apr) {
  lsr_action_run *ar = apr->ar;
  char msg[1024];
  snprintf(msg, sizeof msg,
           "no stub for action '%s' (%s) on asset '%s' (app '%s'): stub it with eng:stub(\"%s\", behaviour) "
           "or eng:stub(\"%s\", {asset = \"%s\"}, behaviour), or let the real app run with "
           "eng:stub(\"%s\", {asset = \"%s\", real = true}) or lt.engine{real = true}",
           ar->action, ar->name, apr->asset->name, apr->asset->app->name, ar->action, ar->action,
           apr->asset->name, ar->action, apr->asset->name);
  lsr_run_fail(ar->run, msg);
  lsr_app_run_done(m->eng, apr, 0, NULL, 0, msg);
}

typedef struct {
  lsr_engine *eng;
  lsr_app_run *apr;
  int ok;
  char *text;
} delayed_result;

static void deliver_delayed(void *ud) {
  delayed_result *d = ud;
  lsr_app_run_done(d->eng, d->apr, d->ok, d->text, strlen(d->text), d->ok ? NULL : d->text);
  free(d->text);
  free(d);
}

static int encode_any(lua_State *L) {
  lsr_json_encode(L, 1, 0);
  return 1;
}

static int encode_results(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_insert(L, 1);
  lua_setfield(L, 1, "action_results");
  lsr_json_encode(L, 1, 0);
  return 1;
}

/* handler(params, asset, info) -> results list or failure string, delay */
static void run_stub(void *ud, lsr_app_run *apr, int stub) {
  mod_engine *m = ud;
  lua_State *L = m->L;
  lsr_action_run *ar = apr->ar;
  char err[256];
  if (stub == NO_STUB) {
    refuse_unstubbed(m, apr);
    return;
  }
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->stubs[stub - 1].fn_ref);
  lsr_json_new_array(L, apr->nsent);
  for (int i = 0; i < apr->nsent; i++) {
    lsr_act_push_param(L, ar, apr->sent[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 3);
  lua_pushstring(L, apr->asset->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, apr->asset->id);
  lua_setfield(L, -2, "id");
  lsr_json_decode(L, apr->asset->config_json, strlen(apr->asset->config_json), err, sizeof err);
  lua_setfield(L, -2, "config");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ar->action);
  lua_setfield(L, -2, "action");
  lua_pushstring(L, ar->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, ar->id);
  lua_setfield(L, -2, "action_run_id");
  lua_pushinteger(L, apr->id);
  lua_setfield(L, -2, "app_run_id");
  int ok = 0;
  char *text;
  double delay = 0;
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
    text = lsr_strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "the stub raised an error");
  } else {
    delay = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      text = lsr_strdup(lua_tostring(L, -1)); /* the whole app run failed */
    } else {
      lua_pushcfunction(L, encode_results);
      lua_insert(L, -2);
      ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
      text = lsr_strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "bad stub result");
    }
  }
  lua_settop(L, top);
  if (delay > 0) {
    delayed_result *d = lsr_xalloc(sizeof *d);
    *d = (delayed_result){m->eng, apr, ok, text};
    lsr_timer_at(m->eng, lsr_clock(m->eng) + delay, deliver_delayed, d);
    return;
  }
  lsr_app_run_done(m->eng, apr, ok, text, strlen(text), ok ? NULL : text);
  free(text);
}

/* fn(input) for a stubbed custom function or playbook; "null" input asks
 * only whether there is a stub.  An error becomes {"__error": message}. */
static char *call_stub(void *ud, const char *kind, const char *ref, const char *json_in) {
  mod_engine *m = ud;
  lua_State *L = m->L;
  char err[256];
  for (int i = m->nnamed - 1; i >= 0; i--) {
    if (strcmp(m->named[i].kind, kind) != 0 || strcmp(m->named[i].ref, ref) != 0) continue;
    if (strcmp(json_in, "null") == 0) return lsr_strdup("true");
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->named[i].fn_ref);
    if (lsr_json_decode(L, json_in, strlen(json_in), err, sizeof err) < 0) lua_pushnil(L);
    char *out;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      lua_createtable(L, 0, 1);
      lua_insert(L, -2);
      lua_setfield(L, -2, "__error");
    }
    lua_pushcfunction(L, encode_any);
    lua_insert(L, -2);
    out = lsr_strdup(lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tostring(L, -1) : "{\"__error\":\"the stub's result is not JSON\"}");
    lua_settop(L, top);
    return out;
  }
  return NULL;
}

/* The prompt handler: responses as JSON and a delay, or NULL. */
static char *answer(lsr_run *run, const char *prompt, double *delay, void *ud) {
  mod_engine *m = ud;
  lua_State *L = m->L;
  char err[256];
  if (m->prompt_ref == LUA_NOREF || !L) return NULL;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->prompt_ref);
  lsr_json_decode(L, prompt, strlen(prompt), err, sizeof err);
  char *out = NULL;
  if (lua_pcall(L, 1, 2, 0) == LUA_OK && !lua_isnil(L, -2)) {
    *delay = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_pushcfunction(L, encode_any);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) out = lsr_strdup(lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return out;
}

/* The record of a run: records[run_id], created on first use.  [-0, +1, m] */
static void push_record(mod_engine *m, lua_State *L, int64_t run_id) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->records_ref);
  if (lua_rawgeti(L, -1, run_id) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lsr_json_new_array(L, 0);
    lua_setfield(L, -2, "actions");
    lsr_json_new_array(L, 0);
    lua_setfield(L, -2, "calls");
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, run_id);
  }
  lua_remove(L, -2);
}

static void append(lua_State *L, int list) {
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

static void on_action(void *ud, lsr_action_run *ar) {
  mod_engine *m = ud;
  lua_State *L = m->L;
  push_record(m, L, ar->run->id);
  lua_getfield(L, -1, "actions");
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, ar->id);
  lua_setfield(L, -2, "action_run_id");
  lua_pushstring(L, ar->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, ar->action);
  lua_setfield(L, -2, "action");
  if (ar->callback_name) {
    lua_pushstring(L, ar->callback_name);
    lua_setfield(L, -2, "callback");
  }
  lsr_json_new_array(L, ar->nparams);
  for (int i = 0; i < ar->nparams; i++) {
    lsr_act_push_param(L, ar, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "parameters");
  lsr_json_new_array(L, ar->napp_runs);
  for (int k = 0; k < ar->napp_runs; k++) {
    lua_pushstring(L, ar->app_runs[k].asset->name);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "assets");
  append(L, lua_gettop(L) - 1);
  lua_pop(L, 2);
}

static void on_block(void *ud, lsr_run *run, const char *name, const char *args, size_t len) {
  mod_engine *m = ud;
  lua_State *L = m->L;
  char err[256];
  push_record(m, L, run->id);
  lua_getfield(L, -1, "calls");
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "block");
  if (lsr_json_decode(L, args, len, err, sizeof err) < 0) lua_newtable(L);
  lua_setfield(L, -2, "args");
  append(L, lua_gettop(L) - 1);
  lua_pop(L, 2);
}


/* [-0, +1 on T] A value of the engine's state copied as the --json report
 * would give it (lenient), or fallback when it cannot be (as the report). */
static void copy_or(lua_State *E, lua_State *T, int fallback_object) {
  char err[200];
  if (lsr_json_copy(E, -1, T, 1, err, sizeof err) < 0) {
    if (fallback_object) lua_newtable(T);
    else lua_pushlightuserdata(T, NULL);
  }
  lua_pop(E, 1);
}

/* The report of an ended run, built in the caller's state from the engine's
 * (no JSON between them): what `luasoar run --json` prints, and run_data. */
static void on_run_end(lsr_run *run, void *ud) {
  mod_engine *m = ud;
  lua_State *E = run->eng->L, *T = m->T;
  lua_createtable(T, 0, 9);
  lua_pushstring(T, run->failed ? "failed" : "success");
  lua_setfield(T, -2, "status");
  lua_pushinteger(T, run->id);
  lua_setfield(T, -2, "run_id");
  lua_pushinteger(T, run->container_id);
  lua_setfield(T, -2, "container_id");
  lua_pushstring(T, run->gen->path);
  lua_setfield(T, -2, "playbook");
  lsr_json_new_array(T, (int)run->nlog);
  for (size_t i = 0; i < run->nlog; i++) {
    lua_createtable(T, 0, 2);
    lua_pushstring(T, run->log[i].level == LSR_LOG_ERROR ? "error" : "debug");
    lua_setfield(T, -2, "level");
    lua_pushstring(T, run->log[i].message);
    lua_setfield(T, -2, "message");
    lua_rawseti(T, -2, (lua_Integer)i + 1);
  }
  lua_setfield(T, -2, "log");
  lsr_getref(E, run->summary_ref);
  copy_or(E, T, 1);
  lua_setfield(T, -2, "summary");
  if (run->error) lua_pushstring(T, run->error);
  else lua_pushlightuserdata(T, NULL);
  lua_setfield(T, -2, "error");
  lsr_run_push_container(E, run);
  copy_or(E, T, 0);
  lua_setfield(T, -2, "container");
  lsr_push_state(E, run);
  lua_getfield(E, -1, "run_data");
  lua_remove(E, -2);
  if (lua_isnil(E, -1)) {
    lua_pop(E, 1);
    lua_newtable(T);
  } else {
    copy_or(E, T, 1);
  }
  lua_setfield(T, -2, "run_data");
  m->reports = lsr_xrealloc(m->reports, (m->nreports + 1) * sizeof *m->reports);
  m->reports[m->nreports++] = luaL_ref(T, LUA_REGISTRYINDEX);
}

static mod_engine *check_engine(lua_State *L) {
  mod_engine *m = luaL_checkudata(L, 1, ENGINE_MT);
  if (!m->eng) luaL_error(L, "luasoar: engine is closed");
  return m;
}

static const char *opt_field(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the options table keeps it alive */
  return s;
}

/* luasoar.engine{apps = DIR, assets = FILE, assets_json = TEXT, seed = N,
 *                virtual_clock = bool, record = bool, strict = bool}
 * assets_json may name apps that are not installed: stubs stand in. */
static int l_engine(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *apps = opt_field(L, 1, "apps"), *assets = opt_field(L, 1, "assets");
  const char *assets_json = opt_field(L, 1, "assets_json");
  const char *custom_lists = opt_field(L, 1, "custom_lists");
  const char *scripts = opt_field(L, 1, "scripts");
  mod_engine *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  m->records_ref = LUA_NOREF;
  m->prompt_ref = LUA_NOREF;
  m->thread_ref = LUA_NOREF;
  luaL_setmetatable(L, ENGINE_MT);
  char err[2048];
  m->eng = lsr_engine_new(NULL, err, sizeof err);
  if (!m->eng) return luaL_error(L, "luasoar.engine: %s", err);
  m->eng->obs = (lsr_observer){.on_run_end = on_run_end, .ud = m};
  m->eng->scripts_dir = lsr_strdup(scripts);
  lua_getfield(L, 1, "seed");
  if (!lua_isnil(L, -1)) m->eng->guid_seed = (uint64_t)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "virtual_clock");
  m->eng->virtual_clock = lua_toboolean(L, -1);
  lua_getfield(L, 1, "record");
  int record = lua_toboolean(L, -1);
  lua_getfield(L, 1, "strict");
  m->strict = lua_toboolean(L, -1);
  lua_pop(L, 4);
  m->hooks = (lsr_test_hooks){stub_for, run_stub, record ? on_action : NULL, record ? on_block : NULL,
                              call_stub, record && lsr_coverage_enabled() ? lsr_coverage_line : NULL, m};
  m->prompt_ref = LUA_NOREF;
  m->eng->obs.answer = answer;
  m->eng->test = &m->hooks;
  lua_newtable(L);
  m->records_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  m->T = lua_newthread(L);
  m->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lsr_config_load(m->eng->cfg, apps, assets, assets != NULL, err, sizeof err) < 0 ||
      (assets_json && lsr_config_add_assets(m->eng->cfg, assets_json, strlen(assets_json), "assets",
                                            1, err, sizeof err) < 0))
    return luaL_error(L, "luasoar.engine: %s", err);
  if (custom_lists && lsr_lists_load(m->eng, custom_lists, err, sizeof err) < 0)
    return luaL_error(L, "luasoar.engine: %s", err);
  return 1;
}

/* eng:stub(action, asset or nil, handler or nil): handler(params, asset,
 * info) returns the results list (or a string: the app run failed) and a
 * delay in seconds; nil lets the real app run. */
static int l_stub(lua_State *L) {
  mod_engine *m = check_engine(L);
  const char *action = luaL_checkstring(L, 2);
  const char *asset = luaL_optstring(L, 3, NULL);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
  lua_settop(L, 4);
  m->stubs = lsr_xrealloc(m->stubs, (m->nstubs + 1) * sizeof *m->stubs);
  mod_stub *st = &m->stubs[m->nstubs++];
  st->action = lsr_strdup(action);
  st->asset = lsr_strdup(asset);
  st->fn_ref = lua_isnil(L, 4) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* eng:stub_named(kind, ref, fn): a custom function or child playbook stub */
static int l_stub_named(lua_State *L) {
  mod_engine *m = check_engine(L);
  const char *kind = luaL_checkstring(L, 2), *ref = luaL_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  lua_settop(L, 4);
  m->named = lsr_xrealloc(m->named, (m->nnamed + 1) * sizeof *m->named);
  mod_named_stub *s = &m->named[m->nnamed++];
  s->kind = lsr_strdup(kind);
  s->ref = lsr_strdup(ref);
  s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* eng:on_prompt(fn): fn(prompt) -> responses or nil, delay in seconds */
static int l_on_prompt(lua_State *L) {
  mod_engine *m = check_engine(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, m->prompt_ref);
  m->prompt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* eng:start(playbook_path, container) -> run_id; container is a table or a
 * JSON file name */
static int l_start(lua_State *L) {
  mod_engine *m = check_engine(L);
  const char *path = luaL_checkstring(L, 2);
  char err[2048];
  m->L = L;
  lsr_gen *gen = NULL;
  for (int i = 0; i < m->ngens; i++)
    if (strcmp(m->gens[i]->path, path) == 0) gen = m->gens[i];
  if (!gen) {
    gen = lsr_gen_load(m->eng, path, err, sizeof err);
    if (!gen) return luaL_error(L, "%s", err);
    m->gens = lsr_xrealloc(m->gens, (m->ngens + 1) * sizeof *m->gens);
    m->gens[m->ngens++] = gen;
  }
  lsr_run *run;
  if (lua_type(L, 3) == LUA_TSTRING) {
    run = lsr_run_file(m->eng, gen, lua_tostring(L, 3), err, sizeof err);
  } else {
    luaL_checktype(L, 3, LUA_TTABLE);
    char why[512];
    if (lsr_json_copy(L, 3, m->eng->L, 0, why, sizeof why) < 0) /* as JSON would cross, without the text */
      return luaL_error(L, "%s", why);
    run = lsr_run_table(m->eng, gen, "container", err, sizeof err);
  }
  if (!run) return luaL_error(L, "%s", err);
  lua_pushinteger(L, run->id);
  return 1;
}

/* eng:wait() -> the reports of the runs that ended, in the order they ended,
 * each with its records (actions, calls) when recording */
static int l_wait(lua_State *L) {
  mod_engine *m = check_engine(L);
  m->L = L;
  lsr_engine_drain(m->eng);
  lua_createtable(L, m->nreports, 0);
  for (int i = 0; i < m->nreports; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->reports[i]);
    luaL_unref(L, LUA_REGISTRYINDEX, m->reports[i]);
    lua_getfield(L, -1, "run_id");
    lua_Integer id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->records_ref);
    if (lua_rawgeti(L, -1, id) == LUA_TTABLE) {
      lua_getfield(L, -1, "actions");
      lua_setfield(L, -4, "actions");
      lua_getfield(L, -1, "calls");
      lua_setfield(L, -4, "calls");
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
    lua_rawseti(L, -2, i + 1);
  }
  m->nreports = 0;
  return 1;
}

/* eng:run(playbook_path, container) -> the report of that run */
static int l_run(lua_State *L) {
  lua_settop(L, 3);
  l_start(L);
  lua_Integer id = lua_tointeger(L, -1);
  l_wait(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "run_id");
    if (lua_tointeger(L, -1) == id) { lua_pop(L, 1); return 1; }
    lua_pop(L, 2);
  }
  return luaL_error(L, "luasoar: run %d did not end", (int)id);
}

/* eng:now() -> the engine's clock (virtual in tests) */
static int l_now(lua_State *L) {
  mod_engine *m = check_engine(L);
  lua_pushnumber(L, lsr_clock(m->eng));
  return 1;
}

/* eng:stats() -> {live_refs, live_runs, memory} for leak checks; live_refs
 * counts the refs held for runs, not the engine's own or the playbooks' */
static int l_stats(lua_State *L) {
  mod_engine *m = check_engine(L);
  lua_gc(m->eng->L, LUA_GCCOLLECT);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, m->eng->live_refs - m->eng->setup_refs - m->ngens);
  lua_setfield(L, -2, "live_refs");
  lua_pushinteger(L, m->eng->live_runs);
  lua_setfield(L, -2, "live_runs");
  lua_pushinteger(L, (lua_Integer)lua_gc(m->eng->L, LUA_GCCOUNT) * 1024 + lua_gc(m->eng->L, LUA_GCCOUNTB));
  lua_setfield(L, -2, "memory");
  return 1;
}

static int l_close(lua_State *L) {
  mod_engine *m = luaL_checkudata(L, 1, ENGINE_MT);
  if (!m->eng) return 0;
  for (int i = 0; i < m->ngens; i++) lsr_gen_free(m->eng, m->gens[i]);
  free(m->gens);
  for (int i = 0; i < m->nreports; i++) luaL_unref(L, LUA_REGISTRYINDEX, m->reports[i]);
  free(m->reports);
  luaL_unref(L, LUA_REGISTRYINDEX, m->thread_ref);
  for (int i = 0; i < m->nstubs; i++) {
    free(m->stubs[i].action);
    free(m->stubs[i].asset);
    luaL_unref(L, LUA_REGISTRYINDEX, m->stubs[i].fn_ref);
  }
  free(m->stubs);
  for (int i = 0; i < m->nnamed; i++) {
    free(m->named[i].kind);
    free(m->named[i].ref);
    luaL_unref(L, LUA_REGISTRYINDEX, m->named[i].fn_ref);
  }
  free(m->named);
  luaL_unref(L, LUA_REGISTRYINDEX, m->prompt_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, m->records_ref);
  lsr_engine_free(m->eng);
  m->eng = NULL;
  return 0;
}

static int l_json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[256];
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lsr_json_encode(L, 1, 0);
  return 1;
}

int luaopen_luasoar(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"start", l_start}, {"wait", l_wait}, {"run", l_run}, {"stats", l_stats},
    {"stub", l_stub}, {"stub_named", l_stub_named}, {"on_prompt", l_on_prompt}, {"now", l_now},
    {"close", l_close}, {NULL, NULL},
  };
  static const luaL_Reg fns[] = {
    {"engine", l_engine}, {"json_decode", l_json_decode}, {"json_encode", l_json_encode},
    {NULL, NULL},
  };
  lsr_json_init(L);
  if (luaL_newmetatable(L, ENGINE_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}

/* require "luasoar.testing": Lua's all-in-one loader finds it in luasoar.so */
int luaopen_luasoar_testing(lua_State *L) {
  if (luaL_loadbufferx(L, lsr_testing_lua, lsr_testing_lua_len, "=luasoar.testing", "t") != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, 1);
  return 1;
}
