"""The engine build itself: the docker client run, its log, its step profile."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rtbuild import get_reporter

if TYPE_CHECKING:
    from rtbuild.enginekit import Inputs

    from .builder import DockerBuilder
    from .engine import EngineAPI
    from .spec import BuildOutcome, BuildSpec


def config_proxy_passwords() -> list[str]:
    """The passwords of the proxy URLs in the docker config's ``proxies`` (``config.json``),
    which the docker client hands every build as the ``HTTP_PROXY`` & co. build args: a
    step printing its environment (or pip's proxy errors) showed them. As written and
    percent-decoded; a config that cannot be read has none (the client says so itself)."""
    from urllib.parse import unquote

    from rtbuild import AgentRuntimeBuildError
    from rtbuild.enginekit import url_passwords
    from rtbuild.oci import load_docker_config

    try:
        proxies = load_docker_config().get("proxies")
    except (AgentRuntimeBuildError, ValueError):
        return []
    found = [
        password
        for entry in (proxies.values() if isinstance(proxies, dict) else [])
        if isinstance(entry, dict)
        for value in entry.values()
        if isinstance(value, str)
        for password in url_passwords(value)
    ]
    return list(dict.fromkeys([*found, *map(unquote, found)]))


def _both(first: Callable[[str], None], second: Callable[[str], None]) -> Callable[[str], None]:
    def feed(line: str) -> None:
        first(line)
        second(line)

    return feed


def engine_build(
    builder: DockerBuilder,
    spec: BuildSpec,
    extra: list[str],
    inputs: Inputs | None,
    started: float,
    ctx: Any = None,
    on_started: Callable[[], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> BuildOutcome:
    """Run the engine build of ``spec`` (the no-op skip already said no), log it,
    profile its steps and label the image with its input digest when there is one (the
    label is withdrawn when the context ``ctx`` changed after the hash, see
    :func:`rtbuild.enginekit.confirm_label`). ``on_started`` is called once the engine
    client runs; ``on_line`` sees each (masked) output line after the step profile does."""
    from rtbuild.context import clear_stale_sync
    from rtbuild.enginekit import (
        DIGEST_LABEL,
        Redactor,
        StepRecorder,
        confirm_label,
        default_log_dir,
        log_path_for,
        profile_steps,
        redact_argv,
        rotate_logs,
        run_build,
        secrets_in_args,
    )

    from .engine import EngineAPI, cli_env, resolve_host
    from .probe import engine_probe
    from .spec import BuildOutcome, extra_build_args
    from .sync import needs_fresh_sync, rotate_build_node_id

    client = builder.client()
    labels = dict(spec.labels)
    if inputs is not None:
        labels[DIGEST_LABEL] = inputs.digest
    argv = builder._argv(spec, extra, labels)
    env = {**client.env, **cli_env(builder.docker_host)}  # the engine rtbuild's own calls ask
    log_dir = builder.log_dir or default_log_dir()
    rotate_logs(log_dir, keep=builder.log_keep, max_age_days=builder.log_max_age_days)
    log_path = log_path_for(log_dir, spec.tags[0])
    redact = Redactor.for_build(
        {**spec.build_args, **extra_build_args(extra)},
        [*spec.secret_values, *secrets_in_args(extra), *map(str.encode, config_proxy_passwords())],
    )
    fresh = needs_fresh_sync(spec.path, ctx, spec.tags, builder.docker_host)
    if fresh:
        get_reporter().event(
            "fresh_sync", message="sending the whole context: the engine's incremental sync could miss a change"
        )
        rotate_build_node_id()
    recorder = StepRecorder()
    feed: Callable[[str], None] = recorder.feed if on_line is None else _both(recorder.feed, on_line)
    result = run_build(
        argv,
        env=env,
        log_path=log_path,
        stream=builder.progress == "plain",
        on_line=feed,
        redact=redact,
        shown_argv=redact_argv(argv),
        on_started=on_started,
        probe=engine_probe(resolve_host(builder.docker_host)),
        # Over a unix socket or ssh the docker CLI makes no proxied connection of its own: a
        # proxy build arg's password can travel in its environment (never on its command line).
        proxies_in_env=resolve_host(builder.docker_host).partition("://")[0] in ("unix", "ssh"),
    )
    log_path = result.log_path
    if result.returncode != 0:
        from .failures import build_error  # only a failed build needs the output parsers
        from .platforms import explain_foreign_local_base

        error = build_error(result.lines, result.returncode, log_path=log_path, host=resolve_host(builder.docker_host))
        explain_foreign_local_base(builder, spec, error)
        raise error
    if spec.platform:
        from .platforms import warn_foreign_base_images

        warn_foreign_base_images(builder, spec, extra)
    input_digest = inputs.digest if inputs else None
    untag = functools.partial(_remove_tags, EngineAPI(builder.docker_host), spec.tags)
    if input_digest and ctx is not None and confirm_label(ctx, result.image_id, input_digest, untag=untag):
        input_digest = None  # the label was withdrawn: the context changed after the hash
    # The profile reads the image history, where the engine keeps build-arg values.
    profile = profile_steps(recorder, EngineAPI(builder.docker_host), result.image_id, _dockerfile_text(spec, extra))
    steps, layers = redact.mask(profile)
    if fresh:
        # Only a whole-context send settles it: a mark left during an ordinary build (a
        # first build's hash runs next to the engine) must reach the next build.
        clear_stale_sync(spec.path)
    return BuildOutcome(
        spec.tags[0],
        list(spec.tags),
        False,
        round(time.perf_counter() - started, 3),
        image_id=result.image_id,
        log_path=log_path,
        input_digest=input_digest,
        client=f"{client.cli} ({client.mode}{', ' + client.version if client.version else ''})",
        steps=steps,
        layers=layers,
    )


def _dockerfile_text(spec: Any, extra: list[str]) -> str | None:
    """The Dockerfile as built (BuildKit names a step by its expanded text; the profile
    records each one's text as written, for rtbuild metrics to group by); ``None`` if unread."""
    import os

    from rtbuild.context import dockerfile_arg

    path = dockerfile_arg(extra) or os.path.join(spec.path, "Dockerfile")
    if path == "-":
        return None
    try:
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK)) as handle:
            return handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return None


__all__ = ["engine_build"]


def _remove_tags(api: EngineAPI, tags: Sequence[str]) -> None:
    """Take ``tags`` off their image (the image goes with its last tag); raises when the
    engine refuses one."""
    from urllib.parse import quote

    from .engine import answer_error

    for tag in tags:
        status, data = api.call("DELETE", f"/images/{quote(tag, safe='/:@')}?force=1")
        if status not in (200, 404):
            raise answer_error(api.host, status, data, f"remove tag {tag}")
