/* config.c: app manifests (apps/<dir>/app.json) and the assets file.
 * Everything here is checked once at load, so a bad manifest or asset is
 * reported with its file and field before any run starts.  No Lua here. */
#include "engine.h"
#include "json_check.h"
#include "soar.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define LSR_MAX_CONFIG_FILE (16u << 20)
#define LSR_DEFAULT_TIMEOUT 60.0


yajl_val lsr_json_tree_file(const char *path, char *err, size_t n) {
  char *text;
  size_t len;
  char why[256];
  if (lsr_read_file(path, &text, &len, LSR_MAX_CONFIG_FILE, err, n) < 0) return NULL;
  if (lsr_json_check(text, len, why, sizeof why) < 0) {
    lsr_errf(err, n, "%s: invalid JSON at %s", path, why);
    free(text);
    return NULL;
  }
  yajl_val v = yajl_tree_parse(text, why, sizeof why);
  free(text);
  if (!v) lsr_errf(err, n, "%s: invalid JSON: %s", path, why);
  return v;
}

yajl_val lsr_json_field(yajl_val obj, const char *key) {
  if (!YAJL_IS_OBJECT(obj)) return NULL;
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], key) == 0) return obj->u.object.values[i];
  return NULL;
}

/* A list of strings; NULL for a missing field, (char**)-1 on a type error. */
static char **strv_field(yajl_val obj, const char *key) {
  yajl_val v = lsr_json_field(obj, key);
  if (!v) return NULL;
  if (!YAJL_IS_ARRAY(v)) return (char **)-1;
  char **out = lsr_xalloc((v->u.array.len + 1) * sizeof *out);
  for (size_t i = 0; i < v->u.array.len; i++) {
    if (!YAJL_IS_STRING(v->u.array.values[i])) { lsr_strv_free(out); return (char **)-1; }
    out[i] = lsr_strdup(v->u.array.values[i]->u.string);
  }
  return out;
}

static int num_field(yajl_val obj, const char *key, double *out) {
  yajl_val v = lsr_json_field(obj, key);
  if (!v) return 0;
  if (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) <= 0) return -1;
  *out = YAJL_GET_DOUBLE(v);
  return 0;
}

static int bool_field(yajl_val obj, const char *key, int dflt) {
  yajl_val v = lsr_json_field(obj, key);
  if (YAJL_IS_TRUE(v)) return 1;
  if (YAJL_IS_FALSE(v)) return 0;
  return v ? -1 : dflt;
}

void lsr_json_gen_tree(yajl_gen g, yajl_val v) {
  switch (v->type) {
  case yajl_t_string: yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string)); break;
  case yajl_t_number: yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r)); break;
  case yajl_t_true: yajl_gen_bool(g, 1); break;
  case yajl_t_false: yajl_gen_bool(g, 0); break;
  case yajl_t_null: yajl_gen_null(g); break;
  case yajl_t_array:
    yajl_gen_array_open(g);
    for (size_t i = 0; i < v->u.array.len; i++) lsr_json_gen_tree(g, v->u.array.values[i]);
    yajl_gen_array_close(g);
    break;
  case yajl_t_object:
    yajl_gen_map_open(g);
    for (size_t i = 0; i < v->u.object.len; i++) {
      yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i], strlen(v->u.object.keys[i]));
      lsr_json_gen_tree(g, v->u.object.values[i]);
    }
    yajl_gen_map_close(g);
    break;
  default: yajl_gen_null(g);
  }
}

char *lsr_json_gen_take(yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  char *s = lsr_strndup((const char *)buf, len);
  yajl_gen_free(g);
  return s;
}

char *lsr_tree_to_json(yajl_val v) {
  yajl_gen g = yajl_gen_alloc(NULL);
  lsr_json_gen_tree(g, v);
  return lsr_json_gen_take(g);
}

