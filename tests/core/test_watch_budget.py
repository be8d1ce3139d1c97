"""A session watches at most a share of ``fs.inotify.max_user_watches`` (the user's limit
for all of its programs, and root's daemons' when rtbuild runs as root): a session watching
hundreds of large contexts took every watch, and other programs' watches failed. A context
that does not fit is walked instead (never a wrong answer); one forgotten frees its share."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.context import _hub
from rtbuild.context._resident import ResidentDigests


def _context(root: Path, dirs: int) -> Path:
    for index in range(dirs):
        (root / f"d{index}").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    return root


def test_the_budget_is_a_quarter_of_the_system_limit() -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    assert _hub.watch_budget() == limit // 4


def test_a_context_beyond_the_session_s_share_is_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_hub, "watch_budget", lambda: 10, raising=False)
    digests = ResidentDigests()
    try:
        small = _context(tmp_path / "small", 5)  # 6 directories
        big = _context(tmp_path / "big", 8)  # 9: over the 4 left
        assert digests.digest(str(small), str(small / "Dockerfile"), lambda: "s1") == "s1"
        assert digests.digest(str(small), str(small / "Dockerfile"), lambda: "again") == "s1"  # watched
        assert digests._hub is not None and len(digests._hub._owners) == 6
        assert digests.digest(str(big), str(big / "Dockerfile"), lambda: "b1") == "b1"
        assert digests.digest(str(big), str(big / "Dockerfile"), lambda: "b2") == "b2"  # walked each time
        why = digests.why_not_watched(str(big))
        assert why is not None and "max_user_watches (10 directories)" in why, why
        assert len(digests._hub._owners) == 6  # the refused context holds none
        digests._forget(str(small))
        third = _context(tmp_path / "third", 8)
        assert digests.digest(str(third), str(third / "Dockerfile"), lambda: "t1") == "t1"
        assert digests.digest(str(third), str(third / "Dockerfile"), lambda: "again") == "t1"  # fits now
    finally:
        digests.close()
