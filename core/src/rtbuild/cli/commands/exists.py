"""``rtbuild exists IMAGE``: exit 0 if available, 1 if not, 3 if it could not tell.

Exit 3 (engine or registry unreachable, refused credentials, a registry that answers
garbage or too slowly) keeps ``rtbuild exists X || rtbuild build ...`` from rebuilding
during every registry outage. A malformed reference or configuration stays exit 2.
"""

from __future__ import annotations

import click

from rtbuild.cli._main import State, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import progress_mode
from rtbuild.errors import AgentRuntimeBuildError

#: `rtbuild exists` could not tell whether the image exists (docs/cli.md).
EXIT_UNKNOWN = 3


class InternalError(AgentRuntimeBuildError):
    """A bug in a plugin or builder (or rtbuild) while checking: the answer is unknown."""


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
    from rtbuild._framework.pipeline import check_image, validate_platform
    from rtbuild._framework.progress import use_reporter
    from rtbuild.errors import ConfigError, PluginError, PolicyError

    config = state.load_config(builder=builder)
    pm = state.plugin_manager(config)
    try:
        with use_reporter(make_reporter(progress_mode(as_json))), hooks_write_to_stderr():
            platform = validate_platform(platform, step="check image")  # the spelling hooks and --json see
            found = check_image(image, pull, config=config, pm=pm, platform=platform)
    except (ConfigError, PluginError, PolicyError):
        raise  # the question itself is wrong: exit 2
    except Exception as exc:  # an rtbuild error, or a bug in a plugin or builder: not "absent"
        if not isinstance(exc, AgentRuntimeBuildError):
            exc = _internal(exc, state.debug)
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


def _internal(exc: Exception, debug: bool) -> InternalError:
    """A plugin's or builder's bug as an error that says who: exit 1 would read as "absent"
    (``rtbuild exists X; [ $? -eq 1 ] && rtbuild build ...`` rebuilds on absent)."""
    import sys

    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    blame = getattr(exc, "rtbuild_blame", None)
    who = f"it to the authors of {blame}" if isinstance(blame, str) else "it"
    return InternalError(
        f"internal error: {type(exc).__name__}: {exc}",
        step="check image",
        hint=f"run with --debug for the traceback and report {who}",
        blame=blame if isinstance(blame, str) else None,
    )
