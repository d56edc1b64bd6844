/* playbooks.c: the playbook registry of `luasoar serve`: loading each
 * playbook as a generation, retiring old ones, and reloading what changes in
 * the watched scripts folder (inotify, debounced). */
#include "internal.h"

/* ---- playbooks ---- */

pb_entry *srv_find_pb(server *s, const char *id) {
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
  srv_free_gen_if_done(s, g);
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
    srv_say("reload %s failed, generation %d keeps serving: %s", p->id, p->generation, err);
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
  srv_say("reload %s: generation %d%s", p->id, p->generation, active ? " (active)" : "");
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

void srv_scan(server *s) {
  char dir[4096];
  for (int i = 0; i < s->npbs; i++) s->pbs[i].present = 0;
  snprintf(dir, sizeof dir, "%s/playbooks", s->scripts);
  walk(s, dir, maybe_pb);
  for (int i = 0; i < s->npbs; i++) { /* a deleted file stops new runs */
    pb_entry *p = &s->pbs[i];
    if (p->present || !p->gen) continue;
    srv_say("playbook %s deleted: no new runs", p->id);
    retire(s, p->gen);
    p->gen = NULL;
    p->active = 0;
  }
  /* custom functions: dropped from the cache, compiled again on next use */
  for (int i = 0; i < s->eng->ngens; i++) {
    struct stat sb;
    lsr_gen *g = s->eng->gens[i];
    if (stat(g->path, &sb) == 0 && (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9 == g->mtime) continue;
    srv_say("custom function %s changed", g->path);
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
      srv_say("reload of apps and assets failed, the previous ones keep serving: %s", err);
      lsr_config_free(cfg);
      free(cfg);
    } else {
      lsr_config *old = s->eng->cfg;
      s->eng->cfg = cfg;
      old->refs++;
      lsr_config_release(s->eng, old);
      srv_say("reload apps and assets: %d apps, %d assets", cfg->napps, cfg->nassets);
    }
  }
  srv_cluster_playbooks(s); /* the other nodes' GET /rest/playbook */
}

/* ---- watching the scripts folder ---- */

static void unwatch(server *s);

static void rescan(uv_timer_t *t) {
  server *s = t->data;
  srv_scan(s);
  unwatch(s); /* new folders get watched too */
  srv_watch_dir(s, s->scripts);
}

static void on_fs(uv_fs_event_t *h, const char *name, int events, int status) {
  server *s = h->data;
  uv_timer_start(&s->debounce, rescan, DEBOUNCE_MS, 0); /* editors write in several steps */
}

void srv_watch_dir(server *s, const char *dir) {
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
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) srv_watch_dir(s, path);
  }
  if (d) closedir(d);
}

static void unwatch(server *s) {
  for (int i = 0; i < s->nwatch; i++) uv_close((uv_handle_t *)s->watch[i], (uv_close_cb)free);
  free(s->watch);
  s->watch = NULL;
  s->nwatch = 0;
}
