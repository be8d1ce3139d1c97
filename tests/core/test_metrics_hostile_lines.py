"""``rtbuild metrics`` over hand-edited or corrupted lines: times no UTC date can hold,
values no plot can place, markup in names. The text, the JSON and the HTML page agree on
what they read, and none of them ends in an internal error. Durations (--since, prune's
--older-than) too large for a float are refused."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from rtbuild.cli._main import cli


def _line(timestamp: str, **fields: Any) -> str:
    record = {"timestamp": timestamp, "image": "reg/app:1", "builder": "docker", "success": True, "duration_s": 1.0}
    record.update(fields)
    return json.dumps(record)


def _metrics(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["metrics", "--file", str(path), *args])


def test_times_out_of_the_utc_range_are_unreadable_lines_not_a_crash(tmp_path: Path) -> None:
    sample = tmp_path / "metrics.jsonl"
    sample.write_text(
        "\n".join(
            [
                _line("0001-01-01T00:00:00+01:00"),  # year 0 in UTC
                _line("9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
                _line("9999-12-31T23:59:59.999999Z"),  # its epoch float rounds into year 10000
                _line("2026-12-01T10:00:00Z"),
                _line("2026-12-01T11:00:00Z", success=False, error_class="E", failed_step="RUN x"),
            ]
        )
        + "\n"
    )
    data = json.loads(_metrics(sample, "--json").stdout)
    assert (data["records"], data["skipped_lines"]) == (2, 3)
    page = tmp_path / "page.html"
    result = _metrics(sample, "--html", str(page))
    assert result.exit_code == 0, result.output
    assert len(re.findall(r'src="data:image/png;base64,', page.read_text())) == 3


def test_a_plot_matplotlib_cannot_place_says_so_and_the_page_is_written(tmp_path: Path) -> None:
    """Years 1 to 9999 are each a valid date, but a plot spanning them (with its margins)
    is not one matplotlib can draw: that plot says why, the table and other plots stay."""
    sample = tmp_path / "metrics.jsonl"
    sample.write_text(
        _line("0001-01-01T00:00:00Z", size_bytes=10) + "\n" + _line("9999-12-30T00:00:00Z", size_bytes=20) + "\n"
    )
    page = tmp_path / "page.html"
    result = _metrics(sample, "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    pngs = [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]
    assert len(pngs) == 3 and all(png.startswith(b"\x89PNG") for png in pngs)
    assert "<td>reg/app</td>" in text


def test_markup_in_names_is_escaped_in_the_page(tmp_path: Path) -> None:
    sample = tmp_path / "metrics.jsonl"
    sample.write_text(
        _line("2026-12-01T10:00:00Z", image="<script>alert(1)</script>:1", builder='<img src=x onerror="alert(2)">')
        + "\n"
    )
    page = tmp_path / "page.html"
    assert _metrics(sample, "--html", str(page)).exit_code == 0
    text = page.read_text()
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_duration_too_large_for_a_float_is_a_usage_error(tmp_path: Path) -> None:
    """400 nines of days is inf as a float: prune printed ``"older_than_s": Infinity``,
    which no JSON parser reads. Both commands that take durations refuse it (exit 2)."""
    huge = "9" * 400 + "d"
    prune = CliRunner().invoke(cli, ["prune", "--older-than", huge, "--dry-run", "--json"])
    assert prune.exit_code == 2 and "too large" in prune.output and "Infinity" not in prune.output
    metrics = _metrics(tmp_path / "none.jsonl", "--since", huge, "--json")
    assert metrics.exit_code == 2 and "Infinity" not in metrics.output


def test_a_record_appended_after_a_crash_zeroed_tail_is_read(tmp_path: Path) -> None:
    """A power loss can leave the end of the file as zeros (the size was committed, the data
    not), and the next build's line is appended after them, on the same "line"."""
    sample = tmp_path / "metrics.jsonl"
    torn = _line("2026-12-01T10:00:00Z")[:30]
    sample.write_bytes(
        (_line("2026-12-01T09:00:00Z") + "\n" + torn + "\x00" * 4096 + _line("2026-12-01T11:00:00Z") + "\n").encode()
        + b"\x00" * 512
        + (_line("2026-12-01T12:00:00Z") + "\n").encode()
    )
    data = json.loads(_metrics(sample, "--json").stdout)
    assert (data["records"], data["skipped_lines"]) == (3, 1)
