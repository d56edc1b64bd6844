/* serve.c: `luasoar serve`, the long-running engine.  Containers arrive over
 * REST (libmicrohttpd, driven by the engine's libuv loop: one thread), are
 * stored in SQLite before they are acknowledged, and start every active
 * playbook whose labels match.  The scripts folder is watched: a changed
 * playbook becomes a new generation for new runs while runs in flight finish
 * on theirs.  Every step of a run goes to the store as it happens.
 * No Lua here: the engine's C interface does the Lua side. */
#include "engine.h"
#include "exec_runner.h"
#include "json_check.h"
#include "serve.h"
#include "store.h"
#include "watchdog.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define MAX_BODY (16u << 20)
#define INTERRUPTED_BY_RESTART "interrupted by engine restart"
#define DEBOUNCE_MS 100
#define HEADER_DEADLINE 10    /* seconds a request's headers may take (--header-deadline) */
#define CONN_PER_ADDRESS 32   /* open connections per client address (--per-address) */
#define CONN_LIMIT 1000       /* open connections in all, fewer if the fd limit is low */

typedef struct {
  char *id, *path;      /* id: the path below playbooks/ without .lua */
  lsr_gen *gen;         /* the newest good generation, or NULL */
  int generation;
  char **labels;
  int active;
  char *error;          /* the last load error, file:line: message */
  struct stat st;       /* of the file when last loaded */
  int present;
} pb_entry;

typedef struct {
  lsr_engine *eng;
  lsr_store *store;
  struct MHD_Daemon *mhd;
  uv_poll_t mhd_poll;
  uv_timer_t mhd_timer;
  char *scripts, *token;
  pb_entry *pbs;
  int npbs;
  int live_gens;        /* generations compiled and not yet freed */
  uv_fs_event_t **watch;
  int nwatch;
  uv_timer_t debounce;
  uv_signal_t sig_int, sig_term;
  uv_check_t commit;
  uv_prepare_t commit_idle;
  uint64_t cfg_sig;     /* apps' and assets' files: names, mtimes, sizes, inodes */
  int cfg_seen;
  int stopping;
  struct conn *conns;   /* open HTTP connections (the header deadline's sweep) */
  uv_timer_t sweep;
  double header_deadline; /* seconds a request's headers may take, from accept or the last answer */
  unsigned mhd_dropped; /* libmicrohttpd's messages not logged (rate limit) */
  double mhd_log_since;
  unsigned mhd_logged;
} server;

/* ---- logging: one line per event ---- */

static void say(const char *fmt, ...) {
  char line[2048];
  time_t now = time(NULL);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", gmtime(&now));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
  line[n++] = '\n';
  fwrite(line, 1, n, stderr); /* one write per line */
}

/* ---- the store: what runs do ---- */

/* The run's row; written as soon as a run exists, in the transaction of
 * the request that started it. */
static void record_run(server *s, lsr_run *run, const char *pb, const char *scope, double now) {
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store,
                 "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
                 " start_time, update_time, parent_run_id) VALUES(?1, ?2, ?3, ?4, 'running', '', ?5, ?6, ?6, ?7)"
                 " ON CONFLICT(id) DO UPDATE SET parent_run_id = ?7, generation = ?4",
                 "iisisdi", run->id, run->container_id, pb, (int64_t)run->gen->number, scope, now, run->parent_run_id);
}

static void on_run_start(lsr_run *run, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  const char *scope = run->ud ? (const char *)run->ud : "new";
  const char *pb = run->gen->path + strlen(s->scripts) + strlen("/playbooks/");
  char *id = lsr_strndup(pb, strlen(pb) - 4);
  double now = lsr_now();
  if (run->recovered) {
    /* recovered after a restart: it goes on, on the newest generation */
    lsr_store_exec(s->store, "UPDATE playbook_runs SET generation = ?, update_time = ? WHERE id = ?", "idi",
                   (int64_t)run->gen->number, now, run->id);
    say("run %lld resumes: %s on container %lld (generation %d)", (long long)run->id, id,
        (long long)run->container_id, run->gen->number);
    free(id);
    return;
  }
  record_run(s, run, id, scope, now);
  say("run %lld start: %s on container %lld (generation %d)", (long long)run->id, id,
      (long long)run->container_id, run->gen->number);
  free(id);
}

static void free_gen_if_done(server *s, lsr_gen *g) {
  if (!g->retired || g->runs > 0) return;
  say("generation %d of %s freed", g->number, g->path);
  lsr_gen_free(s->eng, g);
  s->live_gens--;
}

static void on_run_end(lsr_run *run, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  double now = lsr_now();
  lsr_store_exec(s->store, "UPDATE playbook_runs SET status = ?, message = ?, update_time = ? WHERE id = ?",
                 "ssdi", run->failed ? "failed" : "success", run->error ? run->error : "", now, run->id);
  /* what the run left unfinished ends with it */
  lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                 " AND status = 'running'", "di", now, run->id);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i",
                 run->id);
  lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", run->id);
  say("run %lld end: %s%s%s", (long long)run->id, run->failed ? "failed" : "success", run->error ? ": " : "",
      run->error ? run->error : "");
  free(run->ud);
  run->ud = NULL;
  free_gen_if_done(s, run->gen);
}

static void on_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, ?, ?, ?)", "issd", run->id,
                 e->level == LSR_LOG_ERROR ? "error" : "debug", e->message, e->time);
}

static void on_action(lsr_action_run *ar, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, ar->run->id, ar->run->container_id); /* a lost turn fails it */
  /* parameters as one JSON list, assets as names */
  size_t n = 3;
  for (int i = 0; i < ar->nparams; i++) n += strlen(ar->params[i]) + 1;
  char *params = lsr_xalloc(n);
  strcpy(params, "[");
  for (int i = 0; i < ar->nparams; i++) {
    if (i) strcat(params, ",");
    strcat(params, ar->params[i]);
  }
  strcat(params, "]");
  size_t an = 3;
  for (int k = 0; k < ar->napp_runs; k++) an += strlen(ar->app_runs[k].asset->name) * 6 + 4; /* quoting: at most 6 per byte */
  char *assets = lsr_xalloc(an);
  strcpy(assets, "[");
  for (int k = 0; k < ar->napp_runs; k++) {
    char *q = lsr_json_quote(ar->app_runs[k].asset->name);
    if (k) strcat(assets, ",");
    strcat(assets, q);
    free(q);
  }
  strcat(assets, "]");
  double now = lsr_now();
  lsr_store_exec(s->store,
                 "INSERT INTO action_runs(id, run_id, name, action, callback, handle, parameters, assets, status,"
                 " start_time, update_time, start_after, reviewer, loop_state, released)"
                 " VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                 "iissssssdddssi", ar->id, ar->run->id, ar->name, ar->action, ar->callback_name, ar->handle_json, params,
                 assets, now, now, ar->start_time, ar->reviewer, ar->loop_state, (int64_t)ar->released);
  free(params);
  free(assets);
}

static void on_app_run(lsr_app_run *apr, const char *result, void *ud) {
  server *s = ud;
  if (!apr->ar->run) return;
  lsr_store_touch(s->store, apr->ar->run->id, apr->ar->run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store,
                 "INSERT OR REPLACE INTO app_runs(id, action_run_id, run_id, asset, app, status, message, result,"
                 " end_time) VALUES(?, ?, ?, ?, ?, json_extract(?, '$.status'), json_extract(?, '$.message'), ?, ?)",
                 "iiisssssd", apr->id, apr->ar->id, apr->ar->run->id, apr->asset->name, apr->asset->app->name, result,
                 result, result, lsr_now());
}

static void on_delivered(lsr_action_run *ar, void *ud) {
  server *s = ud;
  if (ar->run) lsr_store_touch(s->store, ar->run->id, ar->run->container_id);
  lsr_store_exec(s->store, "UPDATE action_runs SET status = ?, delivered = 1, update_time = ? WHERE id = ?", "sdi",
                 ar->success ? "success" : "failed", lsr_now(), ar->id);
}

