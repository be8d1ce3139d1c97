"""The build context as a tar file: the same .dockerignore-filtered file list as the Docker
backend (``rtbuild.context``), written to a temporary file (never held in memory), with its
size (the exec upload's byte-count guard) and sha256 (the registry transport's blob digest).

Entries are sorted, owned by 0:0 and carry no user names, so an unchanged context gives the
same bytes and digest again and the registry upload is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass

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
    fd, path = tempfile.mkstemp(prefix="rtbuild-k8s-context-", suffix=".tar", dir=directory)
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
        os.unlink(path)
        raise
    return ContextTar(path=path, size=size, digest="sha256:" + hasher.hexdigest(), files=count)


__all__ = ["ContextTar", "context_paths", "write_context_tar"]
