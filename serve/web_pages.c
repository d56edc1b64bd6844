/* web_pages.c: the web view's pages: sign-in, runs, a run, containers, a
 * container, playbooks; built from the store's JSON, every text escaped. */
#include "web.h"

/* ---- views ---- */

int web_sign_in(http *c, const char *why) {
  web_buf b = {0};
  web_page_start(&b, "Sign in", NULL, 0);
  web_puts(&b, "<section class=\"signin\"><h1>luasoar</h1><form method=\"post\" action=\"/session\">"
            "<label for=\"token\">API token</label>"
            "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus>"
            "<button type=\"submit\">Sign in</button></form>");
  if (why) {
    web_puts(&b, "<p class=\"error\" role=\"alert\">");
    web_esc(&b, why);
    web_puts(&b, "</p>");
  }
  web_puts(&b, "<p class=\"hint\">The token is in the server's token file (<code>luasoar.db.token</code> beside a"
            " SQLite store).</p></section>");
  return web_page_end(c, &b, why ? 401 : 200);
}

/* run ids with a pending prompt (waiting) */
typedef struct {
  int64_t *ids;
  int n;
} id_set;

static int in_set(const id_set *s, int64_t id) {
  for (int i = 0; i < s->n; i++)
    if (s->ids[i] == id) return 1;
  return 0;
}

static id_set waiting_runs(server *s) {
  id_set w = {NULL, 0};
  yajl_val ps = web_parse(lsr_store_text(s->store, LSR_Q_PROMPTS_LIST, ""));
  yajl_val d = web_list(ps);
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val p = d->u.array.values[i];
    if (strcmp(web_str(p, "status"), "pending") != 0) continue;
    w.ids = lsr_xrealloc(w.ids, (size_t)(w.n + 1) * sizeof *w.ids);
    w.ids[w.n++] = web_num(p, "playbook_run");
  }
  yajl_tree_free(ps);
  return w;
}

static const char *const FILTERS[] = {"", "running", "waiting", "success", "failed", NULL};

int web_runs_page(server *s, http *c, web_session *se) {
  const char *status = c->arg(c->conn, "status"), *pb = c->arg(c->conn, "playbook");
  const char *cont = c->arg(c->conn, "container");
  const char *from = c->arg(c->conn, "from"), *to = c->arg(c->conn, "to"); /* ISO 8601 prefixes, UTC */
  if (!status) status = "";
  if (!pb) pb = "";
  if (!from) from = "";
  if (!to) to = "";
  int64_t cid = 0;
  int by_container = cont && *cont && srv_parse_id(cont, strlen(cont), &cid);
  yajl_val runs = web_parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)by_container, cid));
  id_set waiting = waiting_runs(s);
  web_buf b = {0};
  web_page_start(&b, "Runs", se, 1);
  web_puts(&b, "<h1>Runs</h1><form class=\"filters\" method=\"get\" action=\"/runs\"><label>Status <select name=\"status\">");
  for (int i = 0; FILTERS[i]; i++) {
    web_putf(&b, "<option value=\"%s\"%s>%s</option>", FILTERS[i], strcmp(status, FILTERS[i]) == 0 ? " selected" : "",
         *FILTERS[i] ? FILTERS[i] : "any");
  }
  web_puts(&b, "</select></label><label>Playbook <input name=\"playbook\" value=\"");
  web_esc(&b, pb);
  web_puts(&b, "\"></label><label>Container <input name=\"container\" inputmode=\"numeric\" value=\"");
  web_esc(&b, cont ? cont : "");
  web_puts(&b, "\"></label><label>Started from (UTC) <input type=\"datetime-local\" name=\"from\" value=\"");
  web_esc(&b, from);
  web_puts(&b, "\"></label><label>to <input type=\"datetime-local\" name=\"to\" value=\"");
  web_esc(&b, to);
  web_puts(&b, "\"></label><button>Filter</button></form>");
  web_puts(&b, "<table class=\"runs\"><thead><tr><th>Run</th><th>Playbook</th><th>Container</th><th>Status</th>"
            "<th>Started</th><th>Duration</th></tr></thead><tbody>");
  yajl_val d = web_list(runs);
  int shown = 0;
  for (size_t k = d ? d->u.array.len : 0; k-- > 0;) { /* newest first */
    yajl_val r = d->u.array.values[k];
    long long id = web_num(r, "id");
    const char *st = web_str(r, "status");
    int wait = strcmp(st, "running") == 0 && in_set(&waiting, id);
    if (*status && strcmp(status, wait ? "waiting" : st) != 0 &&
        !(strcmp(status, "running") == 0 && strcmp(st, "running") == 0))
      continue;
    if (*pb && !strstr(web_str(r, "playbook"), pb)) continue;
    const char *start = web_str(r, "start_time"); /* ISO 8601 compares as text */
    if ((*from && strncmp(start, from, strlen(from)) < 0) || (*to && strncmp(start, to, strlen(to)) > 0)) continue;
    if (++shown > PAGE_ROWS) break;
    web_putf(&b, "<tr data-run=\"%lld\"><td><a href=\"/runs/%lld\">%lld</a></td><td><a href=\"/runs/%lld\">", id, id, id, id);
    web_esc(&b, web_str(r, "playbook"));
    web_putf(&b, "</a></td><td><a href=\"/containers/%lld\">%lld</a></td><td>", web_num(r, "container"), web_num(r, "container"));
    web_status(&b, st, wait);
    web_puts(&b, "</td><td><time>");
    web_esc(&b, web_str(r, "start_time"));
    web_puts(&b, "</time></td><td class=\"dur\"");
    web_span(&b, r);
    web_puts(&b, "></td></tr>");
  }
  web_puts(&b, "</tbody></table>");
  if (!shown) web_puts(&b, "<p class=\"empty\">No run matches.</p>");
  if (shown > PAGE_ROWS) web_putf(&b, "<p class=\"more\">The newest %d shown: filter to see others.</p>", PAGE_ROWS);
  free(waiting.ids);
  yajl_tree_free(runs);
  return web_page_end(c, &b, 200);
}

