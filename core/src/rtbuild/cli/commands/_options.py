"""Options and parsing shared by several subcommands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``K=V`` strings to a dict; a missing ``=`` is a usage error naming the option."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            # Not echoed: `--build-arg "$TOKEN"` (the name forgotten) puts the secret itself here.
            what = "no '='" if not sep else "nothing before '='"
            raise click.BadParameter(
                f"expected KEY=VALUE, got a value of {len(value)} characters with {what} (not shown)", param_hint=option
            )
        pairs[key] = val
    return pairs


def lock_timeout_option(func: Any) -> Any:
    """``--lock-timeout SECONDS``: how long to wait for another build of the same tag."""

    def callback(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
        if value is not None and value != value:  # NaN passes FloatRange(min=0): no comparison holds
            raise click.BadParameter("must be a number of seconds, not nan", ctx, param)
        if value is not None:
            from rtbuild.cli._main import _STATE

            _STATE.extra["lock_timeout"] = value

    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        expose_value=False,
        callback=callback,
        help="Give up waiting for another build of the same tag after SECONDS (default: lock_timeout, else wait).",
    )(func)


def build_timeout_option(func: Any) -> Any:
    """``--build-timeout SECONDS``: how long one engine build may run before it is stopped."""

    def callback(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
        if value is not None and not value > 0:  # also NaN; inf lifts a configured bound
            raise click.BadParameter("must be a number of seconds, more than 0 (inf: no bound)", ctx, param)
        if value is not None:
            from rtbuild.cli._main import _STATE

            _STATE.extra["build_timeout"] = value

    return click.option(
        "--build-timeout",
        type=float,
        metavar="SECONDS",
        expose_value=False,
        callback=callback,
        help="Stop an engine build that runs longer than SECONDS, inf: none (default: build_timeout, else no bound).",
    )(func)


def check_repositories(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """``--repo``: a repository, as the engine names it. 'app:1' (a tag) or 'BAD NAME'
    matched no image, and prune removed nothing, metrics counted nothing, without a word."""
    from rtbuild._observe.prune import repository
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci import parse_reference

    for value in values:
        try:
            parse_reference(value)
        except InvalidReferenceError as exc:
            raise click.BadParameter(f"{value!r} is not a repository ({exc})", ctx, param) from None
        if repository(value) != value:
            raise click.BadParameter(
                f"{value!r} names a tag or digest; give the repository alone: {repository(value)!r}", ctx, param
            )
    return values


def progress_mode(as_json: bool, quiet: bool = False) -> str:
    """``-q`` wins: ``--json -q`` prints the result document and no event stream; ``-q``
    alone still prints warnings."""
    if quiet:
        return "silent" if as_json else "quiet"
    return "json" if as_json else "auto"


def installed_builders() -> list[str]:
    """Names of the installed builders, from metadata (nothing is imported)."""
    from rtbuild._framework.plugins import BUILDERS_GROUP, RtbuildPluginManager

    try:
        return sorted({item.name for item in RtbuildPluginManager().discovered_all(BUILDERS_GROUP)})
    except Exception:  # help text must never fail
        return []


class BuilderOption(click.Option):
    """``--builder``: its help lists the installed builders (read only when help is shown)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        names = installed_builders()
        installed = ", ".join(names) if names else "none (pip install rtbuild-docker)"
        return record[0], f"{record[1]} Installed: {installed}."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("metavar", "NAME")
        super().__init__(*args, **kwargs)
