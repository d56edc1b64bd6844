/* main.c: the luasoar command line.
 *   luasoar run PLAYBOOK.lua --container FILE [--assets FILE] [--apps DIR] [--json]
 *   luasoar check PLAYBOOK.lua...
 * Exit status of run: 0 the run succeeded, 1 it failed, 2 the input was
 * unusable (one line on stderr names the file and the problem). */
#include "engine.h"
#include "exec_runner.h"
#include "json_check.h"
#include "serve.h"
#include "soar.h"
#include "watchdog.h"
#include "store.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_main[] =
  "usage: luasoar <command> [options]\n"
  "\n"
  "commands:\n"
  "  run PLAYBOOK.lua --container FILE   run a playbook on one container\n"
  "  check PLAYBOOK.lua...               compile playbooks without running them\n"
  "  test [DIR] [--coverage[=FILE]]      run a playbook folder's busted specs\n"
  "  serve --scripts DIR [--db FILE]     the long-running engine with its REST API\n"
  "  runs [--db FILE] [--container N] [RUN_ID] [--json]   runs in a store, or one run's log\n"
  "  app check DIR | app test ASSET      a SOAR connector's Python modules; test an asset\n"
  "  port FILE.py [-o FILE.lua]          a Splunk SOAR Python playbook as a Lua one (also DIR -o DIR\n"
  "                                      [--repo NAME]: a SOAR repository with its custom functions)\n"
  "\n"
  "Run 'luasoar <command> --help' for a command's options.\n";

static const char usage_run[] =
  "usage: luasoar run PLAYBOOK.lua --container FILE [--assets FILE] [--apps DIR]\n"
  "                   [--answers FILE] [--json | --quiet]\n"
  "\n"
  "Runs one playbook on one container and waits until the run ends.\n"
  "\n"
  "  --container FILE  the container: one JSON object, with an \"artifacts\" list (required)\n"
  "  --assets FILE     assets file (default: SCRIPTS/assets.json)\n"
  "  --apps DIR        folder of apps, one app.json (or a SOAR connector's manifest)\n"
  "                    per subfolder (default: SCRIPTS/apps)\n"
  "  --vault DIR       where SOAR connectors keep files (default: $TMPDIR/luasoar-vault-UID)\n"
  "  --answers FILE    answers to prompts and approvals: {\"prompt_1\": [\"Yes\", \"ok\"],\n"
  "                    \"block_ip_1\": \"approve\"}; a prompt with no answer asks at the\n"
  "                    terminal when stdin is one, and otherwise times out at once\n"
  "  --json            print one JSON report at the end instead of the log as it happens\n"
  "                    (with \"container\": the container as the run left it)\n"
  "  --quiet           print only the playbook's own log lines and the last line, not\n"
  "                    the story ([act] an action starts and ends, what failed in it;\n"
  "                    [prompt], [approval], [child] runs; [container] its state at the end)\n"
  "  --limit NAME=N    an engine limit (repeatable): instructions_per_callback,\n"
  "                    instructions_per_run, memory_mb, deadline_seconds,\n"
  "                    engine_memory_mb, exec_slots, log_bytes, shared_bytes;\n"
  "                    a playbook may only lower its own\n"
  "  --limit step_seconds=N  the watchdog's hard limit on one step of the run\n"
  "                    (default 30): past it the run fails with 'killed: N s in\n"
  "                    one step' and luasoar exits 1 at once\n"
  "  -h, --help        show this help\n"
  "\n"
  "SCRIPTS is the folder above the playbook's 'playbooks' folder (scripts/ for\n"
  "scripts/playbooks/x.lua), or else the playbook's own folder.\n"
  "\n"
  "Exit status: 0 the run succeeded, 1 it failed, 2 the input was unusable.\n";

