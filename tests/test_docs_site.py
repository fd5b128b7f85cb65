"""The documentation site works where the README sends readers: ``site/index.html``, opened from the file system.

The site is built with ``mkdocs build --strict`` into a temporary folder and driven in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, through selenium; no browser is downloaded):

- every link of the navigation, clicked on the home page and followed from every page it leads to, lands on a page
  of the site (an ``.html`` file with the page's content), never on a folder's listing, which is what
  ``file://`` shows for the ``name/`` links of directory URLs;
- no code block runs off its right edge, at a desktop's width or a phone's: its text fits in its box (long lines
  wrap). Text reachable only by scrolling counts as cut here too, since overlay scrollbars (macOS, GTK) are not
  drawn until one scrolls, and nothing tells the reader that a line goes on.

Without Chromium, chromedriver, selenium or the ``docs`` extra the tests skip with the reason, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from queue_servers import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]

#: Desktop and phone viewports (width, height in CSS pixels).
VIEWPORTS = ((1280, 900), (412, 900))

#: The primary navigation's links (the sidebar; on a phone, the drawer).
NAV_LINKS = "nav.md-nav--primary a.md-nav__link[href]"

#: Every visible pre/code element whose text is wider than its box: [tag, scrollWidth, clientWidth, first line].
CUT_CODE = """
const cut = [];
for (const el of document.querySelectorAll('pre, code')) {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;
  if (el.scrollWidth > el.clientWidth + 1) {
    cut.push([el.tagName, el.scrollWidth, el.clientWidth, (el.textContent || '').trim().split('\\n')[0].slice(0, 80)]);
  }
}
return cut;
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it (``--strict``), in a temporary folder."""
    try:
        import material  # noqa: F401 - the theme: the docs extra is installed
        import mkdocs  # noqa: F401
    except ImportError:
        unavailable("mkdocs is not installed (pip install -e '.[docs]')")
    target = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(target)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return target


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by selenium through Debian's chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        unavailable("chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # a driver path: no Selenium Manager
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_every_navigation_link_clicked_on_the_home_page_opens_a_page(browser: Any, site: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser.set_window_size(*VIEWPORTS[0])
    home = (site / "index.html").as_uri()
    browser.get(home)
    # the shown ones: the sidebar also holds the current page's table of contents, hidden at this width
    shown = [i for i, link in enumerate(browser.find_elements(By.CSS_SELECTOR, NAV_LINKS)) if link.is_displayed()]
    assert len(shown) == len(_nav_pages()), "one navigation link per page of mkdocs.yml's nav"
    for index in shown:
        browser.get(home)
        link = browser.find_elements(By.CSS_SELECTOR, NAV_LINKS)[index]
        label = link.text or link.get_attribute("href")
        # a DOM click on the link (what the reader's click sends), not a click at screen coordinates: Material
        # scrolls its sidebar to the current page as it loads, which sometimes moved the link under the pointer
        href = link.get_attribute("href").split("#", 1)[0]
        browser.execute_script("arguments[0].click()", link)
        WebDriverWait(browser, 20).until(_loaded(href))
        _assert_a_page(browser, site, f"{label!r} clicked on the home page")


def test_the_navigation_reaches_every_page_from_every_page(browser: Any, site: Path) -> None:
    """Followed from each page it reaches (relative links differ by depth): every entry of mkdocs.yml's nav."""
    browser.set_window_size(*VIEWPORTS[0])
    reached = {(site / "index.html").as_uri()}
    waiting = sorted(reached)
    while waiting:  # bounded: each page of the site is visited once
        page = waiting.pop()
        browser.get(page)
        _assert_a_page(browser, site, f"{_relative(page, site)}")
        for target in _nav_targets(browser):
            if target not in reached:
                reached.add(target)
                waiting.append(target)
    assert {_relative(url, site) for url in reached} == _nav_pages()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=[f"{w}px" for w, _ in VIEWPORTS])
def test_no_code_block_runs_off_its_right_edge(browser: Any, site: Path, viewport: tuple[int, int]) -> None:
    browser.set_window_size(*viewport)
    cut: dict[str, list[Any]] = {}
    for page in sorted(_nav_pages()):
        browser.get((site / page).as_uri())
        _assert_a_page(browser, site, page)
        found = browser.execute_script(CUT_CODE)
        if found:
            cut[page] = found
    assert not cut, f"code cut off at {viewport[0]}px wide (tag, text width, box width, line): {cut}"


def _loaded(url: str) -> Callable[[Any], bool]:
    """A wait condition: the browser shows ``url`` (fragment aside), fully loaded."""

    def condition(browser: Any) -> bool:
        shown = browser.current_url.split("#", 1)[0] == url
        return shown and browser.execute_script("return document.readyState") == "complete"

    return condition


def _nav_pages() -> set[str]:
    """The pages mkdocs.yml's nav lists, as built files relative to the site (``guides/x.ipynb`` -> ``.html``)."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages: set[str] = set()
    entries = list(config["nav"])
    while entries:  # bounded: the nav is a finite tree, each entry taken once
        entry = entries.pop()
        if isinstance(entry, dict):
            entries.extend(entry.values())
        elif isinstance(entry, list):
            entries.extend(entry)
        else:
            pages.add(str(Path(entry).with_suffix(".html")))
    return pages


def _nav_targets(browser: Any) -> list[str]:
    """Where the page's navigation links lead, as the browser resolves them (what a click opens), no fragment."""
    hrefs = browser.execute_script(f"return [...document.querySelectorAll('{NAV_LINKS}')].map(a => a.href)")
    return sorted({href.split("#", 1)[0] for href in hrefs})


def _assert_a_page(browser: Any, site: Path, what: str) -> None:
    from selenium.webdriver.common.by import By

    url = browser.current_url
    assert url.startswith(site.as_uri()), f"{what}: left the site for {url}"
    assert url.split("#", 1)[0].endswith(".html"), f"{what}: opened {url}, a folder ({browser.title!r})"
    assert browser.find_elements(By.CSS_SELECTOR, "article.md-content__inner"), f"{what}: {url} is not a page"


def _relative(url: str, site: Path) -> str:
    return url.split("#", 1)[0].removeprefix(site.as_uri() + "/")
