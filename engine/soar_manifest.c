/* soar_manifest.c: Splunk SOAR connectors as luasoar apps.  A folder under
 * apps/ holding a SOAR manifest (a JSON object with main_module, actions,
 * name, appid) and no app.json is one; an app.json with runner "soar" may
 * name the manifest and set options.  Actions come from the manifest's
 * actions[] by their `action` name; an asset's config is checked against
 * the manifest's `configuration` when the assets are loaded, with its
 * defaults applied.  Parameters are checked by the worker (python/), which
 * reads the same manifest.  No Lua here. */
#include "engine.h"
#include "json_check.h"
#include "soar.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#define SOAR_DEFAULT_WORKERS 2
#define SOAR_DEFAULT_PYTHON "/usr/bin/python3"
#define SOAR_DEFAULT_TIMEOUT 120.0 /* seconds an app run may take */

static int is_manifest(yajl_val v) {
  return YAJL_IS_OBJECT(v) && lsr_json_field(v, "main_module") && lsr_json_field(v, "actions") &&
         lsr_json_field(v, "name") && lsr_json_field(v, "appid");
}

/* Is <dir>/<name> a SOAR manifest?  1 yes, 0 no (not JSON, not one). */
static int manifest_file(const char *dir, const char *name) {
  size_t l = strlen(name);
  if (l < 6 || strcmp(name + l - 5, ".json") != 0) return 0;
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  yajl_val v = lsr_json_tree_file(path, err, sizeof err);
  int yes = v && is_manifest(v);
  yajl_tree_free(v);
  return yes;
}

int lsr_soar_find_manifest(const char *dir, char *out, size_t outlen, char *err, size_t n) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || !manifest_file(dir, de->d_name)) continue;
    if (found++) {
      closedir(d);
      return lsr_errf(err, n, "%s: two SOAR manifests (%s and %s): name one in app.json "
                      "({\"runner\": \"soar\", \"manifest\": \"NAME.json\"})", dir, out, de->d_name);
    }
    snprintf(out, outlen, "%s", de->d_name);
  }
  closedir(d);
  return found;
}

static const char *str_or(yajl_val obj, const char *key, const char *dflt) {
  yajl_val v = lsr_json_field(obj, key);
  return YAJL_IS_STRING(v) ? v->u.string : dflt;
}

static const char *type_of(yajl_val def) { return str_or(def, "data_type", "string"); }

static int has_default(yajl_val def) {
  yajl_val d = lsr_json_field(def, "default");
  return d && !YAJL_IS_NULL(d) && !(YAJL_IS_STRING(d) && !*d->u.string);
}

/* An app.json override of one action: {"idempotent": bool, "timeout": s} */
static int action_override(lsr_app *app, lsr_action_def *a, yajl_val over, char *err, size_t n) {
  yajl_val o = lsr_json_field(lsr_json_field(over, "actions"), a->name);
  if (!o) return 0;
  yajl_val v = lsr_json_field(o, "idempotent");
  if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
    return lsr_errf(err, n, "%s: action '%s': 'idempotent' must be true or false", app->manifest, a->name);
  if (v) a->idempotent = YAJL_IS_TRUE(v);
  v = lsr_json_field(o, "timeout");
  if (v && (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) <= 0))
    return lsr_errf(err, n, "%s: action '%s': 'timeout' must be a positive number of seconds", app->manifest, a->name);
  if (v) a->timeout = YAJL_GET_DOUBLE(v);
  return 0;
}

