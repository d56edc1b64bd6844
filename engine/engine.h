/* engine.h: the core types of luasoar (engine, apps, assets, runs, action
 * runs, app runs) and the engine's C interface.
 *
 * The engine owns one libuv loop and one Lua state; all playbook Lua runs
 * on the loop's thread (Lua apps run on worker threads, in states of their
 * own: bindings/runner_lua.c).  Runners never touch a playbook's lua_State: they hand back
 * JSON text, which bindings/ turns into Lua tables.  This header includes no
 * Lua header. */
#ifndef LSR_ENGINE_H
#define LSR_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct lua_State;
typedef struct lsr_engine lsr_engine;
typedef struct lsr_run lsr_run;
typedef struct lsr_action_run lsr_action_run;
typedef struct lsr_app_run lsr_app_run;

/* ---- apps and assets (engine/config.c) ---- */

typedef enum {
  LSR_RUNNER_LUA, LSR_RUNNER_EXEC,
  LSR_RUNNER_SOAR,      /* a Splunk SOAR connector in a Python worker (engine/soar_*.c) */
  LSR_RUNNER_STUB,      /* testing: an app named by an asset but not installed */
} lsr_runner_kind;

typedef struct {
  char *name;
  char **required;      /* names of required parameters, NULL-terminated */
  int read_only, idempotent;
  double timeout;       /* seconds; 0 = the app's */
  char *identifier;     /* soar: what the connector dispatches on */
  char *type;           /* soar: test, investigate, generic, contain, correct, ingest */
  char **outputs;       /* soar: the data paths the manifest declares (NULL-terminated) */
  char **secrets;       /* soar: its parameters of data_type password (NULL-terminated) */
} lsr_action_def;

typedef struct lsr_app {
  char *name;
  int64_t app_id;
  lsr_runner_kind runner;
  char *dir;            /* folder of app.json */
  char *manifest;       /* path of app.json, for messages */
  char *main;           /* lua: file relative to dir */
  char **command;       /* exec: argv, NULL-terminated */
  char **env;           /* exec: names of variables passed through */
  double timeout;       /* seconds */
  lsr_action_def *actions;
  int nactions;
  char *app_uid;        /* soar: the manifest's appid (a UUID string), shown instead of app_id */
  void *soar;           /* soar: the manifest (a yajl tree) */
  char *soar_file;      /* soar: its path */
  char *python;         /* soar: the interpreter */
  int workers;          /* soar: app runs in flight at once (one worker process each) */
  struct lsr_soar_pool *pool; /* soar: its workers (lazy) */
  struct lsr_lua_app *lua; /* lua runner: its state and queue of app runs (bindings/runner_lua.c) */
} lsr_app;

typedef struct {
  char *name;
  int64_t id;
  lsr_app *app;
  char *config_json;    /* the asset's "config" object as JSON text */
  char **tags;          /* NULL-terminated */
} lsr_asset;

typedef struct {
  lsr_app *apps;
  int napps;
  lsr_asset *assets;
  int nassets;
  int refs;             /* action runs still using it (a reload makes a new one) */
} lsr_config;

/* Load every apps/<dir>/app.json under apps_dir (a missing folder means no
 * apps) and the assets file (NULL or a missing default file: no assets).
 * On error returns -1 with a one-line message naming the file in err. */
int lsr_config_load(lsr_config *cfg, const char *apps_dir,
                    const char *assets_file, int assets_required,
                    char *err, size_t errlen);
/* Add the assets of a JSON object given as text (label names it in
 * messages); with stub_apps, an unknown app becomes a stub-only app. */
int lsr_config_add_assets(lsr_config *cfg, const char *json, size_t len, const char *label,
                          int stub_apps, char *err, size_t errlen);
void lsr_config_free(lsr_config *cfg);
/* Drop a reference to cfg; it is freed (with its apps' Lua states) once no
 * action run uses it and it is not the engine's current one. */
