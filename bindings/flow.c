/* flow.c: what the asynchronous API (bindings/lua/40_flow.lua) needs from
 * the engine: ids, answers to prompts, compiled custom functions, and child
 * playbook runs.
 *
 *   internal.next_id() -> a new action_run_id (prompts, custom functions)
 *   internal.ask(prompt_json) -> responses_json or nil, delay
 *   internal.load_chunk(folder, ref) -> the file's chunk, with globals of its own
 *   internal.start_child(folder, ref, container_json, inputs_json, name, token)
 */
#include "json.h"
#include "runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int l_next_id(lua_State *L) {
  lua_pushinteger(L, lsr_new_id(lsr_engine_of(L), LSR_ID_ACTION));
  return 1;
}

static int l_ask(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.ask");
  const char *prompt = luaL_checkstring(L, 1);
  lsr_engine *eng = run->eng;
  double delay = 0;
  char *answer = eng->obs.answer ? eng->obs.answer(run, prompt, &delay, eng->obs.ud) : NULL;
  if (!answer) return 0;
  lua_pushstring(L, answer);
  free(answer);
  lua_pushnumber(L, delay);
  return 2;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The compiled file REF.lua under the scripts' folder at stack index 1
 * (custom_functions, playbooks), ref at index 2; or NULL with nil and why
 * pushed.  The reference is checked before any file is opened. */
static lsr_gen *compiled(lua_State *L, lsr_engine *eng) {
  char err[4200], why[4096], folder[4096], path[4096];
  const char *kind = luaL_checkstring(L, 1);
  size_t len;
  const char *ref = luaL_checklstring(L, 2, &len);
  lsr_gen *g = NULL;
  if (strcmp(kind, "custom_functions") != 0 && strcmp(kind, "playbooks") != 0)
    luaL_argerror(L, 1, "custom_functions or playbooks");
  snprintf(folder, sizeof folder, "%s/%s", eng->scripts_dir ? eng->scripts_dir : ".", kind);
  if (lsr_ref_check(ref, len, why, sizeof why) != 0 ||
      lsr_path_inside(folder, ref, ".lua", path, sizeof path, why, sizeof why) != 0) {
    snprintf(err, sizeof err, "%s%s", strncmp(why, "no file", 7) == 0 ? "" : "refused: ", why);
  } else if (!file_exists(path)) {
    snprintf(err, sizeof err, "no file %s", path);
  } else {
    g = lsr_gen_cached(eng, path, err, sizeof err);
  }
  if (!g) {
    lua_pushnil(L);
    lua_pushstring(L, err);
  }
  return g;
}

/* A compiled file run with fresh globals over the base (custom functions:
 * their own globals, the playbook API).  Returns what the chunk returns, or
 * nil and why. */
static int l_load_chunk(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  lsr_gen *g = compiled(L, eng);
  if (!g) return 2;
  /* the chunk with upvalue 1 (_ENV) joined to a new env; the chunk runs
   * now, so its functions keep that env */
  lsr_getref(L, eng->factory_ref);
  lua_newtable(L);
  lsr_getref(L, eng->envmeta_ref);
  lua_setmetatable(L, -2);
  lua_call(L, 1, 1);
  lsr_getref(L, g->fn_ref);
  lua_upvaluejoin(L, -1, 1, -2, 1);
  lua_remove(L, -2);
  lua_call(L, 0, 1);
  return 1;
}

typedef struct {
  lsr_task task;
  lsr_engine *eng;
  lsr_gen *gen;
  char *container, *inputs, *name;
  int64_t parent, id;
  int token;
} child_start;

/* from the queue: the child run starts outside any coroutine */
void lsr_child_start(lsr_engine *eng, lsr_task *t) {
  child_start *c = (child_start *)t;
  char err[1024];
  eng->forced_run_id = c->id; /* the id phantom.playbook returned */
  lsr_run *child = lsr_run_json(eng, c->gen, c->container, strlen(c->container), c->name, err, sizeof err);
  eng->forced_run_id = 0;
  c->gen->runs--;
  if (child) {
    child->parent_run_id = c->parent;
    child->parent_token = c->token;
    lua_State *L = eng->L;
    lsr_push_state(L, child);
    if (lsr_json_decode(L, c->inputs, strlen(c->inputs), err, sizeof err) == 0) {
      lua_setfield(L, -2, "inputs");
    }
    lua_pushinteger(L, c->parent);
    lua_setfield(L, -2, "parent_run_id");
    lua_pop(L, 1);
  } else {
    /* the parent learns at once that its child could not start */
    lsr_getref(eng->L, eng->hooks_ref);
    lua_getfield(eng->L, -1, "child_done");
    lua_remove(eng->L, -2);
    lua_pushinteger(eng->L, c->token);
    lua_pushnil(eng->L);
    lua_pushboolean(eng->L, 1);
    lua_pushstring(eng->L, err);
    lsr_sched_release(eng, c->parent, c->token, 4);
  }
  free(c->container);
  free(c->inputs);
  free(c->name);
  free(c);
}

static int l_start_child(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "phantom.playbook");
  lsr_engine *eng = run->eng;
  const char *container = luaL_checkstring(L, 3), *inputs = luaL_checkstring(L, 4);
  const char *name = luaL_checkstring(L, 5);
  int token = (int)luaL_checkinteger(L, 6);
  lsr_gen *g = compiled(L, eng);
  if (!g) return 2;
  child_start *c = lsr_xalloc(sizeof *c);
  c->task.kind = LSR_TASK_CHILD_START;
  c->eng = eng;
  c->gen = g;
  g->runs++; /* held until the child starts: a reload must not free it */
  c->container = lsr_strdup(container);
  c->inputs = lsr_strdup(inputs);
  c->name = lsr_strdup(name);
  c->parent = run->id;
  c->token = token;
  c->id = lsr_new_id(eng, LSR_ID_RUN);
  lsr_engine_push(eng, &c->task);
  lua_pushinteger(L, c->id);
  return 1;
}