static const char usage_check[] =
  "usage: luasoar check [--apps DIR] [--assets FILE] PLAYBOOK.lua...\n"
  "\n"
  "Compiles and lints each playbook without running it, and prints file:line:\n"
  "message for each problem: syntax errors, reads of globals nothing defines,\n"
  "callbacks that name no function, phantom.act of an action no app provides\n"
  "or on an asset the assets file does not name, unknown phantom.* functions,\n"
  "keyword arguments and condition operators, playbook_info keys and types,\n"
  "severity/status/sensitivity values outside their sets, malformed datapath\n"
  "strings and datapaths naming what no block of the playbook names.  Warnings\n"
  "(file:line: warning: ...), such as a format section pairing the rows of\n"
  "different sources, do not change the exit status.\n"
  "\n"
  "  --apps DIR      the apps folder (default: SCRIPTS/apps of the first playbook)\n"
  "  --assets FILE   the assets (default: SCRIPTS/assets.json, if there is one)\n"
  "\n"
  "Exit status: 0 no problem, 1 some, 2 bad usage.\n";

static const char usage_test[] =
  "usage: luasoar test [DIR] [--coverage[=FILE]] [-- BUSTED-OPTIONS...]\n"
  "\n"
  "Runs busted on the specs (*_spec.lua) under DIR (default: the current folder),\n"
  "from DIR, with the luasoar module on the path: `require \"luasoar.testing\"`\n"
  "works with no flags.  Specs find playbooks under DIR/playbooks.  An action\n"
  "that no stub covers fails the run; eng:stub(ACTION, {real = true}) or\n"
  "lt.engine{real = true} let real apps run.\n"
  "\n"
  "  --coverage[=FILE]  write line coverage of the playbooks in lcov format\n"
  "                     (default FILE: DIR/luasoar.lcov; render with genhtml)\n"
  "  -h, --help         show this help\n"
  "\n"
  "Exit status: busted's (0 when every spec passed).\n";

/* The scripts folder a playbook belongs to. */
static char *scripts_dir(const char *playbook) {
  const char *p = playbook, *hit = NULL;
  for (const char *s = p; (s = strstr(s, "playbooks/")); s++)
    if (s == p || s[-1] == '/') hit = s;
  if (hit) return hit == p ? lsr_strdup(".") : lsr_strndup(p, (size_t)(hit - p - 1 > 0 ? hit - p - 1 : 1));
  const char *slash = strrchr(playbook, '/');
  return slash ? lsr_strndup(playbook, (size_t)(slash - playbook ? slash - playbook : 1)) : lsr_strdup(".");
}

typedef struct {
  int json;
  int quiet;            /* no story lines */
  int failed;
  int ended;
  char *report;
  yajl_val answers;     /* --answers: name -> responses */
} cli_state;