void lsr_config_release(lsr_engine *eng, lsr_config *cfg);
const lsr_action_def *lsr_app_action(const lsr_app *app, const char *action);
lsr_app *lsr_config_app(lsr_config *cfg, const char *name);
lsr_asset *lsr_config_asset(lsr_config *cfg, const char *name);

/* ---- the ready queue: work for the next turn of the loop ---- */

typedef enum {
  LSR_TASK_APP_RUN,     /* start an app run */
  LSR_TASK_CALLBACK,    /* deliver a finished action run to its callback */
  LSR_TASK_RUN_START,   /* start a playbook run */
  LSR_TASK_SCHEDULED,   /* a scheduled Lua step of a run (custom functions, prompts ...) */
  LSR_TASK_CHILD_START, /* start a child playbook run */
} lsr_task_kind;

typedef struct lsr_task {
  lsr_task_kind kind;
  struct lsr_task *next;
} lsr_task;

/* ---- runs ---- */

/* ---- virtual-or-real timers ---- */
typedef struct lsr_timer lsr_timer;
typedef void (*lsr_timer_cb)(void *ud);

/* ---- limits (bindings/limits.c enforces them) ---- */

typedef struct {
  long long instructions_per_callback; /* each block: on_start, a callback ... */
  long long instructions_per_run;
  size_t memory;        /* bytes a run may hold (net of what it frees) */
  double deadline;      /* seconds from start to end, pending work included */
  size_t log_entries;   /* log lines kept per run */
  size_t log_bytes;     /* log bytes kept per run (they count as its memory too) */
  int coroutines;       /* coroutines a run may create */
} lsr_limits;

typedef enum { LSR_LOG_DEBUG, LSR_LOG_ERROR } lsr_log_level;

typedef struct {
  lsr_log_level level;
  char *message;
  double time;          /* seconds since the epoch */
} lsr_log_entry;

typedef enum {
  LSR_RUN_NEW, LSR_RUN_RUNNING, LSR_RUN_FINISHING, LSR_RUN_ENDED
} lsr_run_state;

typedef struct lsr_gen {
  char *path;           /* playbook file, as given */
  int fn_ref;           /* compiled chunk */
  int runs;             /* live runs on this generation */
  int number;           /* serve: the playbook's generation number */
  int retired;          /* serve: replaced; freed when its last run ends */
  double mtime;         /* of the file when compiled */
} lsr_gen;

struct lsr_run {
  lsr_task task;        /* LSR_TASK_RUN_START */
  lsr_engine *eng;
  int64_t id, container_id;
  lsr_gen *gen;
  lsr_run_state state;
  int failed;
  char *error;          /* why it failed: message, file:line and traceback */
  int thread_ref, env_ref, container_ref, summary_ref;
  int state_ref;        /* Lua table the data API keeps per run (bindings/lua) */
  int pending;          /* action runs started and not yet delivered */
  int on_start_done;
  lsr_log_entry *log;
  size_t nlog, caplog;
  size_t log_kept;      /* bytes of log kept; past a limit the rest is dropped */
  size_t log_dropped, log_dropped_bytes;
  lsr_action_run *actions; /* live action runs of this run */
  struct lsr_sched *scheds; /* its scheduled steps and holds */
  lsr_limits limits;
  long long instr_block, instr_total; /* instructions counted so far */
  long long mem_net;    /* bytes allocated minus freed while its code ran */
  int coroutines;
  const char *killed;   /* a limit was hit: which (a static string) */
  lsr_timer *deadline_timer;
  int64_t parent_run_id;  /* a child playbook run: its parent, and the hold */
  int parent_token;
  lsr_run *next, *prev; /* engine's list of live runs */
  int recovered;        /* resumed after a restart (serve) */
  void *ud;             /* owner's (CLI, test kit) */
};

