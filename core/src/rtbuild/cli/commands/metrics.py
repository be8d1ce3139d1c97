"""``rtbuild metrics``: a report over the builds the metrics plugin recorded."""

from __future__ import annotations

import time
from typing import Any

import click

from rtbuild.cli._main import State, emit_json, json_option, pass_state
from rtbuild.cli.commands._options import check_repositories


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``7d`` (that long ago) or an ISO 8601 date/time (UTC when no zone is given)."""
    if value is None:
        return None
    from rtbuild._observe.report import parse_time
    from rtbuild._observe.units import parse_duration

    try:
        return time.time() - parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: expected a duration (7d, 12h) or a date (2026-11-30[T12:00])") from exc


@click.command()
@click.option("--since", callback=_when, metavar="WHEN", help="Only builds at or after WHEN (7d, 12h, or a date).")
@click.option("--until", callback=_when, metavar="WHEN", help="Only builds before WHEN (7d, 12h, or a date).")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="REPOSITORY",
    callback=check_repositories,
    help="Only this repository (repeatable).",
)
@click.option("--builder", "builders", multiple=True, metavar="NAME", help="Only this builder (repeatable).")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Metrics file (default: as rtbuild-metrics).")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Also write a page with plots to FILE (-: stdout)."
)
@click.option(
    "--size-over-time",
    "sizes",
    is_flag=True,
    help="With --json: each group's size_over_time (one entry per build; large for a big file).",
)
@json_option
@pass_state
def metrics(
    state: State,
    since: float | None,
    until: float | None,
    repos: tuple[str, ...],
    builders: tuple[str, ...],
    path: str | None,
    html_path: str | None,
    sizes: bool,
    as_json: bool,
) -> None:
    """Count, success rate, duration p50/p95, cache hits, sizes and slowest steps per repository and builder."""
    from pathlib import Path

    from rtbuild._observe.report import metrics_file, render_text, stream_report

    to_stdout = bool(html_path) and _is_stdout(str(html_path))
    if to_stdout and as_json:
        # Two documents on stdout: neither could be parsed.
        raise click.BadParameter(
            "--html names stdout, where --json prints its report: give it a file", param_hint="'--html'"
        )
    if since is not None and until is not None and since >= until:
        # An empty window, always: say so rather than report "no builds".
        raise click.BadParameter("--since must be before --until (the window would be empty)", param_hint="'--since'")
    config = state.load_config()
    source = Path(path) if path else metrics_file(config.plugin_config("metrics"), source=config.source)
    if path and not source.exists() and not Path(f"{path}.1").exists():
        # Named on purpose: most likely a typo, not "no builds yet" (the default file may be).
        raise click.BadParameter(f"{path} does not exist (nor {path}.1)", param_hint="'--file'")
    # Read line by line into aggregates: the records are never all held (a 76 MB file took
    # up to 944 MB), and --json prints the figures, not one entry per build (unless asked).
    points: list[Any] = []
    keep = None
    if html_path:
        from rtbuild._observe.html import Point

        def keep(record: Any) -> None:
            points.append(Point(record))  # what the plots draw, not the record

    report = stream_report(
        source, since=since, until=until, repos=repos, builders=builders, sizes=sizes and as_json, on_record=keep
    )
    if html_path:
        from rtbuild._observe.html import render_html
        from rtbuild.errors import ConfigError

        points.sort(key=lambda point: point["_t"])
        page = render_html(report, points)
        if to_stdout:  # the page is the result; the table is for the human, on stderr
            from rtbuild.cli._main import echo_result

            echo_result(page)
            click.echo(render_text(report), err=True)
            return
        try:
            _write_page(html_path, page.encode("utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"cannot write {html_path}: {exc.strerror or exc}",
                step="write metrics page",
                hint="choose a writable path for --html",
            ) from exc
        click.echo(f"wrote {html_path} ({len(page) // 1024} KiB)", err=True)
    if as_json:
        emit_json(report)
    else:
        click.echo(render_text(report))


def _is_stdout(path: str) -> bool:
    """``-``, or a path naming the file stdout writes to (``/dev/stdout``, or ``page.html``
    with ``> page.html``): the page was written there and the report after it (two documents
    in a pipe), or the file was replaced under the shell's descriptor (the report lost)."""
    import os

    if path == "-":
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False


def _write_page(path: str, data: bytes) -> None:
    """Replace a file atomically, through a symlink (the link stays); write into anything
    else (``/dev/stdout``, a FIFO). Replacing ``/dev/null`` with the page, as root, broke
    every program writing there."""
    import os
    import stat

    from rtbuild._framework.atomic import atomic_write

    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        kind = None
    if kind is not None and not stat.S_ISREG(kind):
        with open(path, "wb") as handle:
            handle.write(data)
        return
    atomic_write(os.path.realpath(path), data, mode=0o644)
