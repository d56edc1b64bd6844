# `cmake --install build [--prefix P]` and `cpack -G DEB` (from the build
# folder).  The Lua module goes where Debian's lua5.4 looks for C modules:
# lib/lua/5.4 under /usr/local (on lua5.4's default package.cpath), Debian's
# lib/<multiarch>/lua/5.4 (pkg-config's INSTALL_CMOD) under /usr.  `luasoar
# test` finds the module from its own executable's folder (../lib/...).
include(GNUInstallDirs)
set(LSR_CMOD_MULTIARCH "lib/${CMAKE_LIBRARY_ARCHITECTURE}/lua/5.4")
if(NOT CMAKE_LIBRARY_ARCHITECTURE)
  set(LSR_CMOD_MULTIARCH "lib/lua/5.4")
endif()
# decided at install time: `--prefix` and cpack choose the prefix then
install(CODE "
  if(CMAKE_INSTALL_PREFIX MATCHES \"^/usr/?\$\")
    set(LSR_CMOD \"${LSR_CMOD_MULTIARCH}\")
  else()
    set(LSR_CMOD lib/lua/5.4)
  endif()")
target_compile_definitions(luasoar PRIVATE "LSR_CMOD_DIRS=\"lib/lua/5.4:${LSR_CMOD_MULTIARCH}\"")

install(TARGETS luasoar_module LIBRARY DESTINATION "\${LSR_CMOD}")
install(TARGETS luasoar RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/lls/ DESTINATION ${CMAKE_INSTALL_DATADIR}/luasoar/lls)
# SOAR connectors run with this phantom package and worker
install(DIRECTORY ${CMAKE_SOURCE_DIR}/python/ DESTINATION ${CMAKE_INSTALL_DATADIR}/luasoar/python
        PATTERN __pycache__ EXCLUDE)
# the shipped playbooks, apps, assets and specs: a folder to copy and start from
install(DIRECTORY ${CMAKE_SOURCE_DIR}/scripts/ DESTINATION ${CMAKE_INSTALL_DATADIR}/luasoar/examples
        USE_SOURCE_PERMISSIONS)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/api.md
              ${CMAKE_SOURCE_DIR}/docs/sandbox-audit.md ${CMAKE_SOURCE_DIR}/docs/luasoar.service
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# cpack -G DEB: a .deb installing under /usr, depending on the Debian 12
# packages of the libraries luasoar links, lua5.4 and busted (`luasoar test`).
set(CPACK_PACKAGE_NAME luasoar)
set(CPACK_PACKAGE_VERSION 0.1.0)
set(CPACK_PACKAGE_CONTACT "luasoar maintainers <luasoar@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "playbook engine for security automation (Lua 5.4, a phantom API)")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, liblua5.4-0, libuv1, libyajl2, libsqlite3-0, libmicrohttpd12, lua5.4, lua-busted")
include(CPack)