struct lsr_app_run {
  lsr_task task;        /* LSR_TASK_APP_RUN */
  int64_t id;
  lsr_action_run *ar;
  lsr_asset *asset;
  int *sent;            /* indexes of the parameter sets sent to the app */
  int nsent;
  const char **missing; /* per parameter set: a missing required parameter, or NULL */
  int done;
  int result_ref;       /* Lua: this app run's element of results */
  int successes;        /* parameter sets that succeeded */
  int failed_whole;     /* it failed as a whole (no output, bad output, denied ...) */
  lsr_app_run *waiting_next; /* waiting for an exec slot */
  struct lsr_exec_proc *proc;
};

struct lsr_action_run {
  lsr_task task;        /* LSR_TASK_CALLBACK */
  int64_t id;
  lsr_run *run;
  char *name, *action;
  char *callback_name;  /* the playbook global the callback was, or NULL */
  char *handle_json;    /* the handle as JSON, kept when the engine persists */
  char *reviewer;
  int callback_ref, handle_ref;
  int64_t parent_id;
  int param_ref;        /* Lua: the list of its parameter sets, context included */
  char **params;        /* their JSON, made when asked for: lsr_act_param_json */
  int nparams;
  lsr_app_run *app_runs;
  int napp_runs, ndone;
  int success;          /* some parameter set succeeded on some asset */
  double start_time;    /* app runs start then (engine clock); 0: now */
  int awaiting_approval;
  int released;         /* its app runs went to the queue (or were refused) */
  char *denied;         /* the reviewer said no: why */
  char *loop_state;     /* given back to the callback as loop_state_json */
  lsr_engine *eng;
  lsr_config *cfg;      /* the apps and assets it started with */
  lsr_action_run *next; /* run's list */
};

/* ---- testing hooks (NULL in production; set by luasoar.testing) ---- */

typedef struct {
  /* a stub for action on asset (0: none) and running it; run_stub must end
   * with lsr_app_run_done, now or later */
  int (*stub_for)(void *ud, const char *action, const lsr_asset *asset);
  void (*run_stub)(void *ud, lsr_app_run *apr, int stub);
  void (*on_action)(void *ud, lsr_action_run *ar);
  /* a playbook global function was called; args is the JSON list of its arguments */
  void (*on_block)(void *ud, lsr_run *run, const char *name, const char *args_json, size_t len);
  /* a stubbed custom function ("custom_function") or child playbook
   * ("playbook"): the stub's JSON answer to json_in (malloc'd), or NULL
   * when ref is not stubbed */
  char *(*call_stub)(void *ud, const char *kind, const char *ref, const char *json_in);
  /* coverage: line of a playbook file executed (hit 1) or executable (hit 0) */
  void (*on_line)(void *ud, const char *file, int line, int hit);
  void *ud;
} lsr_test_hooks;


/* ---- the engine ---- */

/* What the engine numbers.  Actions, prompts and custom function calls
 * share one sequence (SOAR's action_run ids). */
typedef enum {
  LSR_ID_RUN, LSR_ID_ACTION, LSR_ID_APP_RUN, LSR_ID_ARTIFACT, LSR_ID_CONTAINER, LSR_ID_PIN, LSR_ID_NOTE,
  LSR_ID_DATA, LSR_ID_KINDS
} lsr_id_kind;
#define LSR_ID_NAMES {"run", "action", "app_run", "artifact", "container", "pin", "note", "data"}

