# Tests run by ctest.  busted runs under lua5.4 explicitly, with the module
# just built first on the C path.
find_program(LUA54 lua5.4 REQUIRED)
find_program(BUSTED busted REQUIRED)
set(SPEC_ENV
  "LUA_CPATH=${CMAKE_BINARY_DIR}/?.so\;\;"
  "LUASOAR_BIN=${CMAKE_BINARY_DIR}/luasoar"
  "LUASOAR_ROOT=${CMAKE_SOURCE_DIR}")
file(GLOB SPEC_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
foreach(spec ${SPEC_FILES})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME ${name}
    COMMAND ${LUA54} ${BUSTED} --output=plainTerminal ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${SPEC_ENV}" TIMEOUT 300)
endforeach()
