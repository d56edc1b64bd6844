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
    COMMAND ${LUA54} ${BUSTED} --cpath=${CMAKE_BINARY_DIR}/?.so --output=plainTerminal ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${SPEC_ENV}" TIMEOUT 300)
endforeach()

# The server's specs again with the store on PostgreSQL (a real server each
# spec starts: spec/pg_helper.lua).
foreach(name serve_spec crash_spec)
  add_test(NAME ${name}_postgresql
    COMMAND ${LUA54} ${BUSTED} --cpath=${CMAKE_BINARY_DIR}/?.so --output=plainTerminal
            ${CMAKE_SOURCE_DIR}/spec/${name}.lua
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name}_postgresql PROPERTIES ENVIRONMENT "${SPEC_ENV};LUASOAR_TEST_DB=postgresql" TIMEOUT 300)
endforeach()

# C unit tests for units with tricky state.
file(GLOB C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/c/test_*.c)
foreach(src ${C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} $<TARGET_OBJECTS:lsrcore>)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bindings
                             ${CMAKE_SOURCE_DIR}/serve ${CMAKE_SOURCE_DIR}/store)
  target_link_libraries(${name} PkgConfig::LUA PkgConfig::DEPS m)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT 60)
endforeach()

# The specs of the playbooks shipped in scripts/, run the way a playbook
# author runs theirs.
add_test(NAME scripts_playbook_specs COMMAND ${CMAKE_BINARY_DIR}/luasoar test scripts
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(scripts_playbook_specs PROPERTIES TIMEOUT 300)

# The Python side of the SOAR connector runner (python/luasoar_worker.py and
# its phantom shim), unittest through the real worker; Debian's python3.
add_test(NAME python_shim
         COMMAND /usr/bin/python3 -m unittest discover -s spec/python -t .
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(python_shim PROPERTIES TIMEOUT 300)