typedef struct {
  void (*on_log)(lsr_run *run, const lsr_log_entry *e, void *ud);
  void (*on_run_end)(lsr_run *run, void *ud);
  /* a prompt or an approval (JSON {name, type, message, ...}) needs an
   * answer: the responses as JSON (malloc'd) and after how many seconds, or
   * NULL for none (it times out) */
  char *(*answer)(lsr_run *run, const char *prompt_json, double *delay, void *ud);
  /* persistence (luasoar serve): each step of a run as it happens */
  void (*on_run_start)(lsr_run *run, void *ud);
  void (*on_action)(lsr_action_run *ar, void *ud);
  void (*on_app_run)(lsr_app_run *apr, const char *result_json, void *ud);
  void (*on_delivered)(lsr_action_run *ar, void *ud);
  /* the data API changed something kept across runs or steps: kind is
   * run_data, container, artifact, object, list, prompt, outputs */
  void (*persist)(lsr_run *run, const char *kind, const char *key, const char *json, void *ud);
  /* a new id of kind (luasoar serve): the store gives ids, unique across
   * the servers that share it; without this observer the engine counts */
  int64_t (*new_id)(lsr_id_kind kind, void *ud);
  /* what the store holds (luasoar serve), as JSON (malloc'd), or NULL:
   * "container" (key: its id) with its artifacts; "pin" (key: a pin's id) the
   * id of the container that holds it */
  char *(*load)(const char *kind, const char *key, void *ud);
  /* the story of a run (luasoar run's text output): an action run was
   * started (its app runs are queued or wait for a reviewer), and one is
   * done, before its callback (lsr_action_failures says what failed) */
  void (*on_action_start)(lsr_action_run *ar, void *ud);
  void (*on_action_end)(lsr_action_run *ar, void *ud);
  void *ud;
} lsr_observer;

struct lsr_engine {
  uv_loop_t *loop;
  int own_loop;
  struct lua_State *L;
  lsr_config *cfg;      /* the current apps and assets */
  lsr_observer obs;
  int64_t next_id[LSR_ID_KINDS]; /* the ids the engine counts itself (no new_id observer) */
  uint64_t guid_seed, guid_counter;
  lsr_task *ready_head, *ready_tail;
  uv_idle_t idle;
  lsr_run *runs;
  lsr_run *current;     /* the run whose Lua code is executing, if any */
  char *scripts_dir;    /* where child playbooks and custom functions are found */
  lsr_gen **gens;       /* compiled files (child playbooks, custom functions) */
  int ngens;
  int next_sched_id;
  int64_t forced_run_id;  /* the next run's id, when reserved (child playbooks) */
  int live_runs;
  long live_refs;       /* Lua registry refs held by the engine */
  long setup_refs;      /* of which taken once at setup */
  int base_ref;         /* read-only base environment */
  int envmeta_ref;      /* metatable of run environments */
  int factory_ref;      /* makes the closure whose upvalue becomes _ENV */
  int store_ref;        /* containers, objects, custom lists (bindings/lua) */
  int hooks_ref;        /* the prelude's hooks the C side calls */
  size_t max_app_output;
  int exec_running, exec_max; /* exec app runs in flight, and the cap */
  lsr_app_run *exec_waiting, *exec_waiting_tail;
  lsr_test_hooks *test;
  lsr_limits limits;    /* defaults of every run; a playbook may set its own */
  size_t mem_total, mem_limit; /* all Lua memory of the engine */
  size_t shared_bytes;  /* per playbook: save_data, custom lists, objects (0: no quota) */
  int virtual_clock;    /* time passes only when nothing else is left to do */
  double vnow;          /* the virtual clock, seconds since the epoch */
  lsr_timer *vtimers;   /* pending virtual timers, earliest first */
  uint64_t timer_seq;
  double step_seconds;  /* the watchdog's hard limit on one step (0: its default) */
  int report_times;     /* the --json report gives each log line's "time" (luasoar run) */
  struct lsr_soar_keep *soar; /* SOAR connectors' states and key (engine/soar_runner.c) */
  char *vault_dir;      /* the vault of SOAR connectors (NULL: a default) */
  struct lsr_lua_pool *lua_pool; /* Lua app runs on worker threads (bindings/runner_lua.c) */
};

/* The engine's clock: real, or virtual in tests. */
double lsr_clock(lsr_engine *eng);
/* Call cb at time `at` (engine clock).  Returns a handle for cancelling. */
lsr_timer *lsr_timer_at(lsr_engine *eng, double at, lsr_timer_cb cb, void *ud);
void lsr_timer_cancel(lsr_engine *eng, lsr_timer *t);
/* The JSON of parameter set i (from 0) of ar (act.c). */
const char *lsr_act_param_json(lsr_action_run *ar, int i);
/* An app run is over: its output (ok) or why it failed.  Ends in bindings. */
void lsr_app_run_done(lsr_engine *eng, lsr_app_run *apr, int ok, const char *out, size_t len,
                      const char *failure);

