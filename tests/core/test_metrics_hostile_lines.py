"""``rtbuild metrics`` over hand-edited or corrupted lines: times no UTC date can hold,
values no plot can place, markup in names. The text, the JSON and the HTML page agree on
what they read, and none of them ends in an internal error. Durations (--since, prune's
--older-than) too large for a float are refused."""

from __future__ import annotations

import base64
import json
import os
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


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_hundreds_of_repositories_keep_the_plots_readable(tmp_path: Path) -> None:
    """A farm builds one repository per task: with 120 of them the legend listed each and
    made each time plot a 1,900-pixel column with a strip of plot at the top (4,600 with 300
    repositories). The ten busiest repositories are drawn each in a colour, the rest as one
    grey series."""
    sample = tmp_path / "metrics.jsonl"
    lines = [
        _line(f"2026-12-01T{n % 24:02d}:{n % 60:02d}:00Z", image=f"reg/task{n % 120}:1", size_bytes=n)
        for n in range(360)
    ]
    sample.write_text("\n".join(lines) + "\n")
    page = tmp_path / "page.html"
    assert _metrics(sample, "--html", str(page)).exit_code == 0
    pngs = [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page.read_text())]
    durations, sizes = (_png_size(png) for png in pngs[:2])
    assert durations[1] < 500 and sizes[1] < 500, (durations, sizes)


def test_the_page_goes_into_a_device_or_through_a_link_never_over_it(tmp_path: Path) -> None:
    """--html /dev/null as root replaced the device node with a regular file holding the
    page (every later write to /dev/null filled it), and --html through a symlink replaced
    the link. A device or FIFO is written into; a link's target is replaced, the link kept."""
    import stat

    sample = tmp_path / "metrics.jsonl"
    sample.write_text(_line("2026-12-01T10:00:00Z") + "\n")
    device = tmp_path / "null"
    device.symlink_to("/dev/null")  # what --html /dev/null opens, without touching /dev
    assert _metrics(sample, "--html", str(device)).exit_code == 0
    assert device.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    target = tmp_path / "pages" / "page.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "page.html"
    link.symlink_to(target)
    assert _metrics(sample, "--html", str(link)).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("<!DOCTYPE html>")


def test_repo_filter_matches_every_spelling_of_a_repository(tmp_path: Path) -> None:
    sample = tmp_path / "metrics.jsonl"
    sample.write_text(
        _line("2026-12-01T10:00:00Z", image="app:1", repository="app")
        + "\n"
        + _line("2026-12-01T11:00:00Z", image="docker.io/library/app:2", repository="docker.io/library/app")
        + "\n"
        + _line("2026-12-01T12:00:00Z", image="other:1", repository="other")
        + "\n"
    )
    for spelling in ("app", "docker.io/library/app", "index.docker.io/library/app"):
        data = json.loads(_metrics(sample, "--json", "--repo", spelling).stdout)
        assert data["records"] == 2, spelling
    groups = json.loads(_metrics(sample, "--json").stdout)["groups"]
    assert [(g["repository"], g["builds"]) for g in groups] == [("app", 2), ("other", 1)]  # one group


def test_an_over_long_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    """A file with a 300 MB line (garbage, or --file pointed at something else) was read one
    whole line at a time: 840 MB of memory for a 400 MB line, an OOM kill for a few GB.
    Lines over MAX_LINE_CHARS are skipped unread: the report runs in 250 MB of heap."""
    import resource
    import subprocess
    import sys

    sample = tmp_path / "metrics.jsonl"
    with sample.open("w") as handle:
        handle.write(_line("2026-12-01T10:00:00Z") + "\n")
        chunk = "x" * (1 << 20)
        for _ in range(300):
            handle.write(chunk)
        handle.write("\n" + _line("2026-12-01T11:00:00Z") + "\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (250 << 20, 250 << 20))

    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    proc = subprocess.run(
        [rtbuild, "metrics", "--file", str(sample), "--json"], capture_output=True, text=True, preexec_fn=limit
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert (data["records"], data["skipped_lines"]) == (2, 1)


def test_a_page_sent_to_stdout_is_the_only_document_there(tmp_path: Path) -> None:
    """--html /dev/stdout (or -) in a pipe printed the page and the report after it, as one
    stream; with stdout redirected to a file the page replaced that file under the shell's
    descriptor and the report was lost. The page is now stdout's only document (the table
    on stderr), and --json with it is a usage error."""
    import subprocess
    import sys

    sample = tmp_path / "metrics.jsonl"
    sample.write_text(_line("2026-12-01T10:00:00Z") + "\n")
    base = [sys.executable, "-m", "rtbuild", "metrics", "--file", str(sample), "--html"]
    for target in ("/dev/stdout", "-"):
        piped = subprocess.run([*base, target], capture_output=True, text=True, timeout=120)
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout.startswith("<!DOCTYPE html>") and piped.stdout.rstrip().endswith("</html>")
        assert "REPOSITORY" in piped.stderr and "reg/app" in piped.stderr
    page = tmp_path / "page.html"
    with page.open("w") as out:  # rtbuild metrics --html page.html > page.html
        done = subprocess.run([*base, str(page)], stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert page.read_text().rstrip().endswith("</html>") and "REPOSITORY" in done.stderr
    both = subprocess.run([*base, "/dev/stdout", "--json"], capture_output=True, text=True, timeout=120)
    assert both.returncode == 2 and json.loads(both.stdout)["error"] == "BadParameter"


def test_the_time_axes_say_they_are_in_utc(tmp_path: Path, monkeypatch: Any) -> None:
    """The plots place every record on a UTC axis; unlabelled, an operator elsewhere read
    its times as local ones (an hour or more off)."""
    from rtbuild._observe import html

    labels: list[str] = []

    def png(fig: Any) -> str:
        labels.append(fig.axes[0].get_xlabel())
        return ""

    monkeypatch.setattr(html, "_png", png)
    sample = tmp_path / "metrics.jsonl"
    sample.write_text(_line("2026-12-01T10:00:00Z", size_bytes=1024) + "\n")
    assert _metrics(sample, "--html", str(tmp_path / "page.html")).exit_code == 0
    assert labels[:2] == ["time (UTC)", "time (UTC)"]
