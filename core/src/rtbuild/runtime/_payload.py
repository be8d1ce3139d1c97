"""Source payloads: a directory or an installed distribution, hashed in place, rendered on demand.

Computing a runtime image's tags must not copy anything: a payload's digest comes from
the files where they are, through the context stat cache (an unchanged 1,000-file tree
costs one ``lstat`` per file and no read). Only when the source layers must be built is
the tree synchronised into the build context's staging directory, copying only the
files that differ from the last build's.
"""

from __future__ import annotations

import marshal
import os
import posixpath
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from stat import S_IMODE, S_ISDIR, S_ISLNK, S_ISREG
from typing import NamedTuple

import xxhash

from rtbuild.context import ContextHash, PatternMatcher, StatCache, hash_context, hash_file, read_dockerignore
from rtbuild.errors import BuildContextError, ConfigError
from rtbuild.runtime._payload_match import Output, current_outputs, exclude_patterns, own_dirs, payload_matcher
from rtbuild.runtime._plugin import DISTRIBUTION_EXCLUDES, SourcePayload
from rtbuild.runtime._tree import remove_extra, remove_tree

#: Files modified this recently may change again without a visible stat change: not cached.
_RACY_NS = 2_000_000_000


@dataclass
class ResolvedPayload:
    """A payload whose files were found and hashed (nothing copied yet)."""

    plugin: str
    spec: SourcePayload
    #: The host directory the payload's relative paths start from.
    root: str
    #: Content digest of every included path: relative name, kind, mode, bytes.
    digest: str
    files: int
    matcher: PatternMatcher
    #: Distribution payloads only: ``(relative path, absolute path)`` of every file.
    listed: list[tuple[str, str]] = field(default_factory=list)
    #: The request's configured outputs it leaves out (``own_dirs``).
    outputs: tuple[Output, ...] = ()

    def entries(self) -> list[tuple[str, str]]:
        """Every included path below :attr:`root` as ``(relative path, kind)``; kind d/f/l."""
        if self.spec.kind == "distribution":
            return [(rel, "f") for rel, _ in self.listed]
        found = hash_context(self.root, self.matcher, collect_paths=True).paths or []
        return [(rel, kind) for rel, kind in found if kind in "dfl"]

    def sync(self, target: str, record: str | None = None) -> Synced:
        """Make ``target`` hold exactly the payload's tree, copying only what differs.

        A file whose size and mtime match its copy, copied more than 2 s after the source
        last changed (its ctime), is left alone (copies keep the source's mtime), so a
        staging directory reused across builds costs one ``lstat`` per unchanged file; what
        the payload no longer has is removed. Returns every relative path the tree now
        holds and the key of its directories' modes (see :class:`Synced`).
        """
        _ensure_dir(target, 0o755)
        root_mode = S_IMODE(os.stat(self.root).st_mode)
        expected: set[str] = set()
        modes: list[tuple[str, int]] = []
        copied_from = _load_record(record)
        sources: dict[str, tuple[int, ...]] = {}
        invisible: list[str] = []
        for rel, kind in self.entries():
            source, dest = os.path.join(self.root, rel), os.path.join(target, rel)
            expected.add(rel)
            st = os.lstat(source)
            if S_ISLNK(st.st_mode):
                # A RECORD lists links as files; copied (and chmod-ed) as one, the link's
                # target on this host got the link's mode 0777.
                kind = "l"
            if kind == "d":
                _ensure_dir(dest, S_IMODE(st.st_mode))
                modes.append((dest, S_IMODE(st.st_mode)))
                continue
            missing, parent = [], posixpath.dirname(rel)
            while parent and parent not in expected:  # distributions list files only
                missing.append(parent)
                parent = posixpath.dirname(parent)
            # Outermost first: a link staged where a directory goes now is replaced before
            # anything is made below it (else through it, outside the staging directory).
            for parent in reversed(missing):
                expected.add(parent)
                _ensure_dir(os.path.join(target, parent), 0o755)
                modes.append((os.path.join(target, parent), 0o755))
            identity = (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size, st.st_mtime_ns)
            if _sync_entry(source, dest, st, kind, copied_from.get(rel) == identity):
                invisible.append(rel)
            sources[rel] = identity
        remove_extra(target, expected)
        # Modes last and deepest first, so a read-only directory is filled before it is closed.
        for path, mode in sorted(modes, key=lambda item: -item[0].count(os.sep)):
            os.chmod(path, mode)
        if record is not None:
            from rtbuild._framework.atomic import try_atomic_write

            try_atomic_write(record, marshal.dumps(sources))  # lost: every file is copied again
        # The tag was computed from the files as they were; refuse to build other content.
        if resolve(self.plugin, self.spec, self.outputs).digest != self.digest:
            raise BuildContextError(
                f"runtime plugin {self.plugin!r}: source payload {self.spec.source} changed while rtbuild was using it",
                step="render runtime context",
                hint="run the command again once the files stop changing",
            )
        root_key = _dir_modes_key(target, modes, 0o755 if self.spec.kind == "distribution" else root_mode)
        return Synced(expected, root_key, tuple(invisible))


