/* web.h: what the files of the web view share (serve/web.c: sessions,
 * forms and routes; web_html.c: a page built with every text escaped;
 * web_pages.c: the views). */
#ifndef LSR_SERVE_WEB_H
#define LSR_SERVE_WEB_H
#include "internal.h"

#define PAGE_ROWS 500 /* runs or containers on one page, the newest */

/* a growing HTML page */
typedef struct {
  char *s;
  size_t n, cap;
} web_buf;

typedef struct {
  char id[49], csrf[49];
  double expires;
} web_session;

/* web_html.c */
void web_put(web_buf *b, const char *text, size_t n);
void web_puts(web_buf *b, const char *text);
void web_putf(web_buf *b, const char *fmt, ...);
void web_esc(web_buf *b, const char *text);  /* text, escaped for HTML text and attributes */
yajl_val web_field(yajl_val v, const char *name);
const char *web_str(yajl_val v, const char *name); /* "" when not a string */
long long web_num(yajl_val v, const char *name);   /* 0 when not an integer */
yajl_val web_parse(char *json);                    /* frees json */
yajl_val web_list(yajl_val v);                     /* its "data" array, or NULL */
void web_json_block(web_buf *b, yajl_val v, const char *label);
void web_page_start(web_buf *b, const char *title, const web_session *se, int live);
int web_page_end(http *c, web_buf *b, unsigned status);
int web_redirect(http *c, const char *to);
void web_status(web_buf *b, const char *status, int waiting);
void web_span(web_buf *b, yajl_val v);

/* web_pages.c */
int web_sign_in(http *c, const char *why);
int web_runs_page(server *s, http *c, web_session *se);
int web_run_page(server *s, http *c, web_session *se, int64_t id);
int web_containers_page(server *s, http *c, web_session *se);
int web_container_page(server *s, http *c, web_session *se, int64_t id);
int web_playbooks_page(server *s, http *c, web_session *se);

#endif