static int load_action(lsr_app *app, lsr_action_def *a, yajl_val def, size_t i, yajl_val over,
                       char *err, size_t n) {
  const char *f = app->soar_file;
  if (!YAJL_IS_OBJECT(def)) return lsr_errf(err, n, "%s: actions[%zu]: expected an object", f, i);
  yajl_val v = lsr_json_field(def, "action");
  if (!YAJL_IS_STRING(v) || !*v->u.string)
    return lsr_errf(err, n, "%s: actions[%zu]: field 'action': expected the action's name", f, i);
  a->name = lsr_strdup(v->u.string);
  a->identifier = lsr_strdup(str_or(def, "identifier", a->name));
  a->type = lsr_strdup(str_or(def, "type", "generic"));
  v = lsr_json_field(def, "read_only");
  a->read_only = YAJL_IS_TRUE(v);
  a->idempotent = a->read_only;
  yajl_val params = lsr_json_field(def, "parameters");
  if (params && !YAJL_IS_OBJECT(params))
    return lsr_errf(err, n, "%s: action '%s': field 'parameters': expected an object", f, a->name);
  size_t np = params ? params->u.object.len : 0;
  a->required = lsr_xalloc((np + 1) * sizeof *a->required);
  a->secrets = lsr_xalloc((np + 1) * sizeof *a->secrets);
  for (size_t j = 0, k = 0, ns = 0; j < np; j++) {
    yajl_val p = params->u.object.values[j];
    if (!YAJL_IS_OBJECT(p))
      return lsr_errf(err, n, "%s: action '%s': parameter '%s': expected an object", f, a->name,
                      params->u.object.keys[j]);
    if (strcmp(type_of(p), "password") == 0) a->secrets[ns++] = lsr_strdup(params->u.object.keys[j]);
    /* a required parameter with a default is never missing: the worker applies it */
    if (YAJL_IS_TRUE(lsr_json_field(p, "required")) && !has_default(p))
      a->required[k++] = lsr_strdup(params->u.object.keys[j]);
  }
  yajl_val out = lsr_json_field(def, "output");
  size_t no = YAJL_IS_ARRAY(out) ? out->u.array.len : 0;
  a->outputs = lsr_xalloc((no + 1) * sizeof *a->outputs);
  for (size_t j = 0, k = 0; j < no; j++) {
    const char *dp = str_or(out->u.array.values[j], "data_path", NULL);
    if (dp) a->outputs[k++] = lsr_strdup(dp);
  }
  return action_override(app, a, over, err, n);
}

int lsr_soar_load(lsr_app *app, const char *manifest, yajl_val over, char *err, size_t n) {
  char abs[4096]; /* the worker runs in the app's folder: its paths must not be relative */
  if (realpath(app->dir, abs)) {
    free(app->dir);
    app->dir = lsr_strdup(abs);
  }
  size_t pl = strlen(app->dir) + strlen(manifest) + 2;
  app->runner = LSR_RUNNER_SOAR;
  app->soar_file = lsr_xalloc(pl);
  snprintf(app->soar_file, pl, "%s/%s", app->dir, manifest);
  if (!app->manifest) app->manifest = lsr_strdup(app->soar_file);
  char why[512], path[4096];
  if (lsr_path_inside(app->dir, manifest, "", path, sizeof path, why, sizeof why) != 0)
    return lsr_errf(err, n, "%s: field 'manifest': %s", app->manifest, why);
  yajl_val root = lsr_json_tree_file(app->soar_file, err, n);
  if (!root) return -1;
  app->soar = root;
  const char *f = app->soar_file;
  if (!is_manifest(root))
    return lsr_errf(err, n, "%s: not a SOAR manifest: expected an object with main_module, actions, name, appid", f);
  yajl_val v = lsr_json_field(root, "name");
  if (!YAJL_IS_STRING(v) || !*v->u.string) return lsr_errf(err, n, "%s: field 'name': expected a non-empty string", f);
  app->name = lsr_strdup(v->u.string);
  v = lsr_json_field(root, "appid");
  if (YAJL_IS_INTEGER(v)) app->app_id = YAJL_GET_INTEGER(v); /* keep integers where they are */
  else if (YAJL_IS_STRING(v) && *v->u.string) app->app_uid = lsr_strdup(v->u.string);
  else return lsr_errf(err, n, "%s: field 'appid': expected a UUID string", f);
  v = lsr_json_field(root, "main_module");
  if (!YAJL_IS_STRING(v) || lsr_path_inside(app->dir, v->u.string, "", path, sizeof path, why, sizeof why) != 0)
    return lsr_errf(err, n, "%s: field 'main_module': %s", f, YAJL_IS_STRING(v) ? why : "expected a file name");
  v = lsr_json_field(root, "configuration");
  if (v && !YAJL_IS_OBJECT(v)) return lsr_errf(err, n, "%s: field 'configuration': expected an object", f);
  for (size_t i = 0; v && i < v->u.object.len; i++)
    if (!YAJL_IS_OBJECT(v->u.object.values[i]))
      return lsr_errf(err, n, "%s: configuration '%s': expected an object", f, v->u.object.keys[i]);
  yajl_val acts = lsr_json_field(root, "actions");
  if (!YAJL_IS_ARRAY(acts)) return lsr_errf(err, n, "%s: field 'actions': expected a list", f);
  app->actions = lsr_xalloc((acts->u.array.len + 1) * sizeof *app->actions);
  for (size_t i = 0; i < acts->u.array.len; i++) {
    lsr_action_def *a = &app->actions[app->nactions++];
    if (load_action(app, a, acts->u.array.values[i], i, over, err, n) < 0) return -1;
    for (int j = 0; j < app->nactions - 1; j++)
      if (strcmp(app->actions[j].name, a->name) == 0)
        return lsr_errf(err, n, "%s: action '%s' is defined twice", f, a->name);
  }
  /* options of app.json */
  v = lsr_json_field(over, "python");
  if (v && (!YAJL_IS_STRING(v) || !*v->u.string))
    return lsr_errf(err, n, "%s: field 'python': expected the interpreter's path", app->manifest);
  app->python = lsr_strdup(v ? v->u.string : SOAR_DEFAULT_PYTHON);
  app->timeout = SOAR_DEFAULT_TIMEOUT;
  v = lsr_json_field(over, "timeout");
  if (v && (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) <= 0))
    return lsr_errf(err, n, "%s: field 'timeout': expected a positive number of seconds", app->manifest);
  if (v) app->timeout = YAJL_GET_DOUBLE(v);
  v = lsr_json_field(over, "env");
  for (size_t i = 0; YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
    if (!YAJL_IS_STRING(v->u.array.values[i])) v = NULL;
  if (lsr_json_field(over, "env") && !YAJL_IS_ARRAY(v))
    return lsr_errf(err, n, "%s: field 'env': expected a list of variable names", app->manifest);
  if (v) {
    app->env = lsr_xalloc((v->u.array.len + 1) * sizeof *app->env);
    for (size_t i = 0; i < v->u.array.len; i++) app->env[i] = lsr_strdup(v->u.array.values[i]->u.string);
  }
  app->workers = SOAR_DEFAULT_WORKERS;
  v = lsr_json_field(over, "workers");
  if (v && (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 || YAJL_GET_INTEGER(v) > 64))
    return lsr_errf(err, n, "%s: field 'workers': expected an integer from 1 to 64", app->manifest);
  if (v) app->workers = (int)YAJL_GET_INTEGER(v);
  return 0;
}

