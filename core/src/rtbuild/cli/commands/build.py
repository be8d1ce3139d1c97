"""``rtbuild build PATH -t TAG...``."""

from __future__ import annotations

import click

from rtbuild.cli._main import State, emit_json, json_option, pass_state
from rtbuild.cli.commands._options import parse_pairs, progress_mode


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option(
    "-t", "--tag", "tags", multiple=True, required=True, help="Tag to apply (repeatable); the first is returned."
)
@click.option("--platform", help="Target platform, e.g. linux/amd64.")
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help="Build argument (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Image label (repeatable).")
@click.option("--builder", help="Builder to use (overrides RTBUILD_BUILDER and the config file).")
@click.option("--push/--no-push", default=None, help="Push every tag after the build.")
@click.option("--target", help="Build stage to stop at.")
@click.option("--no-cache", "--force", "force", is_flag=True, help="Rebuild even when nothing changed.")
@click.option(
    "--extra", "extra", multiple=True, metavar="ARG", help="Extra argument passed to the builder as is (repeatable)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--profile", is_flag=True, help="After the build, print the slowest steps and the cache-hit ratio.")
@json_option
@pass_state
def build(
    state: State,
    path: str,
    tags: tuple[str, ...],
    platform: str | None,
    build_args: tuple[str, ...],
    labels: tuple[str, ...],
    builder: str | None,
    push: bool | None,
    target: str | None,
    force: bool,
    extra: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    profile: bool = False,
) -> None:
    """Build the context at PATH and print the final image name (or JSON with --json)."""
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.pipeline import run_build
    from rtbuild._framework.progress import use_reporter
    from rtbuild.builder import BuildRequest

    config = state.load_config(builder=builder, platform=platform, push=push)
    request = BuildRequest(
        path=path,
        tags=list(tags),
        platform=config.platform,
        extra_build_args=list(extra),
        build_args=parse_pairs(build_args, "--build-arg"),
        labels=parse_pairs(labels, "--label"),
        builder=config.builder,
        push=config.push,
    )
    if target:
        request.target = target
    if force:
        request.force = True
    pm = state.plugin_manager(config)
    with use_reporter(make_reporter(progress_mode(as_json, quiet))):
        result = run_build(request, config=config, pm=pm)
    if profile:
        from rtbuild._observe.profile import render_profile

        click.echo(render_profile(result.details), err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.image)
