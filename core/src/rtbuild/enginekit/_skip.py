"""Build arguments that rule out the no-op skip: what they bring in, the digest cannot see."""

from __future__ import annotations

from collections.abc import Sequence

NO_SKIP_ARGS = (
    "--secret",
    "--ssh",
    "--build-context",
    "--pull",
    "--no-cache",
    "--no-cache-filter",
    # Podman's: files the build reads that are not in the context.
    "--volume",
    "-v",
    "--ignorefile",
    "--build-arg-file",
)
#: Flags whose bare ``NAME`` (no ``=value``) takes the value from the environment.
_FROM_ENVIRONMENT = ("--build-arg", "--env")


def skip_blocked(extra_build_args: Sequence[str]) -> str | None:
    """The first extra argument that rules out the skip, if any."""
    args = list(extra_build_args)
    for index, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in NO_SKIP_ARGS:
            return name
        if name in _FROM_ENVIRONMENT:
            # `--build-arg NAME`: the client reads NAME's value from its environment,
            # which the digest (holding only what was passed) cannot see.
            value = value if arg != name else (args[index + 1] if index + 1 < len(args) else "")
            if "=" not in value:
                return f"{name} {value} (its value from the environment)"
    return None


def report_skip_disabled(reasons: Sequence[str], *, given: bool = False) -> None:
    """Tell the user this build cannot be skipped: a ``skip_disabled`` event naming the first
    reason. ``reasons`` are what the digest cannot see (``ADD <url>``...), or with ``given``
    the argument that rules the skip out (:func:`skip_blocked`)."""
    from rtbuild._framework.progress import get_reporter

    message = (
        f"{reasons[0]} given: always building"
        if given
        else f"always building: the input digest cannot see {'; '.join(reasons)}"
    )
    get_reporter().event("skip_disabled", reason=reasons[0], message=message)


__all__ = ["NO_SKIP_ARGS", "report_skip_disabled", "skip_blocked"]
