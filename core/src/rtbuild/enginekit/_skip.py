"""Build arguments that rule out the no-op skip: what they bring in, the digest cannot see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    # Podman's (Buildah's): the image the first FROM is replaced with, which the analysis
    # of the Dockerfile's own FROM lines does not see.
    "--from",
    # Podman's hidden spelling of --pull=always: the registry's base, not the local one.
    "--pull-always",
)
#: Extra arguments choosing the target platform, which must come through the request instead.
_PLATFORM_ARGS = ("--platform", "--arch", "--os", "--variant", "--all-platforms")
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


def build_args_in(extra_build_args: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--build-arg K=V`` given among extra arguments (the later of two for one ``K``, as
    the engines' clients read them). ``--build-arg K`` (the client takes the value from its
    environment) counts only with ``environ``, the client's environment, holding ``K``: in
    its place among the others, so the later spelling of ``K`` wins either way."""
    from rtbuild.enginekit._redact import build_arg_specs

    found: dict[str, str] = {}
    for _, _, spec in build_arg_specs(extra_build_args):
        key, sep, value = spec.partition("=")
        if sep:
            found[key] = value
        elif environ is not None and key in environ:
            found[key] = environ[key]
    return found


def refuse_result_args(extra_build_args: Sequence[str], *, output: bool = True) -> None:
    """Refuse extra arguments that would put the result where rtbuild cannot see it: ``-t``/
    ``--tag`` (a tag the no-op skip, the build lock and the push do not know: a skip left it
    naming whatever it named, another image after a re-tag), ``--platform`` and Podman's
    ``--arch``/``--os``/``--variant``/``--all-platforms`` (the engine builds for it while the
    analysis, the base-image check, the multi-platform path and the result follow the
    request's platform), Podman's ``--manifest`` (a manifest list rtbuild neither checks nor
    pushes: a skip left it as it was, and podman printed the list's ID, which rtbuild took for
    the image's) and, with ``output``, ``-o``/``--output`` (files exported instead of an image:
    nothing to tag)."""
    from rtbuild.errors import ConfigError

    for arg in extra_build_args:
        if arg.partition("=")[0] in _PLATFORM_ARGS:
            raise ConfigError(
                f"the extra argument {arg!r} sets a platform rtbuild would not know",
                step="validate request",
                hint="give the platform with rtbuild's --platform (or `[build] platform`): rtbuild resolves"
                " TARGETARCH, checks base images and reports the result for that platform",
            )
        if arg in ("-t", "--tag") or arg.startswith(("--tag=", "-t")):
            raise ConfigError(
                f"the extra argument {arg!r} names a tag rtbuild would not know",
                step="validate request",
                hint="give every tag with -t (the request's tags): rtbuild checks, locks and pushes those",
            )
        if arg.partition("=")[0] == "--manifest":
            raise ConfigError(
                f"the extra argument {arg!r} adds the image to a manifest list rtbuild would not know",
                step="validate request",
                hint="build the platforms with rtbuild's --platform linux/amd64,linux/arm64 and --push: rtbuild"
                " assembles the index under each tag; or run `podman manifest add` after the build",
            )
        if output and (arg in ("-o", "--output") or arg.startswith(("--output=", "-o"))):
            raise ConfigError(
                f"the extra argument {arg!r} exports the build's files instead of making an image",
                step="validate request",
                hint="rtbuild builds a tagged image in the engine: drop --output, and copy files out of the"
                " image afterwards (`docker create` + `docker cp`, or `docker save` for a tar)",
            )


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


__all__ = ["NO_SKIP_ARGS", "build_args_in", "refuse_result_args", "report_skip_disabled", "skip_blocked"]
