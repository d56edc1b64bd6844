# luasoar shim of the vault functions of Splunk SOAR's phantom.rules that
# connectors call (vault_add, vault_info, vault_delete), over the vault store
# of phantom.vault.

from phantom import vault as _vault


def vault_add(container=None, file_location=None, file_name=None, metadata=None, trace=False):
    """(ok, message, vault_id): copy file_location into the vault."""
    try:
        return _vault.add_file(file_location, container, file_name, metadata)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}", None


def vault_info(vault_id=None, file_name=None, container_id=None, trace=False):
    """(ok, message, [entries]) for the items matching every filter given."""
    try:
        found = _vault.find(vault_id=vault_id, file_name=file_name, container_id=container_id)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}", []
    if not found:
        return False, "no vault item matches", []
    return True, "success", found


def vault_delete(vault_id=None, file_name=None, container_id=None, remove_all=False, trace=False):
    """(ok, message, [names deleted])."""
    try:
        return _vault.delete(vault_id=vault_id, file_name=file_name, container_id=container_id,
                             remove_all=remove_all)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}", []
