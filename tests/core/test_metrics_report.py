"""``rtbuild metrics``: grouping, rates, percentiles, windows and filters, over a file of
recorded lines (the format rtbuild-metrics writes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rtbuild._observe.report import build_report, load_records, percentile
from rtbuild.cli._main import cli
from rtbuild.errors import ConfigError

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _line(day: int, repo: str, builder: str = "docker", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": (T0 + timedelta(days=day)).isoformat().replace("+00:00", "Z"),
        "image": f"{repo}:{day}",
        "repository": repo,
        "builder": builder,
        "success": True,
        "duration_s": 10.0,
        "cached": False,
        "size_bytes": 1_000_000 + day,
        "tags": [f"{repo}:{day}"],
    }
    record.update(fields)
    return record


def _steps(sleep_s: float, cached: bool = False) -> list[dict[str, Any]]:
    return [
        {"name": "[1/3] FROM busybox", "duration_s": 0.0, "cached": True, "internal": False},
        {"name": "[2/3] RUN sleep", "duration_s": sleep_s, "cached": cached, "internal": False},
        {"name": "[3/3] COPY . /app", "duration_s": 0.5, "cached": False, "internal": False},
        {"name": "[internal] load build context", "duration_s": 3.0, "cached": False, "internal": True},
    ]


def write_sample(path: Path) -> None:
    lines = [
        _line(0, "reg/app", duration_s=20.0, steps=_steps(15.0)),
        _line(1, "reg/app", duration_s=12.0, steps=_steps(8.0)),
        _line(2, "reg/app", duration_s=0.4, cached=True),
        _line(3, "reg/app", success=False, duration_s=5.0, error_class="BuildFailedError", failed_step="RUN make"),
        _line(4, "reg/app", duration_s=2.0, steps=_steps(0.0, cached=True)),
        _line(1, "reg/tool", builder="podman", duration_s=30.0),
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    path.write_text(text)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.jsonl"
    write_sample(path)
    return path


def test_groups_rates_and_percentiles(sample: Path) -> None:
    report = build_report(load_records(sample), sample)
    assert report["records"] == 6 and report["skipped_lines"] == 1
    app, tool = report["groups"]
    assert (app["repository"], app["builder"], tool["repository"], tool["builder"]) == (
        "reg/app",
        "docker",
        "reg/tool",
        "podman",
    )
    assert app["builds"] == 5 and app["failed"] == 1 and app["success_rate"] == 0.8
    assert app["duration_p50_s"] == percentile([20.0, 12.0, 0.4, 2.0], 0.5) == 7.0
    assert app["reuse_rate"] == 0.25
    # RUN and COPY count, FROM does not: 3 builds x 2 steps, one RUN cached.
    assert app["step_cache_hit_rate"] == round(1 / 6, 3)
    assert app["failures"] == {"BuildFailedError at RUN make": 1}
    assert [s["name"] for s in app["slowest_steps"]][:2] == ["[2/3] RUN sleep", "[3/3] COPY . /app"]
    assert app["slowest_steps"][0]["total_s"] == 23.0 and app["slowest_steps"][0]["cached"] == 1
    assert [p["size_bytes"] for p in app["size_over_time"]] == [1_000_000, 1_000_001, 1_000_002, 1_000_004]


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 3.85


def test_window_and_filters(sample: Path) -> None:
    since = (T0 + timedelta(days=1)).timestamp()
    until = (T0 + timedelta(days=3)).timestamp()
    loaded = load_records(sample, since=since, until=until)
    assert sorted(r["timestamp"][:10] for r in loaded.records) == ["2026-11-21", "2026-11-21", "2026-11-22"]
    assert {r["repository"] for r in load_records(sample, repos=["reg/tool"]).records} == {"reg/tool"}
    assert len(load_records(sample, builders=["docker"]).records) == 5


def test_cli_json_text_and_filters(sample: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["metrics", "--file", str(sample), "--json", "--builder", "docker"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [g["repository"] for g in data["groups"]] == ["reg/app"]
    window = runner.invoke(
        cli, ["metrics", "--file", str(sample), "--json", "--since", "2026-11-24", "--until", "2099-01-01"]
    )
    assert json.loads(window.stdout)["records"] == 1
    text = runner.invoke(cli, ["metrics", "--file", str(sample)])
    assert "reg/app" in text.stdout and "80%" in text.stdout and "BuildFailedError at RUN make" in text.stdout
    assert "[2/3] RUN sleep" in text.stdout
    (tmp_path / "empty.jsonl").write_text("")
    empty = runner.invoke(cli, ["metrics", "--file", str(tmp_path / "empty.jsonl")])
    assert empty.exit_code == 0 and "no recorded builds" in empty.stdout
    # A file named on purpose that is not there (nor its .1) is a typo, not "no builds": exit 2.
    missing = runner.invoke(cli, ["metrics", "--file", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad = runner.invoke(cli, ["metrics", "--file", str(sample), "--since", "yesterday"])
    assert bad.exit_code == 2


def test_the_metrics_file_follows_the_plugin(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(sample))
    out = CliRunner().invoke(cli, ["metrics", "--json"])
    assert json.loads(out.stdout)["records"] == 6


def test_html_without_matplotlib_is_a_usage_error(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    out = CliRunner().invoke(cli, ["metrics", "--file", str(sample), "--html", str(tmp_path / "x.html")])
    assert not (tmp_path / "x.html").exists()
    error = out.exception
    assert isinstance(error, ConfigError) and error.exit_code == 2 and "rtbuild[report]" in (error.hint or "")
