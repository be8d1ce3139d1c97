"""``rtbuild plugins`` and ``rtbuild builders``."""

from __future__ import annotations

import warnings

import click

from rtbuild.cli._main import State, emit_json, json_option, pass_state


def _table(rows: list[dict[str, object]], columns: list[str]) -> str:
    cells = [[str(row.get(col) or "") for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) if cells else len(col) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return "\n".join(lines)


@click.command()
@json_option
@pass_state
def plugins(state: State, as_json: bool) -> None:
    """List every discovered builder and plugin with its distribution and status."""
    config = state.load_config()
    with warnings.catch_warnings():
        # Failures are shown in the listing itself.
        warnings.simplefilter("ignore")
        from rtbuild._framework.plugins import get_plugin_manager

        pm = get_plugin_manager(config, tolerate_invalid=True)
    rows = [record.to_dict() for record in pm.listing()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["hooks"] = ",".join(row["hooks"]) if row["hooks"] else ""
    click.echo(_table(rows, ["name", "kind", "distribution", "version", "status", "hooks"]))
    for row in rows:
        if row["error"]:
            click.echo(f"{row['name']}: {row['error']}", err=True)


@click.command()
@json_option
@pass_state
def builders(state: State, as_json: bool) -> None:
    """List installed builders (from metadata; nothing is imported)."""
    from rtbuild._framework.plugins import RtbuildPluginManager

    config = state.load_config()
    records = RtbuildPluginManager().builder_records()
    rows = [record.to_dict() for record in records.values()]
    for row in rows:
        row["selected"] = row["name"] == config.builder
    if as_json:
        emit_json(rows)
        return
    click.echo(_table(rows, ["name", "distribution", "version", "value", "selected"]))
