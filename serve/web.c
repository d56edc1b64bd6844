/* web.c: the web view of `luasoar serve`, at /: a sign-in page (the API
 * token, for a session cookie), the runs with filters, a run's actions in
 * time and as a list with each app run's parameters, data, summary and
 * message, its log and its pending prompts (answered from the page), the
 * containers with their artifacts, notes and runs, and the playbooks.  Pages are built here from the store, every text escaped;
 * the style and the script (web/, embedded at build time) only refresh
 * what is shown.  Sessions live in the server's memory: a restart signs
 * everyone out. */
#include "internal.h"

extern const char lsr_web_css[], lsr_web_js[];

#define SESSION_SECONDS (12 * 3600)
#define SESSION_MAX 256
#define PAGE_ROWS 500 /* runs or containers on one page, the newest */
#define COOKIE "luasoar_session"

/* ---- a growing HTML page, every text escaped ---- */

typedef struct {
  char *s;
  size_t n, cap;
} buf;

static void put(buf *b, const char *text, size_t n) {
  if (b->n + n + 1 > b->cap) b->s = lsr_xrealloc(b->s, b->cap = (b->n + n + 1) * 2);
  memcpy(b->s + b->n, text, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void puts_(buf *b, const char *text) { put(b, text, strlen(text)); }

static void putf(buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* text as HTML text or an attribute's value */
static void esc(buf *b, const char *text) {
  for (const char *p = text ? text : ""; *p; p++) {
    switch (*p) {
    case '&': puts_(b, "&amp;"); break;
    case '<': puts_(b, "&lt;"); break;
    case '>': puts_(b, "&gt;"); break;
    case '"': puts_(b, "&quot;"); break;
    case '\'': puts_(b, "&#39;"); break;
    default: put(b, p, 1);
    }
  }
}

/* ---- JSON from the store ---- */

static yajl_val field(yajl_val v, const char *name) {
  if (!v || !YAJL_IS_OBJECT(v)) return NULL;
  for (size_t i = 0; i < v->u.object.len; i++)
    if (strcmp(v->u.object.keys[i], name) == 0) return v->u.object.values[i];
  return NULL;
}

static const char *str(yajl_val v, const char *name) {
  yajl_val f = field(v, name);
  return f && YAJL_IS_STRING(f) ? f->u.string : "";
}

static long long num(yajl_val v, const char *name) {
  yajl_val f = field(v, name);
  return f && YAJL_IS_INTEGER(f) ? YAJL_GET_INTEGER(f) : 0;
}

static yajl_val parse(char *json) {
  yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
  free(json);
  return v;
}

static yajl_val list_of(yajl_val v) {
  yajl_val d = field(v, "data");
  return d && YAJL_IS_ARRAY(d) ? d : NULL;
}

/* a value as JSON text, escaped, folded away when long */
static void json_block(buf *b, yajl_val v, const char *label) {
  char *j = v ? lsr_tree_to_json(v) : lsr_strdup("null");
  if (strlen(j) > 300) {
    puts_(b, "<details><summary>");
    esc(b, label);
    putf(b, " (%zu bytes)</summary><pre>", strlen(j));
    esc(b, j);
    puts_(b, "</pre></details>");
  } else {
    puts_(b, "<code>");
    esc(b, j);
    puts_(b, "</code>");
  }
  free(j);
}

/* ---- sessions ---- */

typedef struct {
  char id[49], csrf[49];
  double expires;
} session;

static session sessions[SESSION_MAX];

static void random_hex(char out[49]) {
  unsigned char raw[24] = {0};
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) abort(); /* no randomness: no sessions */
  close(fd);
  for (size_t i = 0; i < sizeof raw; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

static int same(const char *a, const char *b) { /* the same time whatever the first difference */
  size_t n = strlen(a), m = strlen(b);
  unsigned diff = (unsigned)(n ^ m);
  for (size_t i = 0; i < n && i < m; i++) diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
  return diff == 0;
}

/* The session the request's cookie names, if it is live. */
static session *session_of(void *conn) {
  const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
  double now = lsr_now();
  if (!id || strlen(id) != 48) return NULL;
  for (int i = 0; i < SESSION_MAX; i++)
    if (sessions[i].expires > now && same(sessions[i].id, id)) return &sessions[i];
  return NULL;
}

static session *session_new(void) {
  int slot = 0;
  for (int i = 1; i < SESSION_MAX; i++) /* a free or expired slot, else the oldest */
    if (sessions[i].expires < sessions[slot].expires) slot = i;
  random_hex(sessions[slot].id);
  random_hex(sessions[slot].csrf);
  sessions[slot].expires = lsr_now() + SESSION_SECONDS;
  return &sessions[slot];
}

/* ---- forms ---- */

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of name in a form body (application/x-www-form-urlencoded),
 * decoded (malloc'd), or NULL. */
static char *form_value(const char *body, const char *name) {
  size_t n = strlen(name);
  for (const char *p = body ? body : ""; *p;) {
    const char *end = strchr(p, '&');
    if (!end) end = p + strlen(p);
    if ((size_t)(end - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
      char *out = lsr_xalloc((size_t)(end - p) + 1), *w = out;
      for (const char *r = p + n + 1; r < end; r++) {
        int hi, lo;
        if (*r == '+') *w++ = ' ';
        else if (*r == '%' && r + 2 < end && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
          *w++ = (char)(hi * 16 + lo);
          r += 2;
        } else *w++ = *r;
      }
      *w = 0;
      return out;
    }
    p = *end ? end + 1 : end;
  }
  return NULL;
}

/* ---- the page around a view ---- */

static void page_start(buf *b, const char *title, const session *se, int live) {
  puts_(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
  esc(b, title);
  puts_(b, " · luasoar</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
           "<script src=\"/static/app.js\" defer></script></head><body>");
  if (se) {
    puts_(b, "<header><a class=\"brand\" href=\"/runs\">luasoar</a><nav><a href=\"/runs\">Runs</a>"
             "<a href=\"/containers\">Containers</a><a href=\"/playbooks\">Playbooks</a></nav><form method=\"post\" action=\"/signout\">"
             "<input type=\"hidden\" name=\"csrf\" value=\"");
    esc(b, se->csrf);
    puts_(b, "\"><button>Sign out</button></form></header>");
  }
  putf(b, "<main id=\"main\"%s>", live ? " data-live=\"2000\"" : "");
}

static int page_end(http *c, buf *b, unsigned status) {
  puts_(b, "</main></body></html>\n");
  c->status = status;
  c->body = b->s;
  c->type = "text/html; charset=utf-8";
  return 1;
}

static int redirect(http *c, const char *to) {
  c->status = 303;
  c->location = to;
  c->type = "text/plain; charset=utf-8";
  c->body = lsr_strdup("see other\n");
  return 1;
}

/* the status as text, and a class that colours it */
static void status_cell(buf *b, const char *status, int waiting) {
  const char *shown = waiting ? "waiting" : status;
  puts_(b, "<span class=\"status s-");
  esc(b, shown);
  puts_(b, "\">");
  esc(b, shown);
  puts_(b, "</span>");
}

/* data-start and data-end of something with a start_time, an update_time
 * and a status: no end while it runs (the script ticks its duration) */
static void span(buf *b, yajl_val v) {
  puts_(b, " data-start=\"");
  esc(b, str(v, "start_time"));
  puts_(b, "\" data-end=\"");
  if (strcmp(str(v, "status"), "running") != 0) esc(b, str(v, "update_time"));
  puts_(b, "\"");
}

/* ---- views ---- */

static int sign_in(http *c, const char *why) {
  buf b = {0};
  page_start(&b, "Sign in", NULL, 0);
  puts_(&b, "<section class=\"signin\"><h1>luasoar</h1><form method=\"post\" action=\"/session\">"
            "<label for=\"token\">API token</label>"
            "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus>"
            "<button type=\"submit\">Sign in</button></form>");
  if (why) {
    puts_(&b, "<p class=\"error\" role=\"alert\">");
    esc(&b, why);
    puts_(&b, "</p>");
  }
  puts_(&b, "<p class=\"hint\">The token is in the server's token file (<code>luasoar.db.token</code> beside a"
            " SQLite store).</p></section>");
  return page_end(c, &b, why ? 401 : 200);
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
  yajl_val ps = parse(lsr_store_text(s->store, LSR_Q_PROMPTS_LIST, ""));
  yajl_val d = list_of(ps);
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val p = d->u.array.values[i];
    if (strcmp(str(p, "status"), "pending") != 0) continue;
    w.ids = lsr_xrealloc(w.ids, (size_t)(w.n + 1) * sizeof *w.ids);
    w.ids[w.n++] = num(p, "playbook_run");
  }
  yajl_tree_free(ps);
  return w;
}

static const char *const FILTERS[] = {"", "running", "waiting", "success", "failed", NULL};

static int runs_page(server *s, http *c, session *se) {
  const char *status = c->arg(c->conn, "status"), *pb = c->arg(c->conn, "playbook");
  const char *cont = c->arg(c->conn, "container");
  const char *from = c->arg(c->conn, "from"), *to = c->arg(c->conn, "to"); /* ISO 8601 prefixes, UTC */
  if (!status) status = "";
  if (!pb) pb = "";
  if (!from) from = "";
  if (!to) to = "";
  int64_t cid = 0;
  int by_container = cont && *cont && srv_parse_id(cont, strlen(cont), &cid);
  yajl_val runs = parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)by_container, cid));
  id_set waiting = waiting_runs(s);
  buf b = {0};
  page_start(&b, "Runs", se, 1);
  puts_(&b, "<h1>Runs</h1><form class=\"filters\" method=\"get\" action=\"/runs\"><label>Status <select name=\"status\">");
  for (int i = 0; FILTERS[i]; i++) {
    putf(&b, "<option value=\"%s\"%s>%s</option>", FILTERS[i], strcmp(status, FILTERS[i]) == 0 ? " selected" : "",
         *FILTERS[i] ? FILTERS[i] : "any");
  }
  puts_(&b, "</select></label><label>Playbook <input name=\"playbook\" value=\"");
  esc(&b, pb);
  puts_(&b, "\"></label><label>Container <input name=\"container\" inputmode=\"numeric\" value=\"");
  esc(&b, cont ? cont : "");
  puts_(&b, "\"></label><label>Started from (UTC) <input type=\"datetime-local\" name=\"from\" value=\"");
  esc(&b, from);
  puts_(&b, "\"></label><label>to <input type=\"datetime-local\" name=\"to\" value=\"");
  esc(&b, to);
  puts_(&b, "\"></label><button>Filter</button></form>");
  puts_(&b, "<table class=\"runs\"><thead><tr><th>Run</th><th>Playbook</th><th>Container</th><th>Status</th>"
            "<th>Started</th><th>Duration</th></tr></thead><tbody>");
  yajl_val d = list_of(runs);
  int shown = 0;
  for (size_t k = d ? d->u.array.len : 0; k-- > 0;) { /* newest first */
    yajl_val r = d->u.array.values[k];
    long long id = num(r, "id");
    const char *st = str(r, "status");
    int wait = strcmp(st, "running") == 0 && in_set(&waiting, id);
    if (*status && strcmp(status, wait ? "waiting" : st) != 0 &&
        !(strcmp(status, "running") == 0 && strcmp(st, "running") == 0))
      continue;
    if (*pb && !strstr(str(r, "playbook"), pb)) continue;
    const char *start = str(r, "start_time"); /* ISO 8601 compares as text */
    if ((*from && strncmp(start, from, strlen(from)) < 0) || (*to && strncmp(start, to, strlen(to)) > 0)) continue;
    if (++shown > PAGE_ROWS) break;
    putf(&b, "<tr data-run=\"%lld\"><td><a href=\"/runs/%lld\">%lld</a></td><td><a href=\"/runs/%lld\">", id, id, id, id);
    esc(&b, str(r, "playbook"));
    putf(&b, "</a></td><td><a href=\"/containers/%lld\">%lld</a></td><td>", num(r, "container"), num(r, "container"));
    status_cell(&b, st, wait);
    puts_(&b, "</td><td><time>");
    esc(&b, str(r, "start_time"));
    puts_(&b, "</time></td><td class=\"dur\"");
    span(&b, r);
    puts_(&b, "></td></tr>");
  }
  puts_(&b, "</tbody></table>");
  if (!shown) puts_(&b, "<p class=\"empty\">No run matches.</p>");
  if (shown > PAGE_ROWS) putf(&b, "<p class=\"more\">The newest %d shown: filter to see others.</p>", PAGE_ROWS);
  free(waiting.ids);
  yajl_tree_free(runs);
  return page_end(c, &b, 200);
}

static void action_rows(server *s, buf *b, yajl_val acts) {
  puts_(b, "<table class=\"actions\"><thead><tr><th>Name</th><th>Action</th><th>Assets</th><th>Status</th>"
           "<th>Start</th><th>End</th><th>Duration</th></tr></thead><tbody>");
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i];
    puts_(b, "<tr><td>");
    esc(b, str(a, "name"));
    puts_(b, "</td><td>");
    esc(b, str(a, "action"));
    puts_(b, "</td><td>");
    yajl_val ids = field(a, "app_runs");
    for (size_t k = 0; ids && YAJL_IS_ARRAY(ids) && k < ids->u.array.len; k++) {
      yajl_val one = parse(lsr_store_text(s->store, LSR_Q_APP_RUN_GET, "i", YAJL_GET_INTEGER(ids->u.array.values[k])));
      if (k) puts_(b, ", ");
      esc(b, str(one, "asset"));
      yajl_tree_free(one);
    }
    puts_(b, "</td><td>");
    status_cell(b, str(a, "status"), 0);
    puts_(b, "</td><td><time>");
    esc(b, str(a, "start_time"));
    puts_(b, "</time></td><td><time>");
    if (strcmp(str(a, "status"), "running") != 0) esc(b, str(a, "update_time"));
    puts_(b, "</time></td><td class=\"dur\"");
    span(b, a);
    puts_(b, "></td></tr>");
  }
  puts_(b, "</tbody></table>");
}

/* the actions drawn in time: a bar each, from the run's start */
static void timeline(buf *b, yajl_val acts) {
  puts_(b, "<div class=\"timeline\" aria-hidden=\"true\">");
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i];
    puts_(b, "<div class=\"lane\"><span class=\"label\">");
    esc(b, str(a, "name"));
    puts_(b, "</span><span class=\"bar s-");
    esc(b, str(a, "status"));
    puts_(b, "\"");
    span(b, a);
    puts_(b, "></span></div>");
  }
  puts_(b, "</div>");
}