static void persist(lsr_run *run, const char *kind, const char *key, const char *json, void *ud) {
  server *s = ud;
  int64_t rid = run ? run->id : 0;
  double now = lsr_now();
  if (run) lsr_store_touch(s->store, rid, run->container_id);
  if (strcmp(kind, "run_data") == 0)
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO run_data(run_id, key, value) VALUES(?, ?, ?)", "iss", rid, key, json);
  else if (strcmp(kind, "container") == 0)
    lsr_store_exec(s->store,
                   "UPDATE containers SET data = ?, status = json_extract(?, '$.status'), label = json_extract(?, '$.label'),"
                   " update_time = ? WHERE id = ?", "sssdi", json, json, json, now, (int64_t)atoll(key));
  else if (strcmp(kind, "artifact") == 0)
    lsr_store_exec(s->store, "INSERT INTO artifacts(id, container_id, data, create_time)"
                   " VALUES(?, json_extract(?, '$.container'), ?, ?)", "issd", (int64_t)atoll(key), json, json, now);
  else if (strcmp(kind, "object") == 0) {
    const char *key2 = key + strlen(key) + 1; /* "container\0key" */
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, "DELETE FROM objects WHERE container_key = ? AND key = ?", "ss", key, key2);
    else
      lsr_store_exec(s->store, "INSERT OR REPLACE INTO objects VALUES(?, ?, ?)", "sss", key, key2, json);
  } else if (strcmp(kind, "owner") == 0) { /* quotas: the playbook that answers for "object\0container\0key"
                                              or "list\0name" */
    const char *a = key + strlen(key) + 1, *b = a;
    if (strcmp(key, "object") == 0) b = a + strlen(a) + 1;
    else a = "";
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, "DELETE FROM shared_owners WHERE kind = ? AND container_key = ? AND key = ?", "sss",
                     key, a, b);
    else
      lsr_store_exec(s->store, "INSERT OR REPLACE INTO shared_owners VALUES(?, ?, ?, json_extract(?, '$'))", "ssss",
                     key, a, b, json);
  } else if (strcmp(kind, "list") == 0) {
    if (strcmp(json, "null") == 0) lsr_store_exec(s->store, "DELETE FROM custom_lists WHERE name = ?", "s", key);
    else lsr_store_exec(s->store, "INSERT OR REPLACE INTO custom_lists VALUES(?, ?)", "ss", key, json);
  } else if (strcmp(kind, "prompt") == 0) {
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO prompts(id, run_id, name, prompt, status, deadline)"
                   " VALUES(?, ?, json_extract(?, '$.name'), ?, 'pending', json_extract(?, '$.deadline'))",
                   "iisss", (int64_t)atoll(key), rid, json, json, json);
    say("prompt %s of run %lld waits for an answer (POST /rest/prompt/%s/answer)", key, (long long)rid, key);
  } else if (strcmp(kind, "prompt_done") == 0) {
    lsr_store_exec(s->store, "UPDATE prompts SET status = json_extract(?, '$.status'),"
                   " responses = json_extract(?, '$.responses') WHERE id = ?", "ssi", json, json, (int64_t)atoll(key));
  } else if (strcmp(kind, "call") == 0) { /* custom function or child playbook started */
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO calls(id, run_id, kind, call, status)"
                   " VALUES(?, ?, json_extract(?, '$.kind'), ?, 'running')", "iiss", (int64_t)atoll(key), rid, json, json);
  } else if (strcmp(kind, "call_done") == 0) {
    /* ids: custom functions' are action run ids, children's run ids */
    lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE kind = json_extract(?, '$') AND id = ?", "si",
                   json, (int64_t)atoll(key));
  } else if (strcmp(kind, "delivered") == 0) { /* a recovered action's callback ran */
    lsr_store_exec(s->store, "UPDATE action_runs SET delivered = 1, status = CASE WHEN ? = 'true' THEN 'success'"
                   " ELSE 'failed' END, update_time = ? WHERE id = ?", "sdi", json, now, (int64_t)atoll(key));
  } else if (strcmp(kind, "superseded") == 0) { /* run again after a restart */
    lsr_store_exec(s->store, "UPDATE action_runs SET delivered = 1, status = 'superseded', update_time = ?"
                   " WHERE id = ?", "di", now, (int64_t)atoll(key));
  } else if (strcmp(kind, "released") == 0) { /* an action's app runs went */
    lsr_store_exec(s->store, "UPDATE action_runs SET released = 1 WHERE id = ?", "i", (int64_t)atoll(key));
  } else if (strcmp(kind, "discontinued") == 0) {
    lsr_store_exec(s->store, "UPDATE playbook_runs SET discontinued = 1 WHERE id = ?", "i", rid);
  } else if (strcmp(kind, "started") == 0) { /* on_start returned */
    lsr_store_exec(s->store, "UPDATE playbook_runs SET started = 1 WHERE id = ?", "i", rid);
  } else if (strcmp(kind, "outputs") == 0) {
    lsr_store_exec(s->store, "UPDATE playbook_runs SET outputs = ? WHERE id = ?", "si", json, rid);
  }
}

/* Each turn of the loop ends with one commit of what it wrote (the check
 * phase), and nothing stays uncommitted while the loop waits (prepare). */
static void commit_now(server *s) {
  if (lsr_store_in_transaction(s->store) && lsr_store_commit(s->store) < 0)
    say("error: the store refused a commit: %s", lsr_store_error(s->store));
}

/* bindings/runtime.h (which includes Lua) declares them */
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len);
void lsr_run_settle(lsr_run *run);

/* A turn SQLite rolled back (full disk, I/O error) fails as a whole
 * (store.c), and so does every run that wrote in it: nothing half-written
 * may be marked done.  A live run fails now, with the reason in its log; a
 * run that had already ended (its end was in the lost turn) gets its row
 * marked failed.  Those writes are a turn of their own: if it is lost too,
 * the runs come back on the next commit. */
static void fail_lost_runs(server *s) {
  size_t n;
  lsr_store_run *lost = lsr_store_take_lost(s->store, &n);
  if (!lost) return;
  char msg[700];
  snprintf(msg, sizeof msg, "the store lost a turn of this run (its writes were rolled back): %s",
           lsr_store_error(s->store));
  double now = lsr_now();
  for (size_t i = 0; i < n; i++) {
    int64_t id = lost[i].run_id;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = lost[j].run_id == id;
    if (seen) continue;
    lsr_run *run = s->eng->runs;
    while (run && run->id != id) run = run->next;
    if (run && run->state != LSR_RUN_ENDED) {
      if (run->state != LSR_RUN_NEW) lsr_run_log(run, LSR_LOG_ERROR, msg, strlen(msg));
      lsr_run_fail(run, msg);
      if (run->state != LSR_RUN_NEW) lsr_run_settle(run); /* not started: it ends at its start */
      continue;
    }
    lsr_store_touch(s->store, id, lost[i].container_id);
    if (lsr_store_exec(s->store, "UPDATE playbook_runs SET status = 'failed', message = ?, update_time = ?"
                       " WHERE id = ?", "sdi", msg, now, id) == 0 && lsr_store_changes(s->store) == 0)
      lsr_store_exec(s->store, "INSERT INTO playbook_runs(id, container_id, status, message, start_time, update_time,"
                     " started) VALUES(?, ?, 'failed', ?, ?, ?, 1)", "iisdd", id, lost[i].container_id, msg, now, now);
    lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd",
                   id, msg, now);
    lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                   " AND status = 'running'", "di", now, id);
    lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i", id);
    lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", id);
    say("run %lld failed: %s", (long long)id, msg);
  }
  free(lost);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store); /* lost again: retried next turn */
}

static void commit_turn(uv_handle_t *h) {
  commit_now(h->data);
  fail_lost_runs(h->data);
}

/* ---- playbooks ---- */

static int labels_match(char **labels, const char *label) {
  for (int i = 0; labels && labels[i]; i++)
    if (strcmp(labels[i], "*") == 0 || (label && strcmp(labels[i], label) == 0)) return 1;
  return 0;
}

static pb_entry *find_pb(server *s, const char *id) {
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (strcmp(p->id, id) == 0) return p;
    const char *slash = strchr(id, '/'); /* "repo/name" also names playbooks/name */
    if (slash && strcmp(p->id, slash + 1) == 0) return p;
  }
  return NULL;
}

static void retire(server *s, lsr_gen *g) {
  if (!g) return;
  g->retired = 1;
  free_gen_if_done(s, g);
}

/* (Re)load one playbook file if it changed. */
static void load_pb(server *s, const char *path, const struct stat *sb) {
  size_t base = strlen(s->scripts) + strlen("/playbooks/");
  char *id = lsr_strndup(path + base, strlen(path) - base - 4);
  pb_entry *p = NULL;
  for (int i = 0; i < s->npbs; i++)
    if (strcmp(s->pbs[i].id, id) == 0) p = &s->pbs[i];
  if (p) {
    free(id);
    p->present = 1;
    if (p->gen && p->st.st_mtim.tv_sec == sb->st_mtim.tv_sec && p->st.st_mtim.tv_nsec == sb->st_mtim.tv_nsec &&
        p->st.st_size == sb->st_size && p->st.st_ino == sb->st_ino)
      return;
  } else {
    s->pbs = lsr_xrealloc(s->pbs, (size_t)(s->npbs + 1) * sizeof *s->pbs);
    p = &s->pbs[s->npbs++];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->path = lsr_strdup(path);
    p->present = 1;
  }
  p->st = *sb;
  char err[2048];
  char **labels;
  int active;
  lsr_gen *g = lsr_gen_load(s->eng, path, err, sizeof err);
  if (g && lsr_gen_info(s->eng, g, &labels, &active, err, sizeof err) < 0) {
    lsr_gen_free(s->eng, g);
    g = NULL;
  }
  if (g && lsr_lint_errors(s->eng, path, err, sizeof err) > 0) { /* what `luasoar check` calls an error */
    lsr_strv_free(labels);
    lsr_gen_free(s->eng, g);
    g = NULL;
  }
  if (!g) {
    free(p->error);
    p->error = lsr_strdup(err);
    say("reload %s failed, generation %d keeps serving: %s", p->id, p->generation, err);
    return;
  }
  s->live_gens++;
  g->number = ++p->generation;
  retire(s, p->gen);
  p->gen = g;
  lsr_strv_free(p->labels);
  p->labels = labels;
  p->active = active;
  free(p->error);
  p->error = NULL;
  say("reload %s: generation %d%s", p->id, p->generation, active ? " (active)" : "");
}

static void walk(server *s, const char *dir, void (*fn)(server *, const char *, const struct stat *)) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode)) walk(s, path, fn);
    else fn(s, path, &sb);
  }
  closedir(d);
}

static void maybe_pb(server *s, const char *path, const struct stat *sb) {
  size_t n = strlen(path);
  if (n > 4 && strcmp(path + n - 4, ".lua") == 0) load_pb(s, path, sb);
}

/* One file into the signature of the apps and assets: any edit (even
 * within the second, or to an older mtime), new file or deletion changes it. */
static void sign(server *s, const char *path, const struct stat *sb) {
  uint64_t h = 1469598103934665603u; /* FNV-1a over the name, then the stat */
  for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
  uint64_t st[] = {(uint64_t)sb->st_mtim.tv_sec, (uint64_t)sb->st_mtim.tv_nsec, (uint64_t)sb->st_size,
                   (uint64_t)sb->st_ino};
  for (int i = 0; i < 4; i++) h = (h ^ st[i]) * 1099511628211u;
  s->cfg_sig += h; /* a sum: the order files are listed in does not matter */
}

