"""luasoar port's parts (python/luasoar_port.py is the command)."""
