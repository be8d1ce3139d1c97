"""Entry-point scanning with an on-disk cache keyed by what is installed.

``importlib.metadata`` costs 15-20 ms per CLI call (its import, the email parser for
METADATA, a walk over every distribution). The answer only changes when a distribution
is installed, removed or edited, so it is cached under ``$XDG_CACHE_HOME/rtbuild`` keyed by
a fingerprint of ``sys.path``: each directory's mtime and, for each ``*.dist-info`` /
``*.egg-info`` in it, the mtimes of the folder and of its ``entry_points.txt`` (the same
idea as stevedore's entry-point cache). Any mismatch, or an unreadable cache, rescans.
The cache also keeps each settled directory's list of distribution folders, read again only
when the directory's mtime or ctime moves, so a hit lists no directory (about 1 ms a call).

Each ``sys.path`` has its own cache file (named by a hash of the resolved path and the
Python version): the ``rtbuild`` script, ``python -m rtbuild`` and a service using the API
see different ``sys.path[0]``, and one shared file would make each rescan whenever another
ran last. At most :data:`MAX_FILES` are kept; a rescan removes the least recently written.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from stat import S_ISDIR
from typing import Any

import xxhash

from rtbuild._framework.atomic import read_file, try_atomic_write
from rtbuild._framework.paths import cache_dir, keep_newest

#: The groups rtbuild reads; one scan fills the cache for all of them.
GROUPS = ("rtbuild.builders", "rtbuild.plugins")
#: Entry points of a group rtbuild does not read whose name says it was meant for rtbuild
#: (``rtbuild.plugin``, ``rtbuild_builders``): kept under this key, never loaded, so the
#: typo can be warned about instead of leaving a plugin silently absent.
MISFILED = "rtbuild?"
CACHE_VERSION = 3
#: Cache files kept (one per distinct ``sys.path``); a rescan removes older ones.
MAX_FILES = 16
_PREFIX = "entry-points-"
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


def cache_path(path: Sequence[str] | None = None) -> str:
    """The cache file for ``path`` (default ``sys.path``)."""
    resolved = [_listing_key(entry or ".") for entry in (sys.path if path is None else path)]
    name = xxhash.xxh3_64_hexdigest("\0".join([sys.version, *resolved]).encode("utf-8", "surrogateescape"))
    return str(cache_dir(f"{_PREFIX}{name}.json"))


def _drop_old_files(keep: str) -> None:
    """Keep the newest :data:`MAX_FILES` cache files (``keep`` among them); remove the
    single file of earlier versions. Runs only after a rescan, never on a hit."""
    keep_newest(
        os.path.dirname(keep),
        keep=MAX_FILES - 1,
        spare=keep,
        select=lambda name: name.startswith(_PREFIX) and name.endswith(".json"),
    )
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(os.path.dirname(keep), "entry-points.json"))


#: A directory whose mtime and ctime are this much older than a scan has settled: a later
#: change to it moves one of them (the kernel's file clock is coarse, so a change in the same
#: tick as the scan might not).
_RACY_NS = 2_000_000_000
_INFO_SUFFIXES = (".dist-info", ".egg-info")


def _infos(where: str, st: os.stat_result, known: Mapping[str, Any]) -> list[str]:
    """The distribution folders in ``where``: the listing recorded by the last scan while the
    directory's mtime and ctime are unchanged (adding, removing or renaming an entry moves
    both, and ctime cannot be set back), else read again."""
    hit = known.get(_listing_key(where))
    if isinstance(hit, list) and len(hit) == 3 and hit[0] == st.st_mtime_ns and hit[1] == st.st_ctime_ns:
        return [str(name) for name in hit[2]]
    with os.scandir(where) as scanner:
        return sorted(e.name for e in scanner if e.name.endswith(_INFO_SUFFIXES))


def _listing_key(where: str) -> str:
    # "" on sys.path is the working directory, which differs between runs.
    return where if os.path.isabs(where) else os.path.abspath(where)


def fingerprint(path: Sequence[str], known: Mapping[str, Any] | None = None) -> tuple[list[Any], dict[str, Any]]:
    """What the scan depends on (every path entry's and every distribution's mtimes), and the
    settled directories' listings to pass back as ``known`` next time (saves their reads)."""
    parts: list[Any] = [sys.version]
    listings: dict[str, Any] = {}
    settled_before = time.time_ns() - _RACY_NS
    for entry in path:
        where = entry or "."
        try:
            st = os.stat(where)
            parts.append([entry, st.st_mtime_ns])
            if not S_ISDIR(st.st_mode):
                continue
            infos = _infos(where, st, known or {})
        except OSError:
            parts.append([entry, None])
            continue
        if max(st.st_mtime_ns, st.st_ctime_ns) < settled_before:
            listings[_listing_key(where)] = [st.st_mtime_ns, st.st_ctime_ns, infos]
        for name in infos:
            folder = f"{where}/{name}"
            try:
                eps: int | None = os.stat(f"{folder}/entry_points.txt").st_mtime_ns
            except OSError:
                eps = None
            try:
                parts.append([name, os.stat(folder).st_mtime_ns, eps])
            except OSError:
                continue
    return parts, listings