static void scan(server *s) {
  char dir[4096];
  for (int i = 0; i < s->npbs; i++) s->pbs[i].present = 0;
  snprintf(dir, sizeof dir, "%s/playbooks", s->scripts);
  walk(s, dir, maybe_pb);
  for (int i = 0; i < s->npbs; i++) { /* a deleted file stops new runs */
    pb_entry *p = &s->pbs[i];
    if (p->present || !p->gen) continue;
    say("playbook %s deleted: no new runs", p->id);
    retire(s, p->gen);
    p->gen = NULL;
    p->active = 0;
  }
  /* custom functions: dropped from the cache, compiled again on next use */
  for (int i = 0; i < s->eng->ngens; i++) {
    struct stat sb;
    lsr_gen *g = s->eng->gens[i];
    if (stat(g->path, &sb) == 0 && (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9 == g->mtime) continue;
    say("custom function %s changed", g->path);
    s->eng->gens[i--] = s->eng->gens[--s->eng->ngens];
    s->live_gens++; /* child runs may still be on it: freed after the last */
    retire(s, g);
  }
  /* apps and assets: a new configuration for new actions */
  uint64_t before = s->cfg_sig;
  s->cfg_sig = 0;
  snprintf(dir, sizeof dir, "%s/apps", s->scripts);
  walk(s, dir, sign);
  struct stat sb;
  snprintf(dir, sizeof dir, "%s/assets.json", s->scripts);
  if (stat(dir, &sb) == 0) sign(s, dir, &sb);
  int first = !s->cfg_seen;
  s->cfg_seen = 1;
  if (!first && s->cfg_sig != before) {
    char err[2048], apps[4096];
    snprintf(apps, sizeof apps, "%s/apps", s->scripts);
    lsr_config *cfg = lsr_xalloc(sizeof *cfg);
    if (lsr_config_load(cfg, apps, dir, 0, err, sizeof err) < 0) {
      say("reload of apps and assets failed, the previous ones keep serving: %s", err);
      lsr_config_free(cfg);
      free(cfg);
    } else {
      lsr_config *old = s->eng->cfg;
      s->eng->cfg = cfg;
      old->refs++;
      lsr_config_release(s->eng, old);
      say("reload apps and assets: %d apps, %d assets", cfg->napps, cfg->nassets);
    }
  }
}

/* ---- watching the scripts folder ---- */

static void watch_dir(server *s, const char *dir);
static void unwatch(server *s);

static void rescan(uv_timer_t *t) {
  server *s = t->data;
  scan(s);
  unwatch(s); /* new folders get watched too */
  watch_dir(s, s->scripts);
}

static void on_fs(uv_fs_event_t *h, const char *name, int events, int status) {
  server *s = h->data;
  uv_timer_start(&s->debounce, rescan, DEBOUNCE_MS, 0); /* editors write in several steps */
}

static void watch_dir(server *s, const char *dir) {
  uv_fs_event_t *w = lsr_xalloc(sizeof *w);
  uv_fs_event_init(s->eng->loop, w);
  w->data = s;
  if (uv_fs_event_start(w, on_fs, dir, 0) != 0) {
    uv_close((uv_handle_t *)w, (uv_close_cb)free);
    return;
  }
  s->watch = lsr_xrealloc(s->watch, (size_t)(s->nwatch + 1) * sizeof *s->watch);
  s->watch[s->nwatch++] = w;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char path[4096];
    struct stat sb;
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) watch_dir(s, path);
  }
  if (d) closedir(d);
}

static void unwatch(server *s) {
  for (int i = 0; i < s->nwatch; i++) uv_close((uv_handle_t *)s->watch[i], (uv_close_cb)free);
  free(s->watch);
  s->watch = NULL;
  s->nwatch = 0;
}

/* ---- starting runs ---- */

/* The container as runs see it: its data with its artifacts, by id. */
static char *container_json(server *s, int64_t id) {
  return lsr_store_text(s->store,
                        "SELECT json_set(data, '$.id', id, '$.artifacts', json((SELECT json_group_array(json(data))"
                        " FROM (SELECT data FROM artifacts WHERE container_id = ?1 ORDER BY id))))"
                        " FROM containers WHERE id = ?1", "i", id);
}

/* What a call needs that is no longer in memory (serve keeps only what live
 * runs use): a container by id, with its artifacts; the id of the container
 * that holds a pin. */
static char *load_stored(const char *kind, const char *key, void *ud) {
  server *s = ud;
  if (strcmp(kind, "container") == 0) return container_json(s, (int64_t)atoll(key));
  if (strcmp(kind, "pin") == 0)
    return lsr_store_text(s->store, "SELECT c.id FROM containers c, json_each(c.data, '$.pins') p"
                          " WHERE instr(c.data, '\"pins\"') AND json_extract(p.value, '$.id') = ? LIMIT 1", "i",
                          (int64_t)atoll(key));
  return NULL;
}

/* Start a run of p on a stored container.  scope: "new", "all" or a JSON
 * list of artifact ids.  The run's id, or 0 with err set. */
static int64_t start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen) {
  char *json = container_json(s, cid);
  if (!json) {
    snprintf(err, errlen, "no container %lld", (long long)cid);
    return 0;
  }
  if (strcmp(scope, "new") != 0 && strcmp(scope, "all") != 0 &&
      !lsr_store_int(s->store, 0, "SELECT json_valid(?1) AND json_type(?1) = 'array' AND NOT EXISTS"
                     " (SELECT 1 FROM json_each(?1) WHERE type != 'integer')", "s", scope)) {
    free(json);
    snprintf(err, errlen, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
    return 0;
  }
  lsr_run *run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, errlen);
  free(json);
  if (!run) return 0;
  record_run(s, run, p->id, scope, lsr_now());
  /* scope "new": the artifacts this playbook has not seen on this container */
  int64_t seen = lsr_store_int(s->store, 0, "SELECT last_artifact_id FROM seen WHERE playbook = ? AND container_id = ?",
                               "si", p->id, cid);
  int64_t last = lsr_store_int(s->store, 0, "SELECT max(id) FROM artifacts WHERE container_id = ?", "i", cid);
  char *list = NULL;
  if (strcmp(scope, "new") == 0)
    list = lsr_store_text(s->store, "SELECT json_group_array(id) FROM (SELECT id FROM artifacts"
                                    " WHERE container_id = ? AND id > ? ORDER BY id)", "ii", cid, seen);
  else if (strcmp(scope, "all") != 0)
    list = lsr_strdup(scope);
  if (list) lsr_run_state_set(run, "scope_list", list);
  free(list);
  lsr_store_exec(s->store, "INSERT OR REPLACE INTO seen VALUES(?, ?, max(?, coalesce((SELECT last_artifact_id"
                 " FROM seen WHERE playbook = ? AND container_id = ?), 0)))", "siisi", p->id, cid, last, p->id, cid);
  run->ud = lsr_strdup(scope);
  return run->id;
}

/* Every active playbook whose labels match an open container; how many
 * runs started, and in *matched how many playbooks matched (NULL: not asked). */
static int run_active(server *s, int64_t cid, int *matched) {
  char *label = lsr_store_text(s->store, "SELECT label FROM containers WHERE id = ?", "i", cid);
  char *status = lsr_store_text(s->store, "SELECT status FROM containers WHERE id = ?", "i", cid);
  char err[1024];
  int started = 0, match = 0;
  if (!status || strcmp(status, "closed") != 0) {
    for (int i = 0; i < s->npbs; i++) {
      pb_entry *p = &s->pbs[i];
      if (!p->gen || !p->active || !labels_match(p->labels, label)) continue;
      match++;
      if (start_run(s, p, cid, "new", err, sizeof err)) started++;
      else say("error: cannot start %s on container %lld: %s", p->id, (long long)cid, err);
    }
  }
  free(label);
  free(status);
  if (matched) *matched = match;
  return started;
}

/* ---- recovery after a restart ---- */

#define RECOVERY_JSON \
  "SELECT json_object('started', started, 'discontinued', discontinued," \
  " 'run_data', json((SELECT json_group_object(key, json(value)) FROM run_data WHERE run_id = r.id))," \
  " 'actions', json((SELECT json_group_array(json_object('id', a.id, 'name', a.name, 'action', a.action," \
  "   'callback', a.callback, 'handle', json(coalesce(a.handle, 'null')), 'parameters', json(a.parameters)," \
  "   'assets', json(coalesce(a.assets, '[]')), 'delivered', a.delivered, 'start_after', a.start_after," \
  "   'reviewer', a.reviewer, 'loop_state', a.loop_state, 'released', a.released," \
  "   'results', json((SELECT json_group_array(json_object('asset', p.asset, 'result', json(p.result)))" \
  "                    FROM app_runs p WHERE p.action_run_id = a.id))))" \
  "   FROM (SELECT * FROM action_runs WHERE run_id = r.id AND NOT (delivered = 1 AND status = 'superseded')" \
  "         ORDER BY id) a))," \
  " 'prompts', json((SELECT json_group_array(json(prompt)) FROM prompts WHERE run_id = r.id AND status = 'pending'))," \
  " 'calls', json((SELECT json_group_array(json_set(call, '$.id', c.id," \
  "   '$.child_status', (SELECT status FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))," \
  "   '$.child_outputs', json((SELECT coalesce(outputs, '{}') FROM playbook_runs" \
  "                            WHERE id = json_extract(c.call, '$.child_run_id')))," \
  "   '$.child_message', (SELECT message FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))))" \
  "   FROM calls c WHERE run_id = r.id AND status = 'running')))" \
  " FROM playbook_runs r WHERE id = ?"

/* A run that was in flight, as its row says. */
typedef struct {
  int64_t id, cid, parent;
  char *pb, *scope;
} in_flight;
typedef struct { in_flight *runs; int n; } in_flight_list;

static void collect_run(void *ud, int ncols, const char **cols) {
  in_flight_list *l = ud;
  (void)ncols;
  l->runs = lsr_xrealloc(l->runs, (size_t)(l->n + 1) * sizeof *l->runs);
  l->runs[l->n++] = (in_flight){atoll(cols[0]), cols[1] ? atoll(cols[1]) : 0, cols[2] ? atoll(cols[2]) : 0,
                                cols[3] ? lsr_strdup(cols[3]) : NULL, lsr_strdup(cols[4] ? cols[4] : "new")};
}

static void fail_recovery(server *s, int64_t id, const char *why) {
  lsr_store_exec(s->store, "UPDATE playbook_runs SET status = 'failed', message = ?, update_time = ? WHERE id = ?",
                 "sdi", why, lsr_now(), id);
  lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd",
                 id, why, lsr_now());
  say("recover run %lld: failed: %s", (long long)id, why);
}

static int64_t max_id(const char *kind, void *ud) {
  server *s = ud;
  if (strcmp(kind, "pin") == 0 || strcmp(kind, "note") == 0) /* kept in their containers */
    return lsr_store_int(s->store, 0, "SELECT max(json_extract(p.value, '$.id')) FROM containers c,"
                         " json_each(c.data, '$.' || ?1) p WHERE instr(c.data, '\"' || ?1 || '\"')", "s",
                         strcmp(kind, "pin") == 0 ? "pins" : "notes");
  if (strcmp(kind, "artifact") != 0) return 0;
  return lsr_store_int(s->store, 0, "SELECT max(id) FROM artifacts", "");
}

