"""``rtbuild build --dry-run`` for the Docker builder: the engine command a build would run.

The no-op skip is not consulted; the request is validated as the build would validate it.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from rtbuild import BuildRequest

if TYPE_CHECKING:
    from .builder import DockerBuilder


def command_text(builder: DockerBuilder, request: BuildRequest) -> str:
    """The shell command line (with the client's environment) of ``request``'s build."""
    from rtbuild.context import validate_context
    from rtbuild.enginekit import redact_argv, refuse_result_args, split_platforms

    from .spec import absolute_dockerfile

    refuse_result_args(request.extra_build_args)  # a dry run is refused as the build would be
    if len(split_platforms(request.platform)) > 1:
        from .platforms import plan_text

        return plan_text(builder, request)
    spec = builder.spec_for(request)
    extra = absolute_dockerfile(spec.path, spec.extra_build_args)
    dockerfile = validate_context(spec.path, extra)
    from .engineplatform import with_engine_args

    spec = with_engine_args(builder, spec, dockerfile)  # the build args the build would add
    from .engine import DEFAULT_HOST, cli_env

    env = cli_env(builder.docker_host)
    if env["DOCKER_HOST"] == (os.environ.get("DOCKER_HOST") or DEFAULT_HOST):
        env = {}  # what the client would use anyway: not worth showing
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**builder.client().env, **env}.items())
    argv = redact_argv(builder._argv(spec, extra, labels=dict(spec.labels)))
    return (prefix + " " if prefix else "") + shlex.join(argv)


__all__ = ["command_text"]
