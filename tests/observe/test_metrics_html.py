"""``rtbuild metrics --html``: the page opens in a real headless Chromium with every plot
decoded and drawn, and no console error or failed request."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium_cdp import Browser, find_chromium
from click.testing import CliRunner
from rtbuild.cli._main import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_metrics_report import write_sample


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        message = "no chromium here (scripts/browser.sh installs it; make test runs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    browser = Browser(binary)
    yield browser
    browser.close()


def test_html_report_renders_with_its_plots(tmp_path: Path, browser: Browser) -> None:
    sample = tmp_path / "metrics.jsonl"
    write_sample(sample)
    page = tmp_path / "out.html"
    result = CliRunner().invoke(cli, ["metrics", "--file", str(sample), "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    # Self-contained: nothing to fetch (no http, no script, no external style or image).
    assert "http://" not in text and "https://" not in text and "<script" not in text
    check = browser.check_page(page.as_uri())
    assert check.title == "rtbuild metrics"
    ids = sorted(image["id"] for image in check.images)
    assert ids == ["plot-durations", "plot-sizes", "plot-steps"]
    for image in check.images:
        assert image["complete"] and image["naturalWidth"] > 300 and image["naturalHeight"] > 100, image
        assert image["src"].startswith("data:image/png;base64")
    assert check.console_errors == [] and check.failed_requests == []


def test_html_report_of_no_builds_still_renders(tmp_path: Path, browser: Browser) -> None:
    page = tmp_path / "empty.html"
    (tmp_path / "none.jsonl").write_text("")  # no builds recorded yet (a missing --file is an error)
    result = CliRunner().invoke(cli, ["metrics", "--file", str(tmp_path / "none.jsonl"), "--html", str(page)])
    assert result.exit_code == 0, result.output
    check = browser.check_page(page.as_uri())
    assert len(check.images) == 3 and all(image["naturalWidth"] > 0 for image in check.images)
    assert check.console_errors == []


def test_the_check_sees_a_broken_plot_and_a_console_error(tmp_path: Path, browser: Browser) -> None:
    # The harness itself: a page that is wrong in both ways must be caught.
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><title>t</title><img id="x" src="data:image/png;base64,AAAA">'
        '<script>console.error("plot missing")</script>'
    )
    check = browser.check_page(page.as_uri())
    assert check.images[0]["naturalWidth"] == 0
    assert any("plot missing" in error for error in check.console_errors)
