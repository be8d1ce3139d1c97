"""Which paths of a source payload are left out: its patterns, and rtbuild's own directories."""

from __future__ import annotations

import contextlib
import os

from rtbuild.context import PatternMatcher
from rtbuild.errors import BuildContextError, ConfigError
from rtbuild.runtime._plugin import SourcePayload


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


def own_dirs(plugin: str, root: str) -> tuple[str, ...]:
    """rtbuild's cache and state directories below a payload's ``root``, relative to it.

    rtbuild writes there while it serves a request (the staged context, build logs, locks,
    this host's digest key): copied along, the staging directory grew a copy of itself on
    every build (then the payload 'changed while rtbuild was using it', for ever), every
    request rebuilt for the log the last one wrote, and the digest key reached the image.
    A payload inside one of them is refused.
    """
    from rtbuild._framework.paths import cache_dir, state_dir

    real_root = os.path.realpath(root)
    found: list[str] = []
    for kind, own in (("cache", cache_dir()), ("state", state_dir())):
        real = os.path.realpath(own)
        if real_root == real or real_root.startswith(real + os.sep):
            raise ConfigError(
                f"runtime plugin {plugin!r}: source payload {root} is inside rtbuild's {kind} directory {own}",
                step="hash runtime payload",
                hint="rtbuild writes there while it builds; pass another directory, or point"
                f" {'XDG_CACHE_HOME' if kind == 'cache' else 'XDG_STATE_HOME'} elsewhere",
            )
        if real.startswith(real_root.rstrip(os.sep) + os.sep):
            # Made now, not by the build: its parents (the payload's) appearing between
            # the hash and the staging would read as a change of the payload.
            with contextlib.suppress(OSError):
                os.makedirs(real, exist_ok=True)
            found.append(os.path.relpath(real, real_root).replace(os.sep, "/"))
    return tuple(found)


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


__all__ = ["own_dirs", "payload_matcher"]
