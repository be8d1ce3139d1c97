"""The published benchmark results are one run of one commit, and the performance page
shows exactly them: its results block is ``bench/run.py --markdown`` of latest.json."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LATEST = REPO / "bench" / "results" / "latest.json"


@pytest.fixture(scope="module")
def bench_run() -> Iterator[ModuleType]:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(REPO / "bench"))


@pytest.fixture(scope="module")
def latest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LATEST.read_text())
    return data


def test_latest_is_one_full_run_of_one_commit(bench_run: ModuleType, latest: dict[str, Any]) -> None:
    assert latest["schema"] == bench_run.SCHEMA
    assert re.fullmatch(r"[0-9a-f]{7,40}", latest["commit"]), "a partial run never writes latest.json"
    assert list(latest["scenarios"]) == list(bench_run.SCENARIOS), "every scenario, in order"
    commits = {entry["commit"] for entry in latest["scenarios"].values()}
    assert commits == {latest["commit"]}
    assert not any(entry["quick"] for entry in latest["scenarios"].values()), "quick runs are not published"


def test_the_performance_page_shows_exactly_latest_json(bench_run: ModuleType, latest: dict[str, Any]) -> None:
    assert bench_run.docs_block() == bench_run.markdown(latest), "run `python bench/run.py --write-docs`"


def test_rows_without_a_target_are_info_never_met(bench_run: ModuleType) -> None:
    row = {
        "id": "X1",
        "scenario": "s",
        "compares": "c",
        "medians_s": {"a": 1.0},
        "reps": 5,
        "shown": "1 s",
        "target": "(info)",
        "ok": True,
    }
    document = {"commit": "abc1234", "scenarios": {"X": {"title": "t", "error": None, "rows": [row]}}}
    last = bench_run.markdown(document).splitlines()[-1]
    assert last.endswith("| (info) | info |")
    assert "Rows missed: none." in bench_run.markdown(document)
    missed = {**row, "target": "<= 1 s", "ok": False}
    text = bench_run.markdown({**document, "scenarios": {"X": {"title": "t", "error": None, "rows": [missed]}}})
    assert "Rows missed: X1." in text and text.endswith("| <= 1 s | **no** |")


def test_the_plots_the_page_shows_exist() -> None:
    page = (REPO / "docs" / "performance.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+\.png)\)", page)
    assert images, "the cost curves are drawn into the page"
    for image in images:
        assert (REPO / "docs" / image).is_file(), image


def test_the_text_under_the_plots_comes_from_latest_json(bench_run: ModuleType, latest: dict[str, Any]) -> None:
    import curves

    page = (REPO / "docs" / "performance.md").read_text()
    block = page[page.index(curves.BEGIN) + len(curves.BEGIN) : page.index(curves.END)].strip("\n")
    assert block == curves.markdown(latest).strip("\n")


def test_host_cpu_steal_is_shown_per_scenario_when_recorded(bench_run: ModuleType) -> None:
    import common

    row = {"id": "X1", "scenario": "s", "compares": "c", "medians_s": {"a": 1.0}, "reps": 5}
    row |= {"shown": "1 s", "target": "<= 2 s", "ok": True}
    scenarios = {
        "P1": {"title": "t", "error": None, "rows": [row], "steal_pct": 0.4},
        "P2": {"title": "u", "error": None, "rows": [row], "steal_pct": None},
    }
    text = bench_run.markdown({"commit": "abc1234", "scenarios": scenarios})
    assert "Host CPU steal per scenario" in text and "other guests): P1 0.4%, P2 ?." in text
    for entry in scenarios.values():
        entry.pop("steal_pct")
    assert "steal" not in bench_run.markdown({"commit": "abc1234", "scenarios": scenarios})  # older runs: as generated
    assert common.steal_pct((10, 1000), (30, 1100)) == 20.0
    assert common.steal_pct((10, 1000), (10, 1000)) is None
    before = common.cpu_times()
    assert before is not None and 0 <= before[0] <= before[1]
