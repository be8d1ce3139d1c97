""".dockerignore parsing and matching, with the semantics of Docker's own matcher.

Follows moby/patternmatcher (``ignorefile.ReadAll`` and ``PatternMatcher``) as used by
the docker CLI and BuildKit's fsutil: Go ``filepath.Match``-like patterns plus ``**``,
``!`` exceptions where the last matching pattern wins, a pattern that matches a parent
directory excludes everything below it, and a leading ``/`` is stripped.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtbuild.errors import BuildContextError

#: Characters that are regexp syntax but literal in filepath.Match (moby's shouldEscape).
_ESCAPE = frozenset(".+()|{}$")

_EXACT, _PREFIX, _SUFFIX, _REGEXP = "exact", "prefix", "suffix", "regexp"


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore text, cleaned the way ``ignorefile.ReadAll`` does."""
    patterns: list[str] = []
    text = text.removeprefix("\ufeff")
    for raw in text.splitlines():
        # Comments are recognised before trimming, exactly as Docker does.
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            # Go's filepath.Clean keeps at most one leading slash; posix normpath keeps two.
            if pattern.startswith("//"):
                pattern = "/" + pattern.lstrip("/")
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def read_dockerignore(context_dir: str) -> list[str]:
    """Patterns from ``CONTEXT/.dockerignore`` (empty when there is none)."""
    path = os.path.join(context_dir, ".dockerignore")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return read_patterns(handle.read())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BuildContextError(f"cannot read {path}: {exc.strerror}", step="read .dockerignore") from exc


def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """moby's ``Pattern.compile``: the match kind and, for wildcard patterns, a regexp."""
    out = ["^"]
    kind = _EXACT
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        position = i
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is treated as "**"
                    i += 1
                if i >= n:  # "**" at the end accepts everything below
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        out.append(".*")
                        kind = _REGEXP
                else:  # any number of directories, even none
                    out.append("(.*/)?")
                    kind = _REGEXP
                if position == 0:
                    kind = _SUFFIX
            else:
                out.append("[^/]*")
                kind = _REGEXP
        elif ch == "?":
            out.append("[^/]")
            kind = _REGEXP
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = _REGEXP
        else:
            out.append(ch)
    if kind != _REGEXP:
        return kind, None
    out.append("$")
    try:
        return kind, re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise BuildContextError(
            f"bad .dockerignore pattern {pattern!r}: {exc}",
            step="read .dockerignore",
            hint="fix the pattern; the syntax is Go's filepath.Match plus '**'",
        ) from exc


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    kind: str
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        """moby's ``Pattern.match`` for one slash-separated relative path."""
        if self.kind == _EXACT:
            return path == self.text
        if self.kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


class PatternMatcher:
    """Decides which context paths (slash-separated, relative) .dockerignore excludes."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise BuildContextError(
                        'illegal exclusion pattern: "!"', step="read .dockerignore", hint="remove the lone '!' line"
                    )
                text = text[1:]
            text = posixpath.normpath(text)
            kind, regex = _compile(text)
            self.patterns.append(Pattern(text, exclusion, kind, regex))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str) -> bool:
        """``MatchesOrParentMatches``: the last pattern matching the path or a parent wins."""
        matched = False
        parent = posixpath.dirname(path)
        parents: Sequence[str] = ()
        if parent:
            parts = parent.split("/")
            parents = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in self.patterns:
            # An inclusion cannot change an already-excluded path, nor an exclusion a kept one.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path) or any(pattern.match(p) for p in parents)
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether an excluded directory must still be walked (fsutil's rule).

        fsutil descends into an excluded directory only if some ``!`` pattern's text
        starts with ``directory/``; otherwise the whole directory is skipped.
        """
        if not self.has_exclusions:
            return False
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


__all__ = ["Pattern", "PatternMatcher", "read_dockerignore", "read_patterns"]
