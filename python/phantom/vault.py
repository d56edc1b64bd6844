# luasoar shim of Splunk SOAR's vault (phantom.vault.Vault) and the store
# phantom.rules' vault_* functions use.  Files are addressed by their SHA-1,
# as SOAR does, under the run's vault_dir:
#   VAULT/files/<sha1>       the content, written once (temp file + rename)
#   VAULT/meta/<sha1>.json   a JSON list of {container_id, name, metadata, size, create_time}
#   VAULT/tmp/               get_vault_tmp_dir()
#   VAULT/lock               fcntl.flock'ed while meta files change
# Adding copies the file (never moves it); the vault id is the SHA-1 hex.

import contextlib
import datetime
import fcntl
import hashlib
import json
import mimetypes
import os
import re
import tempfile

from phantom._runtime import RT

_SHA1_RE = re.compile(r"[0-9a-f]{40}")


def vault_root():
    return RT.get_vault_dir()


def _dirs():
    root = vault_root()
    files = os.path.join(root, "files")
    meta = os.path.join(root, "meta")
    tmp = os.path.join(root, "tmp")
    for d in (root, files, meta, tmp):
        os.makedirs(d, exist_ok=True)
    return root, files, meta, tmp


@contextlib.contextmanager
def _locked():
    root = _dirs()[0]
    fd = os.open(os.path.join(root, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_meta(sha1):
    path = os.path.join(vault_root(), "meta", sha1 + ".json")
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        return entries if isinstance(entries, list) else []
    except FileNotFoundError:
        return []


def _write_meta(sha1, entries):
    meta_dir = os.path.join(vault_root(), "meta")
    path = os.path.join(meta_dir, sha1 + ".json")
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    fd, tmp = tempfile.mkstemp(dir=meta_dir, prefix=".meta-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entries, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _container_id(container):
    if isinstance(container, dict):
        container = container.get("id")
    if container is None:
        container = RT.container_id
    if isinstance(container, str) and container.strip().lstrip("-").isdigit():
        container = int(container)
    return container


def add_file(file_location, container=None, file_name=None, metadata=None):
    """(ok, message, sha1): copy file_location into the vault."""
    if not file_location or not os.path.isfile(file_location):
        return False, f"file not found: {file_location}", None
    _root, files_dir, _meta, tmp_dir = _dirs()
    h = hashlib.sha1()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".add-")
    try:
        with os.fdopen(fd, "wb") as out, open(file_location, "rb") as src:
            while True:
                chunk = src.read(1 << 16)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        sha1 = h.hexdigest()
        target = os.path.join(files_dir, sha1)
        if os.path.exists(target):
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    entry = {
        "container_id": _container_id(container),
        "name": file_name or os.path.basename(file_location),
        "metadata": metadata if isinstance(metadata, dict) else {},
        "size": size,
        "create_time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    with _locked():
        entries = _read_meta(sha1)
        for e in entries:
            if e.get("container_id") == entry["container_id"] and e.get("name") == entry["name"]:
                e["metadata"] = entry["metadata"]
                break
        else:
            entries.append(entry)
        _write_meta(sha1, entries)
    return True, "success", sha1


def _public(sha1, entry):
    metadata = entry.get("metadata") or {}
    name = entry.get("name")
    return {
        "vault_id": sha1,
        "id": int(sha1[:12], 16),
        "name": name,
        "path": os.path.join(vault_root(), "files", sha1),
        "size": entry.get("size"),
        "container_id": entry.get("container_id"),
        "container": entry.get("container_id"),
        "metadata": metadata,
        "hash": sha1,
        "create_time": entry.get("create_time"),
        "contains": metadata.get("contains", []) if isinstance(metadata, dict) else [],
        "mime_type": mimetypes.guess_type(name or "")[0] or "application/octet-stream",
    }


def _same_container(a, b):
    return str(a) == str(b)


def find(vault_id=None, file_name=None, container_id=None):
    """The public entries matching every filter given."""
    meta_dir = _dirs()[2]
    if vault_id is not None:
        vid = str(vault_id).strip().lower()
        shas = [vid] if _SHA1_RE.fullmatch(vid) else []
    else:
        shas = sorted(n[:-5] for n in os.listdir(meta_dir)
                      if n.endswith(".json") and _SHA1_RE.fullmatch(n[:-5]))
    out = []
    for sha1 in shas:
        for entry in _read_meta(sha1):
            if file_name is not None and entry.get("name") != file_name:
                continue
            if container_id is not None and not _same_container(entry.get("container_id"), container_id):
                continue
            out.append(_public(sha1, entry))
    return out


def delete(vault_id=None, file_name=None, container_id=None, remove_all=False):
    """(ok, message, names deleted)."""
    if vault_id is None and file_name is None and container_id is None:
        return False, "vault_delete needs a vault_id, a file_name or a container_id", []
    with _locked():
        matches = find(vault_id=vault_id, file_name=file_name, container_id=container_id)
        if not matches:
            return False, "no vault item matches", []
        if len(matches) > 1 and not remove_all:
            return False, f"{len(matches)} vault items match; pass remove_all=True to delete them all", []
        names = []
        by_sha = {}
        for m in matches:
            by_sha.setdefault(m["vault_id"], []).append(m)
        for sha1, ms in by_sha.items():
            entries = _read_meta(sha1)
            keep = []
            for e in entries:
                hit = any(e.get("name") == m["name"] and e.get("container_id") == m["container_id"] for m in ms)
                if hit:
                    names.append(e.get("name"))
                else:
                    keep.append(e)
            _write_meta(sha1, keep)
            if not keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(vault_root(), "files", sha1))
    return True, f"deleted {len(names)} vault item(s)", names


class Vault:
    @staticmethod
    def get_vault_tmp_dir():
        return _dirs()[3]

    @staticmethod
    def add_attachment(file_location, container_id, file_name=None, metadata=None):
        try:
            ok, message, sha1 = add_file(file_location, container_id, file_name, metadata)
        except Exception as e:
            ok, message, sha1 = False, f"{type(e).__name__}: {e}", None
        return {"succeeded": bool(ok), "message": message, "vault_id": sha1, "hash": sha1}

    @staticmethod
    def create_attachment(file_contents, container_id, file_name=None, metadata=None):
        tmp_dir = Vault.get_vault_tmp_dir()
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".create-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(file_contents.encode("utf-8") if isinstance(file_contents, str) else file_contents)
            return Vault.add_attachment(tmp, container_id, file_name or "attachment", metadata)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @staticmethod
    def get_file_path(vault_id):
        vid = str(vault_id or "").strip().lower()
        if not _SHA1_RE.fullmatch(vid):
            return None
        path = os.path.join(vault_root(), "files", vid)
        return path if os.path.isfile(path) else None

    @staticmethod
    def get_file_info(vault_id=None, file_name=None, container_id=None):
        return find(vault_id=vault_id, file_name=file_name, container_id=container_id)

    @staticmethod
    def delete_file(vault_id=None, file_name=None, container_id=None, remove_all=False):
        return delete(vault_id=vault_id, file_name=file_name, container_id=container_id, remove_all=remove_all)
