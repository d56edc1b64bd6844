/* cli_app.c: `luasoar app check DIR` (a SOAR connector's missing Python
 * modules, by python/luasoar_appcheck.py) and `luasoar app test ASSET` (the
 * connector's test connectivity action on that asset, through the engine:
 * its progress as it happens, then the verdict). */
#include "engine.h"
#include "soar.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_app[] =
  "usage: luasoar app check DIR [--json]\n"
  "       luasoar app test ASSET [--scripts DIR] [--assets FILE] [--apps DIR]\n"
  "\n"
  "  check  read a SOAR connector's manifest, requirements and imports; print the\n"
  "         Python modules Debian's python3 lacks and the Debian package of each.\n"
  "         Exit 0 nothing is missing, 1 something is, 2 the folder is unusable.\n"
  "  test   run the \"test connectivity\" action of ASSET's app with its\n"
  "         configuration; print the connector's progress and the verdict.\n"
  "         --scripts DIR (default: scripts) holds assets.json and apps/.\n"
  "         Exit 0 it passed, 1 it failed, 2 bad usage or configuration.\n";

static int app_check(int argc, char **argv) {
  if (argc < 1) { fputs(usage_app, stderr); return 2; }
  char script[4200];
  snprintf(script, sizeof script, "%s/luasoar_appcheck.py", lsr_soar_shim_dir());
  char *args[8];
  int k = 0;
  args[k++] = "/usr/bin/python3";
  args[k++] = script;
  for (int i = 0; i < argc && k < 7; i++) args[k++] = argv[i];
  args[k] = NULL;
  execv(args[0], args);
  fprintf(stderr, "luasoar app check: cannot run /usr/bin/python3: %s (apt-get install python3)\n", strerror(errno));
  return 2;
}

typedef struct {
  int passed, failed;
  char *error;
} test_state;

#define PASSED "test connectivity passed"

static void test_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  test_state *st = ud;
  if (strncmp(e->message, PASSED, sizeof PASSED - 1) == 0 && e->level == LSR_LOG_DEBUG) st->passed = 1;
  printf("%s\n", e->message);
  fflush(stdout);
}

static void test_end(lsr_run *run, void *ud) {
  test_state *st = ud;
  st->failed = run->failed;
  if (run->error) st->error = lsr_strdup(run->error);
}

/* s as a Lua string literal: every byte a decimal escape */
static char *lua_quote(const char *s) {
  size_t n = strlen(s);
  char *q = lsr_xalloc(n * 4 + 3), *o = q;
  *o++ = '"';
  for (; *s; s++) o += sprintf(o, "\\%03u", (unsigned char)*s);
  *o++ = '"';
  return q;
}

/* The playbook that runs the test: its verdict is its last log line, and
 * the run fails when the test does. */
static const char test_playbook[] =
  "function on_start(container)\n"
  "  phantom.act(%s, {parameters = {{}}, assets = {%s}, callback = verdict})\n"
  "end\n"
  "function verdict(kw)\n"
  "  local r = kw.results[1]\n"
  "  local m = r and r.message or 'no result'\n"
  "  m = m ~= '' and ': ' .. m or ''\n"
  "  if kw.success then phantom.debug('" PASSED "' .. m)\n"
  "  else phantom.error('test connectivity failed' .. m) end\n"
  "end\n";

static int app_test(int argc, char **argv) {
  const char *asset = NULL, *scripts = "scripts", *assets = NULL, *apps = NULL;
  for (int i = 0; i < argc; i++) {
    const char **dst = NULL;
    if (strcmp(argv[i], "--scripts") == 0) dst = &scripts;
    else if (strcmp(argv[i], "--assets") == 0) dst = &assets;
    else if (strcmp(argv[i], "--apps") == 0) dst = &apps;
    else if (argv[i][0] == '-' || asset) { fputs(usage_app, stderr); return 2; }
    else { asset = argv[i]; continue; }
    if (i + 1 >= argc) { fputs(usage_app, stderr); return 2; }
    *dst = argv[++i];
  }
  if (!asset) { fputs(usage_app, stderr); return 2; }
  char def_assets[4096], def_apps[4096], err[2048];
  snprintf(def_assets, sizeof def_assets, "%s/assets.json", scripts);
  snprintf(def_apps, sizeof def_apps, "%s/apps", scripts);
  test_state st = {0};
  lsr_engine *eng = lsr_engine_new(NULL, err, sizeof err);
  if (!eng) { fprintf(stderr, "luasoar app test: %s\n", err); return 2; }
  eng->obs = (lsr_observer){.on_log = test_log, .on_run_end = test_end, .ud = &st};
  int rc = 2;
  lsr_gen *gen = NULL;
  lsr_run *run = NULL;
  char path[4096];
  const char *tmp = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/luasoar-app-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = -1;
  if (lsr_config_load(eng->cfg, apps ? apps : def_apps, assets ? assets : def_assets, 1, err, sizeof err) < 0)
    goto fail;
  lsr_asset *as = lsr_config_asset(eng->cfg, asset);
  if (!as) { snprintf(err, sizeof err, "no asset '%s' in %.1000s", asset, assets ? assets : def_assets); goto fail; }
  const lsr_action_def *test = NULL;
  for (int i = 0; i < as->app->nactions && !test; i++) {
    const lsr_action_def *a = &as->app->actions[i];
    if ((a->identifier && (strcmp(a->identifier, "test_connectivity") == 0 || strcmp(a->identifier, "test_asset_connectivity") == 0)) || (a->type && strcmp(a->type, "test") == 0))
      test = a;
  }
  if (!test) { snprintf(err, sizeof err, "app '%s' of asset '%s' has no test connectivity action", as->app->name, asset); goto fail; }
  char *q_action = lua_quote(test->name), *q_asset = lua_quote(asset);
  fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f) {
    fprintf(f, test_playbook, q_action, q_asset);
    fclose(f);
  }
  free(q_action);
  free(q_asset);
  if (!f) { snprintf(err, sizeof err, "cannot write %.1000s: %s", path, strerror(errno)); goto fail; }
  printf("testing asset '%s' (app '%s', action '%s')\n", asset, as->app->name, test->name);
  fflush(stdout);
  static const char container[] = "{\"id\": 1, \"name\": \"luasoar app test\", \"artifacts\": []}";
  if (!(gen = lsr_gen_load(eng, path, err, sizeof err)) ||
      !(run = lsr_run_json(eng, gen, container, sizeof container - 1, "app test", err, sizeof err)))
    goto fail;
  lsr_engine_drain(eng);
  if (st.failed) printf("the test run failed: %s\n", st.error ? st.error : "?");
  rc = st.passed && !st.failed ? 0 : 1;
  goto out;
fail:
  fprintf(stderr, "luasoar app test: %s\n", err);
out:
  if (fd >= 0) unlink(path);
  lsr_gen_free(eng, gen);
  lsr_engine_free(eng);
  free(st.error);
  return rc;
}

int lsr_cli_app(int argc, char **argv) {
  if (argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) { fputs(usage_app, stdout); return 0; }
  if (argc >= 1 && strcmp(argv[0], "check") == 0) return app_check(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "test") == 0) return app_test(argc - 1, argv + 1);
  fputs(usage_app, stderr);
  return 2;
}