static int load_actions(lsr_app *app, yajl_val acts, char *err, size_t n) {
  if (!YAJL_IS_OBJECT(acts))
    return lsr_errf(err, n, "%s: field 'actions': expected an object of action names", app->manifest);
  app->nactions = (int)acts->u.object.len;
  app->actions = lsr_xalloc((acts->u.object.len + 1) * sizeof *app->actions);
  for (size_t i = 0; i < acts->u.object.len; i++) {
    lsr_action_def *a = &app->actions[i];
    const char *aname = acts->u.object.keys[i];
    yajl_val def = acts->u.object.values[i];
    a->name = lsr_strdup(aname);
    if (!YAJL_IS_OBJECT(def))
      return lsr_errf(err, n, "%s: action '%s': expected an object", app->manifest, aname);
    yajl_val params = lsr_json_field(def, "parameters");
    size_t np = params && YAJL_IS_OBJECT(params) ? params->u.object.len : 0;
    if (params && !YAJL_IS_OBJECT(params))
      return lsr_errf(err, n, "%s: action '%s': field 'parameters': expected an object", app->manifest, aname);
    a->required = lsr_xalloc((np + 1) * sizeof *a->required);
    for (size_t j = 0, k = 0; j < np; j++) {
      yajl_val p = params->u.object.values[j];
      int req = bool_field(p, "required", 0);
      if (!YAJL_IS_OBJECT(p) || req < 0)
        return lsr_errf(err, n, "%s: action '%s': parameter '%s': expected {\"required\": true|false}",
                    app->manifest, aname, params->u.object.keys[j]);
      if (req) a->required[k++] = lsr_strdup(params->u.object.keys[j]);
    }
    a->read_only = bool_field(def, "read_only", 0);
    a->idempotent = bool_field(def, "idempotent", a->read_only > 0);
    if (a->read_only < 0 || a->idempotent < 0)
      return lsr_errf(err, n, "%s: action '%s': 'read_only' and 'idempotent' must be true or false",
                  app->manifest, aname);
    if (num_field(def, "timeout", &a->timeout) < 0)
      return lsr_errf(err, n, "%s: action '%s': field 'timeout': expected a positive number of seconds",
                  app->manifest, aname);
  }
  return 0;
}

