"""Stateful property tests: try to make rtbuild's two digest caches report a stale digest.

A hypothesis state machine edits a small build context (a few files in up to three levels
of directories) the ways tools do: new content of the same or another size; a same-size
rewrite, in place, truncating or through an atomic rename, with or without its old mtime
set back (``cp -p``, ``rsync -a``, ``tar x``); renames of files and directories (also over
another file, also into another directory); deletions; files in new nested directories;
exec-bit flips; hard links; files replaced by symlinks and symlinks re-pointed (to a
target of the same length too); a Dockerfile that becomes a symlink to a file in the
context, edited behind the link; ``.dockerignore`` written, edited and removed; Dockerfile
edits; touches; no-op steps. The ground truth is a walk that uses no cache at all
(``context_digest(path, use_cache=False)``), and two caches must always agree with it:

1. the on-disk stat cache (``context_digest(path)`` outside any session), which reuses a
   file's hash while its (mode, size, mtime_ns, inode, ctime_ns) is unchanged: checked
   when ``check_stat_cache`` is drawn (several edits may lie between two of its walks)
   or, in half of the examples, after every step;
2. a resident :class:`rtbuild.BuildSession`, whose inotify watch answers a no-op build
   without walking: after every step, the image recorded for the tag must hold the fresh
   digest, and the build may say ``cached`` only when that digest is the one recorded
   before. The session keeps its own stat cache (another ``$XDG_CACHE_HOME``).

The stat cache does not trust a file changed within ``_RACY_NS`` (2 s) of the walk, so in
a fast test it would never vouch for anything. Rather than sleeping past a shortened
window (which makes what the cache trusts depend on how fast each example runs, and
hypothesis then cannot replay a failure), the hashing module gets a clock
(:class:`RacyClock`) whose "now" is the racy window past the last ``wait`` step: exactly
the files last changed before that step are old enough to be trusted. ``wait`` then
sleeps 10 ms, more than a coarse kernel timestamp tick (4 ms here), so no later change
can carry a ctime as old as the trusted ones: the soundness condition of the real
window holds.

At the end, a plain reproduction of what the machine found once the Dockerfile or
.dockerignore could be a symlink to a file outside the context: the session answered from
its watch with the digest of the old content.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import rtbuild
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from rtbuild import BuildRequest, BuildResult, BuildSession, Config, RuntimeBuilder
from rtbuild.context import ContextHash, _hashing
from rtbuild.context._validate import context_digest

TAG = "app:1"
#: Longer than a coarse kernel timestamp tick (CLOCK_REALTIME_COARSE: 4 ms at HZ=250).
TICK_MARGIN_S = 0.010

# Names of files and of directories never overlap, so no edit meets the other kind.
FILE_NAMES = ("a.txt", "b.log", "keep.log", "c.py")
DIR_NAMES = ("sub", "pkg", "deep", "new")
DIR_PATHS = ("", "sub", "pkg", "sub/deep", "new/deep", "new/sub/deep")
#: What the Dockerfile points to when it is a symlink: kept a regular file at all times.
DOCKERFILE_TARGET = "Dockerfile.in"
#: Never deleted, renamed or replaced by a link (the context must stay valid).
PROTECTED = ("Dockerfile", DOCKERFILE_TARGET)
#: How a file is rewritten: through its open descriptor (same inode), truncated and written
#: (same inode), or written to a temporary renamed over it (a new inode).
REWRITES = ("inplace", "truncate", "replace")
CONTENTS = (b"", b"x", b"y", b"xy", b"hello\n", b"hellp\n", b"hello world\n", b"#!/bin/sh\n" * 40)
DOCKERFILES = ("FROM scratch\n", "FROM scratcH\n", "FROM busybox\nCOPY . /app\n")
PATTERNS = ("*.log", "sub/", "!keep.log", "!sub/keep.log", "**/*.txt", "new/deep", "*.py", "pkg", "*.in")
# "t1"/"t2": targets of the same length, so a re-pointed link keeps its size.
LINK_TARGETS = ("t1", "t2", "a.txt", "sub", "../a.txt", "nowhere/at/all")

# Derandomized, as tests/faults/test_properties.py: the same sequences every run, so CI
# does not turn red by chance (set derandomize=False locally to explore further).
SETTINGS = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_index = st.integers(min_value=0, max_value=63)


class DigestBuilder(RuntimeBuilder):
    """Builds "images" as records of the context digest; an equal digest is a no-op
    (as in tests/core/test_session.py, keeping the last ContextHash for the counters)."""

    name = "digest"
    capabilities = rtbuild.BuilderCapabilities()

    def __init__(self) -> None:
        self.images: dict[str, str] = {}
        self.last: ContextHash | None = None

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("build_request is the entry point")

    def build_request(self, request: BuildRequest) -> BuildResult:
        self.last = context_digest(request.path)
        digest = self.last.digest
        cached = all(self.images.get(tag) == digest for tag in request.tags)
        if not cached:
            for tag in request.tags:
                self.images[tag] = digest
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.0, cached=cached)

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return image_name in self.images


class RacyClock:
    """Stands in for the ``time`` module inside :mod:`rtbuild.context._hashing` (its only
    use: ``racy_after = time.time_ns() - _RACY_NS``). "Now" is the racy window past the
    last :meth:`wait`, so a file is trusted exactly when its mtime and ctime precede it."""

    def __init__(self) -> None:
        self.point = 0

    def reset(self) -> None:
        """Before any wait, nothing made from now on is trusted."""
        self.point = time.time_ns() - 1_000_000_000

    def wait(self) -> None:
        self.point = time.time_ns()
        # A change after this returns gets a ctime past ``point``, even from a coarse clock.
        time.sleep(TICK_MARGIN_S)

    def time_ns(self) -> int:
        return self.point + _hashing._RACY_NS


@contextlib.contextmanager
def cache_home(path: Path) -> Iterator[None]:
    """``$XDG_CACHE_HOME`` set to ``path`` inside the block (the stat cache reads it per call)."""
    old = os.environ["XDG_CACHE_HOME"]
    os.environ["XDG_CACHE_HOME"] = str(path)
    try:
        yield
    finally:
        os.environ["XDG_CACHE_HOME"] = old


def fresh_digest(context: Path) -> str:
    """The ground truth: a walk that reads every file, with no cache and no session."""
    return context_digest(str(context), use_cache=False).digest


def tree(context: Path) -> tuple[list[str], list[str], list[str]]:
    """(regular files, symlinks, directories) under ``context``, relative, sorted; symlinks
    are not followed and the root itself is not listed."""
    files: list[str] = []
    links: list[str] = []
    dirs: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(context / rel) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    links.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    dirs.append(path)
                    stack.append(path)
                else:
                    files.append(path)
    return sorted(files), sorted(links), sorted(dirs)


def pick(items: list[str], index: int) -> str | None:
    return items[index % len(items)] if items else None


class Totals:
    """What the checks saw across all examples: proof that both caches were exercised."""

    stat_checks = 0
    trusted_walks = 0  # stat-cached walks (of either cache) that reused a file's hash
    builds = 0
    resident_hits = 0  # builds answered from the watch, unwalked


class CacheMachine(RuleBasedStateMachine):
    """One context, one session; edits, then checks against the fresh digest."""

    workdir: ClassVar[Path]
    pm: ClassVar[rtbuild.RtbuildPluginManager]
    config: ClassVar[Config]
    clock: ClassVar[RacyClock]

    def __init__(self) -> None:
        super().__init__()
        self.clock.reset()
        self.base = Path(tempfile.mkdtemp(prefix="ex-", dir=self.workdir))
        self.ctx = self.base / "ctx"
        (self.ctx / "sub").mkdir(parents=True)
        (self.ctx / "Dockerfile").write_text(DOCKERFILES[0])
        (self.ctx / "a.txt").write_bytes(b"hello\n")
        (self.ctx / "sub" / "b.log").write_bytes(b"x")
        (self.ctx / "sub" / "keep.log").symlink_to("t1")
        self.builder = DigestBuilder()
        self.session = BuildSession(self.config, pm=self.pm, builder=self.builder)
        self.session_cache = self.base / "session-cache"
        self.log: list[str] = []
        self.dense = False

    def teardown(self) -> None:
        self.session.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def _history(self) -> str:
        return "steps so far:\n  " + "\n  ".join(self.log)

    def _mkdirs(self, where: str) -> Path | None:
        directory = self.ctx
        for part in filter(None, where.split("/")):
            directory = directory / part
            if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
                return None
            if not directory.exists():
                directory.mkdir()
                self.log.append(f"mkdir {directory.relative_to(self.ctx)}")
        return directory

    @initialize(dense=st.booleans())
    def choose_density(self, dense: bool) -> None:
        """Dense: the stat cache is also checked after every step."""
        self.dense = dense

    # --- edits -----------------------------------------------------------------------

    @rule(where=st.sampled_from(DIR_PATHS), name=st.sampled_from(FILE_NAMES), content=st.sampled_from(CONTENTS))
    def write_file(self, where: str, name: str, content: bytes) -> None:
        """New content (any size), creating the file and missing directories if need be;
        a symlink of that name is replaced by the file."""
        directory = self._mkdirs(where)
        if directory is None:
            return
        path = directory / name
        if path.is_symlink():
            path.unlink()
        path.write_bytes(content)
        self.log.append(f"write {path.relative_to(self.ctx)} {content!r}")

    @rule(index=_index, how=st.sampled_from(REWRITES))
    def rewrite_same_size(self, index: int, how: str) -> None:
        """Other content of the same size (the mtime moves, mostly within the same second)."""
        self._rewrite(index, how, keep_mtime=False)

    @rule(index=_index, how=st.sampled_from(REWRITES))
    def rewrite_keeping_mtime(self, index: int, how: str) -> None:
        """Other content of the same size and the old mtime set back (``cp -p``, ``rsync
        -a``, ``tar x``): only ctime (and, for a replace, the inode) tell."""
        self._rewrite(index, how, keep_mtime=True)

    def _rewrite(self, index: int, how: str, *, keep_mtime: bool) -> None:
        rel = pick(tree(self.ctx)[0], index)
        if rel is None:
            return
        path = self.ctx / rel
        old = path.read_bytes()
        if not old:
            return
        before = os.stat(path)
        # The last byte: a Dockerfile keeps its FROM line (the core refuses one without).
        new = old[:-1] + bytes([old[-1] ^ 1])
        if how == "inplace":
            with open(path, "r+b") as handle:
                handle.write(new)
        elif how == "truncate":
            path.write_bytes(new)
        else:  # through a temporary and a rename, as editors and `rsync` do: a new inode
            tmp = path.with_name(path.name + ".tmp~")
            tmp.write_bytes(new)
            os.chmod(tmp, before.st_mode & 0o7777)
            os.replace(tmp, path)
        if keep_mtime:
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        kept = ", mtime set back" if keep_mtime else ""
        self.log.append(f"rewrite {rel} same size ({how}{kept}): {old!r} -> {new!r}")

    @rule(index=_index)
    def chmod_exec(self, index: int) -> None:
        rel = pick(tree(self.ctx)[0], index)
        if rel is None:
            return
        path = self.ctx / rel
        mode = os.stat(path).st_mode & 0o7777
        os.chmod(path, mode ^ 0o111)
        self.log.append(f"chmod {rel} {mode:o} -> {mode ^ 0o111:o}")

    @rule(index=_index, to_dir=_index, name=st.sampled_from(FILE_NAMES))
    def rename_file(self, index: int, to_dir: int, name: str) -> None:
        """Rename a file or symlink, maybe into another directory, maybe over another file."""
        files, links, dirs = tree(self.ctx)
        rel = pick([path for path in files + links if path not in PROTECTED], index)
        if rel is None:
            return
        target_dir = pick(["", *dirs], to_dir) or ""
        dest = f"{target_dir}/{name}" if target_dir else name
        if dest == rel:
            return
        os.replace(self.ctx / rel, self.ctx / dest)
        self.log.append(f"rename {rel} -> {dest}")

    @rule(index=_index, name=st.sampled_from(DIR_NAMES))
    def rename_dir(self, index: int, name: str) -> None:
        rel = pick(tree(self.ctx)[2], index)
        if rel is None:
            return
        dest = (self.ctx / rel).with_name(name)
        if dest.exists() or dest.is_symlink():
            return
        os.rename(self.ctx / rel, dest)
        self.log.append(f"rename dir {rel} -> {dest.relative_to(self.ctx)}")

    @rule(index=_index)
    def delete_file(self, index: int) -> None:
        files, links, _ = tree(self.ctx)
        rel = pick([path for path in files + links if path not in PROTECTED], index)
        if rel is None:
            return
        (self.ctx / rel).unlink()
        self.log.append(f"rm {rel}")

    @rule(index=_index)
    def delete_dir(self, index: int) -> None:
        rel = pick(tree(self.ctx)[2], index)
        if rel is None:
            return
        shutil.rmtree(self.ctx / rel)
        self.log.append(f"rm -r {rel}")

    @rule(index=_index, where=_index, name=st.sampled_from(FILE_NAMES))
    def hard_link(self, index: int, where: int, name: str) -> None:
        """A second name for a file in the context (a write through one changes both)."""
        files, _, dirs = tree(self.ctx)
        rel = pick(files, index)
        if rel is None:
            return
        target_dir = pick(["", *dirs], where) or ""
        dest = self.ctx / target_dir / name
        if dest.exists() or dest.is_symlink():
            return
        os.link(self.ctx / rel, dest)
        self.log.append(f"ln {rel} {dest.relative_to(self.ctx)}")

    @rule(index=_index, points_to=st.sampled_from(LINK_TARGETS))
    def file_to_symlink(self, index: int, points_to: str) -> None:
        files, _, _ = tree(self.ctx)
        rel = pick([path for path in files if path not in (*PROTECTED, ".dockerignore")], index)
        if rel is None:
            return
        path = self.ctx / rel
        path.unlink()
        path.symlink_to(points_to)
        self.log.append(f"replace {rel} by a symlink -> {points_to}")

    @rule(index=_index, points_to=st.sampled_from(LINK_TARGETS), atomic=st.booleans())
    def repoint_symlink(self, index: int, points_to: str, atomic: bool) -> None:
        links = [path for path in tree(self.ctx)[1] if path not in (*PROTECTED, ".dockerignore")]
        rel = pick(links, index)
        if rel is None:
            return
        path = self.ctx / rel
        old = os.readlink(path)
        if atomic:  # ln -sfn through a temporary name, as deploy tools do
            tmp = path.with_name(path.name + ".tmp~")
            tmp.symlink_to(points_to)
            os.replace(tmp, path)
        else:
            path.unlink()
            path.symlink_to(points_to)
        self.log.append(f"re-point {rel}: {old} -> {points_to}{' (atomic)' if atomic else ''}")

    @rule(link=st.booleans())
    def dockerfile_symlink(self, link: bool) -> None:
        """The Dockerfile becomes a symlink to another file of the context, or a file again."""
        dockerfile, target = self.ctx / "Dockerfile", self.ctx / DOCKERFILE_TARGET
        if link == dockerfile.is_symlink():
            return
        text = dockerfile.read_bytes()
        dockerfile.unlink()
        if link:
            if not target.exists():
                target.write_bytes(text)
            dockerfile.symlink_to(DOCKERFILE_TARGET)
            self.log.append(f"Dockerfile -> symlink to {DOCKERFILE_TARGET}")
        else:
            dockerfile.write_bytes(text)
            self.log.append("Dockerfile -> a file again")

    @rule(name=st.sampled_from(("Dockerfile", ".dockerignore")))
    def link_out_of_the_context(self, name: str) -> None:
        """The Dockerfile or .dockerignore becomes a symlink to a file outside the context:
        the digest reads through it, and no watched directory holds that file."""
        path, target = self.ctx / name, self.base / f"outside{name}"
        if path.is_symlink() and os.path.realpath(path) == os.path.realpath(target):
            return
        if not target.exists():
            target.write_bytes(path.read_bytes() if path.exists() else b"")
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)
        self.log.append(f"{name} -> symlink to {target.name} outside the context")

    @rule(name=st.sampled_from(("Dockerfile", ".dockerignore")), index=_index)
    def edit_outside(self, name: str, index: int) -> None:
        """Edit the file outside the context that a link may lead to."""
        target = self.base / f"outside{name}"
        if not target.exists():
            return
        text = DOCKERFILES[index % len(DOCKERFILES)] if name == "Dockerfile" else PATTERNS[index % len(PATTERNS)]
        target.write_text(text + ("\n" if name == ".dockerignore" else ""))
        self.log.append(f"write {target.name} {text!r}")

    @rule(text=st.sampled_from(DOCKERFILES))
    def edit_dockerfile(self, text: str) -> None:
        """Edit the Dockerfile (behind the link when it is one)."""
        (self.ctx / "Dockerfile").write_text(text)
        self.log.append(f"write Dockerfile {text!r}")

    @rule(patterns=st.lists(st.sampled_from(PATTERNS), max_size=3))
    def write_dockerignore(self, patterns: list[str]) -> None:
        text = "".join(pattern + "\n" for pattern in patterns)
        path = self.ctx / ".dockerignore"
        if path.is_symlink():
            path.unlink()
        path.write_text(text)
        self.log.append(f"write .dockerignore {text!r}")

    @rule()
    def delete_dockerignore(self) -> None:
        path = self.ctx / ".dockerignore"
        if path.exists() or path.is_symlink():
            path.unlink()
            self.log.append("rm .dockerignore")

    @rule(index=_index)
    def touch(self, index: int) -> None:
        """A touch: the stat data changes (an inotify event), the content does not."""
        rel = pick(tree(self.ctx)[0], index)
        if rel is None:
            return
        os.utime(self.ctx / rel)
        self.log.append(f"touch {rel}")

    @rule()
    def no_op(self) -> None:
        self.log.append("(nothing)")

    @rule()
    def wait(self) -> None:
        """Time passes: every file changed so far may now be trusted by a walk."""
        self.clock.wait()
        self.log.append("(time passes: what exists now is old enough to trust)")

    # --- checks ----------------------------------------------------------------------

    @rule(wait_first=st.booleans())
    def check_stat_cache(self, wait_first: bool) -> None:
        if wait_first:
            self.wait()
        self._check_stat_cache("drawn")

    @invariant()
    def stat_cache_agrees(self) -> None:
        if self.dense:
            self._check_stat_cache("after every step")

    def _check_stat_cache(self, when: str) -> None:
        """The stat-cached walk (no session) gives the fresh digest."""
        got = context_digest(str(self.ctx))
        fresh = fresh_digest(self.ctx)
        Totals.stat_checks += 1
        Totals.trusted_walks += got.cache_hits > 0
        assert got.digest == fresh, f"stale stat-cache digest ({when})\n{self._history()}"
        self.log.append(f"check stat cache ({when}): ok, {got.cache_hits} files vouched for")

    @invariant()
    def session_agrees(self) -> None:
        """After every step, the session's build records the fresh digest, and says cached
        only when that digest is the one recorded before."""
        before = self.builder.images.get(TAG)
        hits = self.session.stats()["resident_hits"]
        with cache_home(self.session_cache):
            result = self.session.build(BuildRequest(path=str(self.ctx), tags=[TAG], builder="digest"))
        fresh = fresh_digest(self.ctx)
        resident = self.session.stats()["resident_hits"] > hits
        last = self.builder.last
        Totals.builds += 1
        Totals.resident_hits += resident
        Totals.trusted_walks += not resident and last is not None and last.cache_hits > 0
        how = "answered from the watch" if resident else "walked"
        assert self.builder.images[TAG] == fresh, f"the session recorded a stale digest ({how})\n{self._history()}"
        changed = "changed" if before != fresh else "did not change"
        assert result.cached == (before == fresh), f"cached={result.cached}, the context {changed} ({how})\n" + (
            self._history()
        )


@pytest.fixture
def machine_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clock = RacyClock()
    monkeypatch.setattr(_hashing, "time", clock)
    config = Config(load_plugins=[])
    monkeypatch.setattr(CacheMachine, "workdir", tmp_path, raising=False)
    monkeypatch.setattr(CacheMachine, "config", config, raising=False)
    monkeypatch.setattr(CacheMachine, "pm", rtbuild.get_plugin_manager(config), raising=False)
    monkeypatch.setattr(CacheMachine, "clock", clock, raising=False)
    for name in ("stat_checks", "trusted_walks", "builds", "resident_hits"):
        monkeypatch.setattr(Totals, name, 0)


@pytest.mark.usefixtures("machine_env")
def test_no_cache_reports_a_stale_digest() -> None:
    run_state_machine_as_test(CacheMachine, settings=SETTINGS)
    # Not vacuous: both caches vouched for files and answered builds, not only fresh walks.
    # (Alone: about 350 and 1,000. After tests/kubernetes in the same process: 136 and
    # 743, from the same examples; why was not found. Both are far from vacuous.)
    assert Totals.trusted_walks > 100, "the stat caches rarely vouched for a file"
    assert Totals.resident_hits > 400, "builds were rarely answered from the watch"


# --- a Dockerfile or .dockerignore behind a link out of the context -------------------------
#
# The machine above found this one (shrunk to: link, build, edit the file behind the link,
# build): the digest reads both files through their links, but the watch only sees the
# context's directories, so the session answered the old digest and skipped the build.
# ResidentDigests now walks when either file leads out of the context.


@pytest.mark.parametrize(
    ("name", "old", "new"), [("Dockerfile", "FROM scratch\n", "FROM busybox\n"), (".dockerignore", "", "*.py\n")]
)
def test_a_file_behind_a_symlink_out_of_the_context_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "app.py").write_text("print()\n")
    shared = tmp_path / f"shared{name}"
    shared.write_text(old)
    (context / name).unlink(missing_ok=True)
    (context / name).symlink_to(shared)
    builder = DigestBuilder()
    config = Config(load_plugins=[])
    request = BuildRequest(path=str(context), tags=[TAG], builder="digest")
    with BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=builder) as session:
        assert not session.build(request).cached
        first = builder.images[TAG]
        shared.write_text(new)  # the same edit as `echo ... > ctx/Dockerfile`
        if fresh_digest(context) == first:
            pytest.fail("the edit behind the link does not change the digest: nothing to reproduce")
        if context_digest(str(context)).digest != fresh_digest(context):
            pytest.fail("the stat cache is stale too")
        again = session.build(request)
        assert builder.images[TAG] == fresh_digest(context), "the session kept the old digest"
        assert not again.cached
