/* runtime.h: what the bindings share among themselves: the current run, refs,
 * the resume wrapper, results building.  Lua-facing: includes lua.h. */
#ifndef LSR_RUNTIME_H
#define LSR_RUNTIME_H
#include "engine.h"
#include <lua.h>
#include <lauxlib.h>

/* The engine pointer lives in the main thread's extra space; every thread
 * created afterwards gets a copy. */
static inline lsr_engine *lsr_engine_of(lua_State *L) {
  return *(lsr_engine **)lua_getextraspace(L);
}

/* Counted registry refs: every ref has exactly one release path, and
 * eng->live_refs lets a spec assert that none leaked. */
int lsr_ref(lua_State *L);                /* [-1, +0, m] */
void lsr_unref(lua_State *L, int *ref);   /* [-0, +0, -]; sets *ref to LUA_NOREF */
void lsr_getref(lua_State *L, int ref);   /* [-0, +1, -] */

/* [-1, +1, m] a read-only view of the table on top, named name, shared by
 * every run (rawset refuses it too) (setup.c) */
void lsr_freeze(lua_State *L, const char *name);

/* ---- runs (run.c) ---- */
typedef enum { LSR_EXEC_OK, LSR_EXEC_YIELD, LSR_EXEC_ERR } lsr_exec;
/* The only caller of lua_resume.  The run's thread holds fn and nargs args. */
lsr_exec lsr_run_resume(lsr_run *run, int nargs);
lua_State *lsr_run_thread(lsr_run *run);
/* [-0, +0, -] The run whose code is executing, or an error naming fname. */
lsr_run *lsr_run_check(lua_State *L, const char *fname);
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len);
/* [-1, +0, -] A run of gen on the container table on top of eng->L (a
 * decoded container), checked as lsr_run_json checks it. */
lsr_run *lsr_run_table(lsr_engine *eng, lsr_gen *gen, const char *label, char *err, size_t errlen);
/* [-0, +1, -] The run's container as the engine has it now (the report's). */
void lsr_run_push_container(lua_State *L, lsr_run *run);
/* After any step of a run: end it if it failed or has nothing left to do. */
void lsr_run_settle(lsr_run *run);

/* ---- actions (act.c, results.c) ---- */
void lsr_act_free(lsr_engine *eng, lsr_action_run *ar);
/* [-0, +1, e] A fresh copy of parameter set i (from 0) of ar on L (any state). */
void lsr_act_push_param(lua_State *L, lsr_action_run *ar, int i);
/* Let an action's app runs go (now, or at its start_time). */
void lsr_act_release(lsr_engine *eng, lsr_action_run *ar);
/* Every app run of ar is done: queue its delivery. */
void lsr_results_action_done(lsr_engine *eng, lsr_action_run *ar);
/* Add ar's entry to its run's get_summary() (outside any block). */
void lsr_results_summarize(lsr_engine *eng, lsr_action_run *ar);
/* An app run's output as a value of the engine's state (a registry ref,
 * released here) instead of JSON text: a Lua app's, copied. */
void lsr_app_run_done_ref(lsr_engine *eng, lsr_app_run *apr, int ref);
/* lua runner (runner_lua.c): start an app run of a lua app on a worker
 * thread; it ends with lsr_app_run_done, on the loop's thread, later. */
void lsr_lua_app_start(lsr_engine *eng, lsr_app_run *apr);


/* ---- the argument normaliser (args.c) ---- */
/* Calls are f(kwargs), or positional arguments in the order of `positional`
 * with an optional last table of the rest.  Leaves one kwargs table at index
 * 1 and checks its keys against allowed (NULL-terminated lists).  Raises
 * naming fname on misuse. */
void lsr_args(lua_State *L, const char *fname, const char *const *positional,
              const char *const *allowed);
int lsr_args_lua(lua_State *L);
/* [-0, +1, m] "file:line: " of the innermost playbook frame, or "" */
void lsr_where(lua_State *L);
/* Errors at the playbook's line: a message, or one about argument `arg`. */
int lsr_error(lua_State *L, const char *fmt, ...);
int lsr_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...);

/* ---- limits (limits.c) ---- */
void *lsr_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void lsr_limits_defaults(lsr_engine *eng);
void lsr_limits_arm(lsr_engine *eng, lua_State *T);
void lsr_limits_block(lsr_run *run, lua_State *T);
void lsr_limits_from_playbook(lsr_run *run, lua_State *T);
void lsr_limits_coroutine_lib(lua_State *L);
/* C work for the current run, in instructions: nonzero once the run is killed
 * (then lsr_limits_raise(L) raises its limit error as the count hook does). */
int lsr_limits_charge(lsr_engine *eng, long long n);
int lsr_limits_raise(lua_State *L);
lsr_engine *lsr_engine_if(lua_State *L); /* L's engine, NULL for a state of no engine */
/* bounded string / table functions (strlib.c): replace the entries of the
 * state's string and table libraries.  [-0, +0, m] */
void lsr_strlib_install(lua_State *L);

/* ---- scheduled steps (schedule.c) ---- */
void lsr_schedule_register(lua_State *L);   /* adds schedule, cancel, hold to the table on top */
void lsr_sched_release(lsr_engine *eng, int64_t run_id, int token, int n);
void lsr_sched_drop(lsr_run *run);

/* The name of the run's global that holds the value at idx (malloc'd), or
 * NULL: how a callback is found again after a restart. */
char *lsr_global_name(lua_State *L, lsr_run *run, int idx);

/* ---- flow (flow.c) ---- */
void lsr_flow_register(lua_State *L);
void lsr_child_ended(lsr_run *child);

/* ---- the prelude's hooks (phantom.c) ---- */
/* [-n, +r, e] Call hooks[name] with the n values on top of L; r results. */
void lsr_hook(lua_State *L, const char *name, int n, int r);
/* [-0, +1, -] the run's state table */
void lsr_push_state(lua_State *L, lsr_run *run);

/* ---- the phantom module (phantom.c) ---- */
void lsr_phantom_open(lua_State *L);   /* [-0, +1, m] */
void lsr_act_register(lua_State *L);   /* [-0, +0, m] adds act to the table on top */
void lsr_act_register_internal(lua_State *L); /* adds approve to the table on top */
#endif
