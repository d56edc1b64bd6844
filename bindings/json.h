/* json.h: JSON <-> Lua values, through yajl.  Integers stay integers, null is
 * phantom.null (a NULL light userdata), arrays carry a marker metatable so an
 * empty one encodes back as []. */
#ifndef LSR_JSON_H
#define LSR_JSON_H
#include <lua.h>
#include <stddef.h>

/* yajl_gen stops at 128 levels; decoding stops below that so whatever is
 * decoded can be encoded again */
#define LSR_JSON_MAX_DEPTH 100

/* [-0, +1, m] Decode text and push the value; on malformed input push nothing
 * and return -1 with "line L, column C: reason" in err. */
int lsr_json_decode(lua_State *L, const char *text, size_t len, char *err, size_t errlen);
/* [-0, +1, e] Encode the value at idx and push the JSON text.  lenient: values
 * JSON cannot hold (functions, NaN...) become strings instead of raising. */
void lsr_json_encode(lua_State *L, int idx, int lenient);
/* [-0, +1 on to, -] The value at idx of `from` pushed on `to` (another
 * state, another thread of the same state, or `from` itself) as
 * lsr_json_decode(lsr_json_encode(value, lenient)) would push it; or
 * nothing pushed, -1, and why in err (json_copy.c). */
int lsr_json_copy(lua_State *from, int idx, lua_State *to, int lenient, char *err, size_t errlen);
/* [-0, +1, -] The metatable that marks a table as a JSON array. */
void lsr_json_push_array_mt(lua_State *L);
/* [-0, +1, m] A new empty table marked as an array. */
void lsr_json_new_array(lua_State *L, int narr);
/* [-0, +0, -] Is the table at idx written as a JSON array (marked arrays
 * always are; other tables when non-empty with keys exactly 1..n)?  Its
 * length in n; mt is the stack index of the array metatable. */
int lsr_json_array_len(lua_State *L, int idx, int mt, lua_Integer *n);
/* [-0, +0, -] Is the value at idx a table marked as a JSON array? */
int lsr_json_is_array(lua_State *L, int idx);
/* [-0, +0, -] Install the array metatable in the registry. */
void lsr_json_init(lua_State *L);
/* [-0, +1, m] The `json` module table {encode, decode, null}. */
int lsr_json_open(lua_State *L);
#endif