/* A run's app runs, each read once for the page: action i's are
 * v[first[i]] up to v[first[i + 1]]. */
typedef struct {
  yajl_val *v;
  size_t *first;
  size_t n;
} app_set;

static app_set load_app_runs(server *s, yajl_val acts) {
  size_t na = acts ? acts->u.array.len : 0;
  app_set set = {NULL, lsr_xalloc((na + 1) * sizeof *set.first), 0};
  for (size_t i = 0; i < na; i++) {
    yajl_val ids = web_field(acts->u.array.values[i], "app_runs");
    set.first[i] = set.n;
    for (size_t k = 0; ids && YAJL_IS_ARRAY(ids) && k < ids->u.array.len; k++) {
      set.v = lsr_xrealloc(set.v, (set.n + 1) * sizeof *set.v);
      set.v[set.n++] = web_parse(lsr_store_text(s->store, LSR_Q_APP_RUN_GET, "i", YAJL_GET_INTEGER(ids->u.array.values[k])));
    }
  }
  set.first[na] = set.n;
  return set;
}

static void free_app_runs(app_set *set) {
  for (size_t k = 0; k < set->n; k++) yajl_tree_free(set->v[k]);
  free(set->v);
  free(set->first);
}

static void action_rows(web_buf *b, yajl_val acts, const app_set *apps) {
  web_puts(b, "<table class=\"actions\"><thead><tr><th>Name</th><th>Action</th><th>Assets</th><th>Status</th>"
           "<th>Start</th><th>End</th><th>Duration</th></tr></thead><tbody>");
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i];
    web_puts(b, "<tr><td>");
    web_esc(b, web_str(a, "name"));
    web_puts(b, "</td><td>");
    web_esc(b, web_str(a, "action"));
    web_puts(b, "</td><td>");
    for (size_t k = apps->first[i]; k < apps->first[i + 1]; k++) {
      if (k > apps->first[i]) web_puts(b, ", ");
      web_esc(b, web_str(apps->v[k], "asset"));
    }
    web_puts(b, "</td><td>");
    web_status(b, web_str(a, "status"), 0);
    web_puts(b, "</td><td><time>");
    web_esc(b, web_str(a, "start_time"));
    web_puts(b, "</time></td><td><time>");
    if (strcmp(web_str(a, "status"), "running") != 0) web_esc(b, web_str(a, "update_time"));
    web_puts(b, "</time></td><td class=\"dur\"");
    web_span(b, a);
    web_puts(b, "></td></tr>");
  }
  web_puts(b, "</tbody></table>");
}