class Synced(NamedTuple):
    """What :meth:`ResolvedPayload.sync` placed: every relative path, and ``dir_modes``.

    ``dir_modes`` is ``""`` when every directory of the tree has mode 0755, else 12 hex
    characters naming the directories' modes. BuildKit keeps a COPY cached when only a
    directory's mode changed in a context it synchronised before (moby/buildkit#7176): the
    image would hold the old mode under the new tag. The tree is therefore placed in the
    context under a name carrying this key, so such a change is a path the engine never saw.
    """

    paths: set[str]
    dir_modes: str
    #: Files whose new copy has the old copy's size, mode and mtime (a rewrite with its
    #: mtime put back): an engine that syncs the context incrementally (BuildKit) would not
    #: send them again, and its COPY would keep the old bytes under the new tag.
    invisible: tuple[str, ...] = ()


def _dir_modes_key(target: str, modes: list[tuple[str, int]], baseline: int) -> str:
    """A key of the directories' modes: which differ from ``baseline`` (and ``baseline``)."""
    odd = sorted(f"{os.path.relpath(path, target)}\0{mode:o}" for path, mode in modes if mode != baseline)
    if not odd and baseline == 0o755:
        return ""
    text = "\n".join([f"{baseline:o}", *odd]).encode("utf-8", "surrogateescape")
    return xxhash.xxh3_64_hexdigest(text)[:12]


def _ensure_dir(path: str, mode: int) -> None:
    if (os.path.lexists(path) and not os.path.isdir(path)) or os.path.islink(path):
        os.unlink(path)  # a file (or link) where the payload now has a directory
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode | 0o700)  # writable while it is filled; the final mode comes last


