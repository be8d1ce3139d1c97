"""A process forked while another thread of it held a session's (or a watch's) lock: the
child's copy of the lock stayed held for ever, and the child's first build in the session
hung (found by the session QA; a threaded service that forks workers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _processes import exit_code_in_fork
from rtbuild.context._resident import ResidentDigests


def _child_answers(digests: ResidentDigests, context: Path, held: object) -> int:
    """Fork while ``held`` (a lock) is taken by this thread, as another thread would hold
    it; the child asks for the digest and exits 0 if it got one within 20 s."""
    held.acquire()  # type: ignore[attr-defined]
    try:  # the child gets the lock as held; its holder does not exist there
        return exit_code_in_fork(
            lambda: 0 if digests.digest(str(context), str(context / "Dockerfile"), lambda: "walked") == "walked" else 2
        )
    finally:
        held.release()  # type: ignore[attr-defined]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_a_child_forked_while_the_session_lock_was_held_still_builds(context: Path) -> None:
    digests = ResidentDigests()
    try:
        assert digests.digest(str(context), str(context / "Dockerfile"), lambda: "walked") == "walked"
        assert _child_answers(digests, context, digests._lock) == 0
    finally:
        digests.close()


def test_a_child_forked_while_a_watch_lock_was_held_still_builds(context: Path) -> None:
    digests = ResidentDigests()
    try:
        digests.digest(str(context), str(context / "Dockerfile"), lambda: "walked")
        (watch,) = [w for w in digests._watches.values() if w is not None]
        assert _child_answers(digests, context, watch._lock) == 0
    finally:
        digests.close()