static int load_app(lsr_app *app, const char *dir, int64_t dflt_id, char *err, size_t n) {
  size_t pl = strlen(dir) + 16;
  app->dir = lsr_strdup(dir);
  app->manifest = lsr_xalloc(pl);
  snprintf(app->manifest, pl, "%s/app.json", dir);
  yajl_val root = lsr_json_tree_file(app->manifest, err, n);
  if (!root) return -1;
  int rc = -1;
  yajl_val v;
  if (!YAJL_IS_OBJECT(root)) { lsr_errf(err, n, "%s: expected a JSON object", app->manifest); goto out; }
  v = lsr_json_field(root, "runner");
  if (YAJL_IS_STRING(v) && strcmp(v->u.string, "soar") == 0) { /* a SOAR connector: its manifest says the rest */
    char found[1024];
    v = lsr_json_field(root, "manifest");
    if (v && !YAJL_IS_STRING(v)) { lsr_errf(err, n, "%s: field 'manifest': expected a file name", app->manifest); goto out; }
    if (!v) {
      int k = lsr_soar_find_manifest(dir, found, sizeof found, err, n);
      if (k <= 0) {
        if (k == 0) lsr_errf(err, n, "%s: runner \"soar\": no SOAR manifest in %s (name it with \"manifest\")", app->manifest, dir);
        goto out;
      }
    }
    app->app_id = dflt_id;
    rc = lsr_soar_load(app, v ? v->u.string : found, root, err, n);
    goto out;
  }
  v = lsr_json_field(root, "name");
  if (!YAJL_IS_STRING(v) || !*v->u.string) { lsr_errf(err, n, "%s: field 'name': expected a non-empty string", app->manifest); goto out; }
  app->name = lsr_strdup(v->u.string);
  v = lsr_json_field(root, "app_id");
  if (v && !YAJL_IS_INTEGER(v)) { lsr_errf(err, n, "%s: field 'app_id': expected an integer", app->manifest); goto out; }
  app->app_id = v ? YAJL_GET_INTEGER(v) : dflt_id;
  v = lsr_json_field(root, "runner");
  const char *runner = YAJL_IS_STRING(v) ? v->u.string : "";
  if (strcmp(runner, "lua") == 0) {
    app->runner = LSR_RUNNER_LUA;
    v = lsr_json_field(root, "main");
    if (v && !YAJL_IS_STRING(v)) { lsr_errf(err, n, "%s: field 'main': expected a file name", app->manifest); goto out; }
    app->main = lsr_strdup(v ? v->u.string : "app.lua");
    char why[512], path[4096]; /* the main file stays inside the app's folder */
    if (lsr_path_inside(app->dir, app->main, "", path, sizeof path, why, sizeof why) != 0) {
      lsr_errf(err, n, "%s: field 'main': %s", app->manifest, why);
      goto out;
    }
  } else if (strcmp(runner, "exec") == 0) {
    app->runner = LSR_RUNNER_EXEC;
    app->command = strv_field(root, "command");
    if (!app->command || app->command == (char **)-1 || !app->command[0]) {
      if (app->command != (char **)-1) lsr_strv_free(app->command);
      app->command = NULL;
      lsr_errf(err, n, "%s: field 'command': expected a non-empty list of strings", app->manifest);
      goto out;
    }
  } else {
    lsr_errf(err, n, "%s: field 'runner': expected \"lua\", \"exec\" or \"soar\"", app->manifest);
    goto out;
  }
  app->env = strv_field(root, "env");
  if (app->env == (char **)-1) { app->env = NULL; lsr_errf(err, n, "%s: field 'env': expected a list of variable names", app->manifest); goto out; }
  app->timeout = LSR_DEFAULT_TIMEOUT;
  if (num_field(root, "timeout", &app->timeout) < 0) { lsr_errf(err, n, "%s: field 'timeout': expected a positive number of seconds", app->manifest); goto out; }
  v = lsr_json_field(root, "actions");
  if (!v) { lsr_errf(err, n, "%s: field 'actions' is missing", app->manifest); goto out; }
  rc = load_actions(app, v, err, n);
out:
  yajl_tree_free(root);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lsr_strv_free_n(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static int load_apps(lsr_config *cfg, const char *apps_dir, char *err, size_t n) {
  DIR *d = opendir(apps_dir);
  if (!d) return errno == ENOENT ? 0 : lsr_errf(err, n, "%s: cannot open: %s", apps_dir, strerror(errno));
  char **names = NULL;
  size_t count = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/app.json", apps_dir, de->d_name);
    if (stat(path, &st) != 0) { /* or a SOAR connector as published */
      char found[1024], dir[4096];
      snprintf(dir, sizeof dir, "%s/%s", apps_dir, de->d_name);
      int k = lsr_soar_find_manifest(dir, found, sizeof found, err, n);
      if (k < 0) { closedir(d); lsr_strv_free_n(names, count); return -1; }
      if (k == 0) continue;
    }
    names = lsr_xrealloc(names, (count + 1) * sizeof *names);
    names[count++] = lsr_strdup(de->d_name);
  }
  closedir(d);
  qsort(names, count, sizeof *names, cmp_str); /* stable app ids and order */
  cfg->apps = lsr_xalloc((count + 1) * sizeof *cfg->apps);
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; i++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", apps_dir, names[i]);
    lsr_app *app = &cfg->apps[cfg->napps++];
    char appjson[4200], found[1024];
    struct stat st;
    snprintf(appjson, sizeof appjson, "%s/app.json", dir);
    if (stat(appjson, &st) == 0) {
      rc = load_app(app, dir, (int64_t)i + 1, err, n);
    } else {
      app->dir = lsr_strdup(dir);
      app->app_id = (int64_t)i + 1;
      rc = lsr_soar_find_manifest(dir, found, sizeof found, err, n) == 1 ? lsr_soar_load(app, found, NULL, err, n) : -1;
    }
    for (int j = 0; rc == 0 && j < cfg->napps - 1; j++)
      if (strcmp(cfg->apps[j].name, app->name) == 0)
        rc = lsr_errf(err, n, "%s: app name '%s' is also used by %s", app->manifest, app->name,
                  cfg->apps[j].manifest);
  }
  lsr_strv_free_n(names, count);
  return rc;
}