/* A custom list or object the store kept, back into the engine (a row
 * that does not load is said and skipped: the rest still loads). */
static void restore_row(void *ud, int ncols, const char **cols) {
  server *s = ud;
  char err[1024];
  if (lsr_hook_strings(s->eng, cols[0], ncols - 1, cols + 1, err, sizeof err) < 0)
    say("store: %s '%s' does not load: %s", cols[0], cols[1], err);
}

/* ---- the watchdog's marker (engine/watchdog.h) ---- */

#define IN_STEP_NOTE "the engine stopped while this run was inside a step"

/* A run the engine died inside fails, and what it left unfinished ends
 * with it, as at a run's end. */
static void fail_killed(server *s, int64_t id, const char *why) {
  fail_recovery(s, id, why);
  lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                 " AND status = 'running'", "di", lsr_now(), id);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i", id);
  lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", id);
}

/* What the marker says of the engine's last death.  The run the watchdog
 * killed fails with its verdict.  A run that was inside a step when the
 * engine died (kill -9, a crash) resumes once, with a line in its log that
 * counts it; found inside a step a second time, it fails: a run that takes
 * the engine down is never resumed into it again.  A child playbook run
 * that died in its first turn has no row yet (its parent would start it
 * again): failing, it gets one from its parent's call, so the parent sees
 * it ended. */
static void step_death(server *s) {
  const lsr_step_death *d = lsr_watchdog_death();
  char why[512];
  if (!d) return;
  int64_t id = d->killed_run ? d->killed_run : d->in_step_run;
  if (!id) return;
  int stored = lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ?", "i", id) > 0;
  if (stored && !lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ? AND status = 'running'",
                               "i", id))
    return; /* it had ended */
  if (!stored && !lsr_store_int(s->store, 0, "SELECT count(*) FROM calls WHERE kind = 'playbook'"
                                " AND status = 'running' AND json_extract(call, '$.child_run_id') = ?", "i", id))
    return; /* nothing the store knows */
  int again = lsr_store_int(s->store, 0, "SELECT count(*) FROM run_log WHERE run_id = ? AND substr(message, 1, ?) = ?",
                            "iis", id, (int64_t)strlen(IN_STEP_NOTE), IN_STEP_NOTE) > 0;
  if (!d->killed_run && !again) {
    snprintf(why, sizeof why, IN_STEP_NOTE " (%g s into it): it resumes once; if the engine stops inside one of its"
             " steps again, it fails", d->in_step_seconds);
    lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd", id,
                   why, lsr_now());
    say("recover run %lld: %s", (long long)id, why);
    return;
  }
  if (d->killed_run) {
    snprintf(why, sizeof why, "%s", d->reason);
    say("watchdog: run %lld on container %lld was killed when the engine last ran", (long long)id,
        (long long)d->killed_container);
  } else {
    snprintf(why, sizeof why, "killed: the engine stopped twice while this run was inside a step (%g s into it"
             " this time)", d->in_step_seconds);
  }
  if (!stored)
    lsr_store_exec(s->store, "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
                   " start_time, update_time, parent_run_id) SELECT ?1, json_extract(call, '$.container_id'),"
                   " json_extract(call, '$.ref'), 0, 'running', '', 'new', ?2, ?2, run_id FROM calls"
                   " WHERE kind = 'playbook' AND status = 'running' AND json_extract(call, '$.child_run_id') = ?1"
                   " LIMIT 1", "id", id, lsr_now());
  fail_killed(s, id, why);
}

/* Every run that was in flight goes on, or ends with a reason.  Returns how
 * many went on. */
static int recover(server *s) {
  step_death(s); /* before the runs in flight are read: a killed run is not one */
  in_flight_list l = {0};
  lsr_store_each(s->store, collect_run, &l, "SELECT id, container_id, parent_run_id, playbook, scope"
                 " FROM playbook_runs WHERE status = 'running' ORDER BY id", "");
  int resumed = 0, failed = 0;
  char err[1024];
  for (int i = 0; i < l.n; i++) {
    int64_t id = l.runs[i].id, cid = l.runs[i].cid;
    char *pbid = l.runs[i].pb;
    pb_entry *p = pbid ? find_pb(s, pbid) : NULL;
    char *json = container_json(s, cid);
    char *rec = lsr_store_text(s->store, RECOVERY_JSON, "i", id);
    lsr_run *run = NULL;
    if (!p || !p->gen) {
      snprintf(err, sizeof err, "%s: playbook '%s' is gone or does not load", INTERRUPTED_BY_RESTART, pbid ? pbid : "?");
    } else if (!json || !rec) {
      snprintf(err, sizeof err, "%s: its container %lld is not in the store", INTERRUPTED_BY_RESTART, (long long)cid);
    } else {
      s->eng->forced_run_id = id;
      run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, sizeof err);
      s->eng->forced_run_id = 0;
      if (run) {
        run->recovered = 1;
        if (lsr_run_state_set(run, "recovery", rec) < 0) /* it ends at its start, with why */
          lsr_run_fail(run, INTERRUPTED_BY_RESTART ": its recovery record does not load");
        run->parent_run_id = l.runs[i].parent;
        run->ud = l.runs[i].scope; /* the run owns it now */
        l.runs[i].scope = NULL;
      }
    }
    if (run) {
      resumed++;
      say("recover run %lld: resumed (%s on container %lld)", (long long)id, p->id, (long long)cid);
    } else {
      failed++;
      fail_recovery(s, id, err);
    }
    free(pbid);
    free(l.runs[i].scope);
    free(json);
    free(rec);
  }
  free(l.runs);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'timed out' WHERE status = 'pending' AND run_id IN"
                 " (SELECT id FROM playbook_runs WHERE status != 'running')", "");
  /* an approval is asked again when its action starts again */
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE status = 'pending'"
                 " AND json_extract(prompt, '$.type') = 'approval'", "");
  lsr_store_commit(s->store);
  say("recovery: %d runs were in flight: %d resumed, %d failed", l.n, resumed, failed);
  return resumed;
}

/* ---- HTTP ---- */

typedef struct {
  char *body;
  size_t len, cap;
  int too_big;
} request;

/* A request's answer, filled by the router; the HTTP side sends it.  The
 * router never sees libmicrohttpd, so a fuzz harness can drive it. */
typedef struct {
  void *conn;
  const char *(*arg)(void *conn, const char *name); /* query arguments */
  unsigned status;
  char *body;
  const char *allow;
} http;

static int reply(http *c, unsigned status, const char *json) {
  c->status = status;
  free(c->body);
  c->body = lsr_strdup(json);
  return 1;
}

static int fail(http *c, unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *q = lsr_json_quote(msg);
  char *body = lsr_xalloc(strlen(q) + 64);
  sprintf(body, "{\"failed\": true, \"message\": %s}", q);
  int rc = reply(c, status, body);
  free(q);
  free(body);
  return rc;
}

static int reply_owned(http *c, unsigned status, char *json) {
  int rc = json ? reply(c, status, json) : fail(c, 404, "not found");
  free(json);
  return rc;
}

/* The body as a JSON object; NULL after replying 400. */
static yajl_val body_object(http *c, request *rq, int *rc) {
  char why[256];
  if (lsr_json_check(rq->body ? rq->body : "", rq->len, why, sizeof why) < 0) {
    *rc = fail(c, 400, "malformed JSON in the request body at %s", why);
    return NULL;
  }
  yajl_val v = yajl_tree_parse(rq->body, why, sizeof why);
  if (!v || !YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    *rc = fail(c, 400, "the request body must be a JSON object");
    return NULL;
  }
  return v;
}

static yajl_val field(yajl_val obj, const char *key) {
  const char *path[] = {key, NULL};
  return yajl_tree_get(obj, path, yajl_t_any);
}

/* A whole number as the API takes it (ids, pages): ASCII digits only, no
 * sign, no space, nothing after, at most INT64_MAX.  0 when s is not one. */
static int parse_id(const char *s, size_t n, int64_t *out) {
  uint64_t v = 0;
  if (n == 0 || n > 19) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits */
  }
  if (v > (uint64_t)INT64_MAX) return 0;
  *out = (int64_t)v;
  return 1;
}

/* A query argument that must be a whole number: 1 when given (in *v), 0
 * when absent, -1 after replying 400. */
static int num_arg(http *c, const char *name, int64_t *v, int *rc) {
  const char *a = c->arg ? c->arg(c->conn, name) : NULL;
  if (!a) return 0;
  if (parse_id(a, strlen(a), v)) return 1;
  *rc = fail(c, 400, "query argument '%s': expected a whole number (digits only), got '%.40s'", name, a);
  return -1;
}

/* url = prefix, then a segment up to the next '/' or the end, then *rest:
 * 1 when the segment is an id (in *id), -1 when it is not, 0 when url does
 * not start with prefix. */
static int url_id(const char *url, const char *prefix, int64_t *id, const char **rest) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) != 0) return 0;
  const char *seg = url + n, *end = strchr(seg, '/');
  if (!end) end = seg + strlen(seg);
  *rest = end;
  return parse_id(seg, (size_t)(end - seg), id) ? 1 : -1;
}

/* Commit what a request wrote before acknowledging it. */
static int durable(server *s, http *c, int *rc) {
  if (lsr_store_commit(s->store) == 0) return 1;
  say("error: refused a request, the store cannot keep it: %s", lsr_store_error(s->store));
  *rc = fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  return 0;
}

static int insert_artifact(server *s, int64_t cid, const char *json, int64_t *id) {
  double now = lsr_now();
  if (lsr_store_exec(s->store, "INSERT INTO artifacts(container_id, data, create_time)"
                     " VALUES(?, json_set(json_remove(?, '$.id'), '$.container', ?), ?)", "isid", cid, json, cid, now) < 0)
    return -1;
  *id = lsr_store_last_id(s->store);
  return lsr_store_exec(s->store, "UPDATE artifacts SET data = json_set(data, '$.id', id) WHERE id = ?", "i", *id);
}

/* {"id": N, "success": true}: what was stored, once it is on disk; a
 * container's answer adds "runs_started" (runs >= 0) */