/* the actions drawn in time: a bar each, from the run's start */
static void timeline(web_buf *b, yajl_val acts) {
  web_puts(b, "<div class=\"timeline\" aria-hidden=\"true\">");
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i];
    web_puts(b, "<div class=\"lane\"><span class=\"label\">");
    web_esc(b, web_str(a, "name"));
    web_puts(b, "</span><span class=\"bar s-");
    web_esc(b, web_str(a, "status"));
    web_puts(b, "\"");
    web_span(b, a);
    web_puts(b, "></span></div>");
  }
  web_puts(b, "</div>");
}

static void app_runs(web_buf *b, yajl_val acts, const app_set *apps) {
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i];
    for (size_t k = apps->first[i]; k < apps->first[i + 1]; k++) {
      yajl_val one = apps->v[k], res = web_field(one, "result_data");
      web_puts(b, "<article class=\"app-run\"><h3>");
      web_esc(b, web_str(a, "name"));
      web_puts(b, " on ");
      web_esc(b, web_str(one, "asset"));
      web_puts(b, " ");
      web_status(b, web_str(one, "status"), 0);
      web_puts(b, "</h3><p class=\"message\">");
      web_esc(b, web_str(one, "message"));
      web_puts(b, "</p><dl><dt>Summary</dt><dd>");
      web_json_block(b, web_field(res, "summary"), "summary");
      web_puts(b, "</dd></dl>");
      yajl_val ars = web_field(res, "action_results"); /* one per parameter set */
      for (size_t r = 0; ars && YAJL_IS_ARRAY(ars) && r < ars->u.array.len; r++) {
        yajl_val ar = ars->u.array.values[r];
        web_puts(b, "<dl class=\"result\"><dt>Result</dt><dd>");
        web_status(b, web_str(ar, "status"), 0);
        web_puts(b, " ");
        web_esc(b, web_str(ar, "message"));
        web_puts(b, "</dd><dt>Parameters</dt><dd>");
        web_json_block(b, web_field(ar, "parameter"), "parameters");
        web_puts(b, "</dd><dt>Data</dt><dd>");
        web_json_block(b, web_field(ar, "data"), "data");
        web_puts(b, "</dd><dt>Summary</dt><dd>");
        web_json_block(b, web_field(ar, "summary"), "summary");
        web_puts(b, "</dd></dl>");
      }
      web_puts(b, "</article>");
    }
  }
}

typedef struct {
  web_buf *b;
  int n;
} log_ctx;

static void log_line(void *ud, int ncols, const char **cols) {
  log_ctx *l = ud;
  if (ncols < 3) return;
  l->n++;
  web_puts(l->b, "<li class=\"l-");
  web_esc(l->b, cols[0]);
  web_puts(l->b, "\"><time>");
  web_esc(l->b, cols[1]);
  web_puts(l->b, "</time> <span class=\"level\">");
  web_esc(l->b, cols[0]);
  web_puts(l->b, "</span> <span class=\"text\">");
  web_esc(l->b, cols[2]);
  web_puts(l->b, "</span></li>");
}

static void prompts(server *s, web_buf *b, int64_t run, const web_session *se) {
  yajl_val ps = web_parse(lsr_store_text(s->store, LSR_Q_PROMPTS_LIST, ""));
  yajl_val d = web_list(ps);
  int shown = 0;
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val p = d->u.array.values[i], pr = web_field(p, "prompt");
    if (web_num(p, "playbook_run") != run || strcmp(web_str(p, "status"), "pending") != 0) continue;
    if (!shown++) web_puts(b, "<h2>Waiting for an answer</h2>");
    long long id = web_num(p, "id");
    web_puts(b, "<form class=\"prompt\" method=\"post\" action=\"/prompts/");
    web_putf(b, "%lld/answer\"><p>", id);
    web_esc(b, strcmp(web_str(pr, "type"), "approval") == 0 ? "Approval: " : "Prompt: ");
    web_esc(b, *web_str(pr, "message") ? web_str(pr, "message") : web_str(p, "name"));
    web_puts(b, "</p><input type=\"hidden\" name=\"csrf\" value=\"");
    web_esc(b, se->csrf);
    web_puts(b, "\">");
    if (strcmp(web_str(pr, "type"), "approval") == 0) {
      web_puts(b, "<button name=\"response\" value=\"approve\">Approve</button>"
               "<button name=\"response\" value=\"deny\">Deny</button>");
    } else {
      web_putf(b, "<label>Answer <input name=\"response\" required></label><button>Answer</button>");
    }
    web_puts(b, "</form>");
  }
  yajl_tree_free(ps);
}

