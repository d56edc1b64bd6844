/* serve.h: `luasoar serve` (engine/serve.c). */
#ifndef LSR_SERVE_H
#define LSR_SERVE_H
int lsr_serve_main(int argc, char **argv);
#endif