static int reply_created(http *c, int64_t id, int runs) {
  char out[128];
  if (runs >= 0) snprintf(out, sizeof out, "{\"id\": %lld, \"success\": true, \"runs_started\": %d}", (long long)id, runs);
  else snprintf(out, sizeof out, "{\"id\": %lld, \"success\": true}", (long long)id);
  return reply(c, 200, out);
}

static int post_container(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val arts = field(v, "artifacts");
  if (arts && !YAJL_IS_ARRAY(arts)) {
    yajl_tree_free(v);
    return fail(c, 400, "field 'artifacts': expected a list");
  }
  for (size_t i = 0; arts && i < arts->u.array.len; i++)
    if (!YAJL_IS_OBJECT(arts->u.array.values[i])) {
      yajl_tree_free(v);
      return fail(c, 400, "artifacts[%zu]: expected an object", i + 1);
    }
  yajl_val label = field(v, "label"), status = field(v, "status");
  if ((label && !YAJL_IS_STRING(label)) || (status && !YAJL_IS_STRING(status))) {
    yajl_tree_free(v);
    return fail(c, 400, "fields 'label' and 'status' must be strings");
  }
  char *lab = lsr_strdup(label ? label->u.string : "events"), *sta = lsr_strdup(status ? status->u.string : "new");
  double now = lsr_now();
  int ok = lsr_store_exec(s->store, "INSERT INTO containers(label, status, data, create_time, update_time)"
                          " VALUES(?, ?, json_set(json_remove(?, '$.artifacts', '$.id'), '$.label', ?, '$.status', ?),"
                          " ?, ?)", "sssssdd", lab, sta, rq->body, lab, sta, now, now) == 0;
  int64_t cid = lsr_store_last_id(s->store);
  ok = ok && lsr_store_exec(s->store, "UPDATE containers SET data = json_set(data, '$.id', id) WHERE id = ?", "i", cid) == 0;
  for (size_t i = 0; ok && arts && i < arts->u.array.len; i++) {
    char *a = lsr_tree_to_json(arts->u.array.values[i]);
    int64_t aid;
    ok = insert_artifact(s, cid, a, &aid) == 0;
    free(a);
  }
  size_t nart = arts ? arts->u.array.len : 0;
  yajl_tree_free(v);
  if (!ok) {
    free(lab);
    free(sta);
    lsr_store_rollback(s->store);
    say("error: refused a container, the store cannot keep it: %s", lsr_store_error(s->store));
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  int matched, runs = run_active(s, cid, &matched); /* their rows go into the same commit */
  if (!durable(s, c, &rc)) {
    free(lab);
    free(sta);
    return rc;
  }
  say("ingest container %lld (%s, %zu artifacts): %d run%s started", (long long)cid, lab, nart, runs,
      runs == 1 ? "" : "s");
  if (!matched && strcmp(sta, "closed") != 0)
    say("container %lld: no active playbook takes label '%s' (playbook_info = {labels = {...}, active = true})",
        (long long)cid, lab);
  free(lab);
  free(sta);
  return reply_created(c, cid, runs);
}

static int post_artifact(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id");
  if (!cidv) cidv = field(v, "container");
  if (!cidv || !YAJL_IS_INTEGER(cidv)) {
    yajl_tree_free(v);
    return fail(c, 400, "field 'container_id': expected the id of a container");
  }
  int64_t cid = YAJL_GET_INTEGER(cidv);
  yajl_val ra = field(v, "run_automation");
  int automation = !(ra && YAJL_IS_FALSE(ra));
  yajl_tree_free(v);
  if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM containers WHERE id = ?", "i", cid))
    return fail(c, 404, "no container %lld", (long long)cid);
  int64_t aid;
  if (insert_artifact(s, cid, rq->body, &aid) < 0) {
    lsr_store_rollback(s->store);
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  lsr_store_exec(s->store, "UPDATE artifacts SET data = json_remove(data, '$.container_id', '$.run_automation')"
                 " WHERE id = ?", "i", aid);
  if (automation) run_active(s, cid, NULL);
  if (!durable(s, c, &rc)) return rc;
  say("ingest artifact %lld into container %lld", (long long)aid, (long long)cid);
  return reply_created(c, aid, -1);
}

static int post_playbook_run(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id"), pbv = field(v, "playbook_id"), scv = field(v, "scope");
  char err[1024], out[128];
  if (!cidv || !YAJL_IS_INTEGER(cidv) || !pbv || !YAJL_IS_STRING(pbv)) {
    yajl_tree_free(v);
    return fail(c, 400, "expected {\"container_id\": N, \"playbook_id\": \"repo/name\", \"scope\": \"new\"}");
  }
  char *scope = scv ? (YAJL_IS_STRING(scv) ? lsr_strdup(scv->u.string) : lsr_tree_to_json(scv)) : lsr_strdup("new");
  pb_entry *p = find_pb(s, pbv->u.string);
  int64_t cid = YAJL_GET_INTEGER(cidv);
  if (!p || !p->gen) {
    rc = fail(c, 404, "no playbook '%s'%s%s", pbv->u.string, p && p->error ? ": " : "", p && p->error ? p->error : "");
  } else if (scv && !YAJL_IS_STRING(scv) && !YAJL_IS_ARRAY(scv)) {
    rc = fail(c, 400, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
  } else {
    int64_t id = start_run(s, p, cid, scope, err, sizeof err);
    if (!id) rc = fail(c, strstr(err, "no container") ? 404 : 400, "%s", err);
    else if (durable(s, c, &rc)) {
      snprintf(out, sizeof out, "{\"playbook_run_id\": %lld, \"received\": true}", (long long)id);
      rc = reply(c, 200, out);
    }
  }
  free(scope);
  yajl_tree_free(v);
  return rc;
}

static int post_answer(server *s, http *c, request *rq, int64_t id) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val r = field(v, "responses");
  if (!r) r = field(v, "response");
  if (!r) {
    yajl_tree_free(v);
    return fail(c, 400, "expected {\"responses\": [...]}");
  }
  char *responses = lsr_tree_to_json(r);
  yajl_tree_free(v);
  int64_t run = lsr_store_int(s->store, 0, "SELECT run_id FROM prompts WHERE id = ? AND status = 'pending'", "i", id);
  char *args = lsr_xalloc(strlen(responses) + 64);
  sprintf(args, "[%lld, %s]", (long long)id, responses);
  free(responses);
  if (!run || lsr_sched_call(s->eng, run, "prompt_answer", args) < 0) {
    rc = fail(c, 404, "no pending prompt %lld", (long long)id);
  } else { /* the first answer wins: the prompt is no longer pending */
    lsr_store_exec(s->store, "UPDATE prompts SET status = 'answered' WHERE id = ?", "i", id);
    rc = reply(c, 200, "{\"success\": true}");
  }
  free(args);
  return rc;
}

static char *playbooks_json(server *s) {
  size_t cap = 256, n = 0;
  char *out = lsr_xalloc(cap);
  int count = 0;
  for (int i = 0; i < s->npbs; i++) count += s->pbs[i].gen != NULL || s->pbs[i].error != NULL;
  n = (size_t)snprintf(out, cap, "{\"count\": %d, \"live_generations\": %d, \"data\": [", count, s->live_gens);
  int first = 1;
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (!p->gen && !p->error) continue;
    char *id = lsr_json_quote(p->id), *path = lsr_json_quote(p->path);
    char *err = p->error ? lsr_json_quote(p->error) : lsr_strdup("null");
    /* the labels, quoted, joined: sized from what quoting made of them */
    size_t llen = 0;
    char *labels = lsr_strdup("");
    for (int k = 0; p->labels && p->labels[k]; k++) {
      char *l = lsr_json_quote(p->labels[k]);
      labels = lsr_xrealloc(labels, llen + strlen(l) + 3);
      llen += (size_t)sprintf(labels + llen, "%s%s", k ? ", " : "", l);
      free(l);
    }
    size_t need = 2 * strlen(id) + strlen(path) + strlen(err) + llen + 256;
    if (n + need >= cap) out = lsr_xrealloc(out, cap = (n + need) * 2);
    n += (size_t)sprintf(out + n, "%s{\"id\": %s, \"name\": %s, \"path\": %s, \"generation\": %d, \"active\": %s,"
                         " \"loaded\": %s, \"labels\": [%s", first ? "" : ", ", id, id, path, p->generation,
                         p->active ? "true" : "false", p->gen ? "true" : "false", labels);
    free(labels);
    n += (size_t)sprintf(out + n, "], \"error\": %s}", err);
    first = 0;
    free(id);
    free(path);
    free(err);
  }
  if (n + 4 >= cap) out = lsr_xrealloc(out, cap + 4);
  strcpy(out + n, "]}");
  return out;
}

#define RUN_JSON \
  "json_object('id', id, 'playbook', playbook, 'container', container_id, 'generation', generation," \
  " 'status', status, 'message', message, 'misc', json_object('scope', scope)," \
  " 'start_time', strftime('%Y-%m-%dT%H:%M:%fZ', start_time, 'unixepoch')," \
  " 'update_time', strftime('%Y-%m-%dT%H:%M:%fZ', update_time, 'unixepoch')," \
  " 'parent_playbook_run', parent_run_id, 'outputs', json(coalesce(outputs, '{}')))"

/* ---- the run log, a page at a time ---- */

#define LOG_PAGE_SIZE 100         /* lines per page when page_size is not given */
#define LOG_PAGE_MAX 1000         /* lines per page at most (page_size=0 asks for that) */
#define LOG_PAGE_BYTES (4u << 20) /* message text per answer, as JSON */
#define LOG_PREVIEW 256           /* what a line past that budget still shows, as JSON */

typedef struct {
  char *out;
  size_t len, cap;
  size_t budget; /* of LOG_PAGE_BYTES, what is left */
  int rows;
} log_page;

static void page_put(log_page *p, const char *text, size_t n) {
  if (p->len + n + 1 > p->cap) p->out = lsr_xrealloc(p->out, p->cap = (p->len + n + 1) * 2);
  memcpy(p->out + p->len, text, n);
  p->len += n;
  p->out[p->len] = 0;
}

/* text as a JSON string of at most max bytes, quotes included, cut (if it
 * must be) at a character's start; how many bytes of text it holds. */
static size_t page_put_string(log_page *p, const char *text, size_t max) {
  static const char hex[] = "0123456789abcdef";
  size_t used = 2, i = 0;
  for (; text[i]; i++) {
    unsigned char ch = (unsigned char)text[i];
    size_t w = ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t' ? 2 : ch < 0x20 ? 6 : 1;
    if (used + w > max) break;
    used += w;
  }
  if (text[i])
    while (i > 0 && ((unsigned char)text[i] & 0xC0) == 0x80) i--;
  if (p->len + used + 1 > p->cap) p->out = lsr_xrealloc(p->out, p->cap = (p->len + used + 1) * 2);
  char *o = p->out + p->len;
  *o++ = '"';
  for (size_t k = 0; k < i; k++) {
    unsigned char ch = (unsigned char)text[k];
    if (ch == '"' || ch == '\\') { *o++ = '\\'; *o++ = (char)ch; }
    else if (ch == '\n') { *o++ = '\\'; *o++ = 'n'; }
    else if (ch == '\r') { *o++ = '\\'; *o++ = 'r'; }
    else if (ch == '\t') { *o++ = '\\'; *o++ = 't'; }
    else if (ch < 0x20) { memcpy(o, "\\u00", 4); o[4] = hex[ch >> 4]; o[5] = hex[ch & 15]; o += 6; }
    else *o++ = (char)ch;
  }
  *o++ = '"';
  p->len = (size_t)(o - p->out);
  p->out[p->len] = 0;
  return i;
}

/* One line: level, time, message.  Its message comes whole while the
 * answer's budget lasts; past it, cut to LOG_PREVIEW, marked truncated. */
static void log_row(void *ud, int ncols, const char **cols) {
  log_page *p = ud;
  const char *msg = ncols > 2 && cols[2] ? cols[2] : "";
  size_t before, took, used, whole = strlen(msg);
  const char *open = p->rows++ ? ", {\"message\": " : "{\"message\": ";
  page_put(p, open, strlen(open));
  before = p->len;
  took = page_put_string(p, msg, p->budget > LOG_PREVIEW ? p->budget : LOG_PREVIEW);
  used = p->len - before;
  p->budget = used < p->budget ? p->budget - used : 0;
  page_put(p, ", \"message_type\": ", strlen(", \"message_type\": "));
  page_put_string(p, cols[0] ? cols[0] : "", 64);
  page_put(p, ", \"time\": ", strlen(", \"time\": "));
  page_put_string(p, cols[1] ? cols[1] : "", 64);
  if (took < whole) {
    char more[80];
    int n = snprintf(more, sizeof more, ", \"truncated\": true, \"message_bytes\": %zu", whole);
    page_put(p, more, (size_t)n);
  }
  page_put(p, "}", 1);
}

/* GET /rest/playbook_run/N/log?page=P&page_size=S: as SOAR's REST pages,
 * {"count": lines in all, "num_pages": n, "page": P, "page_size": S,
 * "data": [the lines of page P, from line P*S on]}.  At most LOG_PAGE_MAX
 * lines and about LOG_PAGE_BYTES of text whatever the log holds. */
static int get_log(server *s, http *c, int64_t id) {
  int64_t page = 0, size = LOG_PAGE_SIZE;
  int rc;
  if (num_arg(c, "page", &page, &rc) < 0 || num_arg(c, "page_size", &size, &rc) < 0) return rc;
  if (size == 0 || size > LOG_PAGE_MAX) size = LOG_PAGE_MAX;
  if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ?", "i", id))
    return fail(c, 404, "no playbook run %lld", (long long)id);
  int64_t count = lsr_store_int(s->store, 0, "SELECT count(*) FROM run_log WHERE run_id = ?", "i", id);
  int64_t pages = (count + size - 1) / size;
  log_page p = {.budget = LOG_PAGE_BYTES};
  char head[160];
  int n = snprintf(head, sizeof head, "{\"count\": %lld, \"num_pages\": %lld, \"page\": %lld, \"page_size\": %lld,"
                   " \"data\": [", (long long)count, (long long)pages, (long long)page, (long long)size);
  page_put(&p, head, (size_t)n);
  if (page < pages) /* so page * size does not overflow */
    lsr_store_each(s->store, log_row, &p, "SELECT level, strftime('%Y-%m-%dT%H:%M:%fZ', time, 'unixepoch'), message"
                   " FROM run_log WHERE run_id = ? ORDER BY id LIMIT ? OFFSET ?", "iii", id, size, page * size);
  page_put(&p, "]}", 2);
  return reply_owned(c, 200, p.out);
}

static int get(server *s, http *c, const char *url) {
  int64_t id = 0, cid = 0;
  const char *rest;
  int rc, given;
  /* route() checked the path with allowed_methods: its id parses */
  if (url_id(url, "/rest/container/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_set(data, '$.id', id, '$.artifact_count', (SELECT count(*) FROM artifacts WHERE container_id = c.id))"
        " FROM containers c WHERE id = ?", "i", id));
  if (strcmp(url, "/rest/container") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT json_set(data, '$.id', id) AS data FROM containers ORDER BY id)", ""));
  if (strcmp(url, "/rest/artifact") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT data FROM artifacts WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii", (int64_t)given, cid));
  }
  if (url_id(url, "/rest/artifact/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store, "SELECT data FROM artifacts WHERE id = ?", "i", id));
  if (url_id(url, "/rest/playbook_run/", &id, &rest) == 1) {
    if (!*rest)
      return reply_owned(c, 200, lsr_store_text(s->store, "SELECT " RUN_JSON " FROM playbook_runs WHERE id = ?", "i", id));
    if (strcmp(rest, "/log") == 0) return get_log(s, c, id);
  }
  if (strcmp(url, "/rest/playbook_run") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r)))"
        " FROM (SELECT " RUN_JSON " AS r FROM playbook_runs WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii",
        (int64_t)given, cid));
  }
  if (strcmp(url, "/rest/action_run") == 0) {
    int64_t rid = 0;
    if ((given = num_arg(c, "_filter_playbook_run", &rid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r))) FROM (SELECT json_object('id', id,"
        " 'playbook_run', run_id, 'name', name, 'action', action, 'status', status, 'callback', callback,"
        " 'parameters', json(coalesce(parameters, '[]')), 'app_runs', (SELECT json_group_array(id) FROM app_runs"
        " WHERE action_run_id = a.id), 'start_time', strftime('%Y-%m-%dT%H:%M:%fZ', start_time, 'unixepoch'),"
        " 'update_time', strftime('%Y-%m-%dT%H:%M:%fZ', update_time, 'unixepoch')) AS r FROM action_runs a"
        " WHERE ?1 = 0 OR run_id = ?2 ORDER BY id)", "ii", (int64_t)given, rid));
  }
  if (url_id(url, "/rest/app_run/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('id', id, 'action_run', action_run_id, 'playbook_run', run_id, 'asset', asset,"
        " 'app_name', app, 'status', status, 'message', message, 'result_data', json(result),"
        " 'end_time', strftime('%Y-%m-%dT%H:%M:%fZ', end_time, 'unixepoch')) FROM app_runs WHERE id = ?", "i", id));
  if (strcmp(url, "/rest/prompt") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json_object('id', id, 'playbook_run', run_id,"
        " 'name', name, 'status', status, 'prompt', json(prompt), 'responses', json(responses)))) FROM prompts", ""));
  if (strcmp(url, "/rest/playbook") == 0) return reply_owned(c, 200, playbooks_json(s));
  return fail(c, 404, "no such resource: %s", url);
}