int web_run_page(server *s, http *c, web_session *se, int64_t id) {
  yajl_val run = web_parse(lsr_store_text(s->store, LSR_Q_RUN_GET, "i", id));
  if (!run || !YAJL_IS_OBJECT(run)) {
    yajl_tree_free(run);
    web_buf b = {0};
    web_page_start(&b, "No such run", se, 0);
    web_putf(&b, "<h1>No run %lld</h1>", (long long)id);
    return web_page_end(c, &b, 404);
  }
  yajl_val acts_all = web_parse(lsr_store_text(s->store, LSR_Q_ACTION_RUNS_LIST, "ii", (int64_t)1, id));
  yajl_val acts = web_list(acts_all);
  id_set waiting = waiting_runs(s);
  const char *st = web_str(run, "status");
  web_buf b = {0};
  char title[64];
  snprintf(title, sizeof title, "Run %lld", (long long)id);
  web_page_start(&b, title, se, 1);
  web_putf(&b, "<h1>Run %lld: ", (long long)id);
  web_esc(&b, web_str(run, "playbook"));
  web_puts(&b, " ");
  web_status(&b, st, strcmp(st, "running") == 0 && in_set(&waiting, id));
  web_puts(&b, "</h1><dl class=\"facts\"><dt>Container</dt><dd>");
  web_putf(&b, "<a href=\"/containers/%lld\">%lld</a>", web_num(run, "container"), web_num(run, "container"));
  web_puts(&b, "</dd><dt>Started</dt><dd><time>");
  web_esc(&b, web_str(run, "start_time"));
  web_puts(&b, "</time></dd><dt>Duration</dt><dd class=\"dur\"");
  web_span(&b, run);
  web_puts(&b, "></dd>");
  if (*web_str(run, "message")) {
    web_puts(&b, "<dt>Message</dt><dd>");
    web_esc(&b, web_str(run, "message"));
    web_puts(&b, "</dd>");
  }
  long long parent = web_num(run, "parent_playbook_run");
  if (parent) web_putf(&b, "<dt>Parent run</dt><dd><a href=\"/runs/%lld\">%lld</a></dd>", parent, parent);
  /* child runs: those whose parent this is */
  yajl_val all = web_parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)1, (int64_t)web_num(run, "container")));
  yajl_val d = web_list(all);
  int children = 0;
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val r = d->u.array.values[i];
    if (web_num(r, "parent_playbook_run") != id) continue;
    if (!children++) web_puts(&b, "<dt>Child runs</dt><dd>");
    web_putf(&b, "<a href=\"/runs/%lld\">%lld ", web_num(r, "id"), web_num(r, "id"));
    web_esc(&b, web_str(r, "playbook"));
    web_puts(&b, "</a> ");
  }
  if (children) web_puts(&b, "</dd>");
  yajl_tree_free(all);
  web_puts(&b, "</dl><form method=\"post\" action=\"/runs/");
  web_putf(&b, "%lld/again\"><input type=\"hidden\" name=\"csrf\" value=\"", (long long)id);
  web_esc(&b, se->csrf);
  web_puts(&b, "\"><button>Run the playbook again on this container</button></form>");
  prompts(s, &b, id, se);
  web_puts(&b, "<h2>Actions</h2>");
  timeline(&b, acts);
  app_set apps = load_app_runs(s, acts);
  action_rows(&b, acts, &apps);
  web_puts(&b, "<h2>App runs</h2>");
  app_runs(&b, acts, &apps);
  free_app_runs(&apps);
  web_puts(&b, "<h2>Log</h2><ol class=\"log\">");
  log_ctx l = {&b, 0};
  lsr_store_each(s->store, log_line, &l, LSR_Q_LOG_PAGE, "iii", id, (int64_t)1000, (int64_t)0);
  web_puts(&b, "</ol>");
  if (!l.n) web_puts(&b, "<p class=\"empty\">No log line yet.</p>");
  free(waiting.ids);
  yajl_tree_free(acts_all);
  yajl_tree_free(run);
  return web_page_end(c, &b, 200);
}

