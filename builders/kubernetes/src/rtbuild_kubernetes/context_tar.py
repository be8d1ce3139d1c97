"""The build context as a tar file: the same .dockerignore-filtered file list as the Docker
backend (``rtbuild.context``), written to a temporary file (never held in memory), with its
size (the exec upload's byte-count guard) and sha256 (the registry transport's blob digest).

Entries are sorted, owned by 0:0 and carry no user names, so an unchanged context gives the
same bytes and digest again and the registry upload is skipped.

The tar (mode 0600) lies in a directory of its own under ``$TMPDIR``, claimed for this process
(:func:`rtbuild.enginekit.claim_directory`): what an rtbuild killed mid-build (``kill -9``)
left there is swept at the start of a later build (:func:`sweep_context_tars`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass

from rtbuild import BuildContextError, get_reporter
from rtbuild.context import PatternMatcher, hash_context, read_dockerignore


@dataclass
class ContextTar:
    path: str
    size: int
    digest: str  # sha256:...
    files: int

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if os.path.basename(os.path.dirname(self.path)).startswith(PREFIX):
            shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


#: The name of each build's temp directory (and, before it, of the tar file itself).
PREFIX = "rtbuild-k8s-context-"
#: A leftover is swept once this old (and its owner gone): a build's tar lives as long as it runs.
SWEEP_AGE_S = 3600.0
#: A bare tar of an older rtbuild names no owner: swept at this age.
UNOWNED_SWEEP_AGE_S = 86400.0


def _unowned_tar(name: str, info: os.stat_result) -> bool:
    """A bare tar an older rtbuild (of this user) wrote, before the tars had directories."""
    return stat.S_ISREG(info.st_mode) and name.endswith(".tar") and info.st_uid == os.getuid()


def sweep_context_tars(directory: str | None = None) -> list[str]:
    """Remove the context tars that rtbuild processes which are gone (killed) left under
    ``directory`` ($TMPDIR): each build's directory older than :data:`SWEEP_AGE_S` whose
    owner record names a process that is gone, and a bare ``rtbuild-k8s-context-*.tar`` of
    an older rtbuild (no owner) older than :data:`UNOWNED_SWEEP_AGE_S` (this user's only).
    One directory listing when there is nothing to do; a ``leftovers_removed`` event names
    what was removed."""
    from rtbuild.enginekit import dead_owner_note

    swept: list[str] = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(directory or tempfile.gettempdir()) as listing:
        for entry in listing:
            if not entry.name.startswith(PREFIX):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                age = now - info.st_mtime
                if stat.S_ISDIR(info.st_mode) and age > SWEEP_AGE_S and dead_owner_note(entry.path) is not None:
                    shutil.rmtree(entry.path)
                    swept.append(entry.path)
                elif _unowned_tar(entry.name, info) and age > UNOWNED_SWEEP_AGE_S:
                    os.unlink(entry.path)
                    swept.append(entry.path)
    if swept:
        get_reporter().event(
            "leftovers_removed",
            paths=swept,
            message=f"removed the build context tars of {len(swept)} killed rtbuild run(s): {', '.join(swept)}",
        )
    return swept


def context_paths(root: str, dockerfile: str | None = None) -> list[tuple[str, str]]:
    """``(relative path, kind)`` of everything the engine would receive, Dockerfile and
    .dockerignore included (Docker always sends them)."""
    result = hash_context(root, PatternMatcher(read_dockerignore(root)), collect_paths=True)
    paths = list(result.paths or [])
    have = {rel for rel, _ in paths}
    for always in (dockerfile or "Dockerfile", ".dockerignore"):
        if always not in have and os.path.isfile(os.path.join(root, always)):
            paths.append((always, "f"))
    return sorted(paths)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_context_tar(root: str, dockerfile: str | None = None, directory: str | None = None) -> ContextTar:
    """Write the context's tar to a temporary file and return its size and digest."""
    from rtbuild.enginekit import claim_directory

    holder = tempfile.mkdtemp(prefix=PREFIX, dir=directory)
    try:
        claim_directory(holder)
        path = os.path.join(holder, "context.tar")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        raise
    hasher = hashlib.sha256()
    count = 0
    try:
        with os.fdopen(fd, "wb") as raw:

            class _Hashing:
                def write(self, data: bytes) -> int:
                    hasher.update(data)
                    return raw.write(data)

            with tarfile.open(fileobj=_Hashing(), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for rel, _kind in context_paths(root, dockerfile):
                    full = os.path.join(root, rel)
                    info = _normalise(tar.gettarinfo(full, arcname=rel))
                    if stat.S_ISREG(os.lstat(full).st_mode):
                        with open(full, "rb") as handle:
                            tar.addfile(info, handle)
                        count += 1
                    elif info.isdir() or info.issym() or info.islnk():
                        tar.addfile(info)
        size = os.path.getsize(path)
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        raise
    return ContextTar(path=path, size=size, digest="sha256:" + hasher.hexdigest(), files=count)


__all__ = ["PREFIX", "ContextTar", "context_paths", "sweep_context_tars", "write_context_tar"]


_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([-+]?[0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")
_SCALE = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SCALE.update({f"{s}i": float(2 ** (10 * n)) for n, s in enumerate("KMGTPE", start=1)})


def quantity_bytes(text: str) -> float | None:
    """A Kubernetes quantity (``20Gi``, ``5G``, ``1e9``) in bytes; ``None`` when unreadable."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    return float(number) * 10.0 ** int(exponent or 0) * _SCALE[suffix or ""]


def check_fits_workspace(tar: ContextTar, limit: str | None) -> None:
    """A context larger than the pod's workspace (its ``emptyDir`` ``sizeLimit``, from
    ``limits.ephemeral-storage``) fails before any Job is created: uploaded, it would fill the
    workspace and the kubelet would evict the pod, after a transfer of all of it."""
    size_limit = quantity_bytes(limit) if limit else None
    if size_limit is None or tar.size <= size_limit:
        return
    raise BuildContextError(
        f"the build context is {tar.size / 2**20:.1f} MiB ({tar.files} files), more than the build pod's "
        f"workspace holds (limits.ephemeral-storage = {limit})",
        step="upload context",
        hint="leave large files out with .dockerignore, or raise limits.ephemeral-storage in the kubernetes "
        "builder's settings",
    )
