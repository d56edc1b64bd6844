# luasoar's Python unit tests (the SOAR connector worker and its phantom shim).
