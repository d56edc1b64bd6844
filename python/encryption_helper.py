# luasoar's encryption_helper (the module SOAR connectors import to keep
# tokens in their state encrypted): encrypt(value, asset_id) and
# decrypt(value, asset_id), keyed per asset from the run's "key" (hex) as
# HMAC-SHA256(key, str(asset_id)).  Standard library only: the keystream is
# HMAC-SHA256 in counter mode over a random 16-byte nonce, then
# encrypt-then-MAC with a separate MAC key; the text out is
# base64(nonce || ciphertext || tag).  decrypt refuses a bad tag (ValueError).

import base64
import binascii
import hashlib
import hmac
import os

from phantom._runtime import RT

NONCE_LEN = 16
TAG_LEN = 32


def _asset_keys(asset_id):
    if not RT.key:
        raise ValueError("no encryption key: not running under the luasoar worker")
    try:
        master = bytes.fromhex(RT.key)
    except ValueError:
        raise ValueError("the run's key is not hex") from None
    asset_key = hmac.new(master, str(asset_id).encode("utf-8"), hashlib.sha256).digest()
    enc_key = hmac.new(asset_key, b"luasoar encryption", hashlib.sha256).digest()
    mac_key = hmac.new(asset_key, b"luasoar authentication", hashlib.sha256).digest()
    return enc_key, mac_key


def _keystream_xor(enc_key, nonce, data):
    out = bytearray(len(data))
    for block in range(0, (len(data) + 31) // 32):
        pad = hmac.new(enc_key, nonce + block.to_bytes(8, "big"), hashlib.sha256).digest()
        start = block * 32
        chunk = data[start:start + 32]
        for i, b in enumerate(chunk):
            out[start + i] = b ^ pad[i]
    return bytes(out)


def encrypt(value, asset_id):
    """The base64 text of value (str or bytes) encrypted for asset_id."""
    if isinstance(value, str):
        plain = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        plain = bytes(value)
    else:
        raise TypeError(f"encrypt: expected str or bytes, got {type(value).__name__}")
    enc_key, mac_key = _asset_keys(asset_id)
    nonce = os.urandom(NONCE_LEN)
    cipher = _keystream_xor(enc_key, nonce, plain)
    tag = hmac.new(mac_key, nonce + cipher, hashlib.sha256).digest()
    return base64.b64encode(nonce + cipher + tag).decode("ascii")


def decrypt(value, asset_id):
    """The str encrypt() was given (ValueError on a bad tag or format)."""
    if isinstance(value, str):
        value = value.encode("ascii", "strict") if value.isascii() else None
    if not isinstance(value, (bytes, bytearray)):
        raise ValueError("decrypt: not an encrypted value")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("decrypt: not an encrypted value") from None
    if len(raw) < NONCE_LEN + TAG_LEN:
        raise ValueError("decrypt: not an encrypted value")
    nonce, cipher, tag = raw[:NONCE_LEN], raw[NONCE_LEN:-TAG_LEN], raw[-TAG_LEN:]
    enc_key, mac_key = _asset_keys(asset_id)
    expected = hmac.new(mac_key, nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise ValueError("decrypt: authentication failed (wrong asset or tampered value)")
    plain = _keystream_xor(enc_key, nonce, cipher)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        return plain
