"""Build-context validation (more: .dockerignore, hashing and streaming tar live here too)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .errors import BuildContextError


def dockerfile_arg(extra_build_args: Sequence[str]) -> str | None:
    """The ``-f``/``--file`` value among CLI-style build arguments, if any."""
    args = list(extra_build_args)
    for index, arg in enumerate(args):
        if arg in ("-f", "--file") and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--file="):
            return arg.split("=", 1)[1]
    return None


def validate_context(path: str, extra_build_args: Sequence[str] = ()) -> str:
    """Check ``path`` is a directory with a Dockerfile; return the Dockerfile's path."""
    if not os.path.exists(path):
        raise BuildContextError(f"build context {path!r} does not exist", step="validate context")
    if not os.path.isdir(path):
        raise BuildContextError(f"build context {path!r} is not a directory", step="validate context")
    dockerfile = dockerfile_arg(extra_build_args) or "Dockerfile"
    full = dockerfile if os.path.isabs(dockerfile) else os.path.join(path, dockerfile)
    if dockerfile == "-":
        return dockerfile
    if not os.path.isfile(full):
        raise BuildContextError(
            f"no Dockerfile at {full!r}",
            step="validate context",
            hint="add a Dockerfile to the context, or name one with `--file` in extra build args",
        )
    return full


__all__ = ["dockerfile_arg", "validate_context"]
