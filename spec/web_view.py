#!/usr/bin/python3
"""The web view of luasoar serve in a real headless Chromium (Debian's
chromium, chromium-driver, python3-selenium), as an analyst uses it:

  web_view.py BASE_URL TOKEN [--shots DIR] [--name NAME]

signs in with the token, ingests a container (over REST) whose name, artifact
and log lines hold HTML and script, sees its run appear and go on without a
reload, opens it, sees its actions and log, approves its pending approval from
the page, sees the run end, signs out.  Prints one JSON object of what it saw
(the spec asserts on it).  With --shots, saves the screenshots the README
shows."""
import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def rest(base, token, path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"ph-auth-token": token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait(what, fn, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # the page is being replaced: try again
            pass
        time.sleep(0.1)
    raise SystemExit(json.dumps({"failed": "timed out waiting for " + what}))


def main():
    base, token = sys.argv[1], sys.argv[2]
    shots = sys.argv[sys.argv.index("--shots") + 1] if "--shots" in sys.argv else None
    name = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv else HOSTILE
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    seen = {}
    try:
        # without a session, every page leads to the sign-in page
        d.get(base + "/runs")
        seen["signed_out_url"] = d.current_url
        field = d.find_element(By.CSS_SELECTOR, "form input[type=password]")
        field.send_keys("not the token")
        field.submit()
        seen["wrong_token"] = d.find_element(By.CSS_SELECTOR, ".error").text
        if shots:
            d.save_screenshot(shots + "/signin.png")
        field = d.find_element(By.CSS_SELECTOR, "form input[type=password]")
        field.send_keys(token)
        field.submit()
        wait("the runs page", lambda: d.current_url.endswith("/runs"))
        cookie = d.get_cookie("luasoar_session")
        seen["cookie"] = {"httpOnly": cookie["httpOnly"], "sameSite": cookie["sameSite"], "expires": "expiry" in cookie}
        # a container arrives while the page is open: its run shows up, live
        c = rest(base, token, "/rest/container", {"name": name, "label": "events",
                                                  "artifacts": [{"name": name, "cef": {"note": name}}]})
        row = wait("the run in the list", lambda: d.find_element(By.CSS_SELECTOR, "tr[data-run=\"%d\"] td:nth-child(2) a"
                                                                % rest(base, token, "/rest/playbook_run?_filter_container=%d"
                                                                       % c["id"])["data"][0]["id"]))
        seen["list_playbook"] = row.text
        seen["list_status"] = wait("a waiting run", lambda: (lambda t: t if t == "waiting" else None)(
            d.find_element(By.CSS_SELECTOR, "tr[data-run] .status").text))
        if shots:
            d.save_screenshot(shots + "/runs.png")
        d.find_element(By.CSS_SELECTOR, "tr[data-run] td:first-child a").click()
        wait("the run's page", lambda: "/runs/" in d.current_url)
        seen["actions"] = [td.text for td in d.find_elements(By.CSS_SELECTOR, "table.actions tbody td:first-child")]
        seen["log"] = [li.find_element(By.CSS_SELECTOR, ".text").text for li in d.find_elements(By.CSS_SELECTOR, "ol.log li")]
        seen["bars"] = len(d.find_elements(By.CSS_SELECTOR, ".timeline .bar"))
        if shots:
            d.save_screenshot(shots + "/run.png")
        d.find_element(By.CSS_SELECTOR, "form.prompt button[value=approve]").click()
        wait("the run's page again", lambda: "/runs/" in d.current_url and d.find_elements(By.CSS_SELECTOR, "h1 .status"))
        seen["after_answer"] = wait("the run's end", lambda: (lambda t: t if t in ("success", "failed") else None)(
            d.find_element(By.CSS_SELECTOR, "h1 .status").text))
        seen["log_after"] = [li.find_element(By.CSS_SELECTOR, ".text").text
                             for li in d.find_elements(By.CSS_SELECTOR, "ol.log li")]
        runs = rest(base, token, "/rest/playbook_run?_filter_container=%d" % c["id"])
        seen["rest_status"] = runs["data"][0]["status"]
        # nothing the data held ran
        seen["pwned"] = d.execute_script("return window.pwned === undefined ? false : window.pwned")
        try:
            d.switch_to.alert
            seen["alert"] = True
        except NoAlertPresentException:
            seen["alert"] = False
        d.get(base + "/containers")
        seen["container_row"] = [td.text for td in d.find_elements(By.CSS_SELECTOR, "table.containers tbody tr:first-child td")]
        seen["pwned_after"] = d.execute_script("return window.pwned === undefined ? false : window.pwned")
        seen["console_errors"] = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        d.find_element(By.CSS_SELECTOR, "header form button").click()
        wait("the sign-in page", lambda: d.find_elements(By.CSS_SELECTOR, "input[type=password]"))
        d.get(base + "/runs")
        seen["after_signout_url"] = d.current_url
    finally:
        d.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
