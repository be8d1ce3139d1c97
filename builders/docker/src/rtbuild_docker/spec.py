"""One Docker build request as the builder runs it, and the flags it turns into."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rtbuild import BuildRequest
from rtbuild.context import dockerfile_arg
from rtbuild.enginekit import masked_repr


@dataclass
class BuildSpec:
    """One build with the structured fields kept apart (the hook fills them natively)."""

    path: str
    tags: list[str]
    platform: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    extra_build_args: list[str] = field(default_factory=list)
    force: bool = False
    #: Secret values, read when the build starts: only used to mask them in the output.
    secret_values: list[bytes] = field(default_factory=list)

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr


@dataclass
class BuildOutcome:
    image: str
    tags: list[str]
    cached: bool
    duration_s: float
    image_id: str | None = None
    log_path: str | None = None
    input_digest: str | None = None
    client: str | None = None
    steps: list[dict[str, Any]] | None = None
    layers: list[dict[str, Any]] | None = None
    #: The image's size when the no-op check saw it (spares a post_build hook an inspect).
    image_size: int | None = None

    def details(self) -> dict[str, Any]:
        keys = ("image_id", "log_path", "input_digest", "client", "steps", "layers", "image_size")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


def absolute_dockerfile(path: str, extra: Sequence[str]) -> list[str]:
    """Rewrite a relative ``-f`` to CONTEXT/FILE: rtbuild resolves it against the context
    (as validate_context does), the docker CLI against the working directory."""
    from rtbuild.context import check_one_dockerfile

    check_one_dockerfile(path, extra)  # before every -f below becomes the first one
    given = dockerfile_arg(extra)
    if given is None or given == "-" or os.path.isabs(given):
        return list(extra)
    absolute = os.path.abspath(os.path.join(path, given))
    out: list[str] = []
    skip = False
    for index, arg in enumerate(extra):
        if skip:
            skip = False
            continue
        if arg in ("-f", "--file") and index + 1 < len(extra):
            out += [arg, absolute]
            skip = True
        elif arg.startswith(("--file=", "-f=")) or (arg.startswith("-f") and not arg.startswith("--")):
            out.append("--file=" + absolute)  # every spelling dockerfile_arg reads
        else:
            out.append(arg)
    return out


def checked_dockerfile(path: str, extra: Sequence[str], buildkit: str) -> str:
    """The Dockerfile's path (:func:`rtbuild.context.validate_context`), refused when it is a
    symlink BuildKit's client cannot follow: the client sends the Dockerfile's own directory
    and BuildKit resolves the link inside it, so a target elsewhere (out of the context,
    or only out of that directory) failed in the engine with 'failed to read dockerfile:
    open /var/lib/docker/tmp/buildkit-mount…: no such file or directory'."""
    from rtbuild import BuildContextError
    from rtbuild.context import validate_context
    from rtbuild.enginekit import refuse_result_args

    refuse_result_args(extra)  # before any engine contact too
    dockerfile = validate_context(path, extra)
    if dockerfile == "-" or buildkit == "legacy" or not os.path.islink(dockerfile):
        return dockerfile
    home = os.path.realpath(os.path.dirname(os.path.abspath(dockerfile)))
    target = os.path.realpath(dockerfile)
    if os.path.commonpath([home, target]) == home:
        return dockerfile
    raise BuildContextError(
        f"the Dockerfile {dockerfile!r} is a symlink to {target!r}, outside its own directory {home!r}:"
        " docker's BuildKit client cannot follow it",
        step="validate context",
        hint=f"name the file itself with `-f {target}`, or replace the link with a copy",
    )


def request_flags(request: BuildRequest) -> list[str]:
    """The request's fields that BuildSpec keeps as flags (Dockerfile, no-cache, secrets, cache).

    Build args, labels and the target travel in BuildSpec's own fields (the no-op digest
    tells them apart); everything else is the contract's own flag rendering.
    """
    return dataclasses.replace(request, build_args={}, labels={}, target=None).structured_args()


def spec_build_args(platform: str | None, request: BuildRequest) -> dict[str, str]:
    """The build args the client builds with: TARGETARCH & co. (Docker 20.10's frontend
    leaves them empty in FROM lines), the request's, then the extra ``--build-arg K=V``,
    which the client reads last. The FROM lines they resolve (their images' IDs are inputs)
    and the digest must see those too: a base named by one was not an input, and after it
    was re-tagged the skip reused the image built on the old one."""
    from rtbuild.enginekit import build_args_in, platform_args

    return {**platform_args(platform), **request.build_args, **build_args_in(request.extra_build_args)}


def extra_build_args(extra: Sequence[str]) -> dict[str, str]:
    """``--build-arg K=V`` given through extra arguments (so they are masked too), and
    ``--build-arg K``, which the docker client fills from its environment (rtbuild's)."""
    import os

    from rtbuild.enginekit import build_args_in

    return build_args_in(extra, os.environ)


__all__ = [
    "BuildOutcome",
    "BuildSpec",
    "absolute_dockerfile",
    "checked_dockerfile",
    "extra_build_args",
    "request_flags",
    "spec_build_args",
]