static void app_runs(server *s, buf *b, yajl_val acts) {
  for (size_t i = 0; acts && i < acts->u.array.len; i++) {
    yajl_val a = acts->u.array.values[i], ids = field(a, "app_runs");
    for (size_t k = 0; ids && YAJL_IS_ARRAY(ids) && k < ids->u.array.len; k++) {
      yajl_val one = parse(lsr_store_text(s->store, LSR_Q_APP_RUN_GET, "i", YAJL_GET_INTEGER(ids->u.array.values[k])));
      yajl_val res = field(one, "result_data");
      puts_(b, "<article class=\"app-run\"><h3>");
      esc(b, str(a, "name"));
      puts_(b, " on ");
      esc(b, str(one, "asset"));
      puts_(b, " ");
      status_cell(b, str(one, "status"), 0);
      puts_(b, "</h3><p class=\"message\">");
      esc(b, str(one, "message"));
      puts_(b, "</p><dl><dt>Summary</dt><dd>");
      json_block(b, field(res, "summary"), "summary");
      puts_(b, "</dd></dl>");
      yajl_val ars = field(res, "action_results"); /* one per parameter set */
      for (size_t r = 0; ars && YAJL_IS_ARRAY(ars) && r < ars->u.array.len; r++) {
        yajl_val ar = ars->u.array.values[r];
        puts_(b, "<dl class=\"result\"><dt>Result</dt><dd>");
        status_cell(b, str(ar, "status"), 0);
        puts_(b, " ");
        esc(b, str(ar, "message"));
        puts_(b, "</dd><dt>Parameters</dt><dd>");
        json_block(b, field(ar, "parameter"), "parameters");
        puts_(b, "</dd><dt>Data</dt><dd>");
        json_block(b, field(ar, "data"), "data");
        puts_(b, "</dd><dt>Summary</dt><dd>");
        json_block(b, field(ar, "summary"), "summary");
        puts_(b, "</dd></dl>");
      }
      puts_(b, "</article>");
      yajl_tree_free(one);
    }
  }
}

