# Turns a Lua file into a C string constant (lsr_prelude_lua).
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from bindings/prelude.lua */\n#include <stddef.h>\nconst char lsr_prelude_lua[] = {${bytes} 0};\nconst size_t lsr_prelude_lua_len = sizeof(lsr_prelude_lua) - 1;\n")
