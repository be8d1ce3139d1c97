"""Entry-point scanning with an on-disk cache keyed by what is installed.

``importlib.metadata`` costs 15-20 ms per CLI call (its import, the email parser for
METADATA, a walk over every distribution). The answer only changes when a distribution
is installed, removed or edited, so it is cached under ``$XDG_CACHE_HOME/rtbuild`` keyed by
a fingerprint of ``sys.path``: each directory's mtime and, for each ``*.dist-info`` /
``*.egg-info`` in it, the mtimes of the folder and of its ``entry_points.txt`` (the same
idea as stevedore's entry-point cache). Any mismatch, or an unreadable cache, rescans.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtbuild._framework.atomic import try_atomic_write
from rtbuild._framework.paths import cache_dir

#: The groups rtbuild reads; one scan fills the cache for all of them.
GROUPS = ("rtbuild.builders", "rtbuild.plugins")
CACHE_VERSION = 1
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@dataclass(frozen=True)
class EntryPointInfo:
    """An entry point with its distribution's name and version; ``load()`` imports it."""

    name: str
    value: str
    group: str
    distribution: str | None
    version: str | None

    def load(self) -> Any:
        # The same resolution as importlib.metadata.EntryPoint.load, without importing it.
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        target: Any = importlib.import_module(match.group("module"))
        for part in filter(None, (match.group("attr") or "").split(".")):
            target = getattr(target, part)
        return target


def cache_path() -> str:
    return str(cache_dir("entry-points.json"))


def fingerprint(path: Sequence[str]) -> list[Any]:
    """What the scan depends on: every path entry's and every distribution's mtimes."""
    parts: list[Any] = [sys.version]
    for entry in path:
        try:
            parts.append([entry, os.stat(entry or ".").st_mtime_ns])
            if not os.path.isdir(entry or "."):
                continue
            with os.scandir(entry or ".") as scanner:
                infos = sorted(e.name for e in scanner if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            parts.append([entry, None])
            continue
        for name in infos:
            folder = os.path.join(entry or ".", name)
            try:
                eps: int | None = os.stat(os.path.join(folder, "entry_points.txt")).st_mtime_ns
            except OSError:
                eps = None
            try:
                parts.append([name, os.stat(folder).st_mtime_ns, eps])
            except OSError:
                continue
    return parts


def _scan_metadata(path: Sequence[str] | None) -> dict[str, list[EntryPointInfo]]:
    from importlib import metadata

    out: dict[str, list[EntryPointInfo]] = {group: [] for group in GROUPS}
    if path is None:
        # entry_points() keeps the first of same-named distributions on sys.path.
        eps: list[metadata.EntryPoint] = [ep for group in GROUPS for ep in metadata.entry_points(group=group)]
    else:
        eps = [ep for dist in metadata.distributions(path=list(path)) for ep in dist.entry_points]
    for ep in eps:
        if ep.group not in out:
            continue
        dist = getattr(ep, "dist", None)
        out[ep.group].append(
            EntryPointInfo(
                ep.name, ep.value, ep.group, dist.name if dist is not None else None, dist.version if dist else None
            )
        )
    return out


def _read_cache(file: str, key: list[Any]) -> dict[str, list[EntryPointInfo]] | None:
    try:
        with open(file, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("version") != CACHE_VERSION or data.get("key") != key:
            return None
        return {group: [EntryPointInfo(*item) for item in data["groups"][group]] for group in GROUPS}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(file: str, key: list[Any], groups: dict[str, list[EntryPointInfo]]) -> None:
    payload = {
        "version": CACHE_VERSION,
        "key": key,
        "groups": {
            group: [[i.name, i.value, i.group, i.distribution, i.version] for i in items]
            for group, items in groups.items()
        },
    }
    # The cache only saves time; an unwritable cache dir costs a rescan.
    try_atomic_write(file, json.dumps(payload))


def scan(search_path: Sequence[str] | None = None, *, use_cache: bool = True) -> dict[str, list[EntryPointInfo]]:
    """Entry points of :data:`GROUPS` on ``search_path`` (default ``sys.path``, cached)."""
    if search_path is not None or not use_cache or os.environ.get("RTBUILD_NO_ENTRY_POINT_CACHE"):
        return _scan_metadata(search_path)
    # JSON turns tuples into lists: build the key as lists so a fresh key equals a read one.
    key = json.loads(json.dumps(fingerprint(sys.path)))
    file = cache_path()
    cached = _read_cache(file, key)
    if cached is not None:
        return cached
    groups = _scan_metadata(None)
    _write_cache(file, key, groups)
    return groups


__all__ = ["GROUPS", "EntryPointInfo", "cache_path", "fingerprint", "scan"]
