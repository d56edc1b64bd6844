# File: iocextract_connector.py
#
# IOC Extract, an example SOAR connector that ships with luasoar: it finds the
# indicators of compromise (IP addresses, domains, URLs, hashes, email
# addresses) in a text, defanged or not, and can save them as artifacts of
# the container.  Standard library only.

import json
import re
import sys

import phantom.app as phantom
import phantom.utils as ph_utils
from phantom.action_result import ActionResult
from phantom.base_connector import BaseConnector

from iocextract_consts import *

# defanged spellings, and what they stand for
REFANG_RULES = (
    (re.compile(r"\bh(?:xx|XX|\*\*)p(s?)(?=\[?:)", re.IGNORECASE), r"http\1"),
    (re.compile(r"\[://\]"), "://"),
    (re.compile(r"\[:\]"), ":"),
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.IGNORECASE), "."),
    (re.compile(r"\[@\]|\[at\]|\(at\)", re.IGNORECASE), "@"),
)

# one pass over the text finds every candidate in order; the first group that
# matches at a position wins, so a URL's host or an email's domain is not also
# reported as a domain
CANDIDATE_RE = re.compile(
    r"""
      (?P<url>\b(?:https?|ftps?|sftp)://[^\s<>"'`]+)
    | (?P<email>\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}\b)
    | (?P<hash>\b(?:[A-Fa-f0-9]{64}|[A-Fa-f0-9]{40}|[A-Fa-f0-9]{32})\b)
    | (?P<ip>\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b)
    | (?P<domain>\b(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}\b)
    """,
    re.VERBOSE,
)

URL_TRAILING = ".,;:!?'\")]}>"
HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256"}


def refang(text):
    for pattern, replacement in REFANG_RULES:
        text = pattern.sub(replacement, text)
    return text


def defang(ioc_type, value):
    if ioc_type == "url":
        scheme, _, rest = value.partition("://")
        host, sep, path = rest.partition("/")
        return scheme.replace("http", "hxxp") + "://" + host.replace(".", "[.]") + sep + path
    if ioc_type in ("ip", "domain"):
        return value.replace(".", "[.]")
    if ioc_type == "email":
        local, _, domain = value.partition("@")
        return local + "@" + domain.replace(".", "[.]")
    return value


