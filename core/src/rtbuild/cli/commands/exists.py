"""``rtbuild exists IMAGE``: exit 0 if available, 1 if not, 3 if it could not tell.

Exit 3 (engine or registry unreachable, refused credentials, a registry that answers
garbage or too slowly) keeps ``rtbuild exists X || rtbuild build ...`` from rebuilding
during every registry outage. A malformed reference or configuration stays exit 2.
"""

from __future__ import annotations

import click

from rtbuild.cli._main import State, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import progress_mode

#: `rtbuild exists` could not tell whether the image exists (docs/cli.md).
EXIT_UNKNOWN = 3


@click.command()
@click.argument("image")
@click.option(
    "--pull/--no-pull", default=True, show_default=True, help="Pull the image from its registry when it is only there."
)
@click.option("--builder", help="Builder to ask.")
@click.option(
    "--platform",
    metavar="OS/ARCH[,...]",
    help="Only an image for this platform counts (several: comma-separated); an index lacking it is absent.",
)
@json_option
@pass_state
@click.pass_context
def exists(
    ctx: click.Context, state: State, image: str, pull: bool, builder: str | None, platform: str | None, as_json: bool
) -> None:
    """Exit 0 if IMAGE is available (locally, or pulled with --pull), 1 if not, 3 if it could not tell."""
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.pipeline import check_image
    from rtbuild._framework.progress import use_reporter
    from rtbuild.errors import AgentRuntimeBuildError, ConfigError, PluginError, PolicyError

    config = state.load_config(builder=builder)
    pm = state.plugin_manager(config)
    try:
        with use_reporter(make_reporter(progress_mode(as_json))), hooks_write_to_stderr():
            found = check_image(image, pull, config=config, pm=pm, platform=platform)
    except (ConfigError, PluginError, PolicyError):
        raise  # the question itself is wrong: exit 2
    except AgentRuntimeBuildError as exc:
        click.echo(exc.render(), err=True)
        click.echo(f"{image}: could not tell whether it exists", err=True)
        if as_json:
            emit_json({"image": image, "exists": None, "pull": pull, **exc.to_dict(), "exit_code": EXIT_UNKNOWN})
        ctx.exit(EXIT_UNKNOWN)
    if as_json:
        emit_json({"image": image, "exists": found, "pull": pull, **({"platform": platform} if platform else {})})
    else:
        click.echo(f"{image}: {'available' if found else 'not found'}", err=True)
    ctx.exit(0 if found else 1)
