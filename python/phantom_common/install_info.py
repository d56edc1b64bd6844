# luasoar shim of Splunk SOAR's phantom_common.install_info: facts about the
# "installation" connectors ask for.  luasoar is never in FIPS mode.

PRODUCT_VERSION = "6.3.0"


def is_fips_enabled():
    return False


def get_product_version():
    return PRODUCT_VERSION


def get_phantom_version():
    return PRODUCT_VERSION


def is_dev_env():
    return False


def get_verify_ssl_setting():
    return True


def get_rest_base_url():
    return "https://127.0.0.1/rest/"