class IocExtractConnector(BaseConnector):
    def __init__(self):
        super().__init__()
        self._max_indicators = IOC_DEFAULT_MAX_INDICATORS
        self._defang = True

    def initialize(self):
        config = self.get_config()

        max_indicators = config.get(IOC_CONFIG_MAX_INDICATORS, IOC_DEFAULT_MAX_INDICATORS)
        if isinstance(max_indicators, float) and max_indicators.is_integer():
            max_indicators = int(max_indicators)
        if isinstance(max_indicators, bool) or not isinstance(max_indicators, int) or max_indicators <= 0:
            return self.set_status(phantom.APP_ERROR, IOC_ERR_MAX_INDICATORS.format(key=IOC_CONFIG_MAX_INDICATORS))
        self._max_indicators = max_indicators

        self._defang = bool(config.get(IOC_CONFIG_DEFANG, True))
        return phantom.APP_SUCCESS

    # ---------------------------------------------------------------- extraction

    def _validate(self, ioc_type, value):
        if ioc_type == "url":
            return ph_utils.is_url(value)
        if ioc_type == "email":
            return ph_utils.is_email(value)
        if ioc_type == "hash":
            return ph_utils.is_hash(value)
        if ioc_type == "ip":
            return ph_utils.is_ip(value)
        if ioc_type == "domain":
            return ph_utils.is_domain(value) and value.rsplit(".", 1)[-1].lower() not in IOC_FILE_EXTENSIONS
        return False

    def _extract(self, text, wanted):
        """The indicators of the wanted types in text, in the order of their
        first appearance, each once; and whether max_indicators cut the list."""
        indicators = []
        seen = set()
        for match in CANDIDATE_RE.finditer(refang(text)):
            ioc_type = match.lastgroup
            value = match.group(ioc_type)
            if ioc_type == "url":
                value = value.rstrip(URL_TRAILING)
            elif ioc_type in ("domain", "hash", "email"):
                value = value.lower()
            if ioc_type not in wanted or not self._validate(ioc_type, value):
                continue
            if (ioc_type, value) in seen:
                continue
            if len(indicators) == self._max_indicators:
                return indicators, True
            seen.add((ioc_type, value))
            item = {"type": ioc_type, "value": value}
            if self._defang:
                item["defanged"] = defang(ioc_type, value)
            indicators.append(item)
        return indicators, False

    def _wanted_types(self, action_result, param):
        types = param.get("types") or IOC_TYPE_ALL
        if types == IOC_TYPE_ALL:
            return phantom.APP_SUCCESS, set(IOC_TYPES)
        if types not in IOC_TYPES:
            values = ", ".join((IOC_TYPE_ALL,) + IOC_TYPES)
            return action_result.set_status(phantom.APP_ERROR, IOC_ERR_TYPES.format(values=values)), None
        return phantom.APP_SUCCESS, {types}

    @staticmethod
    def _counts(indicators):
        summary = {"total_indicators": len(indicators)}
        for ioc_type in IOC_TYPES:
            summary[IOC_SUMMARY_KEYS[ioc_type]] = sum(1 for i in indicators if i["type"] == ioc_type)
        return summary

    # ---------------------------------------------------------------- actions

    def _handle_test_connectivity(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))

        self.save_progress("Extracting the indicators of a sample text")
        sample = "hxxps://example[.]com/x from 192.0.2.1"
        indicators, _ = self._extract(sample, set(IOC_TYPES))
        found = [i["value"] for i in indicators]
        if found != ["https://example.com/x", "192.0.2.1"]:
            self.save_progress(IOC_ERR_CONNECTIVITY)
            return action_result.set_status(phantom.APP_ERROR, f"the sample gave {found}")

        self.save_progress(IOC_SUCC_CONNECTIVITY)
        return action_result.set_status(phantom.APP_SUCCESS)

    def _handle_extract_indicators(self, param):
        self.save_progress(f"In action handler for: {self.get_action_identifier()}")
        action_result = self.add_action_result(ActionResult(dict(param)))

        ret_val, wanted = self._wanted_types(action_result, param)
        if phantom.is_fail(ret_val):
            return action_result.get_status()

        indicators, truncated = self._extract(param["text"], wanted)
        self.debug_print(f"{len(indicators)} indicators found")
        for item in indicators:
            action_result.add_data(item)

        summary = action_result.update_summary(self._counts(indicators))
        if not indicators:
            return action_result.set_status(phantom.APP_SUCCESS, IOC_MSG_NONE_FOUND)
        message = f"{summary['total_indicators']} indicators found"
        if truncated:
            message += f" (stopped at max_indicators = {self._max_indicators})"
        return action_result.set_status(phantom.APP_SUCCESS, message)

    def _handle_add_indicators_as_artifacts(self, param):
        self.save_progress(f"In action handler for: {self.get_action_identifier()}")
        action_result = self.add_action_result(ActionResult(dict(param)))

        ret_val, wanted = self._wanted_types(action_result, param)
        if phantom.is_fail(ret_val):
            return action_result.get_status()

        indicators, _ = self._extract(param["text"], wanted)
        if not indicators:
            action_result.update_summary({"artifacts_added": 0})
            return action_result.set_status(phantom.APP_SUCCESS, IOC_MSG_NONE_FOUND)

        container_id = self.get_container_id()
        artifacts = []
        for item in indicators:
            field = IOC_CEF_FIELDS[item["type"]]
            contains = list(IOC_CEF_CONTAINS[item["type"]])
            if item["type"] == "hash":
                contains.append(HASH_TYPES[len(item["value"])])
            artifacts.append({
                "name": f"{item['type']} indicator",
                "label": IOC_ARTIFACT_LABEL,
                "severity": IOC_ARTIFACT_SEVERITY,
                "container_id": container_id,
                "source_data_identifier": f"iocextract:{item['type']}:{item['value']}",
                "cef": {field: item["value"]},
                "cef_types": {field: contains},
                "run_automation": False,
            })

        self.save_progress(f"Saving {len(artifacts)} artifacts")
        ret_val, message, artifact_ids = self.save_artifacts(artifacts)
        if phantom.is_fail(ret_val):
            return action_result.set_status(phantom.APP_ERROR, IOC_ERR_SAVE_ARTIFACTS.format(message=message))

        for item, artifact_id in zip(indicators, artifact_ids):
            action_result.add_data({"type": item["type"], "value": item["value"], "artifact_id": artifact_id})
        action_result.update_summary({"artifacts_added": len(artifact_ids)})
        return action_result.set_status(phantom.APP_SUCCESS, f"{len(artifact_ids)} artifacts added")

    def handle_action(self, param):
        ret_val = phantom.APP_SUCCESS

        action_id = self.get_action_identifier()
        self.debug_print("action_id", action_id)

        if action_id == "test_connectivity":
            ret_val = self._handle_test_connectivity(param)
        elif action_id == "extract_indicators":
            ret_val = self._handle_extract_indicators(param)
        elif action_id == "add_indicators_as_artifacts":
            ret_val = self._handle_add_indicators_as_artifacts(param)

        return ret_val


if __name__ == "__main__":
    # python3 iocextract_connector.py TEST.json, with luasoar's python/ folder
    # on PYTHONPATH: runs one action outside the engine and prints its results
    if len(sys.argv) < 2:
        print("No test json specified as input")
        sys.exit(0)

    with open(sys.argv[1]) as f:
        in_json = json.load(f)
        print(json.dumps(in_json, indent=4))

        connector = IocExtractConnector()
        connector.print_progress_message = True
        ret_val = connector._handle_action(json.dumps(in_json), None)
        print(json.dumps(json.loads(ret_val), indent=4))

    sys.exit(0)