typedef struct {
  buf *b;
  int n;
} log_ctx;

static void log_line(void *ud, int ncols, const char **cols) {
  log_ctx *l = ud;
  if (ncols < 3) return;
  l->n++;
  puts_(l->b, "<li class=\"l-");
  esc(l->b, cols[0]);
  puts_(l->b, "\"><time>");
  esc(l->b, cols[1]);
  puts_(l->b, "</time> <span class=\"level\">");
  esc(l->b, cols[0]);
  puts_(l->b, "</span> <span class=\"text\">");
  esc(l->b, cols[2]);
  puts_(l->b, "</span></li>");
}

static void prompts(server *s, buf *b, int64_t run, const session *se) {
  yajl_val ps = parse(lsr_store_text(s->store, LSR_Q_PROMPTS_LIST, ""));
  yajl_val d = list_of(ps);
  int shown = 0;
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val p = d->u.array.values[i], pr = field(p, "prompt");
    if (num(p, "playbook_run") != run || strcmp(str(p, "status"), "pending") != 0) continue;
    if (!shown++) puts_(b, "<h2>Waiting for an answer</h2>");
    long long id = num(p, "id");
    puts_(b, "<form class=\"prompt\" method=\"post\" action=\"/prompts/");
    putf(b, "%lld/answer\"><p>", id);
    esc(b, strcmp(str(pr, "type"), "approval") == 0 ? "Approval: " : "Prompt: ");
    esc(b, *str(pr, "message") ? str(pr, "message") : str(p, "name"));
    puts_(b, "</p><input type=\"hidden\" name=\"csrf\" value=\"");
    esc(b, se->csrf);
    puts_(b, "\">");
    if (strcmp(str(pr, "type"), "approval") == 0) {
      puts_(b, "<button name=\"response\" value=\"approve\">Approve</button>"
               "<button name=\"response\" value=\"deny\">Deny</button>");
    } else {
      putf(b, "<label>Answer <input name=\"response\" required></label><button>Answer</button>");
    }
    puts_(b, "</form>");
  }
  yajl_tree_free(ps);
}

