# luasoar shim of Splunk SOAR's phantom.app: the status values, helpers and
# key/message constants published connectors import (`import phantom.app as
# phantom`).  Our own code; names and values follow what connectors expect.

from urllib.parse import urlparse

APP_SUCCESS = True
APP_ERROR = False

# what published connectors compare get_action_identifier() with (the dns
# connector: its manifest names the action "test_asset_connectivity")
ACTION_ID_TEST_ASSET_CONNECTIVITY = "test_asset_connectivity"
ACTION_ID_INGEST_ON_POLL = "on_poll"

# keys of action parameters, results and configurations
APP_JSON_ACTION_NAME = "action_name"
APP_JSON_APP_RUN_ID = "app_run_id"
APP_JSON_ARTIFACT_COUNT = "artifact_count"
APP_JSON_ARTIFACT_ID = "artifact_id"
APP_JSON_ASSET_ID = "asset_id"
APP_JSON_CONTAINER_COUNT = "container_count"
APP_JSON_CONTAINER_ID = "container_id"
APP_JSON_CONTAINS = "contains"
APP_JSON_DEVICE = "device"
APP_JSON_DOMAIN = "domain"
APP_JSON_END_TIME = "end_time"
APP_JSON_FILE_NAME = "file_name"
APP_JSON_HASH = "hash"
APP_JSON_HOSTNAME = "hostname"
APP_JSON_IP = "ip"
APP_JSON_IP_HOSTNAME = "ip_hostname"
APP_JSON_MD5 = "md5"
APP_JSON_NAME = "name"
APP_JSON_PASSWORD = "password"
APP_JSON_PORT = "port"
APP_JSON_QUERY = "query"
APP_JSON_SERVER = "server"
APP_JSON_SHA1 = "sha1"
APP_JSON_SHA256 = "sha256"
APP_JSON_SIZE = "size"
APP_JSON_START_TIME = "start_time"
APP_JSON_URL = "url"
APP_JSON_USERNAME = "username"
APP_JSON_VAULT_ID = "vault_id"
APP_JSON_VERIFY = "verify_server_cert"

# messages
APP_SUCC_CONNECTIVITY_TEST = "Connectivity test succeeded"
APP_SUCC_FILE_ADD_TO_VAULT = "File successfully added to the vault"
APP_SUCC_QUERY = "Query successful"
APP_SUCC_RESPONSE = "Response received"
APP_ERR_CONNECTIVITY_TEST = "Connectivity test failed"
APP_ERR_FILE_ADD_TO_VAULT = "Error adding the file to the vault"
APP_ERR_FILE_NOT_IN_VAULT = "File not found in the vault"
APP_ERR_INVALID_PARAM = "Invalid parameter"
APP_ERR_MISSING_PARAM = "Missing parameter"
APP_ERR_SERVER_CONNECTION = "Error connecting to the server"
APP_ERR_UNABLE_TO_PARSE_REPLY = "Unable to parse the reply from the server"
APP_ERR_CODE_MSG = "Error code unavailable"
APP_PROG_CONNECTING_TO_ELLIPSES = "Connecting to {0}..."
APP_PROG_CONNECTED_TO = "Connected to {0}"
APP_PROG_QUERYING = "Querying..."


def is_success(status):
    return bool(status)


def is_fail(status):
    return not status


def get_value(d, key, default=None):
    if not isinstance(d, dict):
        return default
    return d.get(key, default)


def get_str_val(d, key, default=None):
    value = get_value(d, key, default)
    if value is None:
        return value
    return value if isinstance(value, str) else str(value)


def get_host_from_url(url):
    """The host part of a URL ("https://user@host:8443/x" -> "host"); a
    string without a scheme is read as "//" + it."""
    if not isinstance(url, str) or not url:
        return None
    text = url.strip()
    if "://" not in text:
        text = "//" + text
    try:
        return urlparse(text).hostname
    except ValueError:
        return None