/* One line of the run's story (text output, not --quiet). */
static void story(const cli_state *st, const char *fmt, ...) {
  if (st->json || st->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static const char *tree_string(yajl_val v, const char *key) {
  const char *path[] = {key, NULL};
  yajl_val s = v ? yajl_tree_get(v, path, yajl_t_string) : NULL;
  return s ? s->u.string : NULL;
}

/* [prompt] NAME to USER: "message", [approval] NAME (ACTION) by REVIEWER */
static void story_prompt(const cli_state *st, const char *prompt_json, const char *answer) {
  if (st->json || st->quiet) return;
  char why[128];
  yajl_val p = yajl_tree_parse(prompt_json, why, sizeof why);
  const char *type = tree_string(p, "type"), *name = tree_string(p, "name");
  if (!name) name = "prompt";
  if (type && strcmp(type, "approval") == 0) {
    const char *action = tree_string(p, "action"), *reviewer = tree_string(p, "reviewer");
    story(st, "[approval] %s (%s) asked of %s", name, action ? action : "?", reviewer ? reviewer : "?");
  } else {
    const char *who = tree_string(p, "user");
    if (!who) who = tree_string(p, "role");
    const char *msg = tree_string(p, "message");
    char *q = lsr_json_quote(msg ? msg : "");
    story(st, "[%s] %s asked%s%s: %s", type && strcmp(type, "task") == 0 ? "task" : "prompt", name, who ? " of " : "",
          who ? who : "", q);
    free(q);
  }
  if (answer && strcmp(answer, "null") != 0) story(st, "[%s] %s answered: %s", type && strcmp(type, "approval") == 0 ?
                                                   "approval" : type && strcmp(type, "task") == 0 ? "task" : "prompt",
                                                   name, answer);
  else story(st, "[%s] %s: no answer, it times out", type && strcmp(type, "approval") == 0 ? "approval" :
             type && strcmp(type, "task") == 0 ? "task" : "prompt", name);
  yajl_tree_free(p);
}

/* [act] NAME (ACTION) on ASSETS: N parameter sets */
static void on_action_start(lsr_action_run *ar, void *ud) {
  cli_state *st = ud;
  if (st->json || st->quiet || !ar->run) return;
  if (ar->napp_runs == 0) {
    story(st, "[act] %s (%s): no parameter sets, nothing to run", ar->name, ar->action);
    return;
  }
  size_t n = 1;
  for (int k = 0; k < ar->napp_runs; k++) n += strlen(ar->app_runs[k].asset->name) + 2;
  char *assets = lsr_xalloc(n), *o = assets;
  for (int k = 0; k < ar->napp_runs; k++) o += sprintf(o, "%s%s", k ? ", " : "", ar->app_runs[k].asset->name);
  char when[128] = "";
  if (ar->awaiting_approval && ar->reviewer)
    snprintf(when, sizeof when, ", waiting for approval by %s", ar->reviewer);
  else if (ar->start_time > lsr_clock(ar->eng))
    snprintf(when, sizeof when, ", starting in %.0f s", ar->start_time - lsr_clock(ar->eng));
  story(st, "[act] %s (%s) on %s: %d parameter set%s%s", ar->name, ar->action, assets, ar->nparams,
        ar->nparams == 1 ? "" : "s", when);
  free(assets);
}

/* [act] NAME: K of N succeeded, then what failed, one line each */
static void on_action_end(lsr_action_run *ar, void *ud) {
  cli_state *st = ud;
  if (st->json || st->quiet || !ar->run) return;
  if (ar->napp_runs == 0) {
    story(st, "[act] %s: nothing ran", ar->name);
    return;
  }
  int ok = 0;
  for (int k = 0; k < ar->napp_runs; k++) ok += ar->app_runs[k].successes;
  char on[96] = "";
  if (ar->napp_runs > 1) snprintf(on, sizeof on, " (%d parameter set%s on %d assets)", ar->nparams,
                                  ar->nparams == 1 ? "" : "s", ar->napp_runs);
  story(st, "[act] %s: %d of %d succeeded%s", ar->name, ok, ar->nparams * ar->napp_runs, on);
  char *failures = lsr_action_failures(ar);
  for (char *line = failures, *end; *line; line = end + 1) {
    end = strchr(line, '\n');
    if (!end) break;
    story(st, "[act]   %.*s", (int)(end - line), line);
  }
  free(failures);
}

/* [child] run N: PLAYBOOK, started by run P */
static void on_run_start(lsr_run *run, void *ud) {
  cli_state *st = ud;
  if (run->parent_run_id)
    story(st, "[child] run %lld: %s, started by run %lld", (long long)run->id, run->gen->path,
          (long long)run->parent_run_id);
}

/* [container] ID: severity S, status S, tags [a, b], N notes, N artifacts */
static void story_container(const cli_state *st, lsr_run *run) {
  if (st->json || st->quiet) return;
  char *json = lsr_run_container_json(run), why[128];
  yajl_val c = yajl_tree_parse(json, why, sizeof why);
  free(json);
  const char *sev = tree_string(c, "severity"), *status = tree_string(c, "status");
  const char *tags_p[] = {"tags", NULL}, *notes_p[] = {"notes", NULL}, *arts_p[] = {"artifacts", NULL};
  yajl_val tags = c ? yajl_tree_get(c, tags_p, yajl_t_array) : NULL;
  yajl_val notes = c ? yajl_tree_get(c, notes_p, yajl_t_array) : NULL;
  yajl_val arts = c ? yajl_tree_get(c, arts_p, yajl_t_array) : NULL;
  size_t n = 16, nt = tags ? tags->u.array.len : 0;
  for (size_t i = 0; i < nt; i++) n += (YAJL_IS_STRING(tags->u.array.values[i]) ? strlen(tags->u.array.values[i]->u.string) : 1) + 2;
  char *list = lsr_xalloc(n), *o = list;
  if (nt == 0) strcpy(list, "no tags");
  else {
    o += sprintf(o, "tags [");
    for (size_t i = 0; i < nt; i++) {
      yajl_val t = tags->u.array.values[i];
      o += sprintf(o, "%s%s", i ? ", " : "", YAJL_IS_STRING(t) ? t->u.string : "?");
    }
    strcpy(o, "]");
  }
  size_t nn = notes ? notes->u.array.len : 0, na = arts ? arts->u.array.len : 0;
  story(st, "[container] %lld: severity %s, status %s, %s, %zu note%s, %zu artifact%s", (long long)run->container_id,
        sev ? sev : "-", status ? status : "-", list, nn, nn == 1 ? "" : "s", na, na == 1 ? "" : "s");
  free(list);
  yajl_tree_free(c);
}

/* Ask at the terminal: one line per question (the prompt's message first). */
static char *ask_terminal(const char *prompt_json) {
  char why[128];
  yajl_val p = yajl_tree_parse(prompt_json, why, sizeof why);
  if (!p) return NULL;
  const char *name_path[] = {"name", NULL}, *msg_path[] = {"message", NULL}, *q_path[] = {"questions", NULL},
             *type_path[] = {"type", NULL};
  yajl_val name = yajl_tree_get(p, name_path, yajl_t_string), msg = yajl_tree_get(p, msg_path, yajl_t_string);
  yajl_val qs = yajl_tree_get(p, q_path, yajl_t_array), type = yajl_tree_get(p, type_path, yajl_t_string);
  int approval = type && strcmp(type->u.string, "approval") == 0;
  fprintf(stderr, "\n[%s] %s\n", name ? name->u.string : "prompt", msg ? msg->u.string : "");
  size_t nq = qs && qs->u.array.len ? qs->u.array.len : 1;
  char *out = lsr_xalloc(16);
  size_t len = 0, cap = 16;
  out[len++] = '[';
  for (size_t i = 0; i < nq; i++) {
    if (approval) fprintf(stderr, "approve or deny> ");
    else fprintf(stderr, "answer %zu of %zu> ", i + 1, nq);
    char line[1024];
    if (!fgets(line, sizeof line, stdin)) { free(out); yajl_tree_free(p); return NULL; }
    line[strcspn(line, "\r\n")] = 0;
    char *q = lsr_json_quote(line);
    size_t ql = strlen(q);
    if (len + ql + 3 > cap) out = lsr_xrealloc(out, cap = (len + ql + 3) * 2);
    if (i) out[len++] = ',';
    memcpy(out + len, q, ql);
    len += ql;
    free(q);
  }
  out[len++] = ']';
  out[len] = 0;
  yajl_tree_free(p);
  return out;
}

static char *answer(lsr_run *run, const char *prompt_json, double *delay, void *ud) {
  cli_state *st = ud;
  char why[128];
  *delay = 0;
  yajl_val p = yajl_tree_parse(prompt_json, why, sizeof why);
  const char *name_path[] = {"name", NULL};
  yajl_val name = p ? yajl_tree_get(p, name_path, yajl_t_string) : NULL;
  yajl_val a = NULL;
  if (name && st->answers) {
    const char *key[] = {name->u.string, NULL};
    a = yajl_tree_get(st->answers, key, yajl_t_any);
  }
  char *out = a ? lsr_tree_to_json(a) : NULL;
  yajl_tree_free(p);
  if (out) {
    story_prompt(st, prompt_json, out);
    return out;
  }
  if (!st->json && isatty(0)) {
    lsr_step_leave(NULL); /* a person thinking is not a stuck step: the watchdog waits */
    char *typed = ask_terminal(prompt_json);
    lsr_step_enter(run);
    story_prompt(st, prompt_json, typed);
    return typed;
  }
  story_prompt(st, prompt_json, NULL);
  return lsr_strdup("null"); /* nobody to ask: it times out now */
}

static void on_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  cli_state *st = ud;
  if (st->json) return;
  if (e->level == LSR_LOG_ERROR) printf("ERROR: %s\n", e->message);
  else printf("%s\n", e->message);
  fflush(stdout);
}

static void on_run_end(lsr_run *run, void *ud) {
  cli_state *st = ud;
  if (run->parent_run_id) { /* a child playbook: its parent reports */
    story(st, "[child] run %lld: %s%s%s", (long long)run->id, run->failed ? "failed" : "success",
          run->error ? ": " : "", run->error ? run->error : "");
    return;
  }
  st->ended = 1;
  st->failed = run->failed;
  if (!st->json) story_container(st, run);
  if (st->json) st->report = lsr_run_report_json(run);
  else if (run->failed)
    printf("run %lld on container %lld: failed: %s\n", (long long)run->id, (long long)run->container_id, run->error);
  else
    printf("run %lld on container %lld: success\n", (long long)run->id, (long long)run->container_id);
}

static int bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "luasoar run: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see 'luasoar run --help')\n");
  return 2;
}