/* The paths with an id, and what follows the id. */
static const struct {
  const char *prefix, *rest, *methods;
} id_paths[] = {
  {"/rest/container/", "", "GET"},    {"/rest/artifact/", "", "GET"},         {"/rest/app_run/", "", "GET"},
  {"/rest/playbook_run/", "", "GET"}, {"/rest/playbook_run/", "/log", "GET"}, {"/rest/prompt/", "/answer", "POST"},
};

/* Which methods a path takes, for 405 (NULL: unknown path; *bad: a path
 * with an id whose id is not one, such as "+1", " 1" or "1x"). */
static const char *allowed_methods(const char *url, int *bad) {
  *bad = 0;
  if (strcmp(url, "/rest/container") == 0 || strcmp(url, "/rest/artifact") == 0 ||
      strcmp(url, "/rest/playbook_run") == 0)
    return "GET, POST";
  if (strcmp(url, "/rest/action_run") == 0 || strcmp(url, "/rest/playbook") == 0 || strcmp(url, "/rest/prompt") == 0)
    return "GET";
  for (size_t i = 0; i < sizeof id_paths / sizeof *id_paths; i++) {
    int64_t id;
    const char *rest;
    int k = url_id(url, id_paths[i].prefix, &id, &rest);
    if (k < 0) *bad = 1;
    if (k > 0 && strcmp(rest, id_paths[i].rest) == 0) return id_paths[i].methods;
  }
  return NULL;
}

/* method is one of the comma-separated methods in allowed, exactly. */
static int method_in(const char *allowed, const char *method) {
  size_t m = strlen(method);
  for (const char *p = allowed; *p;) {
    size_t n = strcspn(p, ",");
    if (n == m && strncmp(p, method, m) == 0) return 1;
    p += n;
    while (*p == ',' || *p == ' ') p++;
  }
  return 0;
}

/* What the request line alone refuses: 400 (a malformed id), 404, 405.
 * 1 after replying. */
static int refuse(http *c, const char *url, const char *method) {
  int bad;
  const char *allowed = allowed_methods(url, &bad);
  if (!allowed && bad) return fail(c, 400, "malformed id in %s: an id is digits only", url);
  if (!allowed) return fail(c, 404, "no such resource: %s", url);
  if (!method_in(allowed, method)) {
    c->allow = allowed;
    return fail(c, 405, "method %s not allowed on %s (allowed: %s)", method, url, allowed);
  }
  return 0;
}