def _load_record(path: str | None) -> dict[str, tuple[int, ...]]:
    """Which source file (device, inode, ctime, size, mtime) each staged copy was made from."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            loaded = marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _sync_entry(source: str, dest: str, st: os.stat_result, kind: str, same_source: bool = False) -> bool:
    """Stage one entry; True when a file was copied anew over a copy of the same size, mode
    and mtime but other bytes (see :attr:`Synced.invisible`)."""
    try:
        have: os.stat_result | None = os.lstat(dest)
    except FileNotFoundError:
        have = None
    if kind == "l":
        link = os.readlink(source)
        if have is None or not S_ISLNK(have.st_mode) or os.readlink(dest) != link:
            _remove(dest, have)
            os.symlink(link, dest)
        return False
    # Size and mtime alone would keep a copy of a file rewritten with its old mtime put
    # back (`cp -p`, `tar x`, `rsync -a`); its ctime cannot be set back, so the copy counts
    # only if it was made (its own ctime) well after the source last changed: a change
    # during or just before the copy is not trusted (a coarse clock can show both in
    # one tick), and the file is copied again. And only if it was copied from this very
    # file: another tree (a new release directory moved into place, a switched symlink)
    # may hold same-size files with the same mtime written before the copy was made.
    same = (
        same_source
        and have is not None
        and S_ISREG(have.st_mode)
        and (have.st_size, have.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
        and have.st_ctime_ns - st.st_ctime_ns > _RACY_NS
    )
    look_alike = (
        not same
        and have is not None
        and S_ISREG(have.st_mode)
        and (have.st_size, have.st_mtime_ns, S_IMODE(have.st_mode)) == (st.st_size, st.st_mtime_ns, S_IMODE(st.st_mode))
    )
    if look_alike and _same_bytes(source, dest):
        same, look_alike = True, False  # the copy holds these very bytes: keep it
    if not same:
        _remove(dest, have)
        _place(source, dest)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    if not same or S_IMODE(have.st_mode if have else 0) != S_IMODE(st.st_mode):
        os.chmod(dest, S_IMODE(st.st_mode))
    return look_alike


def _same_bytes(one: str, two: str) -> bool:
    import filecmp  # imported here: only a copy that looks like its source is compared

    try:
        return filecmp.cmp(one, two, shallow=False)
    except OSError:
        return False


def _remove(path: str, st: os.stat_result | None) -> None:
    if st is not None and S_ISDIR(st.st_mode):
        remove_tree(path)
    elif st is not None:
        os.unlink(path)


def _place(source: str, dest: str) -> None:
    # A copy, not a hard link: linking changes the source's link count and so its ctime,
    # which would invalidate the stat cache and make the next exact hit re-read every file.
    import shutil  # imported here: an exact hit copies nothing

    shutil.copyfile(source, dest, follow_symlinks=False)


def resolve(plugin: str, spec: SourcePayload, outputs: tuple[Output, ...] | None = None) -> ResolvedPayload:
    """Find and hash ``spec``'s files in place (leaving out ``outputs``, by default the
    request's: :func:`rtbuild.runtime._payload_match.writing_to`)."""
    if spec.kind == "distribution":
        return _resolve_distribution(plugin, spec)
    root = os.path.abspath(spec.source)
    if not os.path.isdir(root):
        raise BuildContextError(
            f"runtime plugin {plugin!r}: source payload {root} is not a directory",
            step="hash runtime payload",
            hint="check the path (or pass the name of an installed distribution)",
        )
    patterns = [*read_dockerignore(root), *exclude_patterns(spec)]
    outputs = current_outputs() if outputs is None else outputs
    own = own_dirs(plugin, root, outputs)
    matcher = payload_matcher(spec, patterns, own)
    try:
        result = _resident_or_walk(root, [*patterns, *own], lambda: hash_context(root, matcher))
    except BuildContextError as exc:
        if exc.step == "hash context" and "Permission denied" in exc.message:
            # The context's hint named .dockerignore, a file of a build context; a payload has --exclude.
            exc.step = "hash runtime payload"
            exc.hint = (
                f"make it readable by the user running rtbuild, or leave it out of payload {root}:"
                " --exclude PATTERN (relative to the payload; exclude= in the API) or a .dockerignore in it"
            )
        raise
    return ResolvedPayload(plugin, spec, root, result.digest, result.files, matcher, outputs=outputs)


def _resident_or_walk(root: str, patterns: list[str], walk: Callable[[], ContextHash]) -> ContextHash:
    """Inside a :class:`rtbuild.BuildSession`, the digest its inotify watch vouches for
    (no walk while nothing under ``root`` changed); else the stat-cached walk."""
    # A session has imported the watch modules; without one, don't pay their import.
    watch = sys.modules.get("rtbuild.context._resident")
    memo = watch.current_resident() if watch is not None else None
    if memo is None:
        return walk()
    # The memo is keyed by (root, a file under it); a name derived from the patterns keeps
    # digests of one directory under different excludes apart.
    key = os.path.join(root, ".rtbuild-payload-" + xxhash.xxh3_64_hexdigest("\n".join(patterns).encode()))
    result: ContextHash = memo.digest(root, key, walk)
    return result