static int cmd_run(int argc, char **argv) {
  const char *playbook = NULL, *container = NULL, *assets = NULL, *apps = NULL, *answers = NULL, *vault = NULL;
  const char *limits[16];
  int nlimits = 0;
  int json = 0, quiet = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(usage_run, stdout); return 0; }
    if (strcmp(a, "--json") == 0) { json = 1; continue; }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) { quiet = 1; continue; }
    if (strcmp(a, "--container") == 0) dst = &container;
    else if (strcmp(a, "--assets") == 0) dst = &assets;
    else if (strcmp(a, "--apps") == 0) dst = &apps;
    else if (strcmp(a, "--answers") == 0) dst = &answers;
    else if (strcmp(a, "--vault") == 0) dst = &vault;
    else if (strcmp(a, "--limit") == 0 && nlimits < 16) dst = &limits[nlimits++];
    else if (a[0] == '-' && a[1]) return bad_usage("unknown option '%s'", a);
    else if (!playbook) { playbook = a; continue; }
    else return bad_usage("unexpected argument '%s'", a);
    if (i + 1 >= argc) return bad_usage("option '%s' needs a value", a);
    *dst = argv[++i];
  }
  if (!playbook) return bad_usage("%s", "no playbook given");
  if (!container) return bad_usage("%s", "--container FILE is required");

  char *scripts = scripts_dir(playbook), def_assets[4096], def_apps[4096], lists[4096];
  snprintf(def_assets, sizeof def_assets, "%s/assets.json", scripts);
  snprintf(def_apps, sizeof def_apps, "%s/apps", scripts);
  snprintf(lists, sizeof lists, "%s/custom_lists", scripts);
  struct stat sb;
  if (apps && (stat(apps, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    fprintf(stderr, "luasoar run: %s: not a folder of apps\n", apps);
    return 2;
  }

  char err[2048];
  cli_state st = {.json = json, .quiet = quiet};
  lsr_engine *eng = lsr_engine_new(NULL, err, sizeof err);
  if (!eng) { fprintf(stderr, "luasoar run: %s\n", err); return 2; }
  for (int i = 0; i < nlimits; i++)
    if (lsr_limit_set(eng, limits[i], err, sizeof err) < 0) {
      fprintf(stderr, "luasoar run: %s\n", err);
      lsr_engine_free(eng);
      return 2;
    }
  if (answers) {
    st.answers = lsr_json_tree_file(answers, err, sizeof err);
    if (!st.answers || !YAJL_IS_OBJECT(st.answers)) {
      if (st.answers) snprintf(err, sizeof err, "%s: expected a JSON object of prompt names", answers);
      fprintf(stderr, "luasoar run: %s\n", err);
      yajl_tree_free(st.answers);
      lsr_engine_free(eng);
      return 2;
    }
  }
  eng->obs = (lsr_observer){.on_log = on_log, .on_run_end = on_run_end, .answer = answer, .on_run_start = on_run_start,
                            .on_action_start = on_action_start, .on_action_end = on_action_end, .ud = &st};
  eng->scripts_dir = scripts;
  eng->report_times = 1;
  if (vault) eng->vault_dir = lsr_strdup(vault);
  int rc = 2;
  lsr_gen *gen = NULL;
  lsr_run *top = NULL;
  if (lsr_config_load(eng->cfg, apps ? apps : def_apps, assets ? assets : def_assets, assets != NULL,
                      err, sizeof err) < 0 ||
      lsr_lists_load(eng, lists, err, sizeof err) < 0 ||
      !(gen = lsr_gen_load(eng, playbook, err, sizeof err)) ||
      !(top = lsr_run_file(eng, gen, container, err, sizeof err))) {
    fprintf(stderr, "luasoar run: %s\n", err);
  } else if (lsr_watchdog_start(eng->step_seconds, LSR_WATCHDOG_RUN, top, json, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar run: %s\n", err);
  } else {
    lsr_engine_drain(eng);
    lsr_watchdog_stop();
    rc = st.failed ? 1 : 0;
    if (st.report) {
      printf("%s\n", st.report);
      free(st.report);
    }
  }
  lsr_gen_free(eng, gen);
  lsr_engine_free(eng);
  yajl_tree_free(st.answers);
  return rc;
}

static int cmd_check(int argc, char **argv) {
  const char *apps = NULL, *assets = NULL;
  const char **files = lsr_xalloc((size_t)(argc + 1) * sizeof *files);
  int nfiles = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(usage_check, stdout); free(files); return 0; }
    if (strcmp(argv[i], "--apps") == 0 && i + 1 < argc) { apps = argv[++i]; continue; }
    if (strcmp(argv[i], "--assets") == 0 && i + 1 < argc) { assets = argv[++i]; continue; }
    if (argv[i][0] == '-') {
      fprintf(stderr, "luasoar check: unknown option '%s' (see 'luasoar check --help')\n", argv[i]);
      free(files);
      return 2;
    }
    files[nfiles++] = argv[i];
  }
  if (nfiles == 0) { fputs(usage_check, stderr); free(files); return 2; }
  char err[2048], def_apps[4096], def_assets[4096];
  char *scripts = scripts_dir(files[0]);
  snprintf(def_apps, sizeof def_apps, "%s/apps", scripts);
  snprintf(def_assets, sizeof def_assets, "%s/assets.json", scripts);
  free(scripts);
  lsr_engine *eng = lsr_engine_new(NULL, err, sizeof err);
  if (!eng) { fprintf(stderr, "luasoar check: %s\n", err); free(files); return 2; }
  if (lsr_config_load(eng->cfg, apps ? apps : def_apps, assets ? assets : def_assets, assets != NULL, err,
                      sizeof err) < 0) {
    fprintf(stderr, "luasoar check: %s\n", err);
    lsr_engine_free(eng);
    free(files);
    return 2;
  }
  int bad = 0;
  for (int i = 0; i < nfiles; i++) {
    lsr_gen *g = lsr_gen_load(eng, files[i], err, sizeof err);
    if (!g) {
      printf("%s\n", err);
      bad = 1;
      continue;
    }
    lsr_gen_free(eng, g);
    char *text;
    size_t len;
    if (lsr_read_file(files[i], &text, &len, 4u << 20, err, sizeof err) == 0) {
      if (lsr_lint(eng, files[i], text, len) > 0) bad = 1;
      free(text);
    }
  }
  lsr_engine_free(eng);
  free(files);
  return bad;
}