/* Every request after its token was checked. */
static int route(server *s, http *c, const char *url, const char *method, request *rq) {
  if (s->stopping) return fail(c, 503, "shutting down");
  commit_now(s); /* what a request sees is on disk: a crash after it keeps it */
  if (refuse(c, url, method)) return 1;
  if (strcmp(method, "POST") == 0) {
    if (rq->too_big) return fail(c, 413, "the request body is larger than %u bytes", MAX_BODY);
    int64_t id;
    const char *rest;
    if (strcmp(url, "/rest/container") == 0) return post_container(s, c, rq);
    if (strcmp(url, "/rest/artifact") == 0) return post_artifact(s, c, rq);
    if (strcmp(url, "/rest/playbook_run") == 0) return post_playbook_run(s, c, rq);
    if (url_id(url, "/rest/prompt/", &id, &rest) == 1) return post_answer(s, c, rq, id);
  }
  return get(s, c, url);
}

static const char *mhd_arg(void *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static int token_ok(server *s, struct MHD_Connection *c) {
  const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "ph-auth-token");
  if (!t) return 0;
  size_t a = strlen(t), b = strlen(s->token);
  unsigned diff = (unsigned)(a ^ b);
  for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)t[i] ^ (unsigned char)s->token[i];
  return diff == 0; /* the same time whatever the first difference */
}

/* An open connection, for the header deadline: since when it waits for a
 * request's headers (its accept, or the end of its last request). */
struct conn {
  struct conn *prev, *next;
  double since;
  int fd;
  int in_request; /* the headers are in: the deadline no longer applies */
  int cut;        /* shut down by the sweep; libmicrohttpd closes it */
};

static double mono_now(void) { return (double)uv_hrtime() / 1e9; }

static struct conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}

static void mhd_run(server *s);

/* Connections whose headers are not in by their deadline are shut down
 * (libmicrohttpd then reads the end and closes them).  A trickle of header
 * lines does not extend it: the deadline counts from the accept, not from
 * the last byte (libmicrohttpd's own timeout is an idle one). */
static void sweep_headers(uv_timer_t *t) {
  server *s = t->data;
  double now = mono_now();
  int cut = 0, late = 0;
  for (struct conn *k = s->conns; k && !late; k = k->next)
    late = !k->in_request && !k->cut && now - k->since > s->header_deadline;
  /* headers that came while the loop was busy (a long step) are read
   * first: only those still incomplete are late */
  if (late) mhd_run(s);
  for (struct conn *k = s->conns; k; k = k->next)
    if (!k->in_request && !k->cut && now - k->since > s->header_deadline && k->fd >= 0) {
      shutdown(k->fd, SHUT_RDWR);
      k->cut = 1;
      cut++;
    }
  if (cut) {
    say("http: closed %d connection%s whose request headers took more than %g s", cut, cut == 1 ? "" : "s",
        s->header_deadline);
    mhd_run(s);
  }
  if (!s->conns) uv_timer_stop(t);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_ConnectionNotificationCode what) {
  server *s = cls;
  struct conn *k = *ctx;
  if (what == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = lsr_xalloc(sizeof *k);
    k->fd = i ? (int)i->connect_fd : -1;
    k->since = mono_now();
    k->next = s->conns;
    if (s->conns) s->conns->prev = k;
    s->conns = k;
    *ctx = k;
    if (!uv_is_active((uv_handle_t *)&s->sweep)) uv_timer_start(&s->sweep, sweep_headers, 250, 250);
  } else if (k) { /* closed: the fd is closed right after, never shut down again */
    if (k->prev) k->prev->next = k->next;
    else s->conns = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    *ctx = NULL;
  }
}

/* The answer, queued; an answer given on the headers closes the connection
 * (the body, if any, is never read). */
static enum MHD_Result send_answer(struct MHD_Connection *c, http *h, int close) {
  const char *body = h->body ? h->body : "";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (h->allow) MHD_add_response_header(r, "Allow", h->allow);
  if (close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result rc = MHD_queue_response(c, h->status, r);
  MHD_destroy_response(r);
  free(h->body);
  return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con) {
  server *s = cls;
  request *rq = *con;
  if (!rq) { /* the headers are in; no byte of the body was read */
    struct conn *k = conn_of(c);
    if (k) k->in_request = 1;
    http h = {.conn = c, .arg = mhd_arg};
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t n = 0;
    if (!token_ok(s, c)) fail(&h, 401, "a valid ph-auth-token header is required");
    else if (s->stopping) fail(&h, 503, "shutting down");
    else if (len && (!parse_id(len, strlen(len), &n) || n > (int64_t)MAX_BODY))
      fail(&h, 413, "the request body is larger than %u bytes", MAX_BODY);
    else if (!refuse(&h, url, method)) { /* 400, 404, 405 on the request line alone */
      *con = lsr_xalloc(sizeof *rq);
      return MHD_YES; /* now the body, if any */
    }
    return send_answer(c, &h, 1);
  }
  if (*upload_size) {
    if (rq->len + *upload_size > MAX_BODY) rq->too_big = 1;
    else {
      if (rq->len + *upload_size + 1 > rq->cap) rq->body = lsr_xrealloc(rq->body, rq->cap = (rq->len + *upload_size) * 2 + 1);
      memcpy(rq->body + rq->len, upload, *upload_size);
      rq->len += *upload_size;
      rq->body[rq->len] = 0;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  http h = {.conn = c, .arg = mhd_arg};
  route(s, &h, url, method, rq);
  return send_answer(c, &h, 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con, enum MHD_RequestTerminationCode why) {
  request *rq = *con;
  struct conn *k = conn_of(c);
  if (k) { /* the next request's headers have their own deadline */
    k->in_request = 0;
    k->since = mono_now();
  }
  if (rq) free(rq->body);
  free(rq);
  *con = NULL;
}

/* libmicrohttpd's messages, through say() and at most 20 per 10 s (a flood
 * of bad connections must not flood the log). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  double now = mono_now();
  if (now - s->mhd_log_since >= 10) {
    if (s->mhd_dropped) say("http: %u more messages of libmicrohttpd not logged", s->mhd_dropped);
    s->mhd_log_since = now;
    s->mhd_logged = s->mhd_dropped = 0;
  }
  if (s->mhd_logged++ >= 20) {
    s->mhd_dropped++;
    return;
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  say("http: %s", msg);
}

static int hex_digit(char ch) {
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* %HH in paths and query arguments, decoded; but %00 stays as it is: a NUL
 * would cut the text short ("/rest/container/1%00x" read as container 1). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *text) {
  char *w = text;
  for (const char *r = text; *r;) {
    int hi, lo;
    if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 && (hi | lo)) {
      *w++ = (char)(hi * 16 + lo);
      r += 3;
    } else
      *w++ = *r++;
  }
  *w = 0;
  return (size_t)(w - text);
}

/* MHD runs on our loop: its epoll fd is polled, its timeouts are timers. */
static void mhd_timeout(uv_timer_t *t) { mhd_run(t->data); }

static void mhd_ready(uv_poll_t *p, int status, int events) { mhd_run(p->data); }

static void mhd_run(server *s) {
  MHD_run(s->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) uv_timer_start(&s->mhd_timer, mhd_timeout, ms, 0);
  else uv_timer_stop(&s->mhd_timer);
  /* what the requests wrote is committed before the next turn */
}

/* ---- start and stop ---- */

static char *read_or_make_token(const char *path, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (access(path, F_OK) == 0) {
    if (lsr_read_file(path, &text, &len, 4096, err, errlen) < 0) return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
    if (len < 16) {
      snprintf(err, errlen, "%s: the token is too short (16 characters at least)", path);
      free(text);
      return NULL;
    }
    return text;
  }
  unsigned char raw[24];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "cannot read /dev/urandom for a token");
    return NULL;
  }
  close(fd);
  char *tok = lsr_xalloc(sizeof raw * 2 + 1);
  for (size_t i = 0; i < sizeof raw; i++) sprintf(tok + 2 * i, "%02x", raw[i]);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) || write(fd, "\n", 1) != 1) {
    snprintf(err, errlen, "%s: cannot write the token: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(tok);
    return NULL;
  }
  close(fd);
  say("token written to %s (mode 0600)", path);
  return tok;
}

static void on_signal(uv_signal_t *h, int sig) {
  server *s = h->data;
  if (s->stopping) return;
  s->stopping = 1;
  say("signal %d: stopping (%d runs in flight stay in the store)", sig, s->eng->live_runs);
  uv_stop(s->eng->loop);
}

static const char usage_serve[] =
  "usage: luasoar serve --scripts DIR [--db FILE] [--listen HOST:PORT] [--token-file FILE]\n"
  "\n"
  "Runs the engine as a service: containers arrive over REST, active playbooks\n"
  "run on them, everything is kept in SQLite, and the scripts folder is watched\n"
  "(a changed playbook is a new generation; runs in flight keep theirs).\n"
  "\n"
  "  --scripts DIR      playbooks/, custom_functions/, apps/, assets.json, custom_lists/\n"
  "  --db FILE          the store (default ./luasoar.db)\n"
  "  --listen HOST:PORT (default 127.0.0.1:8420)\n"
  "  --max-db-pages N   cap the store at N pages of 4 KiB (to test a full disk)\n"
  "  --limit NAME=N     an engine limit, as for luasoar run (repeatable)\n"
  "  --token-file FILE  the API token (default: FILE.token beside the store, created\n"
  "                     on first start with a random token, mode 0600); every request\n"
  "                     needs the header ph-auth-token: TOKEN\n"
  "  --header-deadline S  seconds a request's headers may take from the connection's\n"
  "                     accept (or its last answer); later, it is closed (default 10)\n"
  "  --per-address N    open connections per client address (default 32)\n";

/* The store, the token, the engine over the scripts, the playbooks, and
 * the runs recovered; everything but HTTP, watchers and signals. */
static int server_open(server *sp, const char *scripts, const char *db, const char *max_pages,
                       const char *token_file, int with_token, const char **limits, int nlimits,
                       char *err, size_t errlen) {
  server s;
  char path[4096];
  memset(&s, 0, sizeof s);
  s.store = lsr_store_open(db, err, errlen);
  if (!s.store) return -1;
  if (max_pages) { /* a store that fills up (tests of a full disk) */
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lld", atoll(max_pages));
    lsr_store_exec(s.store, pragma, "");
    lsr_store_commit(s.store);
  }
  snprintf(path, sizeof path, "%s.token", db);
  s.token = with_token ? read_or_make_token(token_file ? token_file : path, err, errlen) : lsr_strdup("");
  if (!s.token) { lsr_store_close(s.store); return -1; }
  s.eng = lsr_engine_new(NULL, err, errlen);
  if (!s.eng) return -1;
  lsr_engine *eng = s.eng;
  for (int i = 0; i < nlimits; i++) /* before recovery: recovered runs get them too */
    if (lsr_limit_set(eng, limits[i], err, errlen) < 0) return -1;
  s.scripts = lsr_strdup(scripts);
  eng->scripts_dir = lsr_strdup(scripts);
  char apps[4096], assets[4096], lists[4096];
  snprintf(apps, sizeof apps, "%s/apps", scripts);
  snprintf(assets, sizeof assets, "%s/assets.json", scripts);
  snprintf(lists, sizeof lists, "%s/custom_lists", scripts);
  if (lsr_config_load(eng->cfg, apps, assets, 0, err, errlen) < 0 || lsr_lists_load(eng, lists, err, errlen) < 0)
    return -1;
  /* the store's lists and objects are newer than the files'; each with the
   * playbook that answers for it (quotas) */
  lsr_store_exec(s.store, "CREATE TABLE IF NOT EXISTS shared_owners(kind TEXT, container_key TEXT, key TEXT,"
                 " playbook TEXT, PRIMARY KEY(kind, container_key, key))", "");
  lsr_store_commit(s.store);
  lsr_store_each(s.store, restore_row, &s, "SELECT 'seed_list', l.name, l.rows, (SELECT w.playbook FROM shared_owners w"
                 " WHERE w.kind = 'list' AND w.container_key = '' AND w.key = l.name) FROM custom_lists l", "");
  lsr_store_each(s.store, restore_row, &s, "SELECT 'restore_object', o.container_key, o.key, o.value, (SELECT"
                 " w.playbook FROM shared_owners w WHERE w.kind = 'object' AND w.container_key = o.container_key"
                 " AND w.key = o.key) FROM objects o", "");
  /* ids go on from the store's */
  eng->next_run_id = lsr_store_int(s.store, 0, "SELECT max(id) FROM playbook_runs", "") + 1;
  eng->next_action_run_id = lsr_store_int(s.store, 0, "SELECT max(coalesce((SELECT max(id) FROM action_runs), 0),"
                                          " coalesce((SELECT max(id) FROM prompts), 0),"
                                          " coalesce((SELECT max(id) FROM calls WHERE kind = 'custom_function'), 0))",
                                          "") + 1;
  eng->next_app_run_id = lsr_store_int(s.store, 0, "SELECT max(id) FROM app_runs", "") + 1;
  *sp = s;
  /* the observers point at the caller's struct */
  eng->obs = (lsr_observer){.on_log = on_log, .on_run_end = on_run_end, .on_run_start = on_run_start,
                            .on_action = on_action, .on_app_run = on_app_run, .on_delivered = on_delivered,
                            .persist = persist, .max_id = max_id, .load = load_stored, .ud = sp};
  scan(sp);
  recover(sp);
  return 0;
}

/* For the fuzz harness of request bodies: a server with no HTTP; requests
 * go straight to the router, and the engine runs what they start. */
void *lsr_serve_test_open(const char *scripts, const char *db, char *err, size_t errlen) {
  server *s = lsr_xalloc(sizeof *s);
  if (server_open(s, scripts, db, NULL, NULL, 0, NULL, 0, err, errlen) < 0) {
    free(s);
    return NULL;
  }
  return s;
}

unsigned lsr_serve_test_request(void *srv, const char *method, const char *url, const char *body, size_t len,
                                char **out) {
  server *s = srv;
  request rq = {0};
  rq.body = lsr_strndup(body, len);
  rq.len = len;
  rq.too_big = len > MAX_BODY;
  http h = {0};
  route(s, &h, url, method, &rq);
  lsr_engine_drain(s->eng);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store);
  free(rq.body);
  *out = h.body ? h.body : lsr_strdup("");
  return h.status;
}