def _scan_metadata(path: Sequence[str] | None) -> dict[str, list[EntryPointInfo]]:
    from importlib import metadata

    out: dict[str, list[EntryPointInfo]] = {group: [] for group in (*GROUPS, MISFILED)}
    if path is None:
        # entry_points() keeps the first of same-named distributions on sys.path; one call
        # reads every distribution's entry points (as each group-filtered call did).
        found = metadata.entry_points()
        wanted = sorted(g for g in found.groups if g in GROUPS or _meant_for_rtbuild(g))
        eps: list[metadata.EntryPoint] = [ep for group in wanted for ep in found.select(group=group)]
    else:
        eps = [ep for dist in metadata.distributions(path=list(path)) for ep in dist.entry_points]
    for ep in eps:
        key = ep.group if ep.group in GROUPS else MISFILED if _meant_for_rtbuild(ep.group) else None
        if key is None:
            continue
        dist = getattr(ep, "dist", None)
        out[key].append(
            EntryPointInfo(
                ep.name, ep.value, ep.group, dist.name if dist is not None else None, dist.version if dist else None
            )
        )
    return out


def _meant_for_rtbuild(group: str) -> bool:
    return group.lower().replace("_", ".").replace("-", ".").startswith("rtbuild")


def _read_cache(file: str) -> dict[str, Any]:
    try:
        data = json.loads(read_file(file))  # a FIFO in its place is not waited on
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}


def _cached_groups(data: Mapping[str, Any], key: list[Any]) -> dict[str, list[EntryPointInfo]] | None:
    if data.get("key") != key:
        return None
    try:
        return {group: [EntryPointInfo(*item) for item in data["groups"][group]] for group in (*GROUPS, MISFILED)}
    except (KeyError, TypeError):
        return None


def _write_cache(file: str, key: list[Any], groups: dict[str, list[EntryPointInfo]], listings: dict[str, Any]) -> None:
    payload = {
        "version": CACHE_VERSION,
        "key": key,
        "listings": listings,
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
    file = cache_path()
    data = _read_cache(file)
    known = data.get("listings")
    parts, listings = fingerprint(sys.path, known if isinstance(known, dict) else None)
    # JSON turns tuples into lists: build the key as lists so a fresh key equals a read one.
    key = json.loads(json.dumps(parts))
    cached = _cached_groups(data, key)
    if cached is not None:
        if listings != known:  # a directory settled since: record its listing once
            _write_cache(file, key, cached, listings)
        return cached
    groups = _scan_metadata(None)
    _write_cache(file, key, groups, listings)
    _drop_old_files(file)
    return groups


__all__ = ["GROUPS", "MAX_FILES", "MISFILED", "EntryPointInfo", "cache_path", "fingerprint", "scan"]
