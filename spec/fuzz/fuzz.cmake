# libFuzzer harnesses (spec/fuzz/README.md).  Included by CMakeLists.txt when
# configured with -DLSR_FUZZ=ON -DCMAKE_C_COMPILER=clang; use a build folder
# of its own (spec/fuzz/run.sh uses build-fuzz): every object of lsrcore is
# built with coverage instrumentation and ASan + UBSan.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LSR_FUZZ needs clang: cmake -S . -B build-fuzz -DLSR_FUZZ=ON -DCMAKE_C_COMPILER=clang")
endif()

set(FUZZ_SECONDS 20 CACHE STRING "seconds each harness runs under the fuzz target")
set(FUZZ_HARNESSES container app_output datapath json exec rest pattern copy)

# UBSan findings abort, so libFuzzer stops and saves the input.
set(FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
target_compile_options(lsrcore PRIVATE -fsanitize=fuzzer-no-link ${FUZZ_SANITIZERS})

# Every other program built from lsrcore objects (luasoar, the C tests ...)
# needs the sanitizer runtimes: CMAKE_EXE_LINKER_FLAGS is read when the
# folder is generated, so it reaches the targets defined before this file.
# The Lua module cannot be loaded by an uninstrumented lua5.4: not built here.
string(APPEND CMAKE_EXE_LINKER_FLAGS " -fsanitize=address,undefined")
if(TARGET luasoar_module)
  set_target_properties(luasoar_module PROPERTIES EXCLUDE_FROM_ALL ON)
endif()

set(FUZZ_DIR ${CMAKE_SOURCE_DIR}/spec/fuzz)
set(FUZZ_TARGETS)
foreach(h ${FUZZ_HARNESSES})
  add_executable(fuzz_${h} ${FUZZ_DIR}/fuzz_${h}.c $<TARGET_OBJECTS:lsrcore>)
  target_include_directories(fuzz_${h} PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bindings
                             ${CMAKE_SOURCE_DIR}/serve ${CMAKE_SOURCE_DIR}/store ${FUZZ_DIR})
  target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer ${FUZZ_SANITIZERS})
  target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_${h} PkgConfig::LUA PkgConfig::DEPS m)
  list(APPEND FUZZ_TARGETS fuzz_${h})
endforeach()

# cmake --build build-fuzz --target fuzz: each harness for FUZZ_SECONDS on its
# corpus, through run.sh (the options of each harness are there).
add_custom_target(fuzz_build DEPENDS ${FUZZ_TARGETS})
add_custom_target(fuzz
  COMMAND ${CMAKE_COMMAND} -E env FUZZ_BUILD=${CMAKE_BINARY_DIR} FUZZ_NO_BUILD=1
          sh ${FUZZ_DIR}/run.sh ${FUZZ_SECONDS} ${FUZZ_HARNESSES}
  DEPENDS ${FUZZ_TARGETS}
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  COMMENT "fuzzing each harness for ${FUZZ_SECONDS}s"
  USES_TERMINAL VERBATIM)