static int run_page(server *s, http *c, session *se, int64_t id) {
  yajl_val run = parse(lsr_store_text(s->store, LSR_Q_RUN_GET, "i", id));
  if (!run || !YAJL_IS_OBJECT(run)) {
    yajl_tree_free(run);
    buf b = {0};
    page_start(&b, "No such run", se, 0);
    putf(&b, "<h1>No run %lld</h1>", (long long)id);
    return page_end(c, &b, 404);
  }
  yajl_val acts_all = parse(lsr_store_text(s->store, LSR_Q_ACTION_RUNS_LIST, "ii", (int64_t)1, id));
  yajl_val acts = list_of(acts_all);
  id_set waiting = waiting_runs(s);
  const char *st = str(run, "status");
  buf b = {0};
  char title[64];
  snprintf(title, sizeof title, "Run %lld", (long long)id);
  page_start(&b, title, se, 1);
  putf(&b, "<h1>Run %lld: ", (long long)id);
  esc(&b, str(run, "playbook"));
  puts_(&b, " ");
  status_cell(&b, st, strcmp(st, "running") == 0 && in_set(&waiting, id));
  puts_(&b, "</h1><dl class=\"facts\"><dt>Container</dt><dd>");
  putf(&b, "<a href=\"/containers/%lld\">%lld</a>", num(run, "container"), num(run, "container"));
  puts_(&b, "</dd><dt>Started</dt><dd><time>");
  esc(&b, str(run, "start_time"));
  puts_(&b, "</time></dd><dt>Duration</dt><dd class=\"dur\"");
  span(&b, run);
  puts_(&b, "></dd>");
  if (*str(run, "message")) {
    puts_(&b, "<dt>Message</dt><dd>");
    esc(&b, str(run, "message"));
    puts_(&b, "</dd>");
  }
  long long parent = num(run, "parent_playbook_run");
  if (parent) putf(&b, "<dt>Parent run</dt><dd><a href=\"/runs/%lld\">%lld</a></dd>", parent, parent);
  /* child runs: those whose parent this is */
  yajl_val all = parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)1, (int64_t)num(run, "container")));
  yajl_val d = list_of(all);
  int children = 0;
  for (size_t i = 0; d && i < d->u.array.len; i++) {
    yajl_val r = d->u.array.values[i];
    if (num(r, "parent_playbook_run") != id) continue;
    if (!children++) puts_(&b, "<dt>Child runs</dt><dd>");
    putf(&b, "<a href=\"/runs/%lld\">%lld ", num(r, "id"), num(r, "id"));
    esc(&b, str(r, "playbook"));
    puts_(&b, "</a> ");
  }
  if (children) puts_(&b, "</dd>");
  yajl_tree_free(all);
  puts_(&b, "</dl><form method=\"post\" action=\"/runs/");
  putf(&b, "%lld/again\"><input type=\"hidden\" name=\"csrf\" value=\"", (long long)id);
  esc(&b, se->csrf);
  puts_(&b, "\"><button>Run the playbook again on this container</button></form>");
  prompts(s, &b, id, se);
  puts_(&b, "<h2>Actions</h2>");
  timeline(&b, acts);
  action_rows(s, &b, acts);
  puts_(&b, "<h2>App runs</h2>");
  app_runs(s, &b, acts);
  puts_(&b, "<h2>Log</h2><ol class=\"log\">");
  log_ctx l = {&b, 0};
  lsr_store_each(s->store, log_line, &l, LSR_Q_LOG_PAGE, "iii", id, (int64_t)1000, (int64_t)0);
  puts_(&b, "</ol>");
  if (!l.n) puts_(&b, "<p class=\"empty\">No log line yet.</p>");
  free(waiting.ids);
  yajl_tree_free(acts_all);
  yajl_tree_free(run);
  return page_end(c, &b, 200);
}