/* A child run ended: its parent's hold is released with
 * hooks.child_done(token, child_state, failed, error).  Called from run_end. */
void lsr_child_ended(lsr_run *child) {
  lsr_engine *eng = child->eng;
  lua_State *L = eng->L;
  lsr_getref(L, eng->hooks_ref);
  lua_getfield(L, -1, "child_done");
  lua_remove(L, -2);
  lua_pushinteger(L, child->parent_token);
  lsr_push_state(L, child);
  lua_pushboolean(L, child->failed);
  lua_pushstring(L, child->error ? child->error : "");
  lsr_sched_release(eng, child->parent_run_id, child->parent_token, 4);
}

/* internal.stub_call(kind, ref, json_in) -> the test's JSON answer, or nil */
static int l_stub_call(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  if (!eng->test || !eng->test->call_stub) return 0;
  char *out = eng->test->call_stub(eng->test->ud, luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                                   luaL_checkstring(L, 3));
  if (!out) return 0;
  lua_pushstring(L, out);
  free(out);
  return 1;
}

/* internal.global(name) -> the run's global of that name (raw), or nil */
static int l_global(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.global");
  lsr_getref(L, run->env_ref);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* internal.global_name(fn) -> the name of the run's global holding fn, or nil */
static int l_global_name(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.global_name");
  lua_settop(L, 1);
  char *name = lsr_global_name(L, run, 1);
  if (!name) return 0;
  lua_pushstring(L, name);
  free(name);
  return 1;
}

/* internal.idempotent(action, asset) -> may the action run again on it? */
static int l_idempotent(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  lsr_asset *a = lsr_config_asset(eng->cfg, luaL_checkstring(L, 2));
  const lsr_action_def *d = a ? lsr_app_action(a->app, luaL_checkstring(L, 1)) : NULL;
  lua_pushboolean(L, d && d->idempotent > 0);
  return 1;
}

/* internal.assets_for(action) -> the names of the assets that can run it */
static int l_assets_for(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  const char *action = luaL_checkstring(L, 1);
  lua_newtable(L);
  int n = 0;
  for (int i = 0; i < eng->cfg->nassets; i++)
    if (lsr_app_action(eng->cfg->assets[i].app, action)) {
      lua_pushstring(L, eng->cfg->assets[i].name);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* internal.link_child(child_run_id, token): a recovered child releases this
 * run's hold when it ends */
static int l_link_child(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.link_child");
  lua_Integer id = luaL_checkinteger(L, 1);
  for (lsr_run *r = run->eng->runs; r; r = r->next)
    if (r->id == id) {
      r->parent_run_id = run->id;
      r->parent_token = (int)luaL_checkinteger(L, 2);
      lua_pushboolean(L, 1);
      return 1;
    }
  lua_pushboolean(L, 0);
  return 1;
}

static int l_scripts_dir(lua_State *L) {
  const char *d = lsr_engine_of(L)->scripts_dir;
  lua_pushstring(L, d ? d : ".");
  return 1;
}

void lsr_flow_register(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"scripts_dir", l_scripts_dir}, {"stub_call", l_stub_call}, {"global", l_global},
    {"global_name", l_global_name}, {"idempotent", l_idempotent}, {"link_child", l_link_child},
    {"assets_for", l_assets_for},
    {"next_id", l_next_id}, {"ask", l_ask}, {"load_chunk", l_load_chunk},
    {"start_child", l_start_child}, {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