int lsr_serve_main(int argc, char **argv) {
  const char *scripts = NULL, *db = "luasoar.db", *listen = "127.0.0.1:8420", *token_file = NULL, *max_pages = NULL;
  const char *deadline = NULL, *per_address = NULL;
  const char *limits[16];
  int nlimits = 0;
  for (int i = 0; i < argc; i++) {
    const char **dst = NULL;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(usage_serve, stdout); return 0; }
    if (strcmp(argv[i], "--scripts") == 0) dst = &scripts;
    else if (strcmp(argv[i], "--db") == 0) dst = &db;
    else if (strcmp(argv[i], "--listen") == 0) dst = &listen;
    else if (strcmp(argv[i], "--token-file") == 0) dst = &token_file;
    else if (strcmp(argv[i], "--max-db-pages") == 0) dst = &max_pages;
    else if (strcmp(argv[i], "--header-deadline") == 0) dst = &deadline;
    else if (strcmp(argv[i], "--per-address") == 0) dst = &per_address;
    else if (strcmp(argv[i], "--limit") == 0 && nlimits < 16) dst = &limits[nlimits++];
    else {
      fprintf(stderr, "luasoar serve: unknown argument '%s' (see 'luasoar serve --help')\n", argv[i]);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "luasoar serve: option '%s' needs a value\n", argv[i]);
      return 2;
    }
    *dst = argv[++i];
  }
  if (!scripts) { fprintf(stderr, "luasoar serve: --scripts DIR is required\n"); return 2; }
  struct stat sb;
  if (stat(scripts, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "luasoar serve: %s: not a folder\n", scripts);
    return 2;
  }
  char *end = NULL;
  double header_deadline = deadline ? strtod(deadline, &end) : HEADER_DEADLINE;
  int64_t per_ip = CONN_PER_ADDRESS;
  if ((end && (end == deadline || *end)) || !(header_deadline > 0 && header_deadline <= 3600)) {
    fprintf(stderr, "luasoar serve: --header-deadline %s: expected seconds, more than 0 and at most 3600\n", deadline);
    return 2;
  }
  if (per_address && (!parse_id(per_address, strlen(per_address), &per_ip) || per_ip < 1 || per_ip > 100000)) {
    fprintf(stderr, "luasoar serve: --per-address %s: expected a number from 1 to 100000\n", per_address);
    return 2;
  }
  char host[256];
  int port;
  const char *colon = strrchr(listen, ':');
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  if (!colon || colon - listen >= (long)sizeof host || (port = atoi(colon + 1)) <= 0 || port > 65535) {
    fprintf(stderr, "luasoar serve: --listen %s: expected HOST:PORT\n", listen);
    return 2;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &addr.sin_addr) != 1) {
    fprintf(stderr, "luasoar serve: --listen %s: not an IPv4 address\n", listen);
    return 2;
  }

  char err[2048], marker[4096], marker_err[2048] = "";
  server s;
  /* the watchdog's step marker, beside the store: recovery reads the last
   * death from it (its error is said after the store's own checks) */
  snprintf(marker, sizeof marker, "%s-step", db);
  lsr_watchdog_open(marker, marker_err, sizeof marker_err);
  if (server_open(&s, scripts, db, max_pages, token_file, 1, limits, nlimits, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  if (marker_err[0]) {
    fprintf(stderr, "luasoar serve: %s\n", marker_err);
    return 2;
  }
  lsr_engine *eng = s.eng;
  s.header_deadline = header_deadline;
  /* connections take file descriptors: as many as the hard limit allows,
   * and room kept for the store, apps' pipes and the watchers */
  struct rlimit nofile;
  unsigned conn_limit = CONN_LIMIT;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < 4096 && nofile.rlim_max > nofile.rlim_cur) {
      nofile.rlim_cur = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 4096 ? 4096 : nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < CONN_LIMIT * 2)
      conn_limit = nofile.rlim_cur > 512 ? (unsigned)nofile.rlim_cur / 2 : 128;
  }
  s.mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, &s,
                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &s, /* first: it logs what the others say */
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, &s,
                           MHD_OPTION_NOTIFY_CONNECTION, on_connection, &s,
                           MHD_OPTION_UNESCAPE_CALLBACK, unescape, &s,
                           MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                           MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_ip,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
  if (!s.mhd) {
    fprintf(stderr, "luasoar serve: cannot listen on %s: %s\n", listen, strerror(errno));
    return 2;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s.mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(eng->loop, &s.mhd_poll, info->epoll_fd);
  s.mhd_poll.data = &s;
  uv_poll_start(&s.mhd_poll, UV_READABLE, mhd_ready);
  uv_timer_init(eng->loop, &s.mhd_timer);
  s.mhd_timer.data = &s;
  uv_timer_init(eng->loop, &s.sweep);
  s.sweep.data = &s;
  uv_timer_init(eng->loop, &s.debounce);
  s.debounce.data = &s;
  watch_dir(&s, scripts);
  uv_check_init(eng->loop, &s.commit);
  s.commit.data = &s;
  uv_check_start(&s.commit, (uv_check_cb)commit_turn);
  uv_prepare_init(eng->loop, &s.commit_idle);
  s.commit_idle.data = &s;
  uv_prepare_start(&s.commit_idle, (uv_prepare_cb)commit_turn);
  uv_signal_init(eng->loop, &s.sig_int);
  uv_signal_init(eng->loop, &s.sig_term);
  s.sig_int.data = s.sig_term.data = &s;
  uv_signal_start(&s.sig_int, on_signal, SIGINT);
  uv_signal_start(&s.sig_term, on_signal, SIGTERM);
  say("listening on %s:%d, store %s, scripts %s, %d playbooks", host, port, db, scripts, s.npbs);
  /* recovery is committed: the marker starts clean and the watchdog watches */
  if (lsr_watchdog_start(eng->step_seconds, LSR_WATCHDOG_SERVE, NULL, 0, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  mhd_run(&s);
  uv_run(eng->loop, UV_RUN_DEFAULT);

  /* stopping: what was done is committed, the store is closed */
  MHD_stop_daemon(s.mhd);
  commit_turn((uv_handle_t *)&s.commit);
  lsr_store_close(s.store);
  lsr_exec_reaper_close(eng->loop); /* apps in flight and what they left behind die with us */
  say("stopped");
  fflush(stderr);
  _exit(0); /* runs in flight are in the store; nothing else to tear down */
}
