"""``rtbuild prune``: remove what rtbuild made and no longer needs."""

from __future__ import annotations

import sys
from typing import Any

import click

from rtbuild.cli._main import State, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import check_repositories


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from rtbuild._observe.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.option("--keep", type=click.IntRange(min=0), metavar="N", help="Keep the newest N images per repository.")
@click.option("--older-than", callback=_duration, metavar="DURATION", help="Only images (and logs) older than this.")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="REPOSITORY",
    callback=check_repositories,
    help="Only images of this repository.",
)
@click.option("--builder", help="Builder whose engine to prune (default: the configured one).")
@click.option("--dry-run", is_flag=True, help="List what would go and the bytes freed; remove nothing.")
@json_option
@pass_state
def prune(
    state: State,
    keep: int | None,
    older_than: float | None,
    repos: tuple[str, ...],
    builder: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove old rtbuild images, dangling rebuilds, stale stat caches, old logs and dead locks."""
    from rtbuild._observe.local_state import prune_local
    from rtbuild._observe.prune import PruneItem, PrunePolicy

    policy = PrunePolicy(keep=keep, older_than_s=older_than, dry_run=dry_run, repositories=tuple(repos))
    config = state.load_config(builder=builder)
    pm = state.plugin_manager(config)
    notes: list[str] = []
    items: list[PruneItem] = []
    with hooks_write_to_stderr():  # the builder's own output is not the report
        engine = pm.create_builder(config.builder, config)
        if engine.capabilities.prune:
            try:
                items += engine.prune(policy)
            except BaseException as exc:  # its engine's failure: name the builder, as a build does
                from rtbuild._framework.plugins._trace import blame, builder_origin

                blame(exc, builder_origin(engine))
                raise
        else:
            notes.append(f"builder {engine.name!r} cannot prune images (no prune capability): images left alone")
        if not repos:  # --repo narrows the run to those images: local files stay
            items += prune_local(policy)
    report = _report(items, policy, engine.name, notes)
    if as_json:
        emit_json(report)
    else:
        _print(report)
    if report["errors"]:
        sys.exit(1)


def _kept(item: dict[str, Any]) -> bool:
    """An item the backend keeps after all (``kept: ...`` in its reason): a dry run says so too."""
    return not item["removed"] and not item["error"] and "; kept: " in str(item["reason"])


def _report(items: list[Any], policy: Any, builder: str, notes: list[str]) -> dict[str, Any]:
    done = [item for item in items if item.removed or (policy.dry_run and not _kept(item.to_dict()))]
    return {
        "dry_run": policy.dry_run,
        "builder": builder,
        "keep": policy.keep,
        "older_than_s": policy.older_than_s,
        "items": [item.to_dict() for item in items],
        "bytes_freed": sum(item.size for item in done if not item.error),
        "errors": sum(1 for item in items if item.error),
        "notes": notes,
    }


def _print(report: dict[str, Any]) -> None:
    from rtbuild._observe.units import human_size

    verb = "would remove" if report["dry_run"] else "removed"
    for item in report["items"]:
        done = item["removed"] or (report["dry_run"] and not _kept(item))
        state = "error: " + item["error"] if item["error"] else (verb if done else "kept")
        click.echo(f"{item['kind']:<10} {human_size(item['size']):>10}  {item['name']}  ({item['reason']}) {state}")
    for note in report["notes"]:
        click.echo(f"note: {note}", err=True)
    count = sum(1 for item in report["items"] if item["removed"] or (report["dry_run"] and not _kept(item)))
    click.echo(f"{verb} {count} item(s), {human_size(report['bytes_freed'])} freed", err=True)
