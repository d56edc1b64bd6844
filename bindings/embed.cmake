# Turns a Lua file into a C string constant NAME (and NAME_len).
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from ${IN} */\n#include <stddef.h>\nconst char ${NAME}[] = {${bytes} 0};\nconst size_t ${NAME}_len = sizeof(${NAME}) - 1;\n")
