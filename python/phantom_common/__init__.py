# luasoar shim of Splunk SOAR's phantom_common package (install facts some
# connectors ask for, e.g. phantom_common.install_info.is_fips_enabled()).
