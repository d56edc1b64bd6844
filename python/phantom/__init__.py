# luasoar shim of Splunk SOAR's `phantom` package, for running published SOAR
# connectors under luasoar's worker (python/luasoar_worker.py).  Standard
# library only.
