"""``rtbuild context``: what a build would send to the engine, after ``.dockerignore``.

The walk follows the digest walk (:func:`rtbuild.context.hash_context`) rule for rule, so
the counts here are the ones the engine receives: a path excluded by ``.dockerignore`` is
skipped with everything below it unless a ``!`` pattern could re-include something inside
(fsutil's rule). Excluded subtrees are still stat-walked, once, so each rule can say how
many files and bytes it kept out. The input digest is the no-op skip's own
(:func:`rtbuild.context.context_digest`, stat-cached), so it matches the image label.
"""

from __future__ import annotations

import errno
import heapq
import os
import posixpath
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import Any

from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore
from rtbuild.errors import BuildContextError

#: An entry of the context the walk cannot read.
_UNREADABLE_HINT = "make it readable by the user running rtbuild, or exclude it in .dockerignore"

#: A context bigger than this without a .dockerignore earns a warning.
BIG_CONTEXT_BYTES = 100 << 20
BIG_CONTEXT_FILES = 10_000
#: Files at least this big are named in a warning (``--large-file`` changes it).
DEFAULT_LARGE_FILE = 50 << 20
#: Directories whose presence in a context is almost always a mistake.
SUSPECT_DIRS = (".git", "node_modules")


@dataclass
class RuleStats:
    pattern: str
    files: int = 0
    bytes: int = 0


