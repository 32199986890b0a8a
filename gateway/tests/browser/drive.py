"""Opens a page in headless Chromium through ChromeDriver (selenium) and
prints what the page wrote into #out once its title is "done".

Usage: drive.py URL [TIMEOUT_S]. Exit 0 with the JSON on stdout; exit 1
with the reason on stderr."""

import sys

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait


def main():
    url = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        try:
            WebDriverWait(driver, timeout).until(lambda d: d.title == "done")
        except TimeoutException:
            print(f"the page did not finish in {timeout} s: title {driver.title!r}", file=sys.stderr)
            return 1
        print(driver.find_element("id", "out").text)
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
