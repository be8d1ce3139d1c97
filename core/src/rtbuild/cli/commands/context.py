"""``rtbuild context PATH``: what a build of PATH would send, after ``.dockerignore``."""

from __future__ import annotations

import click

from rtbuild.cli._main import State, emit_json, json_option, pass_state


def _size_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from rtbuild._observe.units import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("-f", "--file", "dockerfile", help="Dockerfile, relative to PATH (default: PATH/Dockerfile).")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="Largest N files/dirs.")
@click.option(
    "--large-file",
    default="50M",
    show_default=True,
    callback=_size_option,
    metavar="SIZE",
    help="Warn about files at least this big (e.g. 10M, 1G).",
)
@json_option
@pass_state
def context(state: State, path: str, dockerfile: str | None, top: int, large_file: int, as_json: bool) -> None:
    """Show what a build of PATH would send: files, bytes, largest entries, ignore rules, digest, warnings."""
    from rtbuild._observe.context import inspect_context

    if dockerfile:
        # Named on purpose: a Dockerfile that is not there is a typo (exit 2), not a listing
        # with a warning (without -f, a context with no Dockerfile is still listed).
        from rtbuild.context import validate_context

        validate_context(path, ["-f", dockerfile])
    report = inspect_context(path, ["-f", dockerfile] if dockerfile else [], top=top, large_file=large_file)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(render(report))


#: Control characters as escapes: a file name may hold a newline (or an escape sequence
#: that would move the cursor), and one entry must stay one line of the table.
_CONTROLS = {code: ascii(chr(code))[1:-1] for code in (*range(32), 127)}


def _shown(name: str) -> str:
    return name.translate(_CONTROLS)


def render(report: object) -> str:
    from rtbuild._observe.context import ContextReport
    from rtbuild._observe.units import human_size

    assert isinstance(report, ContextReport)
    lines = [
        f"context    {_shown(report.path)}",
        f"sent       {report.files} files, {report.directories} directories, {report.symlinks} symlinks,"
        f" {human_size(report.bytes)}",
        f"digest     {report.digest or '-'}",
        f".dockerignore {'yes' if report.dockerignore else 'none'}",
    ]
    if report.largest_files:
        lines += ["", "largest files"]
        lines += [f"  {human_size(size):>10}  {_shown(rel)}" for rel, size in report.largest_files]
    if report.largest_directories:
        lines += ["", "largest directories"]
        lines += [f"  {human_size(size):>10}  {_shown(rel)}/" for rel, size in report.largest_directories]
    if report.excluded:
        lines += ["", "excluded by .dockerignore"]
        lines += [f"  {human_size(r.bytes):>10}  {r.files:>7} files  {r.pattern}" for r in report.excluded]
    if report.warnings:
        lines += ["", "warnings"]
        lines += [f"  ! {_shown(warning)}" for warning in report.warnings]
    timing = ", ".join(f"{k[:-2]} {v * 1000:.0f} ms" for k, v in report.timings.items())
    lines += ["", f"({timing})"]
    return "\n".join(lines)