static const char usage_runs[] =
  "usage: luasoar runs [--db FILE|URI] [--container N] [RUN_ID] [--json]\n"
  "\n"
  "Shows the runs in a luasoar serve store (default ./luasoar.db; or a PostgreSQL\n"
  "URI, postgresql://USER@HOST:PORT/DBNAME), newest last, or\n"
  "with RUN_ID that run and its log.  --json prints the same as JSON, with times\n"
  "in ISO 8601 UTC (2026-01-31T12:00:00.250Z), as the REST API gives them.\n";

static void print_row(void *ud, int n, const char **c) {
  int *count = ud;
  if ((*count)++ == 0)
    printf("%-7s %-9s %-8s %-24s %-4s %-20s %s\n", "RUN", "CONTAINER", "STATUS", "PLAYBOOK", "GEN", "STARTED", "MESSAGE");
  printf("%-7s %-9s %-8s %-24s %-4s %-20s %s\n", c[0], c[1], c[2], c[3], c[4] ? c[4] : "", c[5] ? c[5] : "",
         c[6] ? c[6] : "");
}

static void print_log(void *ud, int n, const char **c) {
  printf("  %s %-5s %s\n", c[0], c[1], c[2]);
}

static int cmd_runs(int argc, char **argv) {
  const char *db = "luasoar.db";
  long long container = 0, run = 0;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(usage_runs, stdout); return 0; }
    if (strcmp(argv[i], "--json") == 0) json = 1;
    else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) db = argv[++i];
    else if (strcmp(argv[i], "--container") == 0 && i + 1 < argc) container = atoll(argv[++i]);
    else if (argv[i][0] != '-' && atoll(argv[i]) > 0) run = atoll(argv[i]);
    else {
      fprintf(stderr, "luasoar runs: unknown argument '%s' (see 'luasoar runs --help')\n", argv[i]);
      return 2;
    }
  }
  if (!lsr_store_is_postgres(db) && access(db, F_OK) != 0) {
    fprintf(stderr, "luasoar runs: %s: no such store\n", db);
    return 2;
  }
  char err[1024];
  lsr_store *st = lsr_store_open_read(db, err, sizeof err);
  if (!st) { fprintf(stderr, "luasoar runs: %s\n", err); return 2; }
  int rc = 0;
  if (json) {
    char *out = run ? lsr_store_text(st, LSR_Q_CLI_RUN, "i", (int64_t)run)
                    : lsr_store_text(st, LSR_Q_CLI_RUNS, "i", (int64_t)container);
    if (out) printf("%s\n", out);
    else { fprintf(stderr, "luasoar runs: no run %lld\n", run); rc = 1; }
    free(out);
  } else {
    int count = 0;
    lsr_store_each(st, print_row, &count, LSR_Q_CLI_RUN_ROWS, "ii",
                   (int64_t)run, (int64_t)container);
    if (run && count == 0) { fprintf(stderr, "luasoar runs: no run %lld\n", run); rc = 1; }
    else if (run) {
      printf("log:\n");
      lsr_store_each(st, print_log, NULL, LSR_Q_CLI_LOG_ROWS, "i", (int64_t)run);
    } else if (count == 0) {
      printf("no runs\n");
    }
  }
  lsr_store_close(st);
  return rc;
}

