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
