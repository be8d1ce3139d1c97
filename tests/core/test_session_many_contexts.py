"""A session that has built many contexts keeps at most ``max_contexts()`` watches (a quarter
of the open-files limit: each holds a descriptor on the mount table), all in ONE inotify
instance. A user has 128 instances by default (``fs.inotify.max_user_instances``) for all
of its programs: a session given 160 contexts once held 127, and every other program of the
same user (another session, an editor, ``tail -f``) then failed to watch anything."""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path

from rtbuild.context._resident import ResidentDigests, max_contexts


def _descriptors(kind: str) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += kind in os.readlink(f"/proc/self/fd/{fd}")
    return count


def _inotify_descriptors() -> int:
    return _descriptors("inotify")


def _watched() -> int:
    return _descriptors("mountinfo")  # one per watch


def _contexts(tmp_path: Path, count: int) -> list[Path]:
    out = []
    for index in range(count):
        context = tmp_path / f"ctx{index}"
        context.mkdir()
        (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
        (context / "a").write_text("v1\n")
        out.append(context)
    return out


def _ask(digests: ResidentDigests, context: Path) -> str:
    return digests.digest(str(context), str(context / "Dockerfile"), lambda: (context / "a").read_text())


def test_watches_are_bounded_and_the_least_recently_used_goes(tmp_path: Path) -> None:
    contexts = _contexts(tmp_path, max_contexts() + 8)
    gc.collect()  # earlier tests' unclosed watches: closed now, not halfway through the count
    gc.disable()
    before, watched = _inotify_descriptors(), _watched()
    digests = ResidentDigests()
    try:
        for context in contexts:
            assert _ask(digests, context) == "v1\n"
        assert _watched() - watched == max_contexts()
        assert _inotify_descriptors() - before == 1  # shared by every watch of the session
        hits = digests.hits
        assert _ask(digests, contexts[-1]) == "v1\n" and digests.hits == hits + 1  # still watched
        walks = digests.walks
        assert _ask(digests, contexts[0]) == "v1\n" and digests.walks == walks + 1  # evicted: walked
        assert _watched() - watched == max_contexts()
        assert _inotify_descriptors() - before == 1
    finally:
        digests.close()
        gc.enable()
    assert _inotify_descriptors() == before and _watched() == watched


def test_an_evicted_context_changed_meanwhile_is_never_answered_from_before(tmp_path: Path) -> None:
    """Its watch is gone, so a change made while it is not watched raises no event: the
    digest from before must not be reused by the next watch (whose generation starts over)."""
    contexts = _contexts(tmp_path, max_contexts() + 1)
    digests = ResidentDigests()
    try:
        first = contexts[0]
        assert _ask(digests, first) == "v1\n"
        for context in contexts[1:]:  # evicts the first
            _ask(digests, context)
        (first / "a").write_text("v2\n")
        assert _ask(digests, first) == "v2\n"
        assert _ask(digests, first) == "v2\n"  # watched again, and answered from the new watch
    finally:
        digests.close()