/* An app that is named by an asset but not installed: its actions are the
 * stubs a test gives it. */
static lsr_app *add_stub_app(lsr_config *cfg, const char *name) {
  cfg->apps = lsr_xrealloc(cfg->apps, (cfg->napps + 2) * sizeof *cfg->apps);
  lsr_app *app = &cfg->apps[cfg->napps++];
  memset(app, 0, sizeof *app);
  app->name = lsr_strdup(name);
  app->app_id = 1000 + cfg->napps;
  app->runner = LSR_RUNNER_STUB;
  app->manifest = lsr_strdup("(stub)");
  app->dir = lsr_strdup(".");
  app->actions = lsr_xalloc(sizeof *app->actions);
  return app;
}

static int load_assets(lsr_config *cfg, yajl_val root, const char *file, int stub_apps,
                       char *err, size_t n) {
  if (!YAJL_IS_OBJECT(root)) return lsr_errf(err, n, "%s: expected a JSON object of asset names", file);
  size_t count = root->u.object.len;
  /* stub apps first, so cfg->apps does not move under the new assets; the
   * assets already loaded are pointed at the moved array */
  int *app_index = lsr_xalloc((cfg->nassets + 1) * sizeof *app_index);
  for (int i = 0; i < cfg->nassets; i++) app_index[i] = (int)(cfg->assets[i].app - cfg->apps);
  for (size_t i = 0; stub_apps && i < count; i++) {
    yajl_val v = lsr_json_field(root->u.object.values[i], "app");
    if (YAJL_IS_STRING(v) && !lsr_config_app(cfg, v->u.string)) add_stub_app(cfg, v->u.string);
  }
  for (int i = 0; i < cfg->nassets; i++) cfg->assets[i].app = &cfg->apps[app_index[i]];
  free(app_index);
  cfg->assets = lsr_xrealloc(cfg->assets, (cfg->nassets + count + 1) * sizeof *cfg->assets);
  for (size_t i = 0; i < count; i++) {
    const char *name = root->u.object.keys[i];
    yajl_val a = root->u.object.values[i], v;
    if (lsr_config_asset(cfg, name)) return lsr_errf(err, n, "%s: asset '%s' is defined twice", file, name);
    lsr_asset *as = &cfg->assets[cfg->nassets++];
    memset(as, 0, sizeof *as);
    as->name = lsr_strdup(name);
    if (!YAJL_IS_OBJECT(a)) return lsr_errf(err, n, "%s: asset '%s': expected an object", file, name);
    v = lsr_json_field(a, "app");
    if (!YAJL_IS_STRING(v)) return lsr_errf(err, n, "%s: asset '%s': field 'app': expected an app name", file, name);
    as->app = lsr_config_app(cfg, v->u.string);
    if (!as->app) return lsr_errf(err, n, "%s: asset '%s': unknown app '%s'", file, name, v->u.string);
    v = lsr_json_field(a, "id");
    if (v && !YAJL_IS_INTEGER(v)) return lsr_errf(err, n, "%s: asset '%s': field 'id': expected an integer", file, name);
    as->id = v ? YAJL_GET_INTEGER(v) : (int64_t)cfg->nassets;
    v = lsr_json_field(a, "config");
    if (v && !YAJL_IS_OBJECT(v)) return lsr_errf(err, n, "%s: asset '%s': field 'config': expected an object", file, name);
    if (as->app->runner == LSR_RUNNER_SOAR) { /* keys, types and defaults of the manifest */
      as->config_json = lsr_soar_asset_config(as->app, v, file, name, err, n);
      if (!as->config_json) return -1;
    } else {
      as->config_json = v ? lsr_tree_to_json(v) : lsr_strdup("{}");
    }
    as->tags = strv_field(a, "tags");
    if (as->tags == (char **)-1) {
      as->tags = NULL;
      return lsr_errf(err, n, "%s: asset '%s': field 'tags': expected a list of strings", file, name);
    }
  }
  return 0;
}