/* text holds q, whatever the case */
static int has(const char *text, const char *q) {
  size_t n = strlen(q);
  for (const char *p = text; *p; p++)
    if (strncasecmp(p, q, n) == 0) return 1;
  return !*q;
}

static void text_cell(buf *b, yajl_val v, const char *name) {
  yajl_val f = field(v, name);
  puts_(b, "<td>");
  if (f && YAJL_IS_STRING(f)) esc(b, f->u.string);
  else if (f && YAJL_IS_INTEGER(f)) putf(b, "%lld", YAJL_GET_INTEGER(f));
  puts_(b, "</td>");
}

static int containers_page(server *s, http *c, session *se) {
  const char *q = c->arg(c->conn, "q");
  if (!q) q = "";
  yajl_val all = parse(lsr_store_text(s->store, LSR_Q_CONTAINERS_LIST, ""));
  yajl_val d = list_of(all);
  buf b = {0};
  page_start(&b, "Containers", se, 1);
  puts_(&b, "<h1>Containers</h1><form class=\"filters\" method=\"get\" action=\"/containers\"><label>Search"
            " (name, label, severity, status) <input name=\"q\" value=\"");
  esc(&b, q);
  puts_(&b, "\"></label><button>Search</button></form><table class=\"containers\"><thead><tr><th>Container</th>"
            "<th>Name</th><th>Label</th><th>Severity</th><th>Status</th><th>Artifacts</th><th>Created</th></tr>"
            "</thead><tbody>");
  int shown = 0;
  for (size_t k = d ? d->u.array.len : 0; k-- > 0;) { /* newest first */
    yajl_val x = d->u.array.values[k];
    if (!has(str(x, "name"), q) && !has(str(x, "label"), q) && !has(str(x, "severity"), q) && !has(str(x, "status"), q))
      continue;
    if (++shown > PAGE_ROWS) break;
    putf(&b, "<tr><td><a href=\"/containers/%lld\">%lld</a></td><td><a href=\"/containers/%lld\">", num(x, "id"),
         num(x, "id"), num(x, "id"));
    esc(&b, str(x, "name"));
    puts_(&b, "</a></td>");
    text_cell(&b, x, "label");
    text_cell(&b, x, "severity");
    text_cell(&b, x, "status");
    text_cell(&b, x, "artifact_count");
    puts_(&b, "<td><time>");
    esc(&b, str(x, "create_time"));
    puts_(&b, "</time></td></tr>");
  }
  puts_(&b, "</tbody></table>");
  if (!shown) puts_(&b, "<p class=\"empty\">No container matches.</p>");
  if (shown > PAGE_ROWS) putf(&b, "<p class=\"more\">The newest %d shown: search to see others.</p>", PAGE_ROWS);
  yajl_tree_free(all);
  return page_end(c, &b, 200);
}

