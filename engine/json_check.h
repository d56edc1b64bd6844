/* json_check.h: JSON syntax errors with line and column, through yajl. */
#ifndef LSR_JSON_CHECK_H
#define LSR_JSON_CHECK_H
#include <stddef.h>
#include <yajl/yajl_parse.h>

/* Configure h the way every luasoar JSON input is read: strict RFC 8259,
 * UTF-8 validated, one value, nothing after it. */
void lsr_json_strict(yajl_handle h);
/* After yajl_parse (at_end 0) or yajl_complete_parse (at_end 1) failed on
 * text: "line L, column C: why". */
void lsr_json_error(yajl_handle h, const char *text, size_t len, int at_end,
                    char *buf, size_t n);
/* Check text is well-formed JSON; 0 or -1 with the error in buf. */
int lsr_json_check(const char *text, size_t len, char *buf, size_t n);
/* A malloc'd JSON string literal for s (quotes and escapes added). */
char *lsr_json_quote(const char *s);
#include <yajl/yajl_tree.h>
/* A JSON file as a yajl tree (NULL with "file: ... line L, column C: why"). */
yajl_val lsr_json_tree_file(const char *path, char *err, size_t n);
/* obj's member key, or NULL (also when obj is not an object). */
yajl_val lsr_json_field(yajl_val obj, const char *key);
/* Write a yajl tree to a generator. */
#include <yajl/yajl_gen.h>
void lsr_json_gen_tree(yajl_gen g, yajl_val v);
/* What g generated, as a string (malloc'd); g is freed. */
char *lsr_json_gen_take(yajl_gen g);
/* A yajl tree as JSON text (malloc'd). */
char *lsr_tree_to_json(yajl_val v);
#endif
