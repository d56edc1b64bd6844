"""
Geolocate the source addresses of a container's artifacts and note the
countries found: a playbook in the style of Splunk SOAR's visual editor,
for `luasoar port` to turn into Lua.
"""

import phantom.rules as phantom
import json
from datetime import datetime, timedelta


@phantom.playbook_block()
def on_start(container):
    phantom.debug('on_start() called')

    # call 'geolocate_ip_1' block
    geolocate_ip_1(container=container)

    return

@phantom.playbook_block()
def geolocate_ip_1(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("geolocate_ip_1() called")

    container_artifact_data = phantom.collect2(container=container, datapath=["artifact:*.cef.sourceAddress","artifact:*.id"])

    parameters = []

    # build parameters list for 'geolocate_ip_1' call
    for container_artifact_item in container_artifact_data:
        if container_artifact_item[0] is not None:
            parameters.append({
                "ip": container_artifact_item[0],
                "context": {'artifact_id': container_artifact_item[1]},
            })

    phantom.act("geolocate ip", parameters=parameters, name="geolocate_ip_1", assets=["geoip"], callback=report_countries)

    return


@phantom.playbook_block()
def report_countries(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("report_countries() called")

    geolocate_ip_1_result_data = phantom.collect2(container=container, datapath=["geolocate_ip_1:action_result.parameter.ip","geolocate_ip_1:action_result.summary.country"], action_results=results)

    report_countries__countries = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    report_countries__countries = []
    for item in geolocate_ip_1_result_data:
        if item[1] and item[1] not in report_countries__countries:
            report_countries__countries.append(item[1])
        phantom.debug(f"{item[0]}: {item[1] or 'no country'}")
    phantom.debug("countries: {}".format(", ".join(sorted(report_countries__countries))))

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="report_countries:countries", value=json.dumps(report_countries__countries))

    return


@phantom.playbook_block()
def on_finish(container, summary):
    phantom.debug("on_finish() called")

    return
