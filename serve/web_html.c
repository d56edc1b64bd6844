/* web_html.c: the web view's pages as they are built: text escaped as it
 * goes in, JSON from the store read field by field, the frame around a view. */
#include "web.h"

/* ---- a growing HTML page, every text escaped ---- */

void web_put(web_buf *b, const char *text, size_t n) {
  if (b->n + n + 1 > b->cap) b->s = lsr_xrealloc(b->s, b->cap = (b->n + n + 1) * 2);
  memcpy(b->s + b->n, text, n);
  b->n += n;
  b->s[b->n] = 0;
}

void web_puts(web_buf *b, const char *text) { web_put(b, text, strlen(text)); }

void web_putf(web_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  web_put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* text as HTML text or an attribute's value */
void web_esc(web_buf *b, const char *text) {
  for (const char *p = text ? text : ""; *p; p++) {
    switch (*p) {
    case '&': web_puts(b, "&amp;"); break;
    case '<': web_puts(b, "&lt;"); break;
    case '>': web_puts(b, "&gt;"); break;
    case '"': web_puts(b, "&quot;"); break;
    case '\'': web_puts(b, "&#39;"); break;
    default: web_put(b, p, 1);
    }
  }
}

/* ---- JSON from the store ---- */

yajl_val web_field(yajl_val v, const char *name) {
  if (!v || !YAJL_IS_OBJECT(v)) return NULL;
  for (size_t i = 0; i < v->u.object.len; i++)
    if (strcmp(v->u.object.keys[i], name) == 0) return v->u.object.values[i];
  return NULL;
}

const char *web_str(yajl_val v, const char *name) {
  yajl_val f = web_field(v, name);
  return f && YAJL_IS_STRING(f) ? f->u.string : "";
}

long long web_num(yajl_val v, const char *name) {
  yajl_val f = web_field(v, name);
  return f && YAJL_IS_INTEGER(f) ? YAJL_GET_INTEGER(f) : 0;
}

yajl_val web_parse(char *json) {
  yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
  free(json);
  return v;
}

yajl_val web_list(yajl_val v) {
  yajl_val d = web_field(v, "data");
  return d && YAJL_IS_ARRAY(d) ? d : NULL;
}

/* a value as JSON text, escaped, folded away when long */
void web_json_block(web_buf *b, yajl_val v, const char *label) {
  char *j = v ? lsr_tree_to_json(v) : lsr_strdup("null");
  if (strlen(j) > 300) {
    web_puts(b, "<details><summary>");
    web_esc(b, label);
    web_putf(b, " (%zu bytes)</summary><pre>", strlen(j));
    web_esc(b, j);
    web_puts(b, "</pre></details>");
  } else {
    web_puts(b, "<code>");
    web_esc(b, j);
    web_puts(b, "</code>");
  }
  free(j);
}

/* ---- the page around a view ---- */

void web_page_start(web_buf *b, const char *title, const web_session *se, int live) {
  web_puts(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
  web_esc(b, title);
  web_puts(b, " · luasoar</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
           "<script src=\"/static/app.js\" defer></script></head><body>");
  if (se) {
    web_puts(b, "<header><a class=\"brand\" href=\"/runs\">luasoar</a><nav><a href=\"/runs\">Runs</a>"
             "<a href=\"/containers\">Containers</a><a href=\"/playbooks\">Playbooks</a></nav><form method=\"post\" action=\"/signout\">"
             "<input type=\"hidden\" name=\"csrf\" value=\"");
    web_esc(b, se->csrf);
    web_puts(b, "\"><button>Sign out</button></form></header>");
  }
  web_putf(b, "<main id=\"main\"%s>", live ? " data-live=\"2000\"" : "");
}

int web_page_end(http *c, web_buf *b, unsigned status) {
  web_puts(b, "</main></body></html>\n");
  c->status = status;
  c->body = b->s;
  c->type = "text/html; charset=utf-8";
  return 1;
}

int web_redirect(http *c, const char *to) {
  c->status = 303;
  c->location = to;
  c->type = "text/plain; charset=utf-8";
  c->body = lsr_strdup("see other\n");
  return 1;
}

/* the status as text, and a class that colours it */
void web_status(web_buf *b, const char *status, int waiting) {
  const char *shown = waiting ? "waiting" : status;
  web_puts(b, "<span class=\"status s-");
  web_esc(b, shown);
  web_puts(b, "\">");
  web_esc(b, shown);
  web_puts(b, "</span>");
}

/* data-start and data-end of something with a start_time, an update_time
 * and a status: no end while it runs (the script ticks its duration) */
void web_span(web_buf *b, yajl_val v) {
  web_puts(b, " data-start=\"");
  web_esc(b, web_str(v, "start_time"));
  web_puts(b, "\" data-end=\"");
  if (strcmp(web_str(v, "status"), "running") != 0) web_esc(b, web_str(v, "update_time"));
  web_puts(b, "\"");
}

