"""Which filesystem holds a path, and whether one inotify cannot vouch for is mounted in it.

A watch sees only changes made through this kernel and through the watched directories'
own inodes: a context on NFS, CIFS, FUSE or 9p (written on the server, or behind the
FUSE daemon), a local one with such a filesystem mounted inside it, an overlay whose
layer directories can be written here (a write to a layer raises no event on the
overlay), or a file bind-mounted into the context (a write through its source's name
raises no event in the context), must be walked instead
(:func:`rtbuild.context._watch.try_watch`). A mount or unmount raises no inotify event at
all: :class:`MountWatch` tells the watch when the mounts inside its context changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
from stat import S_ISDIR

#: Filesystems whose changes all pass through this kernel (so inotify sees them).
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "reiserfs", "jfs", "bcachefs"}
)
#: Overlay options naming a layer directory (``lowerdir+``/``datadir+``: the new mount API).
_LAYER_OPTIONS = ("lowerdir=", "lowerdir+=", "datadir+=", "upperdir=", "workdir=")
_ESCAPE = re.compile(r"\\([0-7]{3})")
#: (mount point, filesystem type, super options, "mount-ID major:minor root"): one mount.
Mount = tuple[str, str, str, str]


def _unescape(text: str) -> str:
    """A mountinfo field with its octal escapes (space, tab, newline, backslash) decoded."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), text) if "\\" in text else text


def mount_entries(mentioning: str | None = None) -> list[Mount]:
    """Every mount (see :data:`Mount`), from /proc/self/mountinfo; with ``mentioning``, only
    those whose line holds that path (a host with thousands of mounts parses a few)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    if mentioning is not None:  # as the kernel escapes it there
        for char in "\\ \t\n":
            mentioning = mentioning.replace(char, f"\\{ord(char):03o}")
        lines = [line for line in lines if mentioning in line]
    out = []
    for line in lines:
        fields = line.split(" ")
        try:
            dash = fields.index("-")
            options = fields[dash + 3] if len(fields) > dash + 3 else ""
            # The mount's ID, device and root tell a tmpfs unmounted and another mounted
            # at the same point apart (their other fields may all be equal).
            out.append((_unescape(fields[4]), fields[dash + 1], options, f"{fields[0]} {fields[2]} {fields[3]}"))
        except (IndexError, ValueError):
            continue
    return out


def mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount, from /proc/self/mountinfo."""
    return [(point, fs_type) for point, fs_type, _options, _ident in mount_entries()]


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


def overlay_layers_here(options: str) -> str | None:
    """A layer directory of an overlay (its super ``options``) that this mount namespace
    can reach, where a write raises no event on the overlay; ``"its layers"`` when none is
    named (unsure); ``None`` when none is reachable (a container's root: they are the host's)."""
    layers = []
    for option in options.split(","):
        for name in _LAYER_OPTIONS:
            if option.startswith(name):
                value = _unescape(option[len(name) :])
                layers += value.split(":") if name == "lowerdir=" else [value]
    if not layers:
        return "its layers"
    return next((layer for layer in layers if layer and os.path.lexists(layer)), None)


def untrusted_mount(root: str, inside: tuple[Mount, ...]) -> str | None:
    """Why a watch on ``root`` cannot vouch for it with the mounts ``inside`` it (and the one
    holding it), or ``None``: a filesystem of another kind than local, an overlay whose layers
    can be written here, a mount point that is no directory (a file bound from elsewhere)."""
    for mount_point, fs_type, options, _ident in inside:
        if fs_type not in LOCAL_FILESYSTEMS:
            return f"{mount_point} inside the context is {fs_type}, not watched (changes may come from elsewhere)"
        if fs_type == "overlay" and (layer := overlay_layers_here(options)) is not None:
            return f"the overlay at {mount_point} can be written through {layer}, where a change raises no event"
        try:
            is_dir = S_ISDIR(os.lstat(mount_point).st_mode)
        except OSError:
            is_dir = False
        if not is_dir:
            return f"{mount_point} inside the context is a mounted file, written through a name outside it"
    return None


def mounts_inside(root: str, entries: list[Mount] | None = None, *, real: str | None = None) -> tuple[Mount, ...]:
    """The mounts at ``root`` (resolved: ``real``) or inside it, in table order."""
    real = real or os.path.realpath(root)
    prefix = real.rstrip("/") + "/"
    table = mount_entries(real) if entries is None else entries
    return tuple(entry for entry in table if entry[0] == real or entry[0].startswith(prefix))


def holding_mount(root: str, entries: list[Mount]) -> tuple[Mount, ...]:
    """The mount holding ``root`` (the longest mount point above it), when it is an overlay."""
    real = os.path.realpath(root)
    above = [entry for entry in entries if real.startswith(entry[0].rstrip("/") + "/")]
    best = max(above, key=lambda entry: len(entry[0]), default=None)
    return (best,) if best is not None and best[1] == "overlay" else ()


class MountWatch:
    """Whether anything was mounted or unmounted inside ``root`` since the watch began.

    Mounts raise no inotify event. The kernel flags /proc/self/mountinfo for ``poll`` (as
    POLLPRI) whenever this mount namespace's table changes, and each poll that reports it
    clears it: one system call per question while nothing is mounted anywhere; after any
    mount (a container starting, elsewhere) the table is read again and compared inside root.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        # Opened before the table is read: a change after the read is reported by poll.
        self._fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLPRI)
        self.entries = mount_entries()
        #: Resolved once: a root that resolves elsewhere later is a watch started over.
        self._real = os.path.realpath(root)
        self.inside = mounts_inside(root, self.entries, real=self._real)

    def changed(self) -> tuple[Mount, ...] | None:
        """The mounts now inside root when they differ from the last seen, else ``None``."""
        if not self._poll.poll(0):
            return None
        now = mounts_inside(self.root, real=self._real)
        if now == self.inside:
            return None
        self.inside = now
        return now

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._poll.unregister(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)


__all__ = [
    "LOCAL_FILESYSTEMS",
    "Mount",
    "MountWatch",
    "filesystem_type",
    "holding_mount",
    "mount_entries",
    "mounts",
    "mounts_inside",
    "overlay_layers_here",
    "untrusted_mount",
    "unwatchable_mount",
]
