# luasoar shim of Splunk SOAR's phantom.utils validators (is_ip, is_domain,
# is_url, is_email, is_hash, ...): strict checks on strings; anything that is
# not a str is refused.

import ipaddress
import re
from urllib.parse import urlsplit

_HEX = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_TLD_RE = re.compile(r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
URL_SCHEMES = ("http", "https", "ftp", "ftps", "sftp", "ws", "wss")


def is_ipv4(value):
    if not isinstance(value, str):
        return False
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


def is_ipv6(value):
    if not isinstance(value, str):
        return False
    try:
        ipaddress.IPv6Address(value)
        return True
    except ValueError:
        return False


def is_ip(value):
    return is_ipv4(value) or is_ipv6(value)


def is_cidr(value):
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return False


def is_domain(value):
    if not isinstance(value, str) or not value:
        return False
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if len(labels) < 2:
        return False
    if not all(_LABEL_RE.fullmatch(label) for label in labels):
        return False
    return bool(_TLD_RE.fullmatch(labels[-1]))


def is_hostname(value):
    if not isinstance(value, str):
        return False
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_LABEL_RE.fullmatch(label) for label in name.split("."))


def is_url(value):
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return False
    if parts.scheme.lower() not in URL_SCHEMES or not host:
        return False
    del port
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        return is_ipv6(host)
    return is_ipv4(host) or is_domain(host) or host == "localhost"


def is_email(value):
    if not isinstance(value, str) or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.fullmatch(local):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        return is_ip(domain[1:-1])
    return is_domain(domain)


def _is_hex(value, length):
    return isinstance(value, str) and len(value) == length and bool(_HEX_RE.fullmatch(value))


def is_md5(value):
    return _is_hex(value, 32)


def is_sha1(value):
    return _is_hex(value, 40)


def is_sha256(value):
    return _is_hex(value, 64)


def is_sha512(value):
    return _is_hex(value, 128)


def is_hash(value):
    return isinstance(value, str) and len(value) in _HEX and bool(_HEX_RE.fullmatch(value))


def is_mac(value):
    return isinstance(value, str) and bool(_MAC_RE.fullmatch(value))
