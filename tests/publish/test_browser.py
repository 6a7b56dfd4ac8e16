"""The published pages in a real headless browser: Debian's chromium, driven by Playwright.

Without chromium or the playwright package these tests skip with the reason (``CI=true``: they
fail).  Playwright's own browser downloads are never used: ``executable_path`` is the system
chromium.  A screenshot of the report lands in ``tmp_path`` and in ``SCREENSHOT``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from publish_kit import acted_per_rule, cli

from retentiond.policy.loader import load_policies

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the skip below says how to install it
    sync_playwright = None

CHROMIUM = Path(os.environ.get("RETENTIOND_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path("/tmp/retentiond-report.png")  # noqa: S108 - a fixed place to look at


@pytest.fixture
def browser():
    """A headless chromium (skipped, or failed under CI=true, when it is not installed)."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    if sync_playwright is None:
        missing.append("the playwright package is missing (pip install -e '.[dev]')")
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def _open(browser, path: Path):
    """The page at ``path``, with every console message, page error and request it caused."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def test_the_report_renders_cleanly_with_the_audit_tables_figures(browser, shared_world,
                                                                  tmp_path):
    """No console message, no page error, no request but the file; the DOM holds the figures."""
    report = tmp_path / "report.html"
    result = cli(shared_world.config, "audit", "report", "--output", str(report))
    assert 0 == result.returncode, result.stderr
    page, seen = _open(browser, report)
    shown = dict(page.eval_on_selector_all(
        "[data-rule][data-count]", "els => els.map(e => [e.dataset.rule, +e.dataset.count])"))
    texts = dict(page.eval_on_selector_all(
        "[data-rule][data-count]", "els => els.map(e => [e.dataset.rule, e.innerText])"))
    bars = page.eval_on_selector_all(
        "figure svg rect", "els => els.filter(e => e.getBBox().width * e.getBBox().height > 0)"
        ".length")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    shutil.copy(tmp_path / "report.png", SCREENSHOT)
    rules = [rule.id for rule in load_policies(shared_world.policies).rules]
    expected = dict.fromkeys(rules, 0) | acted_per_rule(shared_world.state_url)
    assert {"console": [], "errors": [], "requests": [report.as_uri()]} == seen
    assert expected == shown
    assert {rule: f"{count:,}" for rule, count in expected.items()} == texts
    assert bars >= len([c for c in expected.values() if c])
    assert "Retention review report" == page.inner_text("h1")


def test_the_schedule_renders_cleanly(browser, shared_world, tmp_path):
    """The HTML schedule opens without a console message and shows one row per rule."""
    target = tmp_path / "schedule.html"
    assert 0 == cli(shared_world.config, "schedule", "--format", "html", "--output",
                    str(target)).returncode
    page, seen = _open(browser, target)
    rows = page.eval_on_selector_all("tr[data-rule]", "els => els.map(e => e.dataset.rule)")
    page.screenshot(path=str(tmp_path / "schedule.png"), full_page=True)
    assert {"console": [], "errors": [], "requests": [target.as_uri()]} == seen
    assert sorted(rule.id for rule in load_policies(shared_world.policies).rules) == sorted(rows)