/* Create an engine on loop (NULL: its own loop).  Returns NULL with a message
 * in err on failure. */
lsr_engine *lsr_engine_new(uv_loop_t *loop, char *err, size_t errlen);
void lsr_engine_free(lsr_engine *eng);
/* A new id of kind: the store's under serve (new_id), else the engine's own
 * count for runs, actions and app runs, and 0 for the rest (the Lua side
 * numbers them from what it holds). */
int64_t lsr_new_id(lsr_engine *eng, lsr_id_kind kind);
void lsr_engine_push(lsr_engine *eng, lsr_task *t);
/* Run the loop until no run is live and nothing is queued. */
void lsr_engine_drain(lsr_engine *eng);
void lsr_guid(lsr_engine *eng, char out[37]);
/* --limit NAME=VALUE: the engine's limits (the ceiling of every playbook's). */
int lsr_limit_set(lsr_engine *eng, const char *spec, char *err, size_t errlen);

/* ---- implemented by bindings/ (the Lua side), called by the engine ---- */
void lsr_lua_app_close(lsr_app *app);
/* Engine teardown: wait for the Lua app runs still on worker threads (their
 * results are dropped) before anything is freed. */
void lsr_lua_apps_stop(lsr_engine *eng);
int lsr_lua_setup(lsr_engine *eng, char *err, size_t errlen);
void lsr_lua_teardown(lsr_engine *eng);
void lsr_run_start(lsr_run *run);
/* Mark a run failed; the first reason stays. */
void lsr_run_fail(lsr_run *run, const char *msg);
/* Compile a playbook (text only, chunk name @path); NULL with "file:line:
 * message" in err if it does not compile. */
lsr_gen *lsr_gen_load(lsr_engine *eng, const char *path, char *err, size_t errlen);
void lsr_gen_free(lsr_engine *eng, lsr_gen *g);
/* The engine's compiled copy of a file, compiled on first use. */
lsr_gen *lsr_gen_cached(lsr_engine *eng, const char *path, char *err, size_t errlen);
/* Print `luasoar check` findings for a compiled playbook; how many errors. */
int lsr_lint(lsr_engine *eng, const char *file, const char *text, size_t len);
/* The lint's errors (not its warnings) for the playbook file, as
 * "file:line: message; ..." in err; returns how many (0: none, err empty). */
int lsr_lint_errors(lsr_engine *eng, const char *file, char *err, size_t errlen);
/* Seed custom lists from <dir>/<name>.json files (no folder: none). */
int lsr_lists_load(lsr_engine *eng, const char *dir, char *err, size_t errlen);
/* Call the prelude's hooks[hook] with string arguments, in protected mode;
 * -1 with why in err. */
int lsr_hook_strings(lsr_engine *eng, const char *hook, int nargs, const char **args, char *err, size_t errlen);
/* Check a container's JSON and shape and start a run of gen on it; label
 * names the input in messages (a file name). */
lsr_run *lsr_run_json(lsr_engine *eng, lsr_gen *gen, const char *json, size_t len,
                      const char *label, char *err, size_t errlen);
lsr_run *lsr_run_file(lsr_engine *eng, lsr_gen *gen, const char *container_file,
                      char *err, size_t errlen);
/* The run's get_summary() as JSON (malloc'd), valid until the run is freed. */
char *lsr_run_summary_json(lsr_run *run);
void lsr_act_start_app_run(lsr_engine *eng, lsr_app_run *apr);
void lsr_act_dispatch(lsr_action_run *ar);
void lsr_sched_run(lsr_engine *eng, lsr_task *t);
/* Call the prelude's hooks[hook](args...) on a run's thread on the next
 * turn (args: a JSON list); -1 if there is no such live run. */
int lsr_sched_call(lsr_engine *eng, int64_t run_id, const char *hook, const char *args_json);
/* Set a field of a run's data-API state from JSON before it starts
 * (scope_list, inputs).  -1 on bad JSON. */
