# File: iocextract_consts.py
#
# IOC Extract: the constants of the connector (configuration keys, defaults,
# messages, and the CEF field each kind of indicator is saved under).

IOC_CONFIG_MAX_INDICATORS = "max_indicators"
IOC_CONFIG_DEFANG = "defang"
IOC_DEFAULT_MAX_INDICATORS = 100

IOC_TYPES = ("ip", "domain", "url", "hash", "email")
IOC_TYPE_ALL = "all"

# summary key of each indicator type, in the order of IOC_TYPES
IOC_SUMMARY_KEYS = {"ip": "ips", "domain": "domains", "url": "urls", "hash": "hashes", "email": "emails"}

# CEF field and contains of each indicator type, for saved artifacts
IOC_CEF_FIELDS = {
    "ip": "sourceAddress",
    "domain": "destinationDnsDomain",
    "url": "requestURL",
    "hash": "fileHash",
    "email": "emailAddress",
}
IOC_CEF_CONTAINS = {"ip": ["ip"], "domain": ["domain"], "url": ["url"], "hash": ["hash"], "email": ["email"]}
IOC_ARTIFACT_LABEL = "ioc"
IOC_ARTIFACT_SEVERITY = "medium"

# file names look like domains ("invoice.pdf"): a last label among these is not a domain
IOC_FILE_EXTENSIONS = frozenset((
    "bat", "bin", "cmd", "csv", "dll", "doc", "docm", "docx", "exe", "gif", "gz", "hta", "htm",
    "html", "iso", "jar", "jpeg", "jpg", "js", "lnk", "log", "msi", "pdf", "php", "png", "ps1",
    "rar", "rtf", "scr", "sys", "tmp", "txt", "vbs", "xls", "xlsm", "xlsx", "xml",
))

IOC_SUCC_CONNECTIVITY = "Test Connectivity Passed"
IOC_ERR_CONNECTIVITY = "Test Connectivity Failed"
IOC_ERR_MAX_INDICATORS = "Please provide a positive integer in the '{key}' configuration parameter"
IOC_ERR_TYPES = "Please provide one of: {values} in the 'types' parameter"
IOC_ERR_SAVE_ARTIFACTS = "Unable to save the artifacts: {message}"
IOC_MSG_NONE_FOUND = "No indicators found"
