"""An offline OSV database (a directory or zip of OSV JSON records) and matching against it.

Matching follows the OSV schema's evaluation: an ``affected`` entry names a package in an
ecosystem; the package is affected when its version is listed in ``versions`` or falls in
one of the ``ranges`` (``ECOSYSTEM`` or ``SEMVER``; ``GIT`` ranges name commits and are
ignored), evaluating the events sorted by version: ``introduced`` turns "affected" on,
``fixed`` (at or above) and ``last_affected`` (above) turn it off.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inventory import Package
from .osv_store import OsvDatabaseError
from .severity import record_severity
from .versions import PYPI, Comparable, family, sort_key


@dataclass(frozen=True)
class Finding:
    """One package affected by one OSV record."""

    id: str
    package: str  # the installed name
    osv_name: str  # the name the record uses (Debian: the source package)
    ecosystem: str
    installed: str
    fixed: str | None  # the first fixed version above the installed one; None: no fix known
    severity: str  # low | medium | high | critical | unknown
    score: float | None
    summary: str
    aliases: tuple[str, ...]
    purl: str

    def line(self) -> str:
        fixed = self.fixed or "no fix yet"
        name = self.package if self.osv_name == self.package else f"{self.package} (source {self.osv_name})"
        return f"{self.id} [{self.severity}] {name} {self.installed} -> fixed in {fixed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "package": self.package,
            "osv_name": self.osv_name,
            "ecosystem": self.ecosystem,
            "installed": self.installed,
            "fixed": self.fixed,
            "severity": self.severity,
            "score": self.score,
            "summary": self.summary,
            "aliases": list(self.aliases),
            "purl": self.purl,
        }


def _norm(fam: str, name: str) -> str:
    if fam == PYPI:
        from packaging.utils import canonicalize_name

        return str(canonicalize_name(name))
    return name


def index_key(fam: str, name: str) -> str:
    """``Debian/glibc``, ``PyPI/foo-bar``: how the index names a package."""
    return f"{fam}/{_norm(fam, name)}"


class OsvDatabase:
    """Records indexed by (ecosystem family, package name)."""

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.by_package: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
        self.count = 0
        for record in records:
            if not isinstance(record, dict) or record.get("withdrawn"):
                continue
            self.count += 1
            for entry in record.get("affected") or []:
                pkg = entry.get("package") if isinstance(entry, dict) else None
                if not isinstance(pkg, dict) or not pkg.get("name") or not pkg.get("ecosystem"):
                    continue
                fam = family(str(pkg["ecosystem"]))
                self.by_package[(fam, _norm(fam, str(pkg["name"])))].append((record, entry))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        index_dir: Path | None = None,
        packages: Iterable[Package] | None = None,
    ) -> OsvDatabase:
        """Every record of ``path``; with ``index_dir`` and ``packages``, only the records
        that name one of those packages, found through an index kept in ``index_dir``."""
        from .osv_store import load_index, no_records, read_records

        if index_dir is None or packages is None:
            whole = cls(read_records(Path(path)))
            if not whole.count:
                raise no_records(Path(path))
            return whole
        index = load_index(Path(path), index_dir)
        if not index.total:
            raise no_records(Path(path))
        keys = {index_key(family(p.ecosystem), p.osv_name) for p in packages}
        members = {member for key in keys for member in index.members.get(key, [])}
        database = cls(read_records(Path(path), members))
        database.count = index.total
        return database

    def match(self, packages: Iterable[Package]) -> list[Finding]:
        findings = []
        for package in packages:
            fam = family(package.ecosystem)
            for record, entry in self.by_package.get((fam, _norm(fam, package.osv_name)), []):
                if not _same_ecosystem(str(entry["package"]["ecosystem"]), package.ecosystem):
                    continue
                hit, fixed = affects(entry, package.ecosystem, package.osv_version)
                if hit:
                    level, score = record_severity(record, entry)
                    findings.append(
                        Finding(
                            id=str(record.get("id", "?")),
                            package=package.name,
                            osv_name=package.osv_name,
                            ecosystem=package.ecosystem,
                            installed=package.osv_version,
                            fixed=fixed,
                            severity=level,
                            score=score,
                            summary=str(record.get("summary") or record.get("details") or "")[:200],
                            aliases=tuple(str(a) for a in record.get("aliases") or []),
                            purl=package.purl,
                        )
                    )
        return sorted(set(findings), key=lambda f: (f.package, f.id))


def _same_ecosystem(record_eco: str, package_eco: str) -> bool:
    # "Debian" (no release) in a record applies to every release; a package whose image
    # had no readable release ("Debian") is checked against every release's records.
    # Ubuntu's records add a suffix ("Ubuntu:22.04:LTS"); "Ubuntu:Pro:..." needs a
    # subscription's packages, which an image's release does not say, so it never matches.
    if family(record_eco) != family(package_eco):
        return False
    if ":" not in record_eco or ":" not in package_eco or record_eco == package_eco:
        return True
    return record_eco.startswith(package_eco + ":")


def affects(entry: dict[str, Any], ecosystem: str, version: str) -> tuple[bool, str | None]:
    """Whether ``version`` is affected by one OSV ``affected`` entry, and the fix above it."""
    listed = version in {str(v) for v in entry.get("versions") or []}
    key = sort_key(ecosystem, version)
    hit_fixed: list[tuple[Comparable, str]] = []
    in_range = False
    for rng in entry.get("ranges") or []:
        if not isinstance(rng, dict) or rng.get("type") not in ("ECOSYSTEM", "SEMVER") or key is None:
            continue
        result = _in_range(key, ecosystem, rng.get("events") or [])
        if result is None:
            continue
        affected, fixes = result
        if affected:
            in_range = True
            hit_fixed += [(fk, fv) for fk, fv in fixes if key < fk]
    if not (listed or in_range):
        return False, None
    return True, min(hit_fixed, key=lambda pair: pair[0])[1] if hit_fixed else None


def _in_range(key: Comparable, ecosystem: str, events: list[Any]) -> tuple[bool, list[tuple[Comparable, str]]] | None:
    parsed: list[tuple[int, Comparable | None, str, str]] = []
    for event in events:
        if not isinstance(event, dict) or not event:
            continue
        kind, value = next(iter(event.items()))
        if kind not in ("introduced", "fixed", "last_affected"):
            continue  # "limit" only bounds GIT ranges
        value = str(value)
        if kind == "introduced" and value == "0":
            parsed.append((0, None, kind, value))  # "0": before every version
            continue
        event_key = sort_key(ecosystem, value)
        if event_key is None:
            return None  # an event we cannot order: this range cannot be evaluated honestly
        parsed.append((1, event_key, kind, value))
    parsed.sort(key=_EventOrder)
    affected = False
    for _, event_key, kind, _value in parsed:
        if event_key is None:  # introduced "0"
            affected = True
        elif kind == "introduced":
            affected = affected or not key < event_key
        elif kind == "fixed":
            affected = affected and key < event_key
        else:  # last_affected: still affected at that version, not above it
            affected = affected and not event_key < key
    fixes = [(k, v) for _, k, kind, v in parsed if kind == "fixed" and k is not None]
    return affected, fixes


class _EventOrder:
    """Sort key for events: "introduced: 0" first, then by version (versions are not tuples)."""

    def __init__(self, item: tuple[int, Comparable | None, str, str]) -> None:
        self.item = item

    def __lt__(self, other: _EventOrder) -> bool:
        (a_rank, a_key, _, _), (b_rank, b_key, _, _) = self.item, other.item
        if a_rank != b_rank:
            return a_rank < b_rank
        return a_key is not None and b_key is not None and a_key < b_key


__all__ = ["Finding", "OsvDatabase", "OsvDatabaseError", "affects", "index_key"]
