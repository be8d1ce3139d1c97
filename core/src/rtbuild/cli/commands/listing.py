"""``rtbuild plugins`` and ``rtbuild builders``."""

from __future__ import annotations

import warnings
from typing import Any

import click

from rtbuild.cli._main import State, echo_result, emit_json, hooks_write_to_stderr, json_option, pass_state


def _table(rows: list[dict[str, object]], columns: list[str]) -> str:
    cells = [[str(row.get(col) or "") for col in columns] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) if cells else len(col) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return "\n".join(lines)


def _errors(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row.get("error"):
            click.echo(f"{row['name']}: {row['error']}", err=True)


@click.command()
@json_option
@pass_state
def plugins(state: State, as_json: bool) -> None:
    """List every discovered builder and plugin with its distribution and status."""
    config = state.load_config()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from rtbuild._framework.plugins import PluginLoadWarning, get_plugin_manager

        with hooks_write_to_stderr():  # a plugin module's print() at import is not the listing
            pm = get_plugin_manager(config, tolerate_invalid=True)
    # Failures are shown in the listing itself; the other warnings (a misspelt entry-point
    # group, a hook left without @rtbuild.hookimpl, a name in the lists nothing has) are
    # what someone debugging their plugin here needs to see.
    for warning in caught:
        message = str(warning.message)
        if issubclass(warning.category, PluginLoadWarning) and "failed to load and was skipped" not in message:
            click.echo(f"warning: {message}", err=True)
    rows = [record.to_dict() for record in pm.listing()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["hooks"] = ",".join(row["hooks"]) if row["hooks"] else ""
    echo_result(_table(rows, ["name", "kind", "distribution", "version", "status", "hooks"]))
    _errors(rows)


#: Short names of the capability flags in the human table.
_SHORT = {"no_cache": "no-cache", "cache_export": "cache", "multi_platform": "multi-platform", "dry_run": "dry-run"}


def _capabilities_text(caps: dict[str, Any] | None) -> str:
    if caps is None:
        return "?"
    flags = [_SHORT.get(k, k) for k, v in caps.items() if v is True and k != "needs_dockerfile"]
    if not caps.get("needs_dockerfile", True):
        flags.append("no-dockerfile")
    if caps.get("platforms"):
        flags.append("platforms=" + "|".join(caps["platforms"]))
    return ",".join(flags) or "-"


@click.command()
@json_option
@pass_state
def builders(state: State, as_json: bool) -> None:
    """List installed builders with what each can do.

    Each builder's class is imported to read its declared capabilities (nothing is
    created); a builder that fails to import is listed as failed.
    """
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild._framework.plugins._builders import builder_classes

    config = state.load_config()
    pm = RtbuildPluginManager()
    classes = builder_classes(pm)  # a failure leaves the record "failed", with why, for the table
    rows: list[dict[str, Any]] = []
    for record in pm.builder_rows():
        cls = classes.get(record.name) if record.status != "conflict" else None
        row: dict[str, Any] = record.to_dict()
        row.pop("hooks", None)
        row["selected"] = record.name == config.builder
        row["capabilities"] = cls.capabilities.to_dict() if cls is not None else None
        rows.append(row)
    if config.builder and not any(row["selected"] for row in rows):
        # The listing that answers "which builder will my builds use?" said nothing: no row
        # marked, exit 0, while every build failed with 'not recognised'.
        from rtbuild._framework.config import DEFAULT_BUILDER
        from rtbuild.errors import BuilderNotFoundError

        failed = {str(row["name"]): str(row["error"]).splitlines()[0] for row in rows if row["status"] == "failed"}
        unknown = BuilderNotFoundError(config.builder, [str(row["name"]) for row in rows], failed=failed)
        if config.builder == DEFAULT_BUILDER:  # most likely nothing configured: say where it comes from
            text = (
                f"{unknown.message} (builds fail with this error; {DEFAULT_BUILDER!r} is the default when no"
                " --builder, RTBUILD_BUILDER or `builder` setting names another)"
            )
        else:
            text = f"the configured {unknown.message} (builds fail with this error)"
        click.echo(f"warning: {text}", err=True)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["can"] = _capabilities_text(row["capabilities"])
        row["selected"] = "*" if row["selected"] else ""
    echo_result(_table(rows, ["name", "distribution", "version", "status", "selected", "can"]))
    _errors(rows)
