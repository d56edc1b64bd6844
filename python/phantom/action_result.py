# luasoar shim of Splunk SOAR's phantom.action_result.ActionResult: the result
# of one parameter set (status, message, data list, summary, parameter).  The
# data list is the name-mangled self.__data, as some connectors reach for
# action_result._ActionResult__data.

from phantom import _runtime
from phantom.app import APP_ERROR, APP_SUCCESS


def summary_message(summary):
    """SOAR's message for a result whose connector set none: the summary as
    "Key one: value, Key two: value"."""
    parts = []
    for key, value in summary.items():
        label = str(key).replace("_", " ")
        label = label[:1].upper() + label[1:]
        parts.append(f"{label}: {value}")
    return ", ".join(parts)


class ActionResult:
    def __init__(self, param=None):
        self.__data = []
        self.__summary = {}
        self.__status = APP_ERROR
        self.__message = ""
        self.__param = param if param is not None else {}
        self.__debug_data = []

    # data
    def add_data(self, data):
        self.__data.append(data)
        return data

    def update_data(self, data_list):
        self.__data.extend(data_list)
        return self.__data

    def get_data(self):
        return self.__data

    def get_data_size(self):
        return len(self.__data)

    # summary
    def update_summary(self, summary):
        self.__summary.update(summary)
        return self.__summary

    def set_summary(self, summary):
        self.__summary = summary if summary is not None else {}
        return self.__summary

    def get_summary(self):
        return self.__summary

    # status and message
    def set_status(self, status, message="", exception=None):
        self.__status = status
        self.__message = _runtime.status_text(message, exception)
        return status

    def get_status(self):
        return self.__status

    def is_success(self):
        return bool(self.__status)

    def is_fail(self):
        return not self.__status

    def get_message(self):
        if not self.__message and self.__summary:
            return summary_message(self.__summary)
        return self.__message

    def append_to_message(self, message):
        self.__message = _runtime.joined(self.__message, message)
        return self.__message

    def add_exception(self, exception):
        return self.append_to_message(_runtime.exception_text(exception))

    # parameter
    def set_param(self, param):
        self.__param = param
        return param

    def get_param(self):
        return self.__param

    def update_param(self, param):
        self.__param.update(param)
        return self.__param

    # debug data: kept, never sent
    def add_debug_data(self, data):
        self.__debug_data.append(data)
        return data

    def get_debug_data(self):
        return self.__debug_data

    def get_dict(self):
        return {
            "status": "success" if self.__status == APP_SUCCESS else "failed",
            "message": self.get_message(),
            "data": self.__data,
            "summary": self.__summary,
            "parameter": self.__param,
        }

    def __repr__(self):
        return f"ActionResult({self.get_dict()!r})"