int lsr_config_add_assets(lsr_config *cfg, const char *json, size_t len, const char *label,
                          int stub_apps, char *err, size_t errlen) {
  char why[256];
  if (lsr_json_check(json, len, why, sizeof why) < 0)
    return lsr_errf(err, errlen, "%s: invalid JSON at %s", label, why);
  char *text = lsr_strndup(json, len);
  yajl_val root = yajl_tree_parse(text, why, sizeof why);
  free(text);
  if (!root) return lsr_errf(err, errlen, "%s: invalid JSON: %s", label, why);
  int rc = load_assets(cfg, root, label, stub_apps, err, errlen);
  yajl_tree_free(root);
  return rc;
}

int lsr_config_load(lsr_config *cfg, const char *apps_dir, const char *assets_file,
                    int assets_required, char *err, size_t errlen) {
  lsr_config_free(cfg);
  if (apps_dir && load_apps(cfg, apps_dir, err, errlen) < 0) return -1;
  if (assets_file) {
    struct stat st;
    if (!assets_required && stat(assets_file, &st) != 0) return 0;
    yajl_val root = lsr_json_tree_file(assets_file, err, errlen);
    if (!root) return -1;
    int rc = load_assets(cfg, root, assets_file, 0, err, errlen);
    yajl_tree_free(root);
    if (rc < 0) return -1;
  }
  return 0;
}

void lsr_config_release(lsr_engine *eng, lsr_config *cfg) {
  if (--cfg->refs > 0 || cfg == eng->cfg) return;
  lsr_config_free(cfg);
  free(cfg);
}

void lsr_config_free(lsr_config *cfg) {
  for (int i = 0; i < cfg->napps; i++) {
    lsr_app *a = &cfg->apps[i];
    lsr_lua_app_close(a);
    if (a->runner == LSR_RUNNER_SOAR) lsr_soar_free(a);
    free(a->name); free(a->dir); free(a->manifest); free(a->main);
    lsr_strv_free(a->command);
    lsr_strv_free(a->env);
    for (int j = 0; j < a->nactions; j++) {
      free(a->actions[j].name);
      lsr_strv_free(a->actions[j].required);
      free(a->actions[j].identifier);
      free(a->actions[j].type);
      lsr_strv_free(a->actions[j].outputs);
      lsr_strv_free(a->actions[j].secrets);
    }
    free(a->actions);
  }
  free(cfg->apps);
  for (int i = 0; i < cfg->nassets; i++) {
    free(cfg->assets[i].name);
    free(cfg->assets[i].config_json);
    lsr_strv_free(cfg->assets[i].tags);
  }
  free(cfg->assets);
  int refs = cfg->refs;
  memset(cfg, 0, sizeof *cfg);
  cfg->refs = refs;
}

const lsr_action_def *lsr_app_action(const lsr_app *app, const char *action) {
  for (int i = 0; i < app->nactions; i++)
    if (strcmp(app->actions[i].name, action) == 0) return &app->actions[i];
  return NULL;
}

lsr_app *lsr_config_app(lsr_config *cfg, const char *name) {
  for (int i = 0; i < cfg->napps; i++)
    if (strcmp(cfg->apps[i].name, name) == 0) return &cfg->apps[i];
  return NULL;
}

lsr_asset *lsr_config_asset(lsr_config *cfg, const char *name) {
  for (int i = 0; i < cfg->nassets; i++)
    if (strcmp(cfg->assets[i].name, name) == 0) return &cfg->assets[i];
  return NULL;
}