@dataclass
class ContextReport:
    path: str
    dockerignore: bool
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    other: int = 0
    bytes: int = 0
    digest: str | None = None
    largest_files: list[tuple[str, int]] = field(default_factory=list)
    largest_directories: list[tuple[str, int]] = field(default_factory=list)
    excluded: list[RuleStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["largest_files"] = [{"path": p, "bytes": b} for p, b in self.largest_files]
        data["largest_directories"] = [{"path": p, "bytes": b} for p, b in self.largest_directories]
        return data


def excluding_rule(matcher: PatternMatcher, path: str) -> str | None:
    """The pattern that decides ``path`` is excluded (mirrors ``PatternMatcher.excluded``)."""
    matched = False
    rule: str | None = None
    parent = posixpath.dirname(path)
    parents: list[str] = []
    if parent:
        parts = parent.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in matcher.patterns:
        if pattern.exclusion != matched:
            continue
        if pattern.match(path) or any(pattern.match(p) for p in parents):
            matched = not pattern.exclusion
            rule = pattern.text if matched else None
    return rule if matched else None


def _subtree(directory: str) -> tuple[int, int]:
    """(files, bytes) below ``directory``, every entry (an excluded subtree is skipped whole)."""
    files = size = 0
    stack = [directory]
    while stack:
        try:
            with os.scandir(stack.pop()) as scanner:
                for entry in scanner:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if S_ISDIR(st.st_mode):
                        stack.append(entry.path)
                    elif S_ISREG(st.st_mode):
                        files += 1
                        size += st.st_size
        except OSError:
            continue
    return files, size


def _points_outside(rel: str, target: str) -> bool:
    if os.path.isabs(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved == ".." or resolved.startswith("../")


def inspect_context(
    path: str,
    extra_build_args: Sequence[str] = (),
    *,
    top: int = 10,
    large_file: int = DEFAULT_LARGE_FILE,
    digest: bool = True,
) -> ContextReport:
    """Walk the context at ``path`` the way a build sends it and report what goes."""
    from rtbuild.context._validate import context_digest, validate_context_dir

    validate_context_dir(path)
    root = os.path.abspath(path)
    report = ContextReport(path=root, dockerignore=os.path.isfile(os.path.join(root, ".dockerignore")))
    if digest:
        started = time.perf_counter()
        try:
            report.digest = context_digest(root, extra_build_args).digest
        except BuildContextError as exc:
            report.warnings.append(f"no input digest: {exc.message}")
        report.timings["digest_s"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    matcher = PatternMatcher(read_dockerignore(root))
    rules: dict[str, RuleStats] = {}
    dir_bytes: dict[str, int] = {}
    largest: list[tuple[int, str]] = []
    big_files: list[tuple[str, int]] = []
    suspects: dict[str, list[int]] = {}
    outside: list[str] = []

    def exclude(rel: str, entry: os.DirEntry[str], is_dir: bool) -> None:
        rule = excluding_rule(matcher, rel) or "?"
        stats = rules.setdefault(rule, RuleStats(rule))
        if is_dir:
            files, size = _subtree(entry.path)
        else:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                return
            files, size = int(S_ISREG(st.st_mode)), st.st_size if S_ISREG(st.st_mode) else 0
        stats.files += files
        stats.bytes += size

    stack: list[tuple[str, str]] = [(root, "")]
    local_bytes: dict[str, int] = {}  # directory -> bytes of the files directly in it
    local_files: dict[str, int] = {}
    excluded = matcher.excluded if matcher else None
    floor = -1  # the smallest size in a full "largest" heap: most files are not compared further
    files = size_sum = directories = symlinks = other = 0
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as scanner:
                entries = list(scanner)
        except OSError as exc:
            raise _unreadable("read", root, directory, exc) from exc
        here_bytes = here_files = 0
        for entry in entries:
            # The per-file path of this loop is kept to one lstat and a few compares: the
            # walk should cost about what the no-op digest walk costs.
            name = entry.name
            if excluded is not None and excluded(prefix + name):
                rel = prefix + name
                is_dir = entry.is_dir(follow_symlinks=False)
                if is_dir and matcher.may_reinclude_below(rel):
                    stack.append((entry.path, rel + "/"))  # walked, its entries decided one by one
                else:
                    exclude(rel, entry, is_dir)
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise _unreadable("stat", root, entry.path, exc) from exc
            mode = st.st_mode
            if S_ISREG(mode):
                size = st.st_size
                here_files += 1
                here_bytes += size
                if size > floor:
                    if len(largest) < top:
                        heapq.heappush(largest, (size, prefix + name))
                    else:
                        heapq.heapreplace(largest, (size, prefix + name))
                    if len(largest) == top:
                        floor = largest[0][0]
                if size >= large_file:
                    big_files.append((prefix + name, size))
            elif S_ISDIR(mode):
                directories += 1
                rel = prefix + name
                stack.append((entry.path, rel + "/"))
                if name in SUSPECT_DIRS and not any(rel.startswith(s + "/") for s in suspects):
                    suspects[rel] = [0, 0]
            elif S_ISLNK(mode):
                symlinks += 1
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    continue
                if _points_outside(prefix + name, target):
                    outside.append(f"{prefix + name} -> {target}")
            else:
                other += 1
        files += here_files
        size_sum += here_bytes
        local_bytes[prefix[:-1]] = local_bytes.get(prefix[:-1], 0) + here_bytes
        local_files[prefix[:-1]] = local_files.get(prefix[:-1], 0) + here_files
    report.files, report.bytes, report.directories = files, size_sum, directories
    report.symlinks, report.other = symlinks, other
    # Each directory's own bytes go to it and every ancestor: one pass over directories.
    for directory, own in local_bytes.items():
        count = local_files[directory]
        parent = directory
        while parent:
            dir_bytes[parent] = dir_bytes.get(parent, 0) + own
            counts = suspects.get(parent)
            if counts is not None:
                counts[0] += count
                counts[1] += own
            parent = posixpath.dirname(parent)
    report.timings["walk_s"] = round(time.perf_counter() - started, 4)

    report.largest_files = [(rel, size) for size, rel in sorted(largest, reverse=True)]
    report.largest_directories = sorted(dir_bytes.items(), key=lambda item: (-item[1], item[0]))[:top]
    report.excluded = sorted(rules.values(), key=lambda r: (-r.bytes, r.pattern))
    report.warnings += _warnings(report, suspects, big_files, outside, large_file)
    report.warnings += _other_ignore_files(root, extra_build_args)
    return report


def _unreadable(verb: str, root: str, path: str, exc: OSError) -> BuildContextError:
    if exc.errno != errno.ENAMETOOLONG:
        return BuildContextError(f"cannot {verb} {path}: {exc.strerror}", step="inspect context", hint=_UNREADABLE_HINT)
    # A 4,096-byte path is no message: the root and the path's end say where it is.
    return BuildContextError(
        f"cannot {verb} a path under {root}: {exc.strerror} (...{path[-120:]})",
        step="inspect context",
        hint="a path there is longer than the system allows (4,096 bytes), and no engine could copy it:"
        " shorten it, or leave it out (.dockerignore)",
    )


def _other_ignore_files(root: str, extra_build_args: Sequence[str]) -> list[str]:
    """An ignore file an engine reads instead of ``.dockerignore``: this report does not follow it."""
    from rtbuild.context._validate import dockerfile_arg, engine_ignore_files

    docker, podman = engine_ignore_files(root, dockerfile_arg(extra_build_args))
    common = os.path.join(root, ".dockerignore")
    readers: dict[str, list[str]] = {name: [] for name in (docker, podman) if name and name != common}
    if docker in readers:
        readers[docker].append("BuildKit")
    if podman in readers:
        readers[podman].append("Podman")
    return [
        f"{os.path.relpath(name, root)} is read by {' and '.join(engines)} instead of .dockerignore;"
        " this report follows .dockerignore"
        for name, engines in readers.items()
    ]


def _warnings(
    report: ContextReport,
    suspects: dict[str, list[int]],
    big_files: list[tuple[str, int]],
    outside: list[str],
    large_file: int,
) -> list[str]:
    from rtbuild._observe.units import human_size

    out: list[str] = []
    for rel, (files, size) in sorted(suspects.items()):
        out.append(
            f"{rel}/ is sent ({files} files, {human_size(size)}): add `{posixpath.basename(rel)}` to .dockerignore"
        )
    for rel, size in sorted(big_files, key=lambda item: -item[1]):
        out.append(f"{rel} is {human_size(size)} (over {human_size(large_file)})")
    big = report.bytes >= BIG_CONTEXT_BYTES or report.files >= BIG_CONTEXT_FILES
    if big and not report.dockerignore:
        out.append(
            f"no .dockerignore and the context is big ({report.files} files, {human_size(report.bytes)}):"
            " every build sends and hashes all of it"
        )
    for link in outside:
        out.append(f"symlink points outside the context: {link} (the engine copies the link, not its target)")
    return out


__all__ = ["ContextReport", "RuleStats", "excluding_rule", "inspect_context"]
