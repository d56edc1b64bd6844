# luasoar's stand-in for the pudb debugger: connectors' __main__ blocks do
# `import pudb; pudb.set_trace()`; here set_trace() does nothing.


def set_trace(*args, **kwargs):
    return None


def post_mortem(*args, **kwargs):
    return None
