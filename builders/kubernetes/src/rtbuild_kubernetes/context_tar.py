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
import re
import stat
import tarfile
import tempfile
from dataclasses import dataclass

from rtbuild import BuildContextError
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
