"""``rtbuild scan IMAGE``: SBOM and OSV check of a local image, by the rtbuild-sbom plugin.

The work lives in the optional ``rtbuild-sbom`` distribution; it is imported only when
this command runs, so the core needs none of its dependencies.
"""

from __future__ import annotations

from typing import Any

import click

from rtbuild.cli._main import State, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import progress_mode
from rtbuild.errors import ConfigError

LEVELS = ("low", "medium", "high", "critical", "never")


def _plugin() -> Any:
    try:
        from rtbuild_sbom import command
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("rtbuild_sbom"):
            raise
        raise ConfigError(
            "`rtbuild scan` needs the rtbuild-sbom plugin, which is not installed",
            step="scan",
            hint="pip install rtbuild-sbom (in the rtbuild repository: `make venv` installs contrib/sbom)",
        ) from exc
    return command


@click.command()
@click.argument("image")
@click.option("--osv-db", type=click.Path(), help="OSV database (directory or zip); default [plugins.sbom] osv_db.")
@click.option(
    "--fail-on", type=click.Choice(LEVELS), help="Exit 2 at or above this severity; default [plugins.sbom] fail_on."
)
@click.option("--builder", help="Builder whose engine holds IMAGE.")
@json_option
@pass_state
@click.pass_context
def scan(
    ctx: click.Context,
    state: State,
    image: str,
    osv_db: str | None,
    fail_on: str | None,
    builder: str | None,
    as_json: bool,
) -> None:
    """Write a CycloneDX SBOM of a local IMAGE and check it against an OSV database."""
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.progress import use_reporter
    from rtbuild.oci import parse_reference

    # A malformed reference is the user's typo (exit 2), not "not in the local engine" (exit 1).
    # An image ID (sha256:..., or its short hex) parses as a reference too.
    parse_reference(image)
    command = _plugin()
    config = state.load_config(builder=builder)
    with use_reporter(make_reporter(progress_mode(as_json))) as reporter, hooks_write_to_stderr():
        engine = state.plugin_manager(config).create_builder(config.builder, config)
        outcome = command.run_scan(image, config, engine, osv_db=osv_db, fail_on=fail_on)
        reporter.event("sbom", message=command.summary(outcome))
    if as_json:
        emit_json(outcome.to_dict())
    elif outcome.report.findings:
        click.echo(command.table(outcome))
    if outcome.error is not None:
        click.echo(outcome.error.render(), err=True)
        ctx.exit(outcome.error.exit_code)  # a PolicyError's, as when a build is refused
