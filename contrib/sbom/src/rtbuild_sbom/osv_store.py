"""An OSV database on disk (a directory or zip of JSON records) and its package index.

A full Debian archive holds tens of thousands of records, and parsing them all costs
seconds (60,000 synthetic records in a 25 MB zip: 8.4 s here). So the first scan with a
database writes an index, package -> the files naming it, keyed by the database's
signature (zip: size and mtime; directory: every JSON file's path, size and mtime);
later scans parse only the records of the packages an image holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zipfile
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rtbuild

INDEX_VERSION = 1


class OsvDatabaseError(rtbuild.ConfigError):
    """The configured OSV database is missing or unreadable."""


@dataclass
class Index:
    total: int  # records, withdrawn ones excluded
    members: dict[str, list[str]]  # "Debian/glibc" -> files (or zip members) naming it


def _missing(path: Path) -> OsvDatabaseError:
    what = "is neither a directory nor a zip file" if path.exists() else "does not exist"
    return OsvDatabaseError(
        f"sbom: the OSV database {str(path)!r} {what}",
        step="sbom scan",
        hint="set [plugins.sbom] osv_db (or --osv-db) to a directory of OSV JSON records or a zip of them"
        " (e.g. an ecosystem's all.zip from the OSV project, downloaded beforehand)",
    )


def _members(path: Path, only: Collection[str] | None = None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(member name, reader) for every JSON file of the database, or only the named ones."""
    if path.is_dir():
        names = (
            sorted(only) if only is not None else sorted(str(file.relative_to(path)) for file in path.rglob("*.json"))
        )
        for name in names:
            yield name, (path / name).read_bytes
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = sorted(only) if only is not None else [n for n in archive.namelist() if n.endswith(".json")]
            for name in names:
                yield name, lambda name=name: archive.read(name)  # type: ignore[misc]
    else:
        raise _missing(path)


def no_records(path: Path) -> OsvDatabaseError:
    """A database holding no record would pass every scan: a wrong path, or the archives
    of a directory not unpacked (OSV ships ``<Ecosystem>/all.zip``), never "no findings"."""
    zips = sorted(str(file.relative_to(path)) for file in path.rglob("*.zip")) if path.is_dir() else []
    hint = (
        f"unpack the zip files in it ({', '.join(zips[:3])}{', ...' if len(zips) > 3 else ''}) there,"
        " or point [plugins.sbom] osv_db (or --osv-db) at one of them"
        if zips
        else "point [plugins.sbom] osv_db (or --osv-db) at a directory of OSV JSON records or a zip of them"
    )
    return OsvDatabaseError(
        f"sbom: the OSV database {str(path)!r} holds no OSV records: a scan against it would find nothing",
        step="sbom scan",
        hint=hint,
    )


def _parse(data: bytes, where: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise OsvDatabaseError(f"sbom: {where} is not valid JSON: {exc}", step="sbom scan") from exc
    # A file may hold one record or a list of them.
    return [record for record in (value if isinstance(value, list) else [value]) if isinstance(record, dict)]


def read_records(path: Path, only: Collection[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the database (or of the ``only`` members)."""
    for name, read in _members(path, only):
        yield from _parse(read(), f"{path}:{name}")


def signature(path: Path) -> str:
    """Changes whenever the database's content may have changed."""
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.rglob("*.json")):
            st = file.stat()
            digest.update(f"{file.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "dir:" + digest.hexdigest()
    if path.is_file():
        st = path.stat()
        return f"file:{st.st_size}:{st.st_mtime_ns}"
    raise _missing(path)


def build_index(path: Path) -> Index:
    from .osv import index_key
    from .versions import family

    members: dict[str, set[str]] = defaultdict(set)
    total = 0
    for name, read in _members(path):
        for record in _parse(read(), f"{path}:{name}"):
            if record.get("withdrawn"):
                continue
            total += 1
            for entry in record.get("affected") or []:
                pkg = entry.get("package") if isinstance(entry, dict) else None
                if isinstance(pkg, dict) and pkg.get("name") and pkg.get("ecosystem"):
                    members[index_key(family(str(pkg["ecosystem"])), str(pkg["name"]))].add(name)
    return Index(total, {key: sorted(names) for key, names in members.items()})


def load_index(path: Path, index_dir: Path) -> Index:
    """The database's index from ``index_dir``, rebuilt (and stored) when the database changed."""
    path = path.resolve()
    sig = signature(path)
    file = index_dir / f"osv-index-{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.json"
    try:
        stored = json.loads(file.read_bytes())
        if stored.get("version") == INDEX_VERSION and stored.get("signature") == sig:
            return Index(int(stored["total"]), dict(stored["members"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent or damaged: rebuild
    index = build_index(path)
    payload = {"version": INDEX_VERSION, "signature": sig, "database": str(path), "total": index.total}
    # The index is a cache: a store that cannot be written only costs the next scan time.
    with contextlib.suppress(OSError):
        rtbuild.atomic_write(file, json.dumps({**payload, "members": index.members}, separators=(",", ":")))
    return index


__all__ = ["Index", "OsvDatabaseError", "build_index", "load_index", "no_records", "read_records", "signature"]