int lsr_run_state_set(lsr_run *run, const char *key, const char *json);
/* What playbook_info says: labels (NULL-terminated, malloc'd) and active;
 * runs the generation's top level in a throwaway sandbox under the engine's
 * limits.  -1 with "file:line: message" in err if the top level fails. */
int lsr_gen_info(lsr_engine *eng, lsr_gen *gen, char ***labels, int *active, char *err, size_t errlen);
void lsr_child_start(lsr_engine *eng, lsr_task *t);

/* The --json report of a run (engine/report.c); call from on_run_end. */
char *lsr_run_report_json(lsr_run *run);
/* The run's container as the run left it (the engine's current state of it:
 * tags, notes, severity, artifacts ...), as JSON (malloc'd); call before the
 * run is freed (on_run_end). */
char *lsr_run_container_json(lsr_run *run);
/* What failed in a done action run (from on_action_end): one line per app
 * run that failed as a whole ("ASSET: why") and per failed parameter set of
 * the others ("ASSET, parameter set I: why"), each ending in '\n'; "" when
 * nothing failed (malloc'd). */
char *lsr_action_failures(lsr_action_run *ar);

/* ---- exec runner (engine/exec_runner.c) ---- */

typedef void (*lsr_exec_done)(void *ud, int ok, const char *out, size_t len,
                              const char *failure);
/* a line of a streaming child's stdout, without its '\n' (NUL-terminated) */
typedef void (*lsr_exec_line)(void *ud, char *line, size_t len);
typedef struct lsr_exec_proc lsr_exec_proc;
typedef struct {
  char **argv, **env;
  const char *cwd;
  const char *input;
  size_t input_len;
  double timeout;       /* seconds */
  size_t max_output;
  lsr_exec_done done;
  void *ud;
  /* streaming (a long-lived worker): stdout goes to on_line line by line
   * (max_output is then the longest line), stdin stays open for
   * lsr_exec_write, and done is called when the child is gone */
  lsr_exec_line on_line;
} lsr_exec_req;
/* Start a child.  done is always called exactly once, from the loop. */
lsr_exec_proc *lsr_exec_start(uv_loop_t *loop, const lsr_exec_req *req);
/* Kill a child's process group; done is then called with a failure. */
void lsr_exec_kill(lsr_exec_proc *p);
/* Streaming children: write to stdin (-1 once it is closed or the child is
 * gone), close stdin (EOF), and whether it keeps the loop alive (an idle
 * worker must not). */
int lsr_exec_write(lsr_exec_proc *p, const char *data, size_t len);
void lsr_exec_close_input(lsr_exec_proc *p);
void lsr_exec_hold(lsr_exec_proc *p, int busy);

/* ---- small helpers (engine/util.c) ---- */
/* Format a message into err; returns -1 (for `return lsr_errf(...)`). */
int lsr_errf(char *err, size_t n, const char *fmt, ...);
char *lsr_strdup(const char *s);
char *lsr_strndup(const char *s, size_t n);
void *lsr_xalloc(size_t n);          /* calloc or abort */
void *lsr_xrealloc(void *p, size_t n);
char **lsr_strv_dup(char **v);
void lsr_strv_free(char **v);
int lsr_read_file(const char *path, char **data, size_t *len, size_t max,
                  char *err, size_t errlen);
void lsr_offset_to_linecol(const char *text, size_t len, size_t off,
                           int *line, int *col);
double lsr_now(void);

/* ---- references that become paths (engine/paths.c) ---- */
/* 0 if ref (len bytes) is a valid reference, else -1 with why in err. */
int lsr_ref_check(const char *ref, size_t len, char *err, size_t errlen);
/* folder/rel+suffix in out if rel is a valid reference and the file it
 * really is (symlinks resolved) lies under folder; else -1 with why in err
 * ("no file PATH" when it does not exist). */
int lsr_path_inside(const char *folder, const char *rel, const char *suffix, char *out, size_t outlen,
                    char *err, size_t errlen);

#endif