static int container_page(server *s, http *c, session *se, int64_t id) {
  yajl_val x = parse(lsr_store_text(s->store, LSR_Q_CONTAINER_GET, "i", id));
  buf b = {0};
  char title[64];
  snprintf(title, sizeof title, "Container %lld", (long long)id);
  if (!x || !YAJL_IS_OBJECT(x)) {
    yajl_tree_free(x);
    page_start(&b, title, se, 0);
    putf(&b, "<h1>No container %lld</h1>", (long long)id);
    return page_end(c, &b, 404);
  }
  page_start(&b, title, se, 1);
  putf(&b, "<h1>Container %lld: ", (long long)id);
  esc(&b, str(x, "name"));
  puts_(&b, "</h1><dl class=\"facts\">");
  static const char *const facts[] = {"label", "severity", "status", "artifact_count", "create_time", NULL};
  for (int i = 0; facts[i]; i++) {
    puts_(&b, "<dt>");
    esc(&b, facts[i]);
    puts_(&b, "</dt>");
    yajl_val f = field(x, facts[i]);
    puts_(&b, "<dd>");
    if (f && YAJL_IS_STRING(f)) esc(&b, f->u.string);
    else if (f && YAJL_IS_INTEGER(f)) putf(&b, "%lld", YAJL_GET_INTEGER(f));
    puts_(&b, "</dd>");
  }
  puts_(&b, "<dt>tags</dt><dd>");
  json_block(&b, field(x, "tags"), "tags");
  puts_(&b, "</dd></dl><h2>Notes</h2>");
  yajl_val notes = field(x, "notes");
  for (size_t i = 0; notes && YAJL_IS_ARRAY(notes) && i < notes->u.array.len; i++) {
    yajl_val n = notes->u.array.values[i];
    puts_(&b, "<article class=\"note\"><h3>");
    esc(&b, str(n, "title"));
    puts_(&b, "</h3><p>");
    esc(&b, str(n, "content"));
    puts_(&b, "</p></article>");
  }
  if (!notes || !YAJL_IS_ARRAY(notes) || !notes->u.array.len) puts_(&b, "<p class=\"empty\">No note.</p>");
  puts_(&b, "<h2>Artifacts</h2><table class=\"artifacts\"><thead><tr><th>Artifact</th><th>Name</th><th>Label</th>"
            "<th>Severity</th><th>CEF</th></tr></thead><tbody>");
  yajl_val arts = parse(lsr_store_text(s->store, LSR_Q_ARTIFACTS_LIST, "ii", (int64_t)1, id));
  yajl_val ad = list_of(arts);
  for (size_t i = 0; ad && i < ad->u.array.len; i++) {
    yajl_val a = ad->u.array.values[i];
    putf(&b, "<tr><td>%lld</td>", num(a, "id"));
    text_cell(&b, a, "name");
    text_cell(&b, a, "label");
    text_cell(&b, a, "severity");
    puts_(&b, "<td>");
    json_block(&b, field(a, "cef"), "cef");
    puts_(&b, "</td></tr>");
  }
  puts_(&b, "</tbody></table><h2>Runs</h2><ul class=\"runs-of\">");
  yajl_val runs = parse(lsr_store_text(s->store, LSR_Q_RUNS_LIST, "ii", (int64_t)1, id));
  yajl_val rd = list_of(runs);
  for (size_t i = 0; rd && i < rd->u.array.len; i++) {
    yajl_val r = rd->u.array.values[i];
    putf(&b, "<li><a href=\"/runs/%lld\">%lld ", num(r, "id"), num(r, "id"));
    esc(&b, str(r, "playbook"));
    puts_(&b, "</a> ");
    status_cell(&b, str(r, "status"), 0);
    puts_(&b, "</li>");
  }
  puts_(&b, "</ul>");
  yajl_tree_free(runs);
  yajl_tree_free(arts);
  yajl_tree_free(x);
  return page_end(c, &b, 200);
}

