"""The published pages in a real headless browser: Debian's chromium, driven by Playwright.

Without chromium or the playwright package these tests skip with the reason (``CI=true``: they
fail).  Playwright's own browser downloads are never used: ``executable_path`` is the system
chromium.  A screenshot of the report lands in ``tmp_path`` and in ``SCREENSHOT``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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
A4 = (595.28, 841.89)
"""ISO A4 in PDF points (210 x 297 mm)."""
MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]")


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


PRINTED_WIDTH = """() => {
  const page = [...document.styleSheets].flatMap(s => [...s.cssRules])
    .find(r => r instanceof CSSPageRule);
  return {size: page.style.getPropertyValue("size"),
          left: page.style.getPropertyValue("margin-left"),
          right: page.style.getPropertyValue("margin-right")};
}"""
"""The page's @page rule: its size and side margins, as the stylesheet states them."""

CUT = """() => {
  const width = document.documentElement.clientWidth;
  const cut = [];
  for (const cell of document.querySelectorAll("th, td")) {
    const box = cell.getBoundingClientRect();
    let clipped = box.right > width + 0.5;
    for (let up = cell.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX !== "visible" && box.right > up.getBoundingClientRect().right + 0.5)
        clipped = true;
    }
    if (clipped) cut.push(cell.closest("table").querySelector("th").innerText + " / "
                          + cell.innerText.slice(0, 40));
  }
  return cut;
}"""
"""Every table cell that ends past the page's width or past a box that hides its overflow."""


def _millimetres(length: str) -> float:
    value, unit = float(length[:-2]), length[-2:]
    return {"mm": 1.0, "cm": 10.0, "in": 25.4, "px": 25.4 / 96}[unit] * value


def test_the_report_prints_on_a4_without_cutting_a_column(browser, shared_world, tmp_path):
    """Printed, every page is A4, and laid out at A4's width no table cell is cut or hidden.

    The PDF comes from chromium --print-to-pdf, as a reviewer's "print to PDF" makes it; the
    cells are measured in the print layout at the width the @page rule leaves for the text.
    """
    report = tmp_path / "report.html"
    assert 0 == cli(shared_world.config, "audit", "report", "--output", str(report)).returncode
    pdf = tmp_path / "report.pdf"
    printed = subprocess.run([str(CHROMIUM), *ARGS, "--no-pdf-header-footer",
                              f"--print-to-pdf={pdf}", report.as_uri()],
                             capture_output=True, text=True, timeout=120, check=False)
    assert pdf.is_file(), printed.stderr
    pages = [(float(w), float(h)) for w, h in MEDIA_BOX.findall(pdf.read_bytes())]

    page = browser.new_page(viewport={"width": 800, "height": 1000})
    page.goto(report.as_uri(), wait_until="load")
    rule = page.evaluate(PRINTED_WIDTH)
    text_width = 210 - _millimetres(rule["left"]) - _millimetres(rule["right"])
    page.set_viewport_size({"width": round(text_width / 25.4 * 96), "height": 1000})
    page.emulate_media(media="print")
    cut = page.evaluate(CUT)
    headers = page.eval_on_selector_all("th", "els => els.length")

    assert "a4" == rule["size"].lower()
    assert len(pages) >= 2
    assert [] == [size for size in pages
                  if abs(size[0] - A4[0]) > 1.5 or abs(size[1] - A4[1]) > 1.5]
    assert headers > 50
    assert [] == cut
