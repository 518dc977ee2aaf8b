"""The HTML report: static checks, and what a real headless Chromium shows.

The browser tests drive Debian's chromium through Playwright (never a downloaded browser).
Without it they skip, saying how to install it; with ``IQ_PROMOTE_REQUIRE_BROWSER=1`` (set
by scripts/test.sh when chromium is there) a missing browser fails instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sample_reports import (
    HOSTILE_REASON,
    KNOWN_APP,
    NEW_APP,
    REGRESSED_APP,
    completed_report,
    report_url,
    sample_report,
)

from orchestrator.render import render_html
from orchestrator.render.html import PAGE_SIZE, embed_json
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "the HTML report's browser test needs Debian's chromium at /usr/bin/chromium: "
    "run `apt-get install -y chromium` (scripts/test.sh does this when run as root)"
)
LARGE = 20_000


def _browser_missing(reason: str) -> None:
    if os.environ.get("IQ_PROMOTE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IQ_PROMOTE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


# --- Without a browser -------------------------------------------------------------------


def test_embed_json_cannot_end_the_script_element() -> None:
    value = {"reason": "</script><!-- <script>alert(1)</script> & \u2028"}
    text = embed_json(value)
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert json.loads(text) == value


def test_page_is_self_contained() -> None:
    page = render_html(sample_report())
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    # Nothing is loaded from elsewhere: no src attribute, no stylesheet link, no CSS import.
    assert not re.search(r"\ssrc\s*=", page)
    assert "@import" not in page
    assert "url(" not in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs
    assert all(h == "data:," or h.startswith(report_url("", "").split("/ui/")[0]) for h in hrefs)


def test_text_from_the_report_is_escaped() -> None:
    page = render_html(sample_report())
    assert "<b>bold</b>" not in page
    assert "<script>alert" not in page
    assert page.count("<script") == 2  # the JSON data and the page's own script
    assert "Data &amp; &lt;Analytics&gt;" in page


def test_javascript_urls_are_not_linked() -> None:
    report = sample_report()
    report.results[0].report_html_url = "javascript:alert(1)"
    assert report.baseline is not None
    report.baseline.new_critical[0].report_html_url = "javascript:alert(2)"
    page = render_html(report)
    assert "javascript:" not in page


def test_sections_follow_what_the_report_holds() -> None:
    page = render_html(sample_report())
    for section in ("counts", "violations", "baseline", "timeline", "evaluation-times"):
        assert f'<section id="{section}">' in page
    plain = completed_report(3)
    for r in plain.results:
        r.violations = None
    page = render_html(plain)
    assert '<section id="violations">' not in page
    assert '<section id="baseline">' not in page


def test_large_run_keeps_the_page_lean() -> None:
    page = render_html(sample_report(size=LARGE, with_baseline=False))
    assert page.count("<tr") < 100  # rows are drawn by the script, a page at a time
    assert page.count("<rect") < 100  # the timeline shows promotions in flight instead
    assert len(page) < 6_000_000


# --- In a browser --------------------------------------------------------------------------

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Dialog,
        Error,
        Page,
        Request,
        sync_playwright,
    )
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _browser_missing("playwright is not installed: pip install -e '.[test]'")
    if not CHROMIUM.exists():
        _browser_missing(INSTALL_HINT)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Opened:
    """A page showing a rendered report, recording every request and script error."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", self._request)
        page.on("pageerror", self._error)
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _error(self, error: Error) -> None:
        self.errors.append(str(error))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def rows(self) -> list[list[str]]:
        cells: list[list[str]] = self.page.eval_on_selector_all(
            "#promotions-table tbody tr",
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent))",
        )
        return cells

    def search(self, text: str) -> None:
        self.page.fill("#search", text)


OpenReport = Callable[[RunReport], Opened]


@pytest.fixture
def open_report(browser: Browser, tmp_path: Path) -> Iterator[OpenReport]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened: list[Opened] = []

    def open_(report: RunReport) -> Opened:
        path = tmp_path / f"report-{len(opened)}.html"
        path.write_text(render_html(report), encoding="utf-8")
        page = Opened(context.new_page())
        page.page.goto(path.as_uri())
        opened.append(page)
        return page

    yield open_
    context.close()
    for page in opened:
        assert page.errors == []
        assert page.dialogs == []
        assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests


