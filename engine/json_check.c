/* json_check.c: the one place that turns a yajl error into "line L, column
 * C: reason".  No Lua here. */
#include "json_check.h"
#include "engine.h"
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

void lsr_json_strict(yajl_handle h) {
  yajl_config(h, yajl_allow_comments, 0);
  yajl_config(h, yajl_dont_validate_strings, 0);
  yajl_config(h, yajl_allow_trailing_garbage, 0);
  yajl_config(h, yajl_allow_multiple_values, 0);
  yajl_config(h, yajl_allow_partial_values, 0);
}

void lsr_json_error(yajl_handle h, const char *text, size_t len, int at_end,
                    char *buf, size_t n) {
  /* yajl counts the offending byte as consumed; at the end, nothing is */
  size_t off = at_end ? len : yajl_get_bytes_consumed(h);
  if (!at_end && off > 0) off--;
  unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
  const char *why = (const char *)msg;
  /* yajl says "parse error: x" or "lexical error: x"; keep the x. */
  const char *colon = strstr(why, "error: ");
  if (colon) why = colon + 7;
  size_t wl = strlen(why);
  while (wl && (why[wl - 1] == '\n' || why[wl - 1] == ' ' || why[wl - 1] == '.')) wl--;
  int line, col;
  lsr_offset_to_linecol(text, len, off, &line, &col);
  if (len == 0)
    snprintf(buf, n, "line 1, column 1: empty document");
  else
    snprintf(buf, n, "line %d, column %d: %.*s", line, col, (int)wl, why);
  yajl_free_error(h, msg);
}

int lsr_json_check(const char *text, size_t len, char *buf, size_t n) {
  yajl_handle h = yajl_alloc(NULL, NULL, NULL);
  lsr_json_strict(h);
  int rc = 0, at_end = 0;
  if (yajl_parse(h, (const unsigned char *)text, len) != yajl_status_ok ||
      (at_end = 1, yajl_complete_parse(h) != yajl_status_ok)) {
    lsr_json_error(h, text, len, at_end, buf, n);
    rc = -1;
  }
  yajl_free(h);
  return rc;
}

char *lsr_json_quote(const char *s) {
  yajl_gen g = yajl_gen_alloc(NULL);
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  char *out = lsr_strndup((const char *)buf, len);
  yajl_gen_free(g);
  return out;
}
