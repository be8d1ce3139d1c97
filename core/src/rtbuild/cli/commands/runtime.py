"""``rtbuild runtime --base IMAGE [--plugin NAME]...``: build or reuse a runtime image."""

from __future__ import annotations

import click

from rtbuild.cli._main import State, echo_result, emit_json, hooks_write_to_stderr, json_option, pass_state
from rtbuild.cli.commands._options import build_timeout_option, lock_timeout_option, parse_pairs, progress_mode


@click.command()
@click.option("--base", "base_image", metavar="IMAGE", help="Base image (default: [sandbox] base_container_image).")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="NAME",
    help="Runtime plugin to include (repeatable; default: [runtime] plugins).",
)
@click.option("--repo", metavar="REPO", help="Repository for the content-hash tags (default: [runtime] repo).")
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help="Build argument (repeatable).")
@click.option("--builder", help="Builder to use (overrides RTBUILD_BUILDER and the config file).")
@click.option(
    "--platform",
    metavar="OS/ARCH[,...]",
    help="Target platform(s), e.g. linux/arm64 or linux/amd64,linux/arm64 (default: [build] platform).",
)
@click.option("--push/--no-push", default=None, help="Push the tags after building.")
@click.option("--force-rebuild", is_flag=True, help="Build from scratch even when a tag already exists.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH_OR_DISTRIBUTION[:DEST]",
    help="Add a directory or an installed Python distribution as a source payload, copied to DEST "
    "(default /opt/rtbuild/payload/NAME) in one layer, after every plugin's (repeatable).",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="PATTERN",
    help=".dockerignore-style pattern left out of every --source payload (repeatable).",
)
@click.option("--list", "list_plugins", is_flag=True, help="List the available runtime plugins and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@lock_timeout_option
@build_timeout_option
@json_option
@pass_state
def runtime(
    state: State,
    base_image: str | None,
    plugins: tuple[str, ...],
    repo: str | None,
    build_args: tuple[str, ...],
    builder: str | None,
    platform: str | None,
    push: bool | None,
    force_rebuild: bool,
    sources: tuple[str, ...],
    excludes: tuple[str, ...],
    list_plugins: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build (or reuse) a runtime image: a base image plus runtime plugins.

    Prints the image to run (or the BuildResult as JSON with --json). Tags are
    REPO:<version>_<lock>_<source> and REPO:<version>_<lock>; an existing exact tag is
    reused without building, an existing lock tag gets only the source layers rebuilt.
    --source adds an agent's own code (a directory, or an installed distribution's files)
    as a payload: one layer, hashed in place, so an unchanged payload costs no copy.
    """
    from rtbuild._framework.display import make_reporter
    from rtbuild._framework.progress import use_reporter
    from rtbuild.runtime._build import build_runtime_image
    from rtbuild.runtime._plugin import SourcePayload
    from rtbuild.runtime._select import available_runtime_plugins

    config = state.load_config(builder=builder, push=push, platform=platform)
    pm = state.plugin_manager(config)
    if list_plugins:
        found = available_runtime_plugins(config, pm)
        rows = [{"name": name, "order": getattr(p, "order", 0)} for name, p in sorted(found.items())]
        if as_json:
            emit_json(rows)
        else:
            for row in rows:
                click.echo(f"{row['name']}\t(order {row['order']})")
        return
    with use_reporter(make_reporter(progress_mode(as_json, quiet))), hooks_write_to_stderr():
        result = build_runtime_image(
            config,
            base_image,
            list(plugins) if plugins else None,
            repo=repo,
            build_args=parse_pairs(build_args, "--build-arg"),
            push=config.push,
            force_rebuild=force_rebuild,
            payloads=[SourcePayload.parse(spec, tuple(excludes)) for spec in sources],
            pm=pm,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        echo_result(result.image)
