"""The web page in a real browser: `kb serve` on a free loopback port, Debian's chromium headless.

Screenshots go to docs/screenshots/. `make test` installs chromium and chromium-driver when missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.ingest.pipeline import ingest
from kb.settings import Settings
from tests.utils import ROOT, kb_serve, write_market_corpus

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = ROOT / "docs" / "screenshots"

pytestmark = [pytest.mark.slow,  # a real Chromium per test
              pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                 reason="needs Debian's chromium and chromium-driver (make test installs them)")]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kb serve` over the mini corpus plus a few needs and results, in its own process; yields the base URL."""
    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    assert ingest([write_market_corpus(root / "corpus")], Settings(home=home)).failed == []
    with kb_serve(home, root / "server.log", KB_API_KEYS="browser-test-key") as (url, _):
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--lang=zh-CN"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, seconds: float = 30) -> Any:
    return WebDriverWait(driver, seconds)


def _open(driver: Any, url: str, width: int = 1280, height: int = 900) -> None:
    """A fresh page load (a hash-only change would keep the previous test's state)."""
    driver.get("about:blank")
    driver.set_window_size(width, height)
    driver.get(url)
    _wait(driver).until(EC.text_to_be_present_in_element((By.ID, "status"), "已收录"))


def _shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / name))


def test_search_tab_shows_highlighted_hits(server: str, browser: Any) -> None:
    _open(browser, server + "/")
    assert "已收录 14 篇文档" in browser.find_element(By.ID, "status").text
    assert browser.title == "沁水县煤层气技术知识库"
    assert browser.find_element(By.ID, "tab-search").get_attribute("aria-selected") == "true"

    box = browser.find_element(By.ID, "q")
    box.send_keys("排采过程中如何控制井底流压")
    box.submit()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "search-summary"), "条结果"))
    summary = browser.find_element(By.ID, "search-summary").text
    assert summary.startswith("共 ") and "毫秒" in summary
    hits = browser.find_elements(By.CSS_SELECTOR, "#search-hits > li")
    assert hits and hits[0].get_attribute("data-doc") == "dewatering"
    first = hits[0]
    assert first.find_element(By.TAG_NAME, "h3").text == "1. 排采控制"
    assert first.find_element(By.CSS_SELECTOR, ".path").text == "排采控制 > 1.排采制度"
    marks = [m.text for m in first.find_elements(By.TAG_NAME, "mark")]
    assert "井底" in marks or "流压" in marks or "排采" in marks, marks
    _shot(browser, "search.png")

    Select(browser.find_element(By.ID, "f-kind")).select_by_value("paper")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "search-summary"), "没有找到相关内容"))
    assert browser.find_elements(By.CSS_SELECTOR, "#search-hits > li") == []


def test_search_on_a_phone_sized_window(server: str, browser: Any) -> None:
    _open(browser, server + "/#search", 390, 844)
    box = browser.find_element(By.ID, "q")
    box.send_keys("多分支水平井")
    box.submit()
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#search-hits > li")))
    first = browser.find_element(By.CSS_SELECTOR, "#search-hits > li")
    assert first.get_attribute("data-doc") == "horizontal"
    assert first.size["width"] <= 390  # the card fits the screen: no sideways scrolling
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    _shot(browser, "search-phone.png")


def test_error_from_the_api_is_shown(server: str, browser: Any) -> None:
    _open(browser, server + "/")
    box = browser.find_element(By.ID, "q")
    box.send_keys("。。。")
    box.submit()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "search-summary"), "输入有误"))
    assert "error" in browser.find_element(By.ID, "search-summary").get_attribute("class")


def test_ask_tab_answers_with_expandable_citations(server: str, browser: Any) -> None:
    _open(browser, server + "/#ask")
    assert browser.find_element(By.ID, "panel-ask").is_displayed()
    box = browser.find_element(By.ID, "question")
    box.send_keys("排采分为哪几个阶段")
    box.submit()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "ask-summary"), "引用 1 段原文"))
    answer = browser.find_element(By.ID, "ask-answer")
    assert answer.text == "排采分为排水降压、不稳定产气和稳定产气阶段。[1]"
    details = browser.find_element(By.CSS_SELECTOR, "#cite-1 details")
    assert details.get_attribute("open") is None
    answer.find_element(By.CSS_SELECTOR, "sup a").click()  # the [1] marker opens its passage
    _wait(browser).until(lambda d: details.get_attribute("open") is not None)
    assert "排采控制 > 1.排采制度" in details.text and "稳定产气阶段" in details.text
    _shot(browser, "ask.png")


def test_match_tab_picks_a_need_and_shows_reasons(server: str, browser: Any) -> None:
    _open(browser, server + "/#match")
    select = Select(browser.find_element(By.ID, "need"))
    _wait(browser).until(lambda d: len(select.options) == 5)  # "none" + four needs
    select.select_by_value("N101")
    browser.find_element(By.CSS_SELECTOR, "#match-form button").click()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "match-summary"), "山区集输管线被挖伤和漏气发现太晚"))
    cards = browser.find_elements(By.CSS_SELECTOR, "#match-results > li")
    assert len(cards) == 5 and cards[0].get_attribute("data-doc") == "R101"
    reasons = [li.text for li in cards[0].find_elements(By.CSS_SELECTOR, ".reasons li")]
    assert "领域：领域一致：储运液化" in reasons and any(r.startswith("得分：综合得分") for r in reasons)
    _shot(browser, "match.png")

    select.select_by_value("")
    browser.find_element(By.ID, "problem").send_keys("回风井排出的极稀甲烷怎么处理")
    browser.find_element(By.CSS_SELECTOR, "#match-form button").click()
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "match-summary"), "您描述的问题"))
    assert browser.find_element(By.CSS_SELECTOR, "#match-results > li").get_attribute("data-doc") == "R110"


def test_batch_sheet_download(server: str, browser: Any, downloads: Path) -> None:
    import openpyxl

    _open(browser, server + "/#match")
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.find_element(By.ID, "batch-link").click()
    _wait(browser, 60).until(lambda d: list(downloads.glob("*.xlsx")))
    sheet = next(downloads.glob("*.xlsx"))
    rows = list(openpyxl.load_workbook(sheet).active.values)
    assert sheet.name == "供需匹配.xlsx" and rows[0][0] == "需求编号" and len(rows) == 1 + 4 * 5