/* The first executable named name on PATH, or NULL. */
static char *find_on_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  char buf[PATH_MAX];
  for (const char *p = path; *p;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
    if (access(buf, X_OK) == 0) return lsr_strdup(buf);
    p += n + (end != NULL);
  }
  return NULL;
}

static void prepend_env(const char *name, const char *first) {
  const char *old = getenv(name);
  size_t n = strlen(first) + (old ? strlen(old) : 0) + 4;
  char *v = lsr_xalloc(n);
  snprintf(v, n, "%s;%s", first, old ? old : ";");
  setenv(name, v, 1);
  free(v);
}

#ifndef LSR_CMOD_DIRS
#define LSR_CMOD_DIRS "lib/lua/5.4"
#endif
/* The folder of luasoar.so: beside the executable (a build folder), else
 * PREFIX/<each of LSR_CMOD_DIRS> for an installed bin/luasoar. */
static int find_module(const char *exedir, char *dir, size_t size) {
  char path[PATH_MAX + 300];
  snprintf(dir, size, "%s", exedir);
  snprintf(path, sizeof path, "%s/luasoar.so", dir);
  if (access(path, R_OK) == 0) return 1;
  for (const char *p = LSR_CMOD_DIRS; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(dir, size, "%s/../%.*s", exedir, (int)n, p);
    snprintf(path, sizeof path, "%s/luasoar.so", dir);
    char real[PATH_MAX];
    if (access(path, R_OK) == 0 && realpath(dir, real)) {
      snprintf(dir, size, "%s", real);
      return 1;
    }
    p += n + (p[n] == ':');
  }
  return 0;
}

