/* serve.h: `luasoar serve` (serve/). */
#ifndef LSR_SERVE_H
#define LSR_SERVE_H
#include <stddef.h>
int lsr_serve_main(int argc, char **argv);
/* `luasoar app check|test` (engine/cli_app.c). */
int lsr_cli_app(int argc, char **argv);
/* For tests and fuzzing: a server without HTTP, and requests to its router.
 * The status, and the body in *out (malloc'd). */
void *lsr_serve_test_open(const char *scripts, const char *db, char *err, size_t errlen);
unsigned lsr_serve_test_request(void *srv, const char *method, const char *url, const char *body, size_t len,
                                char **out);
#endif