void lsr_soar_free(lsr_app *app) {
  lsr_soar_close(app);
  yajl_tree_free(app->soar);
  free(app->soar_file);
  free(app->app_uid);
  free(app->python);
}

/* ---- an asset's config against the manifest's configuration ---- */

static int absent(yajl_val v) {
  return !v || YAJL_IS_NULL(v) || (YAJL_IS_STRING(v) && !*v->u.string);
}

/* Does v fit data_type (numeric, boolean, string-like)?  Never quotes v:
 * a password's value must not reach a message. */
static const char *misfit(yajl_val v, const char *type) {
  if (strcmp(type, "numeric") == 0) return YAJL_IS_NUMBER(v) ? NULL : "expected a number";
  if (strcmp(type, "boolean") == 0) return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v) ? NULL : "expected true or false";
  return YAJL_IS_STRING(v) ? NULL : "expected a string";
}

static int in_value_list(yajl_val v, yajl_val list) {
  if (!YAJL_IS_ARRAY(list) || list->u.array.len == 0) return 1;
  char *s = lsr_tree_to_json(v);
  int found = 0;
  for (size_t i = 0; i < list->u.array.len && !found; i++) {
    yajl_val e = list->u.array.values[i];
    char *t = lsr_tree_to_json(e);
    found = strcmp(s, t) == 0 || (YAJL_IS_STRING(v) && YAJL_IS_STRING(e) && strcmp(v->u.string, e->u.string) == 0);
    free(t);
  }
  free(s);
  return found;
}

