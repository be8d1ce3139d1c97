"""``rtbuild build PATH -t TAG...``."""

from __future__ import annotations

import click

from rtbuild.cli._main import State, echo_result, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import (
    BuilderOption,
    build_timeout_option,
    lock_timeout_option,
    parse_pairs,
    progress_mode,
)


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option(
    "-t", "--tag", "tags", multiple=True, required=True, help="Tag to apply (repeatable); the first is returned."
)
@click.option("--platform", help="Target platform(s), e.g. linux/amd64 or linux/amd64,linux/arm64.")
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help="Build argument (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Image label (repeatable).")
@click.option("--builder", cls=BuilderOption, help="Builder to use (overrides RTBUILD_BUILDER and the config file).")
@click.option(
    "--push/--no-push", default=None, help="Push every tag after the build (default: `push` of the configuration)."
)
@click.option("--target", help="Build stage to stop at (multi-stage Dockerfile).")
@click.option("--no-cache", is_flag=True, help="Build every step again (the engine's cache is not used).")
@click.option("--force", is_flag=True, help="Build even when nothing changed (no no-op skip); the cache still applies.")
@click.option("-f", "--file", "dockerfile", metavar="FILE", help="Dockerfile, relative to PATH (default: Dockerfile).")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="id=NAME,src=FILE|env=VAR",
    help="Build secret (repeatable); its value is never logged or stored in the image.",
)
@click.option("--cache-from", "cache_from", multiple=True, metavar="REF", help="Cache source (repeatable).")
@click.option("--cache-to", "cache_to", multiple=True, metavar="REF", help="Cache export destination (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print what the builder would do; build and push nothing.")
@click.option(
    "--extra", "extra", multiple=True, metavar="ARG", help="Extra argument passed to the builder as is (repeatable)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output (with --json: no event stream either).")
@click.option("--profile", is_flag=True, help="After the build, print the slowest steps and the cache-hit ratio.")
@lock_timeout_option
@build_timeout_option
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
    no_cache: bool,
    force: bool,
    dockerfile: str | None,
    secrets: tuple[str, ...],
    cache_from: tuple[str, ...],
    cache_to: tuple[str, ...],
    dry_run: bool,
    extra: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    profile: bool = False,
) -> None:
    """Build the context at PATH and print the final image name (or JSON with --json).

    With --dry-run, print the builder's plan (Docker: the engine command) instead.
    """
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.pipeline import plan_build, run_build
    from rtbuild._framework.progress import use_reporter
    from rtbuild.builder import BuildRequest, BuildSecret

    config = state.load_config(builder=builder, platform=platform)
    request = BuildRequest(
        path=path,
        tags=list(tags),
        platform=config.platform,
        extra_build_args=list(extra),
        build_args=parse_pairs(build_args, "--build-arg"),
        labels=parse_pairs(labels, "--label"),
        builder=config.builder,
        push=push,  # None: the configuration decides; an explicit --no-push wins
        target=target,
        no_cache=no_cache,
        dockerfile=dockerfile,
        secrets=BuildSecret.parse_all(secrets),
        cache_from=list(cache_from),
        cache_to=list(cache_to),
        force=force,
    )
    pm = state.plugin_manager(config)
    with use_reporter(make_reporter(progress_mode(as_json, quiet))), hooks_write_to_stderr():
        if dry_run:
            plan = plan_build(request, config=config, pm=pm)
        else:
            result = run_build(request, config=config, pm=pm)
    if dry_run:
        if as_json:
            emit_json({"dry_run": True, "builder": request.builder, "tags": request.tags, "plan": plan})
        else:
            echo_result(plan)
        return
    if profile:
        from rtbuild._observe.profile import render_profile

        click.echo(render_profile(result.details), err=True)
    if as_json:
        emit_json(result.to_dict())
    else:
        echo_result(result.image)
