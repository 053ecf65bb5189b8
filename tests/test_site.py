"""The version's static page in a real headless browser (Chromium from Debian's packages, offline):
type a name, read what the page says."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "the site test needs chromium and chromedriver (.ci/run installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=900,700"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def ask(browser, page: Path, query: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(page.as_uri())
    box = browser.find_element(By.ID, "q")
    box.send_keys(query)  # typed, key by key
    box.send_keys(Keys.ENTER)
    return browser.find_element(By.ID, "result").text


def test_an_author_types_a_name_and_reads_the_answer(browser, built_sample: Path, tmp_path: Path) -> None:
    page = built_sample / "v2.1" / "site" / "index.html"
    text = ask(browser, page, "bigcode-project/the-stack-v2")
    assert "in version 2.1: 51 files" in text and "10 files left out" in text
    assert "filters/vendored 1" in text
    assert "near_dedup/near_duplicate" in text
    shot = Path(os.environ.get("SITE_SCREENSHOT", tmp_path / "site.png"))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert "in version 2.1: 51 files" in ask(browser, page, "https://github.com/BigCode-Project/the-stack-v2.git")


def test_a_user_name_lists_its_repositories_and_an_unknown_one_says_so(browser, built_sample: Path) -> None:
    page = built_sample / "v2.1" / "site" / "index.html"
    assert "bigcode-project/the-stack-v2" in ask(browser, page, "bigcode-project")
    gpl = ask(browser, page, "https://example.org/swh-graph/git2graph-sample-repo")
    assert "not in version 2.1: no file kept" in gpl and "language/unknown_language" in gpl
    assert "not in version 2.1 (it was not in the input" in ask(browser, page, "nobody/nothing")
