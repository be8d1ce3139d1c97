"""`rtbuild metrics` over lines the metrics plugin did not write that way (another version,
another tool appending, a hand edit) and over a path that is no file: each odd line is
skipped and counted, as the docs promise, and the report is still made."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from rtbuild.testing import run_cli

GOOD: dict[str, Any] = {
    "timestamp": "2026-12-01T10:00:00Z",
    "image": "reg/app:1",
    "builder": "docker",
    "success": True,
    "duration_s": 2.0,
    "cached": False,
    "size_bytes": 1024,
    "steps": [{"name": "[2/2] RUN make", "duration_s": 1.5, "cached": False, "internal": False}],
}

ODD = [
    {"duration_s": "slow"},
    {"duration_s": math.nan},
    {"duration_s": True},
    {"image": 5},
    {"builder": ["docker"]},
    {"success": "yes"},
    {"cached": "no"},
    {"size_bytes": "1 KiB"},
    {"steps": "RUN make"},
    {"steps": ["RUN make"]},
    {"steps": [{"name": "RUN make", "duration_s": "1s"}]},
    {"steps": [{"name": 7, "duration_s": 1.0}]},
    {"error_class": {"type": "BuildFailedError"}, "success": False},
    # Values no version of the plugin writes: each was read, a null success as a failure
    # ('error at ?', the success rate down) and a negative duration or size into p50 and SIZE.
    {"success": None},
    {"duration_s": -5.0},
    {"size_bytes": -1},
    {"steps": [{"name": "RUN make", "duration_s": -1.0}]},
]


@pytest.mark.parametrize("odd", ODD, ids=[next(iter(o)) + "=" + repr(next(iter(o.values()))) for o in ODD])
def test_a_line_with_a_field_of_another_type_is_skipped_and_counted(tmp_path: Path, odd: dict[str, Any]) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in (GOOD, {**GOOD, **odd})))
    for extra in ([], ["--json"]):
        result = run_cli(["metrics", "--file", str(path), *extra])
        assert result.exit_code == 0, result.stderr  # was 1: "internal error: AttributeError ..." and no report
        assert "internal error" not in result.stderr
    report = result.json()
    assert report["records"] == 1 and report["skipped_lines"] == 1
    assert report["total"]["duration_p50_s"] == 2.0


def test_a_metrics_path_that_is_a_directory_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(tmp_path))
    result = run_cli(["metrics"])
    assert result.exit_code == 2, result.stderr  # was 1: "internal error: IsADirectoryError"
    assert f"cannot read the metrics file {tmp_path}: Is a directory" in result.stderr
    assert "RTBUILD_METRICS_FILE" in result.stderr  # the hint names where the path comes from


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_metrics_path_that_never_ends_is_refused(tmp_path: Path, kind: str) -> None:
    """`--file /dev/zero` read without bound until the OOM killer ended rtbuild (exit 137); a
    FIFO with no writer blocked it for ever."""
    import os

    if kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    result = run_cli(["metrics", "--file", str(path)])
    assert result.exit_code == 2, result.stderr
    assert f"the metrics file {path} is not a regular file" in result.stderr


def test_a_window_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    """--since later than --until always selects nothing: it said "no recorded builds"."""
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    result = run_cli(["metrics", "--file", str(path), "--since", "2026-12-02", "--until", "2026-12-01"])
    assert result.exit_code == 2, result.stderr
    assert "--since must be before --until" in result.stderr
    ok = run_cli(["metrics", "--file", str(path), "--since", "2026-12-01", "--until", "2026-12-02", "--json"])
    assert ok.exit_code == 0 and ok.json()["records"] == 1


def test_both_generations_are_read_even_without_a_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    (tmp_path / "metrics.jsonl.1").write_text(json.dumps(GOOD))  # no newline at its end
    path.write_text(json.dumps({**GOOD, "timestamp": "2026-12-01T11:00:00Z"}) + "\n")
    report = run_cli(["metrics", "--file", str(path), "--json"]).json()
    assert report["records"] == 2 and report["skipped_lines"] == 0