char *lsr_soar_asset_config(const lsr_app *app, yajl_val config, const char *file, const char *asset,
                            char *err, size_t n) {
  yajl_val defs = lsr_json_field((yajl_val)app->soar, "configuration");
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  /* the asset's keys, each checked against its definition */
  for (size_t i = 0; config && i < config->u.object.len; i++) {
    const char *key = config->u.object.keys[i];
    yajl_val v = config->u.object.values[i], def = lsr_json_field(defs, key);
    if (def && absent(v) && has_default(def)) continue; /* the default below */
    if (def && !absent(v)) {
      const char *why = misfit(v, type_of(def));
      if (!why && !in_value_list(v, lsr_json_field(def, "value_list"))) why = "not one of the manifest's value_list";
      if (why) {
        yajl_gen_free(g);
        lsr_errf(err, n, "%s: asset '%s': config key '%s' (app '%s'): %s", file, asset, key, app->name, why);
        return NULL;
      }
    }
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    lsr_json_gen_tree(g, v);
  }
  /* defaults for what is absent, and what is required */
  for (size_t i = 0; defs && i < defs->u.object.len; i++) {
    const char *key = defs->u.object.keys[i];
    yajl_val def = defs->u.object.values[i], v = lsr_json_field(config, key);
    if (!absent(v)) continue;
    if (has_default(def)) {
      yajl_gen_string(g, (const unsigned char *)key, strlen(key));
      lsr_json_gen_tree(g, lsr_json_field(def, "default"));
    } else if (YAJL_IS_TRUE(lsr_json_field(def, "required"))) {
      yajl_gen_free(g);
      lsr_errf(err, n, "%s: asset '%s': config key '%s' is required by app '%s' (%s)", file, asset, key,
               app->name, app->soar_file);
      return NULL;
    }
  }
  yajl_gen_map_close(g);
  return lsr_json_gen_take(g);
}

const char *lsr_soar_manifest_str(const lsr_app *app, const char *key) {
  return str_or((yajl_val)app->soar, key, "");
}

/* ---- password parameters in answers the engine writes itself ---- */

static int is_secret(const lsr_config *cfg, const char *action, const char *key) {
  for (int i = 0; i < cfg->napps; i++) {
    const lsr_action_def *a = lsr_app_action(&cfg->apps[i], action);
    for (int k = 0; a && a->secrets && a->secrets[k]; k++)
      if (strcmp(a->secrets[k], key) == 0) return 1;
  }
  return 0;
}

static void gen_masked(yajl_gen g, const lsr_config *cfg, const char *action, yajl_val set) {
  if (!YAJL_IS_OBJECT(set)) { lsr_json_gen_tree(g, set); return; }
  yajl_gen_map_open(g);
  for (size_t i = 0; i < set->u.object.len; i++) {
    const char *k = set->u.object.keys[i];
    yajl_val v = set->u.object.values[i];
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    if (YAJL_IS_STRING(v) && *v->u.string && is_secret(cfg, action, k))
      yajl_gen_string(g, (const unsigned char *)"********", 8);
    else
      lsr_json_gen_tree(g, v);
  }
  yajl_gen_map_close(g);
}

char *lsr_soar_mask_rows(const lsr_config *cfg, const char *json) {
  char why[128];
  yajl_val root = yajl_tree_parse(json, why, sizeof why);
  yajl_val data = lsr_json_field(root, "data");
  if (!YAJL_IS_ARRAY(data)) {
    yajl_tree_free(root);
    return lsr_strdup(json);
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_map_open(g);
  for (size_t i = 0; i < root->u.object.len; i++) {
    const char *k = root->u.object.keys[i];
    yajl_val v = root->u.object.values[i];
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    if (v != data) { lsr_json_gen_tree(g, v); continue; }
    yajl_gen_array_open(g);
    for (size_t r = 0; r < data->u.array.len; r++) {
      yajl_val row = data->u.array.values[r];
      yajl_val action = lsr_json_field(row, "action"), params = lsr_json_field(row, "parameters");
      if (!YAJL_IS_OBJECT(row) || !YAJL_IS_STRING(action) || !YAJL_IS_ARRAY(params)) {
        lsr_json_gen_tree(g, row);
        continue;
      }
      yajl_gen_map_open(g);
      for (size_t f = 0; f < row->u.object.len; f++) {
        const char *fk = row->u.object.keys[f];
        yajl_gen_string(g, (const unsigned char *)fk, strlen(fk));
        if (row->u.object.values[f] != params) { lsr_json_gen_tree(g, row->u.object.values[f]); continue; }
        yajl_gen_array_open(g);
        for (size_t p = 0; p < params->u.array.len; p++) gen_masked(g, cfg, action->u.string, params->u.array.values[p]);
        yajl_gen_array_close(g);
      }
      yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
  }
  yajl_gen_map_close(g);
  yajl_tree_free(root);
  return lsr_json_gen_take(g);
}
