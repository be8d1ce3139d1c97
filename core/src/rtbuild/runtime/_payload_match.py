"""Which paths of a source payload are left out: its patterns, and rtbuild's own directories."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rtbuild.context import PatternMatcher
from rtbuild.errors import BuildContextError, ConfigError
from rtbuild.runtime._plugin import SourcePayload

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild._framework.plugins import RtbuildPluginManager

#: What this request writes outside rtbuild's cache and state directories (see output_paths).
_OUTPUTS: ContextVar[tuple[tuple[str, str, bool], ...]] = ContextVar("rtbuild_runtime_outputs", default=())


class _OwnDirsMatcher(PatternMatcher):
    """A payload's matcher that also leaves out rtbuild's own directories below its root."""

    def __init__(self, patterns: list[str], own: tuple[str, ...]) -> None:
        super().__init__(patterns)
        self.own = frozenset(own)
        self.below_own = tuple(f"{rel}/" for rel in own)

    def __bool__(self) -> bool:
        return True  # something is excluded even without a pattern

    def excluded(self, path: str) -> bool:
        return path in self.own or path.startswith(self.below_own) or super().excluded(path)

    def may_reinclude_below(self, directory: str) -> bool:
        if directory in self.own or directory.startswith(self.below_own):
            return False
        return super().may_reinclude_below(directory)


#: (what, absolute path, is a directory): a path rtbuild writes while it serves a request.
Output = tuple[str, str, bool]


def output_paths(config: Config, pm: RtbuildPluginManager, builder: Any = None) -> tuple[Output, ...]:
    """Where a request writes besides rtbuild's cache and state directories: the metrics
    plugin's file (and its ``.1`` generation), the builder's ``log_dir``, the sbom plugin's
    ``dir`` when it is enabled. Inside a payload they changed it under every request (a
    metrics line is written even on an exact hit), so every request built again."""
    found: list[Output] = []
    if pm.get_plugin("metrics") is not None:
        from rtbuild._observe.report import metrics_file

        with contextlib.suppress(TypeError, ValueError):  # a malformed table: the plugin warns
            path = str(metrics_file(config.plugin_config("metrics"), source=config.source))
            found += [("metrics file", path, False), ("metrics file", path + ".1", False)]
    logs = getattr(builder, "log_directory", None)
    logs = logs() if callable(logs) else getattr(builder, "log_dir", None)
    if isinstance(logs, str) and logs:
        found.append(("build log directory", logs, True))
    sbom = config.plugin_config("sbom") if pm.get_plugin("sbom") is not None else {}
    if sbom.get("enabled") is True and isinstance(sbom.get("dir"), str) and sbom["dir"]:
        raw = os.path.expanduser(sbom["dir"])
        base = os.path.dirname(os.path.abspath(config.source)) if config.source else ""
        found.append(("sbom directory", os.path.join(base, raw), True))
    return tuple((what, os.path.abspath(path), is_dir) for what, path, is_dir in found)


def current_outputs() -> tuple[Output, ...]:
    """The outputs of the request being composed (:func:`writing_to`)."""
    return _OUTPUTS.get()


@contextlib.contextmanager
def writing_to(outputs: Iterable[Output]) -> Iterator[None]:
    """Payloads resolved inside also leave ``outputs`` out (:func:`own_dirs`)."""
    token = _OUTPUTS.set(tuple(outputs))
    try:
        yield
    finally:
        _OUTPUTS.reset(token)


def own_dirs(plugin: str, root: str, outputs: tuple[Output, ...] | None = None) -> tuple[str, ...]:
    """rtbuild's cache and state directories below a payload's ``root``, relative to it,
    and its configured ``outputs`` (:func:`output_paths`; by default those of :func:`writing_to`).

    rtbuild writes there while it serves a request (the staged context, build logs, locks,
    this host's digest key, metrics lines): copied along, the staging directory grew a copy
    of itself on every build (then the payload 'changed while rtbuild was using it', for
    ever), every request rebuilt for the log or metrics line the last one wrote, and the
    digest key reached the image. A payload inside one of them is refused.
    """
    from rtbuild._framework.paths import cache_dir, state_dir

    real_root = os.path.realpath(root)
    found: list[str] = []
    own: list[Output] = [("cache directory", str(cache_dir()), True), ("state directory", str(state_dir()), True)]
    for what, path, is_dir in [*own, *(current_outputs() if outputs is None else outputs)]:
        real = os.path.realpath(path)
        # rtbuild writes below its cache and state directories at any depth; in a log or
        # sbom directory only files of its own (build-*.log): a payload below one is fine.
        nested = what in ("cache directory", "state directory")
        if real_root == real or (nested and real_root.startswith(real + os.sep)):
            env = {"cache directory": "XDG_CACHE_HOME", "state directory": "XDG_STATE_HOME"}.get(what, "it")
            raise ConfigError(
                f"runtime plugin {plugin!r}: source payload {root} is {'' if real_root == real else 'inside '}"
                f"rtbuild's {what} {path}",
                step="hash runtime payload",
                hint=f"rtbuild writes there while it builds; pass another directory, or point {env} elsewhere",
            )
        if real.startswith(real_root.rstrip(os.sep) + os.sep):
            # Made now, not by the build: its parents (the payload's) appearing between
            # the hash and the staging would read as a change of the payload.
            with contextlib.suppress(OSError):
                os.makedirs(real if is_dir else os.path.dirname(real), exist_ok=True)
            found.append(os.path.relpath(real, real_root).replace(os.sep, "/"))
    return tuple(found)


def exclude_patterns(spec: SourcePayload) -> list[str]:
    """``spec.exclude`` cleaned as a ``.dockerignore`` line is (``read_patterns``): ``/logs``
    and ``logs/`` are ``logs``. Taken raw, ``--exclude /logs`` matched no path (every
    relative path lacks the slash) and the directory reached the image. A pattern is never
    a comment here (``#notes`` names a file) and a blank one is dropped."""
    from rtbuild.context import read_patterns

    found: list[str] = []
    for pattern in spec.exclude:
        plain = pattern.startswith("#") or "\n" in pattern or "\r" in pattern
        found += [pattern] if plain else read_patterns(pattern)
    return found


def payload_matcher(spec: SourcePayload, patterns: list[str], own: tuple[str, ...] = ()) -> PatternMatcher:
    """The payload's matcher; a bad ``exclude`` pattern is named as one (not as a line of a
    ``.dockerignore``). Patterns are checked one by one only when compiling them failed."""
    try:
        return _OwnDirsMatcher(patterns, own) if own else PatternMatcher(patterns)
    except BuildContextError:
        for pattern in spec.exclude:
            try:
                PatternMatcher([pattern])
            except BuildContextError as exc:
                raise ConfigError(
                    f"source payload {spec.source!r}: bad exclude pattern {pattern!r}: "
                    + exc.message.rsplit(": ", 1)[-1],
                    step="compose runtime image",
                    hint="fix or drop the --exclude pattern; the syntax is .dockerignore's"
                    " (Go's filepath.Match plus '**')",
                ) from None
        raise  # the .dockerignore's own


__all__ = ["Output", "current_outputs", "exclude_patterns", "output_paths", "own_dirs", "payload_matcher", "writing_to"]