def _resolve_distribution(plugin: str, spec: SourcePayload) -> ResolvedPayload:
    from importlib import metadata

    try:
        dist = metadata.distribution(spec.source)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"runtime plugin {plugin!r}: no installed distribution named {spec.source!r}",
            step="hash runtime payload",
            hint="install it into rtbuild's environment, or pass a directory",
        ) from None
    _refuse_editable(plugin, spec, dist.read_text("direct_url.json"))
    files = dist.files
    if files is None:
        raise ConfigError(
            f"runtime plugin {plugin!r}: distribution {spec.source!r} lists no files (no RECORD)",
            step="hash runtime payload",
            hint="reinstall it with pip, or pass its directory instead",
        )
    root = os.path.abspath(str(dist.locate_file("")))
    matcher = payload_matcher(spec, [*DISTRIBUTION_EXCLUDES, *exclude_patterns(spec)])
    listed: list[tuple[str, str]] = []
    for item in files:
        rel = posixpath.normpath(item.as_posix())
        # Files installed outside the install root (console scripts in bin/, data files)
        # are not part of the importable tree.
        if rel.startswith(("../", "/")) or rel == ".." or matcher.excluded(rel):
            continue
        listed.append((rel, os.path.join(root, rel)))
    listed.sort()
    digest, count = hash_listed(f"{root}#dist:{spec.source}", listed)
    if count != len(listed):  # files RECORD lists but that are gone are not installed
        listed = [(rel, path) for rel, path in listed if os.path.lexists(path)]
    return ResolvedPayload(plugin, spec, root, digest, count, matcher, listed)


def _refuse_editable(plugin: str, spec: SourcePayload, direct_url: str | None) -> None:
    """An editable install's RECORD lists a ``.pth`` file, not its code: say so."""
    import json

    try:
        info = json.loads(direct_url or "{}")
    except ValueError:
        return
    if isinstance(info, dict) and (info.get("dir_info") or {}).get("editable"):
        where = str(info.get("url", "")).removeprefix("file://") or "its source directory"
        raise ConfigError(
            f"runtime plugin {plugin!r}: distribution {spec.source!r} is installed in editable mode; "
            "its files are not in the environment",
            step="hash runtime payload",
            hint=f"pass the directory instead: --source {where}:{spec.dest}",
        )


def hash_listed(cache_key: str, items: list[tuple[str, str]]) -> tuple[str, int]:
    """Digest of the listed ``(relative path, absolute path)`` files, through the stat cache.

    Uses the same cache as :func:`rtbuild.context.hash_context`, the list treated as one
    directory: when every file's (mode, size, mtime, inode, ctime) is unchanged, no file
    is read. Missing files are skipped. Returns the digest and the number of files.
    """
    cache = StatCache(cache_key)
    keys: list[tuple[str, int, int, int, int, int]] = []
    paths: list[str] = []
    for rel, path in items:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        keys.append((rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
        paths.append(path)
    blob = StatCache.key_blob(keys)
    cached = cache.old.get("")
    if cached is not None and cached[0] == blob:
        cache.new[""] = cached
        listing = cached[1]
    else:
        detail = marshal.loads(cached[3]) if cached is not None else {}
        racy_after = time.time_ns() - _RACY_NS
        lines: list[str] = []
        kept: dict[str, tuple[tuple[str, int, int, int, int, int], str]] = {}
        racy = False
        for key, path in zip(keys, paths, strict=True):
            known = detail.get(key[0])
            line = known[1] if known is not None and known[0] == key else _line(key, path)
            lines.append(line)
            if max(key[3], key[5]) >= racy_after:  # mtime or ctime (chmod, rename) too recent
                racy = True
            else:
                kept[key[0]] = (key, line)
        listing = "".join(lines)
        cache.new[""] = (b"" if racy else blob, listing, len(keys), marshal.dumps(kept))
        cache.dirty = True
    cache.save()
    return xxhash.xxh3_128_hexdigest(listing.encode("utf-8", "surrogateescape")), len(keys)


def _line(key: tuple[str, int, int, int, int, int], path: str) -> str:
    rel, mode, size = key[0], key[1], key[2]
    if S_ISLNK(mode):
        return f"{rel}\0l:{os.readlink(path)}\n"
    if not S_ISREG(mode):
        return f"{rel}\0s{mode:o}\n"
    try:
        return f"{rel}\0f{S_IMODE(mode):o}:{hash_file(path, size)}\n"
    except OSError as exc:
        raise BuildContextError(
            f"cannot read {path}: {exc.strerror}", step="hash runtime payload", hint="fix its permissions"
        ) from exc


__all__ = ["ResolvedPayload", "Synced", "hash_listed", "resolve"]