static int playbooks_page(server *s, http *c, session *se) {
  buf b = {0};
  page_start(&b, "Playbooks", se, 1);
  putf(&b, "<h1>Playbooks</h1><p>%d generations alive.</p><table class=\"playbooks\"><thead><tr><th>Playbook</th>"
       "<th>Labels</th><th>Active</th><th>Generation</th><th>Last load error</th></tr></thead><tbody>", s->live_gens);
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (!p->gen && !p->error) continue;
    puts_(&b, "<tr><td>");
    esc(&b, p->id);
    puts_(&b, "</td><td>");
    for (int k = 0; p->labels && p->labels[k]; k++) {
      if (k) puts_(&b, ", ");
      esc(&b, p->labels[k]);
    }
    putf(&b, "</td><td>%s</td><td>%d</td><td>", p->active ? "yes" : "no", p->generation);
    if (p->error) {
      puts_(&b, "<code class=\"error\">");
      esc(&b, p->error);
      puts_(&b, "</code>");
    }
    puts_(&b, "</td></tr>");
  }
  puts_(&b, "</tbody></table>");
  return page_end(c, &b, 200);
}

/* ---- routes ---- */

static int is_static(const char *url) {
  return strcmp(url, "/static/app.css") == 0 || strcmp(url, "/static/app.js") == 0 || strcmp(url, "/favicon.ico") == 0;
}

/* A path of the web view with a number: /PREFIX/N/REST. */
static int path_id(const char *url, const char *prefix, const char *rest, int64_t *id) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) != 0) return 0;
  const char *p = url + n, *end = p;
  while (*end >= '0' && *end <= '9') end++;
  return end > p && strcmp(end, rest) == 0 && srv_parse_id(p, (size_t)(end - p), id);
}

/* Which methods a web path takes (NULL: not one). */
static const char *web_methods(const char *url) {
  int64_t id;
  if (strcmp(url, "/") == 0 || strcmp(url, "/runs") == 0 || strcmp(url, "/playbooks") == 0 || is_static(url) ||
      strcmp(url, "/containers") == 0 || path_id(url, "/runs/", "", &id) || path_id(url, "/containers/", "", &id))
    return "GET";
  if (strcmp(url, "/session") == 0 || strcmp(url, "/signout") == 0 || path_id(url, "/runs/", "/again", &id) ||
      path_id(url, "/prompts/", "/answer", &id))
    return "POST";
  return NULL;
}

int srv_web_path(const char *url) { return strncmp(url, "/rest/", 6) != 0 && strcmp(url, "/rest") != 0; }

/* On the headers alone: 1 if answered (not a path, a wrong method, not
 * signed in), else the body may come (at most FORM_MAX). */
