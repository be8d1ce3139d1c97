"""Which filesystem holds a path, and whether one inotify cannot vouch for is mounted in it.

A watch sees only changes made through this kernel: a context on NFS, CIFS, FUSE or 9p
(written on the server, or behind the FUSE daemon), or a local one with such a
filesystem mounted inside it, must be walked instead (:func:`rtbuild.context._watch.try_watch`).
"""

from __future__ import annotations

import os

#: Filesystems whose changes all pass through this kernel (so inotify sees them).
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "reiserfs", "jfs", "bcachefs"}
)


def mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount, from /proc/self/mountinfo."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        try:
            out.append((fields[4].replace("\\040", " "), fields[fields.index("-") + 1]))
        except (IndexError, ValueError):
            continue
    return out


def filesystem_type(path: str, table: list[tuple[str, str]] | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/self/mountinfo)."""
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for mount_point, fs_type in mounts() if table is None else table:
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) > best[0]):
            best = (len(mount_point), fs_type)
    return best[1] if best else None


def unwatchable_mount(root: str, table: list[tuple[str, str]] | None = None) -> tuple[str, str] | None:
    """A filesystem mounted inside ``root`` whose changes inotify cannot vouch for (NFS,
    FUSE, ...: written from elsewhere), as (mount point, type); ``None`` when there is none."""
    real = os.path.realpath(root).rstrip("/") + "/"
    for mount_point, fs_type in mounts() if table is None else table:
        if mount_point.startswith(real) and fs_type not in LOCAL_FILESYSTEMS:
            return mount_point, fs_type
    return None


__all__ = ["LOCAL_FILESYSTEMS", "filesystem_type", "mounts", "unwatchable_mount"]
