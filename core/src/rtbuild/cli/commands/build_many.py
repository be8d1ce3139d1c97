"""``rtbuild build-many FILE [--jobs N] [--fail-fast] [--json]``."""

from __future__ import annotations

import sys
from typing import Any

import click

from rtbuild.cli._main import State, echo_result, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import build_timeout_option, lock_timeout_option, progress_mode


@click.command("build-many")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=4, show_default=True, help="Builds to run at the same time."
)
@click.option("--fail-fast", is_flag=True, help="Start no further build after the first failure.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@lock_timeout_option
@build_timeout_option
@json_option
@pass_state
@click.pass_context
def build_many(
    ctx: click.Context, state: State, file: str, jobs: int, fail_fast: bool, quiet: bool, as_json: bool
) -> None:
    """Build every image FILE lists (TOML or YAML), JOBS at a time.

    Prints each built image (or a JSON report with --json); every failure is reported.
    Exit 0 when all builds succeeded, 1 when any failed or was skipped.
    """
    from rtbuild._framework.batch import load_batch_file, run_batch
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.progress import use_reporter

    entries = load_batch_file(file)
    config = state.load_config()
    pm = state.plugin_manager(config)
    try:
        with use_reporter(make_reporter(progress_mode(as_json, quiet))), hooks_write_to_stderr():
            report = run_batch(entries, jobs=jobs, fail_fast=fail_fast, config=config, pm=pm, source=file)
    except BaseException as exc:  # Ctrl-C/SIGTERM: what finished is still the result
        from rtbuild._framework.batch import REPORT_ATTR

        partial = getattr(exc, REPORT_ATTR, None)
        if partial is not None:
            _print_report(partial, as_json, interrupted=True)
            exc.rtbuild_reported = True  # type: ignore[attr-defined]  # the CLI adds no second document
        raise
    if state.debug:
        _print_bugs(report.outcomes)
    _print_report(report, as_json)
    ctx.exit(0 if report.ok else 1)


def _print_report(report: Any, as_json: bool, interrupted: bool = False) -> None:
    """Stdout: every image built (or the JSON report); stderr: each failure and the summary."""
    if as_json:
        emit_json({**report.to_dict(), "interrupted": interrupted})
    else:
        for outcome in report.outcomes:
            if outcome.result is not None:
                echo_result(outcome.result.image)
        for outcome in report.outcomes:
            if outcome.error is not None:
                how = "was stopped" if outcome.status == "interrupted" else "failed"
                click.echo(f"build {outcome.entry.index} ({outcome.entry.name}) {how}:", err=True)
                click.echo(outcome.error.render(), err=True)
        click.echo(f"rtbuild: {report.summary()}", err=True)


def _print_bugs(outcomes: list[Any]) -> None:
    """--debug: the traceback of each build that failed on a bug (not an rtbuild error)."""
    import traceback

    from rtbuild.errors import AgentRuntimeBuildError

    for outcome in outcomes:
        cause = outcome.error.__cause__ if outcome.error is not None else None
        if cause is not None and not isinstance(cause, AgentRuntimeBuildError):
            click.echo(f"build {outcome.entry.index} ({outcome.entry.name}): traceback", err=True)
            traceback.print_exception(cause, file=sys.stderr)