/* text holds q, whatever the case */
static int has(const char *text, const char *q) {
  size_t n = strlen(q);
  for (const char *p = text; *p; p++)
    if (strncasecmp(p, q, n) == 0) return 1;
  return !*q;
}

static void text_cell(web_buf *b, yajl_val v, const char *name) {
  yajl_val f = web_field(v, name);
  web_puts(b, "<td>");
  if (f && YAJL_IS_STRING(f)) web_esc(b, f->u.string);
  else if (f && YAJL_IS_INTEGER(f)) web_putf(b, "%lld", YAJL_GET_INTEGER(f));
  web_puts(b, "</td>");
}

int web_containers_page(server *s, http *c, web_session *se) {
  const char *q = c->arg(c->conn, "q");
  if (!q) q = "";
  yajl_val all = web_parse(lsr_store_text(s->store, LSR_Q_CONTAINERS_LIST, ""));
  yajl_val d = web_list(all);
  web_buf b = {0};
  web_page_start(&b, "Containers", se, 1);
  web_puts(&b, "<h1>Containers</h1><form class=\"filters\" method=\"get\" action=\"/containers\"><label>Search"
            " (name, label, severity, status) <input name=\"q\" value=\"");
  web_esc(&b, q);
  web_puts(&b, "\"></label><button>Search</button></form><table class=\"containers\"><thead><tr><th>Container</th>"
            "<th>Name</th><th>Label</th><th>Severity</th><th>Status</th><th>Artifacts</th><th>Created</th></tr>"
            "</thead><tbody>");
  int shown = 0;
  for (size_t k = d ? d->u.array.len : 0; k-- > 0;) { /* newest first */
    yajl_val x = d->u.array.values[k];
    if (!has(web_str(x, "name"), q) && !has(web_str(x, "label"), q) && !has(web_str(x, "severity"), q) && !has(web_str(x, "status"), q))
      continue;
    if (++shown > PAGE_ROWS) break;
    web_putf(&b, "<tr><td><a href=\"/containers/%lld\">%lld</a></td><td><a href=\"/containers/%lld\">", web_num(x, "id"),
         web_num(x, "id"), web_num(x, "id"));
    web_esc(&b, web_str(x, "name"));
    web_puts(&b, "</a></td>");
    text_cell(&b, x, "label");
    text_cell(&b, x, "severity");
    text_cell(&b, x, "status");
    text_cell(&b, x, "artifact_count");
    web_puts(&b, "<td><time>");
    web_esc(&b, web_str(x, "create_time"));
    web_puts(&b, "</time></td></tr>");
  }
  web_puts(&b, "</tbody></table>");
  if (!shown) web_puts(&b, "<p class=\"empty\">No container matches.</p>");
  if (shown > PAGE_ROWS) web_putf(&b, "<p class=\"more\">The newest %d shown: search to see others.</p>", PAGE_ROWS);
  yajl_tree_free(all);
  return web_page_end(c, &b, 200);
}

