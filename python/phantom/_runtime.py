# luasoar: the state one worker run shares between the phantom shim modules
# (the protocol channel, the run's vault folder, key and state) and the JSON
# helpers every outgoing line goes through (json_safe, redact).
# Not a SOAR module; connectors never import it.

import math
import os
import sys
import tempfile


class Runtime:
    def __init__(self):
        self.channel = None       # the worker's protocol channel, or None when standalone
        self.run_id = None        # the ID of the run in progress
        self.state = None         # the run's "state"
        self.asset = None
        self.vault_dir = None
        self.key = None           # hex string
        self.app_name = None
        self.app_json = None      # the manifest dict
        self.app_dir = None
        self.container_id = None  # the container of the run in progress
        self.secrets = []         # strings replaced by ******** in outgoing lines

    def get_vault_dir(self):
        d = self.vault_dir or os.environ.get("LUASOAR_VAULT_DIR")
        if not d:
            d = os.path.join(tempfile.gettempdir(), "luasoar-vault")
        return d


RT = Runtime()

MASK = "********"


def json_safe(value):
    """A copy of value that json.dumps can always encode: what json cannot
    encode becomes str(value); NaN and infinities become None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = str(k)
            elif k is None or isinstance(k, (bool, int, float)):
                key = json_key(k)
            else:
                key = str(k)
            out[key] = json_safe(v)
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    try:
        return str(value)
    except Exception:
        return repr(value)


def json_key(k):
    # how json.dumps spells a non-string key
    if k is None:
        return "null"
    if k is True:
        return "true"
    if k is False:
        return "false"
    if isinstance(k, float) and not math.isfinite(k):
        return "null"
    return str(float(k)) if isinstance(k, float) else str(int(k))


def redact_str(s, secrets):
    for sec in secrets:
        if sec in s:
            s = s.replace(sec, MASK)
    return s


def redact(value, secrets):
    """value (already json_safe) with every secret replaced by ******** in
    every string, keys included."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_str(value, secrets)
    if isinstance(value, dict):
        return {redact_str(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def set_secrets(values):
    """Longest first, so a secret containing another is masked whole."""
    uniq = {v for v in values if isinstance(v, str) and v != ""}
    RT.secrets = sorted(uniq, key=lambda s: (-len(s), s))


def stderr_line(text):
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def exception_text(e):
    """An exception as SOAR's messages show it: "Type: text" (or "Type")."""
    text = str(e)
    name = type(e).__name__
    return f"{name}: {text}" if text else name


def status_text(message, exception=None):
    """set_status's message: the text, then the exception after ". "."""
    text = "" if message is None else str(message)
    if exception is not None:
        extra = exception_text(exception)
        text = f"{text}. {extra}" if text else extra
    return text


def joined(old, message):
    """append_to_message: old and the new text joined by ". "."""
    text = "" if message is None else str(message)
    if old and text:
        return f"{old}. {text}"
    return text or old