static int cmd_test(int argc, char **argv) {
  const char *dir = ".";
  const char *coverage = NULL;
  int i = 0, cov = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(usage_test, stdout); return 0; }
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--coverage") == 0) { cov = 1; continue; }
    if (strncmp(a, "--coverage=", 11) == 0) { cov = 1; coverage = a + 11; continue; }
    if (a[0] == '-') {
      fprintf(stderr, "luasoar test: unknown option '%s' (see 'luasoar test --help'; busted options go after --)\n", a);
      return 2;
    }
    if (strcmp(dir, ".") != 0) {
      fprintf(stderr, "luasoar test: one folder only, got '%s' and '%s'\n", dir, a);
      return 2;
    }
    dir = a;
  }
  /* the module is built next to the executable, or installed under its prefix */
  char self[PATH_MAX], mod[PATH_MAX + 64], moddir[PATH_MAX + 72], covfile[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) { fprintf(stderr, "luasoar test: cannot find my own executable\n"); return 2; }
  self[n] = 0;
  *strrchr(self, '/') = 0;
  if (!find_module(self, mod, sizeof mod)) {
    fprintf(stderr, "luasoar test: the luasoar module (luasoar.so) is neither beside the executable "
            "(%s) nor under its prefix (%s/../{%s})\n", self, self, LSR_CMOD_DIRS);
    return 2;
  }
  snprintf(moddir, sizeof moddir, "%s/?.so", mod);
  char *busted = find_on_path("busted");
  if (!busted) { fprintf(stderr, "luasoar test: busted is not installed (Debian package lua-busted)\n"); return 2; }
  if (cov) {
    char cwd[PATH_MAX];
    if (!coverage) {
      snprintf(covfile, sizeof covfile, "%s/luasoar.lcov", dir);
      coverage = covfile;
    }
    if (coverage[0] != '/' && getcwd(cwd, sizeof cwd)) {
      char *abs = lsr_xalloc(strlen(cwd) + strlen(coverage) + 2);
      sprintf(abs, "%s/%s", cwd, coverage);
      setenv("LUASOAR_COVERAGE", abs, 1);
      free(abs);
    } else {
      setenv("LUASOAR_COVERAGE", coverage, 1);
    }
  }
  if (chdir(dir) != 0) { fprintf(stderr, "luasoar test: %s: cannot enter the folder\n", dir); return 2; }
  prepend_env("LUA_CPATH", moddir);
  prepend_env("LUA_PATH", "./?.lua;./?/init.lua");
  char **args = lsr_xalloc((size_t)(argc - i + 6) * sizeof *args);
  int k = 0;
  args[k++] = "lua5.4";
  args[k++] = busted;
  for (int j = i; j < argc; j++) args[k++] = argv[j];
  args[k++] = "--pattern=_spec";
  args[k++] = ".";
  args[k] = NULL;
  execvp("lua5.4", args);
  fprintf(stderr, "luasoar test: cannot run lua5.4: %s\n", strerror(errno));
  return 2;
}

