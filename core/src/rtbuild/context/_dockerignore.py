""".dockerignore parsing and matching, with the semantics of the docker client that sends.

Two flavours, because the client that reads ``.dockerignore`` decides what the engine gets:

- ``"moby20"``: docker clients up to 22.x (Debian's 20.10 included), whose vendored
  ``pkg/fileutils`` turns each pattern into a Go regexp (``**`` is ``(.*/)?`` anywhere, so
  ``**.txt`` excludes only files named ``.txt``) and checks a parent directory only at
  the pattern's own depth (``len(pattern.dirs)`` path components).
- ``"moby23"`` (the default): moby/patternmatcher as in docker 23+ and buildx, with its
  exact/prefix/suffix fast paths (``**.txt`` is a suffix match) and every parent checked.

Matching never backtracks: a wildcard pattern is a small NFA simulated with a lazily built
DFA (memoised per pattern), so a hostile pattern such as ``*a*a*a*a*a*b`` against a long
name costs time linear in the name, like Go's RE2. Python's ``re`` is only used for
bracket classes, one character at a time.

Patterns the chosen flavour turns into regexp syntax rtbuild does not model (a ``+``,
``(``, ``|`` ... that the 20.10 client passes to Go's regexp unescaped, or nested bracket
classes) make :attr:`PatternMatcher.exact` false: the builder then turns its no-op skip
off rather than risk hashing a different file set than the engine receives.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from stat import S_ISDIR, S_ISREG

from rtbuild.context._glob import _CLASS, _DIRS, _DOTSTAR, _LIT, _ONE, _STAR, Automaton
from rtbuild.errors import BuildContextError

FLAVORS = ("moby20", "moby23")
DEFAULT_FLAVOR = "moby23"

#: Characters that are regexp syntax but literal for moby/patternmatcher (shouldEscape);
#: the 20.10 fileutils escaped only "." and "$" and passed the rest to Go's regexp.
_REGEX_META_20 = frozenset("+()|{}^")

_EXACT, _PREFIX, _SUFFIX, _NFA = "exact", "prefix", "suffix", "nfa"
#: What Go's strings.TrimSpace trims (unicode.IsSpace): str.strip() also trims \x1c-\x1f.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
#: Control characters (all but tab): BuildKit sends the patterns in a gRPC header, which
#: cannot carry them (the build fails 'stream terminated by RST_STREAM ... PROTOCOL_ERROR').
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore text, cleaned the way ``ignorefile.ReadAll`` does."""
    patterns: list[str] = []
    text = text.removeprefix("\ufeff")
    # Lines end at "\n" alone (Go's bufio.ScanLines), not at each of str.splitlines' breaks:
    # a file saved with CR line endings is one pattern for the client, not one per line.
    for raw in text.split("\n"):
        # Comments are recognised before trimming, exactly as Docker does.
        if raw.startswith("#"):
            continue
        pattern = raw.strip(_GO_SPACE)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
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
        # O_NONBLOCK: a FIFO there is refused below, not waited on for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        # newline="": a CR stays a CR, as for the docker client (text mode reads it as a line end).
        with open(fd, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if S_ISDIR(mode):
                raise IsADirectoryError(path)
            if not S_ISREG(mode):
                raise not_a_file(path)
            return read_patterns(handle.read())
    except FileNotFoundError:
        return []
    except IsADirectoryError as exc:
        raise BuildContextError(
            f"{path} is a directory, not a file",
            step="read .dockerignore",
            hint="remove or rename that directory: the engine reads .dockerignore as a file of patterns",
        ) from exc
    except OSError as exc:
        raise BuildContextError(
            f"cannot read {path}: {exc.strerror}",
            step="read .dockerignore",
            hint="make it readable by the user running rtbuild (the engine's client reads it too)",
        ) from exc


def not_a_file(path: str) -> BuildContextError:
    """``path`` (a ``.dockerignore``) is a FIFO, socket or device: the engine's client would
    wait on it, or read it, for ever."""
    return BuildContextError(
        f"{path} is not a regular file (a FIFO, socket or device)",
        step="read .dockerignore",
        hint="replace it with a file of patterns, or remove it: the engine's client reads it as a file and"
        " would wait on it for ever",
    )


def _bad(pattern: str, why: str) -> BuildContextError:
    return BuildContextError(
        f"bad .dockerignore pattern {pattern!r}: {why}",
        step="read .dockerignore",
        hint="fix the pattern; the syntax is Go's filepath.Match plus '**'",
    )


def _class_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start`` (Go regexp rules)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is literal
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return -1


def _tokens(pattern: str, flavor: str) -> tuple[list[tuple[int, object]], str, bool]:
    """(tokens, kind, exact) of moby's ``compile`` for one cleaned pattern."""
    tokens: list[tuple[int, object]] = []
    kind = _EXACT
    exact = True
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
                    tokens.append((_DOTSTAR, None))
                    kind = _PREFIX if kind == _EXACT and flavor == "moby23" else _NFA
                else:  # any number of directories, even none
                    tokens.append((_DIRS, None))
                    kind = _NFA
                if position == 0 and flavor == "moby23":
                    kind = _SUFFIX
            else:
                tokens.append((_STAR, None))
                kind = _NFA
        elif ch == "?":
            tokens.append((_ONE, None))
            kind = _NFA
        elif ch == "\\":
            if i < n:
                # Go regexp reads "\d", "\w", "\b"... as classes and anchors: not modelled.
                exact = exact and not pattern[i].isalnum()
                tokens.append((_LIT, pattern[i]))
                i += 1
                # Both clients match an escape as a regexp ("\#x" excludes "#x"), never by
                # comparing the pattern's text: a file named "\#x" is sent.
                kind = _NFA
            else:
                # Both clients check each pattern with filepath.Match first: a bad pattern.
                raise _bad(pattern, "a backslash at the end escapes nothing")
        elif ch == "[":
            end = _class_end(pattern, position)
            if end < 0:
                raise _bad(pattern, "missing closing ]")
            body = pattern[position : end + 1]
            if any(c in body[1:-1] for c in "[*?") or (flavor == "moby20" and "\\" in body):
                exact = False  # a class holding wildcards: not modelled, no skip
            try:
                with warnings.catch_warnings():  # "possible nested set": already marked inexact
                    warnings.simplefilter("ignore", FutureWarning)
                    tokens.append((_CLASS, re.compile(body, re.DOTALL)))
            except re.error as exc:
                raise _bad(pattern, str(exc)) from exc
            i = end + 1
            kind = _NFA
        else:
            if flavor == "moby20" and ch in _REGEX_META_20:
                exact = False  # Go regexp syntax for that client: not modelled, no skip
            tokens.append((_LIT, ch))
    return tokens, kind, exact


@dataclass
class Pattern:
    text: str
    exclusion: bool
    kind: str
    automaton: Automaton | None = None
    #: Path components of the pattern (moby's ``pattern.dirs``), for the 20.10 parent rule.
    depth: int = 1

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
        assert self.automaton is not None
        return self.automaton.match(path)

    def match_parent(self, parent: str) -> bool:
        """``MatchesOrParentMatches`` for a directory: ``parent`` or any directory above it."""
        if self.automaton is not None:
            return self.automaton.match_prefix(parent)
        parts = parent.split("/")
        return any(self.match("/".join(parts[: i + 1])) for i in range(len(parts)))


class PatternMatcher:
    """Decides which context paths (slash-separated, relative) .dockerignore excludes."""

    def __init__(self, patterns: Iterable[str], *, flavor: str = DEFAULT_FLAVOR) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown .dockerignore flavor {flavor!r}")
        self.flavor = flavor
        self.patterns: list[Pattern] = []
        #: False when a pattern uses syntax whose engine-side meaning is not modelled.
        self.exact = True
        for raw in patterns:
            text = raw.strip(_GO_SPACE)
            if not text:
                continue
            if _CONTROL.search(text):
                raise BuildContextError(
                    f"bad .dockerignore pattern {text!r}: it holds a control character",
                    step="read .dockerignore",
                    hint="save .dockerignore with LF or CRLF line endings (the docker client ends a line at LF"
                    " only, so CR line endings make one pattern of the whole file) and remove control characters",
                )
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise BuildContextError(
                        'illegal exclusion pattern: "!"', step="read .dockerignore", hint="remove the lone '!' line"
                    )
                text = text[1:]
            text = posixpath.normpath(text)
            tokens, kind, exact = _tokens(text, flavor)
            self.exact = self.exact and exact
            automaton = Automaton(tokens) if kind == _NFA else None
            self.patterns.append(Pattern(text, exclusion, kind, automaton, len(text.split("/"))))
        self.has_exclusions = any(p.exclusion for p in self.patterns)
        #: A ``!`` pattern that is not a plain path prefix (fsutil's own test): newer fsutil
        #: (docker 23+, buildx) cannot rule out a re-include below an excluded directory,
        #: so it walks every excluded directory.
        self.wild_exceptions = any(
            p.exclusion and any(c in _without_trailing_glob(p.text) for c in "*[]?^\\") for p in self.patterns
        )
        # parent directory -> per pattern, whether the parent rule matches: a walk asks for
        # every entry of a directory with the same parent.
        self._parents: dict[str, list[bool]] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str) -> bool:
        """The last pattern matching the path (or a parent, per flavour) wins."""
        matched = False
        parent = path.rpartition("/")[0]
        parent_hits = self._parent_hits(parent) if parent else None
        for index, pattern in enumerate(self.patterns):
            # An inclusion cannot change an already-excluded path, nor an exclusion a kept one.
            if pattern.exclusion != matched:
                continue
            if (parent_hits is not None and parent_hits[index]) or pattern.match(path):
                matched = not pattern.exclusion
        return matched

    def _parent_hits(self, parent: str) -> list[bool]:
        hits = self._parents.get(parent)
        if hits is not None:
            return hits
        parts = parent.split("/")
        hits = []
        for pattern in self.patterns:
            if self.flavor == "moby20":  # fileutils 20.10: only the parent prefix as deep as the pattern
                hit = pattern.depth <= len(parts) and pattern.match("/".join(parts[: pattern.depth]))
            else:  # patternmatcher: MatchesOrParentMatches, every parent
                hit = pattern.match_parent(parent)
            hits.append(hit)
        if len(self._parents) > 4096:
            self._parents.clear()
        self._parents[parent] = hits
        return hits

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether an excluded directory must still be walked (fsutil's rule).

        fsutil descends into an excluded directory only if some ``!`` pattern's text
        starts with ``directory/``; otherwise the whole directory is skipped. Newer fsutil
        (the 23+ dialect) also descends whenever a ``!`` pattern holds a wildcard. Where
        that is not what the client does, the digest covers files it does not send: a
        rebuild too many, never a stale skip.
        """
        if not self.has_exclusions:
            return False
        if self.wild_exceptions and self.flavor != "moby20":
            return True
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def _without_trailing_glob(text: str) -> str:
    return text.removesuffix("/**").removesuffix("/*")


def flavor_for_client(version: str) -> str:
    """The flavour of a docker client version string ("20.10.24+dfsg1" -> "moby20")."""
    major = version.split(".", 1)[0]
    return "moby20" if major.isdigit() and int(major) < 23 else "moby23"


__all__ = ["FLAVORS", "Pattern", "PatternMatcher", "flavor_for_client", "read_dockerignore", "read_patterns"]
