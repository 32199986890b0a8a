"""One headless Chromium session (selenium over ChromeDriver), driven by
JSON lines on stdin; each request gets one JSON line on stdout:
{"ok": value} or {"error": "what failed"}.

Requests: {"op": "get", "url"}, {"op": "js", "script", "args"} (the
script's return value), {"op": "click", "css"}, {"op": "click_at", "css",
"at": [x, y]}, {"op": "drag", "css",
"from": [x, y], "to": [x, y]} (offsets from the element's top left),
{"op": "keys", "css", "text"}, {"op": "screenshot", "path"},
{"op": "cdp", "cmd", "params"}, {"op": "logs"}, {"op": "quit"}."""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By


def start(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--enable-precise-memory-info",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def element(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css)


def handle(driver, req):
    op = req.get("op")
    if op == "get":
        driver.get(req["url"])
        return None
    if op == "js":
        return driver.execute_script(req["script"], *req.get("args", []))
    if op == "click":
        element(driver, req["css"]).click()
        return None
    if op == "click_at":
        el = element(driver, req["css"])
        rect = el.rect
        x, y = req["at"]
        ActionChains(driver).move_to_element_with_offset(
            el, int(x - rect["width"] / 2), int(y - rect["height"] / 2)).click().perform()
        return None
    if op == "drag":
        el = element(driver, req["css"])
        rect = el.rect
        (x0, y0), (x1, y1) = req["from"], req["to"]
        # ActionChains offsets are from the element's centre.
        cx, cy = rect["width"] / 2, rect["height"] / 2
        chain = ActionChains(driver)
        chain.move_to_element_with_offset(el, int(x0 - cx), int(y0 - cy)).click_and_hold()
        steps = 8
        for i in range(1, steps + 1):
            chain.move_by_offset(int((x1 - x0) / steps), int((y1 - y0) / steps))
        chain.release().perform()
        return None
    if op == "keys":
        target = element(driver, req["css"]) if req.get("css") else driver.switch_to.active_element
        target.send_keys(req["text"])
        return None
    if op == "screenshot":
        driver.save_screenshot(req["path"])
        return None
    if op == "cdp":
        return driver.execute_cdp_cmd(req["cmd"], req.get("params", {}))
    if op == "logs":
        return [f"{e['level']} {e['message']}" for e in driver.get_log("browser")]
    raise ValueError(f"unknown op {op!r}")


def main():
    width = int(sys.argv[1]) if len(sys.argv) > 1 else 1400
    height = int(sys.argv[2]) if len(sys.argv) > 2 else 900
    try:
        driver = start(width, height)
    except Exception as e:  # noqa: BLE001 - reported to the test as it is
        print(json.dumps({"error": f"starting chromium: {e}"}), flush=True)
        return 1
    print(json.dumps({"ok": "ready"}), flush=True)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            if req.get("op") == "quit":
                print(json.dumps({"ok": None}), flush=True)
                return 0
            try:
                answer = {"ok": handle(driver, req)}
            except Exception as e:  # noqa: BLE001 - reported to the test as it is
                answer = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(answer), flush=True)
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