/* `luasoar port`: SOAR Python playbooks to Lua, by python/luasoar_port.py
 * under Debian's python3 (Python's own parser reads them). */
static int cmd_port(int argc, char **argv) {
  char script[4200];
  snprintf(script, sizeof script, "%s/luasoar_port.py", lsr_soar_shim_dir());
  char **args = lsr_xalloc((size_t)(argc + 3) * sizeof *args);
  int k = 0;
  args[k++] = "/usr/bin/python3";
  args[k++] = script;
  for (int i = 0; i < argc; i++) args[k++] = argv[i];
  args[k] = NULL;
  execv(args[0], args);
  fprintf(stderr, "luasoar port: cannot run /usr/bin/python3: %s (apt-get install python3)\n", strerror(errno));
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) { fputs(usage_main, stderr); return 2; }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage_main, stdout);
    return 0;
  }
  /* run and serve start no children but exec apps: they may reap and kill
   * whatever an app leaves behind (exec_runner.h).  Not test, which execs
   * busted (the attribute survives execve). */
  if (strcmp(cmd, "run") == 0 || strcmp(cmd, "serve") == 0 || strcmp(cmd, "app") == 0) lsr_exec_subreaper();
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
  if (strcmp(cmd, "check") == 0) return cmd_check(argc - 2, argv + 2);
  if (strcmp(cmd, "test") == 0) return cmd_test(argc - 2, argv + 2);
  if (strcmp(cmd, "serve") == 0) return lsr_serve_main(argc - 2, argv + 2);
  if (strcmp(cmd, "runs") == 0) return cmd_runs(argc - 2, argv + 2);
  if (strcmp(cmd, "app") == 0) return lsr_cli_app(argc - 2, argv + 2);
  if (strcmp(cmd, "port") == 0) return cmd_port(argc - 2, argv + 2);
  fprintf(stderr, "luasoar: unknown command '%s'\n\n%s", cmd, usage_main);
  return 2;
}