int web_container_page(server *s, http *c, web_session *se, int64_t id) {
  yajl_val x = web_parse(lsr_store_text(s->store, LSR_Q_CONTAINER_GET, "i", id));
  web_buf b = {0};
  char title[64];
  snprintf(title, sizeof title, "Container %lld", (long long)id);
  if (!x || !YAJL_IS_OBJECT(x)) {
    yajl_tree_free(x);
    web_page_start(&b, title, se, 0);
    web_putf(&b, "<h1>No container %lld</h1>", (long long)id);
    return web_page_end(c, &b, 404);
  }
  web_page_start(&b, title, se, 1);
  web_putf(&b, "<h1>Container %lld: ", (long long)id);
  web_esc(&b, web_str(x, "name"));
  web_puts(&b, "</h1><dl class=\"facts\">");
  static const char *const facts[] = {"label", "severity", "status", "artifact_count", "create_time", NULL};
  for (int i = 0; facts[i]; i++) {
    web_puts(&b, "<dt>");
    web_esc(&b, facts[i]);
    web_puts(&b, "</dt>");
    yajl_val f = web_field(x, facts[i]);
    web_puts(&b, "<dd>");
    if (f && YAJL_IS_STRING(f)) web_esc(&b, f->u.string);
    else if (f && YAJL_IS_INTEGER(f)) web_putf(&b, "%lld", YAJL_GET_INTEGER(f));
    web_puts(&b, "</dd>");
  }
  web_puts(&b, "<dt>tags</dt><dd>");
  web_json_block(&b, web_field(x, "tags"), "tags");
  web_puts(&b, "</dd></dl><h2>Notes</h2>");
  yajl_val notes = web_field(x, "notes");
  for (size_t i = 0; notes && YAJL_IS_ARRAY(notes) && i < notes->u.array.len; i++) {
    yajl_val n = notes->u.array.values[i];
    web_puts(&b, "<article class=\"note\"><h3>");
    web_esc(&b, web_str(n, "title"));
    web_puts(&b, "</h3><p>");
    web_esc(&b, web_str(n, "content"));
    web_puts(&b, "</p></article>");
  }
  if (!notes || !YAJL_IS_ARRAY(notes) || !notes->u.array.len) web_puts(&b, "<p class=\"empty\">No note.</p>");
  web_puts(&b, "<h2>Artifacts</h2><table class=\"artifacts\"><thead><tr><th>Artifact</th><th>Name</th><th>Label</th>"
            "<th>Severity</th><th>CEF</th></tr></thead><tbody>");
  yajl_val arts = web_parse(lsr_store_text(s->store, LSR_Q_ARTIFACTS_LIST, "ii", (int64_t)1, id));
  yajl_val ad = web_list(arts);
  for (size_t i = 0; ad && i < ad->u.array.len; i++) {
    yajl_val a = ad->u.array.values[i];
    web_putf(&b, "<tr><td>%lld</td>", web_num(a, "id"));
    text_cell(&b, a, "name");
    text_cell(&b, a, "label");
    text_cell(&b, a, "severity");
    web_puts(&b, "<td>");
    web_json_block(&b, web_field(a, "cef"), "cef");
    web_puts(&b, "</td></tr>");
  }
  web_puts(&b, "</tbody></table><h2>Runs</h2><ul class=\"runs-of\">");
  yajl_val runs = web_parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)1, id));
  yajl_val rd = web_list(runs);
  for (size_t i = 0; rd && i < rd->u.array.len; i++) {
    yajl_val r = rd->u.array.values[i];
    web_putf(&b, "<li><a href=\"/runs/%lld\">%lld ", web_num(r, "id"), web_num(r, "id"));
    web_esc(&b, web_str(r, "playbook"));
    web_puts(&b, "</a> ");
    web_status(&b, web_str(r, "status"), 0);
    web_puts(&b, "</li>");
  }
  web_puts(&b, "</ul>");
  yajl_tree_free(runs);
  yajl_tree_free(arts);
  yajl_tree_free(x);
  return web_page_end(c, &b, 200);
}

int web_playbooks_page(server *s, http *c, web_session *se) {
  web_buf b = {0};
  web_page_start(&b, "Playbooks", se, 1);
  web_putf(&b, "<h1>Playbooks</h1><p>%d generations alive.</p><table class=\"playbooks\"><thead><tr><th>Playbook</th>"
       "<th>Labels</th><th>Active</th><th>Generation</th><th>Last load error</th></tr></thead><tbody>", s->live_gens);
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (!p->gen && !p->error) continue;
    web_puts(&b, "<tr><td>");
    web_esc(&b, p->id);
    web_puts(&b, "</td><td>");
    for (int k = 0; p->labels && p->labels[k]; k++) {
      if (k) web_puts(&b, ", ");
      web_esc(&b, p->labels[k]);
    }
    web_putf(&b, "</td><td>%s</td><td>%d</td><td>", p->active ? "yes" : "no", p->generation);
    if (p->error) {
      web_puts(&b, "<code class=\"error\">");
      web_esc(&b, p->error);
      web_puts(&b, "</code>");
    }
    web_puts(&b, "</td></tr>");
  }
  web_puts(&b, "</tbody></table>");
  return web_page_end(c, &b, 200);
}