def test_browser_shows_counts(open_report: OpenReport) -> None:
    report = sample_report()
    opened = open_report(report)
    page = opened.page
    assert page.text_content("#count-total .n") == str(report.summary.total)
    for outcome in Outcome:
        card = f'#counts .card[data-status="{outcome}"] .n'
        assert page.text_content(card) == str(report.summary.by_status[outcome])
    assert page.text_content("#baseline-new-critical .n") == "1"
    assert page.text_content("#baseline-missing-apps .n") == "1"
    assert page.locator("#timeline svg rect").count() == sum(
        1 for r in report.results if r.submitted_at is not None
    )


def test_browser_table_row_links_the_report(open_report: OpenReport) -> None:
    report = sample_report()
    opened = open_report(report)
    rows = opened.rows()
    assert len(rows) == len(report.results)
    [known] = [r for r in rows if r[0] == KNOWN_APP]
    assert known[1:4] == ["Payments", "build -> release", "COMPLETED"]
    assert "new critical" in known
    expected = next(r.report_html_url for r in report.results if r.public_id == KNOWN_APP)
    link = opened.page.locator("#promotions-table tbody tr", has_text=KNOWN_APP).locator("a")
    assert link.get_attribute("href") == expected
    [hostile] = [r for r in rows if r[0] == "xss-probe"]
    assert HOSTILE_REASON in hostile


def test_browser_search_and_filters(open_report: OpenReport) -> None:
    report = sample_report()
    opened = open_report(report)
    opened.search(KNOWN_APP)
    assert [r[0] for r in opened.rows()] == [KNOWN_APP]
    assert opened.page.text_content("#page-info") == (
        f"Showing 1\u20131 of 1 matching ({len(report.results)} in all)"
    )
    opened.search("policy evaluation failed")
    assert [r[0] for r in opened.rows()] == [REGRESSED_APP]
    opened.search("no such application")
    assert opened.rows() == []
    opened.search("")
    opened.page.select_option("#status-filter", "SKIPPED")
    assert [r[3] for r in opened.rows()] == ["SKIPPED"]
    opened.page.select_option("#status-filter", "")
    opened.page.select_option("#org-filter", "Data & <Analytics>")
    expected = sum(1 for r in report.results if r.organization == "Data & <Analytics>")
    assert len(opened.rows()) == expected
    opened.search("new application")
    assert [r[0] for r in opened.rows()] == []
    opened.page.select_option("#org-filter", "")
    assert [r[0] for r in opened.rows()] == [NEW_APP]


def test_browser_status_card_filters_the_table(open_report: OpenReport) -> None:
    opened = open_report(sample_report())
    opened.page.click('#counts .card[data-status="CANCELLED"]')
    assert [r[3] for r in opened.rows()] == ["CANCELLED"]
    assert opened.page.input_value("#status-filter") == "CANCELLED"
    opened.page.click('#counts .card[data-status="CANCELLED"]')
    assert len(opened.rows()) > 1


def test_browser_sorts_by_column(open_report: OpenReport) -> None:
    report = sample_report()
    opened = open_report(report)
    opened.page.click('th[data-key="durationSeconds"]')
    opened.page.click('th[data-key="durationSeconds"]')
    slowest = max(report.results, key=lambda r: r.duration_seconds or 0)
    assert opened.rows()[0][0] == slowest.public_id


def test_browser_pages_through_a_large_run(open_report: OpenReport) -> None:
    report = sample_report(size=LARGE, with_baseline=False)
    total = len(report.results)
    opened = open_report(report)
    page = opened.page
    assert len(opened.rows()) == PAGE_SIZE
    assert page.text_content("#page-info") == f"Showing 1\u2013{PAGE_SIZE} of {total}"
    assert page.is_disabled("#prev-page")
    page.click("#next-page")
    assert page.text_content("#page-info") == (
        f"Showing {PAGE_SIZE + 1}\u2013{2 * PAGE_SIZE} of {total}"
    )
    opened.search("app-19999")
    assert [r[0] for r in opened.rows()] == ["app-19999"]
    assert page.is_disabled("#next-page")
    link = page.locator("#promotions-table tbody a")
    target = next(r for r in report.results if r.public_id == "app-19999")
    if target.status is Outcome.COMPLETED:
        assert link.get_attribute("href") == target.report_html_url
    else:
        assert link.count() == 0
