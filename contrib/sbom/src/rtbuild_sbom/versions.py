"""Version ordering per ecosystem: Debian (python-debian), PyPI (PEP 440, packaging), Alpine (apk rules).

A version that its ecosystem cannot parse has no order: :func:`sort_key` returns ``None``
and the matcher then only trusts exact entries of an OSV ``versions`` list.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Any, Protocol

#: Ecosystem families this plugin orders; an OSV ecosystem "Debian:12" belongs to "Debian".
DEBIAN, UBUNTU, ALPINE, PYPI = "Debian", "Ubuntu", "Alpine", "PyPI"


class Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


def family(ecosystem: str) -> str:
    """``"Debian:12"`` -> ``"Debian"``; ``"PyPI"`` -> ``"PyPI"``."""
    return ecosystem.split(":", 1)[0]


def sort_key(ecosystem: str, version: str) -> Comparable | None:
    """An object ordering ``version`` by the ecosystem's rules, ``None`` if it cannot be parsed."""
    fam = family(ecosystem)
    if fam in (DEBIAN, UBUNTU):  # Ubuntu packages are dpkg packages: same version rules
        from debian.debian_support import Version as DebianVersion

        try:
            return DebianVersion(version)
        except ValueError:
            return None
    if fam == PYPI:
        from packaging.version import InvalidVersion, Version

        try:
            return Version(version)
        except InvalidVersion:
            return None
    if fam == ALPINE:
        return ApkVersion.parse(version)
    return None


# --- Alpine ---------------------------------------------------------------------------------
# apk-tools' order (src/version.c): dotted numbers, an optional letter, suffixes
# (_alpha < _beta < _pre < _rc < none < _cvs < _svn < _git < _hg < _p), then -rN.

_APK = re.compile(
    r"^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:~[0-9a-f]+)?(?:-r(\d+))?$"
)
_SUFFIX_RANK = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_NO_SUFFIX = (4, 0)


@total_ordering
class ApkVersion:
    """An Alpine package version, ordered like ``apk version -t``."""

    def __init__(self, numbers: tuple[int, ...], letter: str, suffixes: tuple[tuple[int, int], ...], rel: int) -> None:
        self.numbers, self.letter, self.suffixes, self.rel = numbers, letter, suffixes, rel

    @classmethod
    def parse(cls, text: str) -> ApkVersion | None:
        match = _APK.match(text.strip())
        if not match:
            return None
        numbers = tuple(int(part) for part in match.group(1).split("."))
        suffixes = tuple(
            (_SUFFIX_RANK[name], int(num or 0))
            for name, num in re.findall(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)", match.group(3))
        )
        return cls(numbers, match.group(2), suffixes, int(match.group(4) or 0))

    def _key(self) -> tuple[Any, ...]:
        # apk compares the first number as an integer and later ones too, except that a
        # component with a leading zero compares as a string; integers cover real releases.
        suffixes = (*self.suffixes, _NO_SUFFIX)  # "no suffix" sorts after pre-releases
        return (self.numbers, self.letter, suffixes, self.rel)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApkVersion) and self._key() == other._key()

    def __lt__(self, other: ApkVersion) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ApkVersion({self.numbers}, {self.letter!r}, {self.suffixes}, r{self.rel})"


__all__ = ["ALPINE", "DEBIAN", "PYPI", "UBUNTU", "ApkVersion", "Comparable", "family", "sort_key"]
