"""The watches of one session share one inotify instance (rtbuild.context._hub). The kernel
gives a directory watched by two contexts (one inside the other) ONE watch descriptor: an
event in it must move both, closing one must keep the other's events flowing, and a lost-events
marker (IN_Q_OVERFLOW) must move every watch."""

from __future__ import annotations

import os
from pathlib import Path

from _processes import exit_code_in_fork
from rtbuild.context._hub import WatchHub
from rtbuild.context._resident import ResidentDigests
from rtbuild.context._watch import ContextWatch, try_watch


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    outer = tmp_path / "outer"
    inner = outer / "inner"
    (inner / "sub").mkdir(parents=True)
    (inner / "sub" / "f").write_text("v1\n")
    return outer, inner


def _watch(root: Path, hub: WatchHub) -> ContextWatch:
    watch, why = try_watch(str(root), hub=hub)
    assert watch is not None, why
    watch.rewatch()
    return watch


def test_an_edit_in_a_shared_directory_moves_both_watches(tmp_path: Path) -> None:
    outer, inner = _tree(tmp_path)
    hub = WatchHub()
    try:
        a, b = _watch(outer, hub), _watch(inner, hub)
        shared = set(a._wds) & set(b._wds)
        assert shared, "the kernel gave the shared directories one descriptor each"
        ga, gb = a.generation, b.generation
        (inner / "sub" / "f").write_text("v2\n")
        assert b.generation != gb  # drains the queue for both
        assert a.generation != ga  # counted for a when b drained
        ga, gb = a.generation, b.generation
        assert (a.generation, b.generation) == (ga, gb)  # nothing since
    finally:
        hub.close()


def test_closing_one_watch_keeps_the_other_s_events_flowing(tmp_path: Path) -> None:
    outer, inner = _tree(tmp_path)
    hub = WatchHub()
    try:
        a, b = _watch(outer, hub), _watch(inner, hub)
        b.close()  # must not rm_watch the descriptors a owns too
        ga = a.generation
        (inner / "sub" / "f").write_text("v2\n")
        assert a.generation != ga and not a.broken
        ga = a.generation
        (inner / "sub" / "new").write_text("x")
        assert a.generation != ga
        b2 = _watch(inner, hub)  # watched again: events reach it
        gb = b2.generation
        os.unlink(inner / "sub" / "new")
        assert b2.generation != gb
        a.close()  # the last owner: its descriptors go
        ga = b2.generation
        (inner / "sub" / "f").write_text("v3\n")
        assert b2.generation != ga
        assert not hub._owners or all(hub._owners.values())
    finally:
        hub.close()


def test_a_directory_removed_leaves_both_watches(tmp_path: Path) -> None:
    outer, inner = _tree(tmp_path)
    hub = WatchHub()
    try:
        a, b = _watch(outer, hub), _watch(inner, hub)
        (inner / "sub" / "f").unlink()
        (inner / "sub").rmdir()
        a.generation, b.generation  # noqa: B018 - drains (IN_IGNORED for sub)
        assert str(inner / "sub") not in a._wds.values() and str(inner / "sub") not in b._wds.values()
    finally:
        hub.close()


def test_an_overflow_moves_every_watch(tmp_path: Path) -> None:
    outer, inner = _tree(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    hub = WatchHub()
    try:
        watches = [_watch(outer, hub), _watch(inner, hub), _watch(other, hub)]
        before = [w.generation for w in watches]
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        target = inner / "sub" / "f"
        with target.open("w") as out:  # one event per write; the kernel merges only identical tail events
            for index in range(2 * limit + 10):
                out.write("x")
                out.flush()
                if index % 2:
                    os.utime(target)
        assert all(w.generation != g for w, g in zip(watches, before, strict=True))
        assert all(w.overflows == 1 for w in watches), [w.overflows for w in watches]
        assert watches[2].events >= 1  # nothing of its own happened: the overflow moved it
    finally:
        hub.close()


def test_a_hundred_contexts_in_a_session_use_one_inotify_descriptor(tmp_path: Path) -> None:
    def inotify_fds() -> set[str]:
        out = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                if "inotify" in os.readlink(f"/proc/self/fd/{fd}"):
                    out.add(fd)
            except OSError:
                pass
        return out

    before = inotify_fds()
    digests = ResidentDigests()
    contexts = []
    try:
        for index in range(100):
            context = tmp_path / f"c{index}"
            context.mkdir()
            (context / "Dockerfile").write_text("FROM scratch\n")
            contexts.append(context)
            assert digests.digest(str(context), str(context / "Dockerfile"), lambda i=index: i) == index
        assert len(inotify_fds() - before) == 1
        hits = digests.hits
        for index, context in enumerate(contexts):  # every one still answered from its watch
            assert digests.digest(str(context), str(context / "Dockerfile"), lambda: -1) == index
        assert digests.hits == hits + 100
        (contexts[50] / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
        assert digests.digest(str(contexts[50]), str(contexts[50] / "Dockerfile"), lambda: -1) == -1
        assert digests.digest(str(contexts[51]), str(contexts[51] / "Dockerfile"), lambda: -1) == 51
    finally:
        digests.close()
    assert inotify_fds() == before


def test_a_forked_child_never_removes_or_drains_its_parent_s_shared_watches(tmp_path: Path) -> None:
    """The child holds a copy of the session's shared descriptor: closing its watches there
    must not rm_watch them (the instance is the parent's too) nor read the parent's events."""
    outer, inner = _tree(tmp_path)
    (outer / "Dockerfile").write_text("FROM scratch\n")
    digests = ResidentDigests()
    ask = lambda value: digests.digest(str(outer), str(outer / "Dockerfile"), lambda: value)  # noqa: E731
    try:
        assert ask("v1") == "v1" and ask("other") == "v1"
        (watch,) = [w for w in digests._watches.values() if w is not None]

        def closes() -> int:
            if ask("walked") != "walked":  # the parent's watch is not the child's: a walk
                return 2
            digests.close()  # closes the child's copies: no rm_watch in the parent's instance
            return 0

        def edits() -> int:
            (inner / "sub" / "f").write_text("child\n")  # an event the parent must still read
            return 0 if ask("walked") == "walked" else 2

        assert exit_code_in_fork(closes) == 0
        assert ask("other") == "v1", "the child's close removed (IN_IGNORED) the parent's watches"
        assert exit_code_in_fork(edits) == 0
        assert ask("v2") == "v2", "the parent answered a change made by its child from its watch"
        assert ask("other") == "v2" and not watch.broken
        (inner / "sub" / "f").write_text("parent\n")
        assert ask("v3") == "v3"
    finally:
        digests.close()


def test_a_child_forked_while_the_hub_lock_was_held_still_watches(tmp_path: Path) -> None:
    outer, _inner = _tree(tmp_path)
    (outer / "Dockerfile").write_text("FROM scratch\n")
    digests = ResidentDigests()
    try:
        digests.digest(str(outer), str(outer / "Dockerfile"), lambda: "walked")
        hub = digests._hub
        assert hub is not None
        ask = lambda: digests.digest(str(outer), str(outer / "Dockerfile"), lambda: "w")  # noqa: E731
        with hub._lock:
            code = exit_code_in_fork(lambda: 0 if ask() == "w" else 2)
        assert code == 0
    finally:
        digests.close()