int srv_web_refuse(http *c, const char *url, const char *method, uint64_t body_len) {
  const char *allowed = web_methods(url);
  if (!allowed) return srv_fail(c, 404, "no such page: %s", url);
  if (strcmp(method, allowed) != 0 && !(strcmp(method, "HEAD") == 0 && strcmp(allowed, "GET") == 0)) {
    c->allow = allowed;
    return srv_fail(c, 405, "method %s not allowed on %s (allowed: %s)", method, url, allowed);
  }
  if (body_len > FORM_MAX) return srv_fail(c, 413, "a form is at most %u bytes", FORM_MAX);
  if (strcmp(url, "/") == 0 || is_static(url) || strcmp(url, "/session") == 0) return 0;
  if (!session_of(c->conn)) return redirect(c, "/");
  return 0;
}

static int static_file(http *c, const char *url) {
  int css = strcmp(url, "/static/app.css") == 0;
  if (strcmp(url, "/favicon.ico") == 0) { /* none: said once, kept by the browser */
    c->status = 204;
    c->type = "image/x-icon";
    c->cache = "public, max-age=86400";
    return 1;
  }
  c->status = 200;
  c->body = lsr_strdup(css ? lsr_web_css : lsr_web_js);
  c->type = css ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
  c->cache = "public, max-age=300";
  return 1;
}

/* The form's csrf field is the session's (the cookie alone is not enough:
 * SameSite=Strict already keeps other sites' forms out; this keeps out
 * anything else that could make the browser post). */
static int csrf_ok(session *se, const char *body) {
  char *v = form_value(body, "csrf");
  int ok = v && se && same(v, se->csrf);
  free(v);
  return ok;
}

static char set_cookie[160];

int srv_web_route(server *s, http *c, const char *url, const char *method, request *rq) {
  if (s->stopping) return srv_fail(c, 503, "shutting down");
  srv_commit_now(s); /* what a page shows is on disk */
  if (rq->too_big) return srv_fail(c, 413, "a form is at most %u bytes", FORM_MAX);
  session *se = session_of(c->conn);
  int64_t id;
  if (is_static(url)) return static_file(c, url);
  if (strcmp(url, "/") == 0) return se ? redirect(c, "/runs") : sign_in(c, NULL);
  if (strcmp(url, "/session") == 0) {
    char *token = form_value(rq->body, "token");
    int ok = token && *token && same(token, s->token);
    free(token);
    if (!ok) {
      srv_say("web: a sign-in with a wrong token");
      return sign_in(c, "That token is not the server's.");
    }
    se = session_new();
    snprintf(set_cookie, sizeof set_cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", se->id,
             SESSION_SECONDS);
    c->cookie = set_cookie;
    return redirect(c, "/runs");
  }
  if (!se) return redirect(c, "/");
  if (strcmp(method, "POST") == 0 && !csrf_ok(se, rq->body))
    return srv_fail(c, 403, "this form is not from this session's page");
  if (strcmp(url, "/signout") == 0) {
    se->expires = 0;
    c->cookie = COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
    return redirect(c, "/");
  }
  if (strcmp(url, "/runs") == 0) return runs_page(s, c, se);
  if (strcmp(url, "/playbooks") == 0) return playbooks_page(s, c, se);
  if (strcmp(url, "/containers") == 0) return containers_page(s, c, se);
  if (path_id(url, "/containers/", "", &id)) return container_page(s, c, se, id);
  if (path_id(url, "/runs/", "", &id)) return run_page(s, c, se, id);
  static char to[64];
  if (path_id(url, "/runs/", "/again", &id)) {
    char err[1024];
    yajl_val run = parse(lsr_store_text(s->store, LSR_Q_RUN_GET, "i", id));
    pb_entry *p = run ? srv_find_pb(s, str(run, "playbook")) : NULL;
    int64_t cid = num(run, "container"), again = p && p->gen ? srv_start_run(s, p, cid, "all", err, sizeof err) : 0;
    yajl_tree_free(run);
    if (!again || lsr_store_commit_ack(s->store) < 0) return srv_fail(c, 409, "the run could not start again");
    snprintf(to, sizeof to, "/runs/%lld", (long long)again);
    return redirect(c, to);
  }
  if (path_id(url, "/prompts/", "/answer", &id)) {
    char *resp = form_value(rq->body, "response");
    char *q = resp ? lsr_json_quote(resp) : NULL, *list = q ? lsr_xalloc(strlen(q) + 3) : NULL;
    if (list) sprintf(list, "[%s]", q);
    int64_t run = lsr_store_int(s->store, 0, LSR_Q_PROMPT_PENDING_RUN, "i", id);
    int ok = list && srv_answer(s, id, run, list);
    free(resp);
    free(q);
    free(list);
    if (!ok) return srv_fail(c, 404, "no pending prompt %lld", (long long)id);
    snprintf(to, sizeof to, "/runs/%lld", (long long)run);
    return redirect(c, to);
  }
  return srv_fail(c, 404, "no such page: %s", url);
}
