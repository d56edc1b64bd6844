/* web.c: the web view of `luasoar serve`, at /: a sign-in page (the API
 * token, for a session cookie), the runs with filters, a run's actions in
 * time and as a list with each app run's parameters, data, summary and
 * message, its log and its pending prompts (answered from the page), the
 * containers with their artifacts, notes and runs, and the playbooks.
 * This file: the sessions, the forms and the routes; the pages are
 * web_pages.c's, built with web_html.c, every text escaped.  The style and
 * the script (web/, embedded at build time) only refresh what is shown.
 * Sessions live in the server's memory: a restart signs everyone out. */
#include "web.h"

extern const char lsr_web_css[], lsr_web_js[];

#define SESSION_SECONDS (12 * 3600)
#define SESSION_MAX 256
#define COOKIE "luasoar_session"

/* ---- sessions ---- */

static web_session sessions[SESSION_MAX];

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

/* The web_session the request's cookie names, if it is live. */
static web_session *session_of(void *conn) {
  const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
  double now = lsr_now();
  if (!id || strlen(id) != 48) return NULL;
  for (int i = 0; i < SESSION_MAX; i++)
    if (sessions[i].expires > now && same(sessions[i].id, id)) return &sessions[i];
  return NULL;
}

static web_session *session_new(void) {
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
  if (!session_of(c->conn)) return web_redirect(c, "/");
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
static int csrf_ok(web_session *se, const char *body) {
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
  web_session *se = session_of(c->conn);
  int64_t id;
  if (is_static(url)) return static_file(c, url);
  if (strcmp(url, "/") == 0) return se ? web_redirect(c, "/runs") : web_sign_in(c, NULL);
  if (strcmp(url, "/session") == 0) {
    char *token = form_value(rq->body, "token");
    int ok = token && *token && same(token, s->token);
    free(token);
    if (!ok) {
      srv_say("web: a sign-in with a wrong token");
      return web_sign_in(c, "That token is not the server's.");
    }
    se = session_new();
    snprintf(set_cookie, sizeof set_cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", se->id,
             SESSION_SECONDS);
    c->cookie = set_cookie;
    return web_redirect(c, "/runs");
  }
  if (!se) return web_redirect(c, "/");
  if (strcmp(method, "POST") == 0 && !csrf_ok(se, rq->body))
    return srv_fail(c, 403, "this form is not from this session's page");
  if (strcmp(url, "/signout") == 0) {
    se->expires = 0;
    c->cookie = COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
    return web_redirect(c, "/");
  }
  if (strcmp(url, "/runs") == 0) return web_runs_page(s, c, se);
  if (strcmp(url, "/playbooks") == 0) return web_playbooks_page(s, c, se);
  if (strcmp(url, "/containers") == 0) return web_containers_page(s, c, se);
  if (path_id(url, "/containers/", "", &id)) return web_container_page(s, c, se, id);
  if (path_id(url, "/runs/", "", &id)) return web_run_page(s, c, se, id);
  static char to[64];
  if (path_id(url, "/runs/", "/again", &id)) {
    char err[1024];
    yajl_val run = web_parse(lsr_store_text(s->store, LSR_Q_RUN_GET, "i", id));
    pb_entry *p = run ? srv_find_pb(s, web_str(run, "playbook")) : NULL;
    int64_t cid = web_num(run, "container"), again = p && p->gen ? srv_start_run(s, p, cid, "all", err, sizeof err) : 0;
    yajl_tree_free(run);
    if (!again || lsr_store_commit_ack(s->store) < 0) return srv_fail(c, 409, "the run could not start again");
    snprintf(to, sizeof to, "/runs/%lld", (long long)again);
    return web_redirect(c, to);
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
    return web_redirect(c, to);
  }
  return srv_fail(c, 404, "no such page: %s", url);
}
