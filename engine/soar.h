/* soar.h: Splunk SOAR connectors as apps: the manifest (soar_manifest.c)
 * and the Python workers that run them (soar_runner.c).  No Lua here. */
#ifndef LSR_SOAR_H
#define LSR_SOAR_H
#include "engine.h"
#include <yajl/yajl_tree.h>

/* The SOAR manifest in dir (a JSON object with main_module, actions, name,
 * appid): 1 with its file name in out, 0 none, -1 two of them (err says). */
int lsr_soar_find_manifest(const char *dir, char *out, size_t outlen, char *err, size_t n);
/* Fill app (its dir set; manifest set when an app.json names it) from the
 * manifest file in its folder; over is app.json (options, overrides) or
 * NULL.  -1 with a message naming the file. */
int lsr_soar_load(lsr_app *app, const char *manifest, yajl_val over, char *err, size_t n);
void lsr_soar_free(lsr_app *app);
/* An asset's config checked against the manifest's configuration, defaults
 * applied, as JSON (malloc'd); NULL with a message naming file, asset and
 * key (never a value). */
char *lsr_soar_asset_config(const lsr_app *app, yajl_val config, const char *file, const char *asset,
                            char *err, size_t n);
/* An answer {"data": [{"action", "parameters": [...]}, ...]} with the values
 * of SOAR connectors' password parameters replaced by ******** (malloc'd). */
char *lsr_soar_mask_rows(const lsr_config *cfg, const char *json);
/* A string field of the manifest ("" when absent). */
const char *lsr_soar_manifest_str(const lsr_app *app, const char *key);

/* ---- the runner ---- */
/* Start an app run on one of the app's workers (or queue it). */
void lsr_soar_start(lsr_engine *eng, lsr_app_run *apr);
/* Stop the app's workers (stdin closed: they exit); runs in flight fail. */
void lsr_soar_close(lsr_app *app);
/* The folder of luasoar's Python side (the phantom package, the worker). */
const char *lsr_soar_shim_dir(void);

/* What the engine keeps for connectors: each asset's state (load_state /
 * save_state; "null" when none; serving, in the store), the vault folder
 * (files addressed by SHA-1) and the hex key encryption_helper derives each
 * asset's key from (serving, kept in the store). */
char *lsr_app_state_load(lsr_engine *eng, const char *asset);
void lsr_app_state_save(lsr_engine *eng, lsr_app_run *apr, const char *json);
const char *lsr_app_vault_dir(lsr_engine *eng);
const char *lsr_app_key(lsr_engine *eng);
void lsr_soar_keep_free(lsr_engine *eng);

/* Implemented by bindings (app_calls.c): what a connector asks of the
 * engine while an app run is in flight (get_container_info, save_artifacts,
 * save_container), args as JSON; the reply {"ok", "message", "result"} as
 * JSON (malloc'd). */
char *lsr_app_call(lsr_engine *eng, lsr_app_run *apr, const char *call, const char *args_json);
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len);
#endif
