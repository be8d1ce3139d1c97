"""``rtbuild prune``'s shared policy (select_prunable) and its local part (stat caches, logs,
locks), without an engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rtbuild import PrunePolicy, RuntimeBuilder
from rtbuild._observe.local_state import LOCK_MIN_AGE_S, prune_local
from rtbuild.context import hash_context
from rtbuild.context._statcache import cache_format
from rtbuild.enginekit import PruneImage, select_prunable
from rtbuild.errors import CapabilityError
from rtbuild.testing import FakeBuilder

NOW = 1_800_000_000.0
LABEL = {"org.rtbuild.input-digest": "x"}
DAY = 86400.0


def _img(
    id_: str, *tags: str, age_days: float, labels: dict[str, str] | None = None, in_use: bool = False
) -> PruneImage:
    return PruneImage(id_, tags, NOW - age_days * DAY, 100, LABEL if labels is None else labels, in_use)


def _names(items: list[object]) -> list[str]:
    return [item.name for item in items]  # type: ignore[attr-defined]


IMAGES = [
    _img("a1", "reg/a:1", age_days=10, in_use=True),
    _img("a2", "reg/a:2", age_days=8),
    _img("a3", "reg/a:3", age_days=5),
    _img("a4", "reg/a:4", "reg/a:latest", age_days=1),
    _img("b1", "reg/b:1", age_days=20),
    _img("p1", "reg/a:plain", age_days=30, labels={"maintainer": "me"}),
    _img("d1", age_days=3),
    _img("d2", age_days=3, in_use=True),
]


def test_keep_newest_per_repository_never_in_use_never_unlabelled() -> None:
    items = select_prunable(IMAGES, PrunePolicy(keep=1, now=NOW))
    # dangling first (d2 is in use), then by age; a4 (newest) and b1 (newest of reg/b) stay
    assert _names(items) == ["d1", "reg/a:2", "reg/a:3"]
    assert [item.kind for item in items] == ["dangling", "image", "image"]
    assert all(item.id not in ("a1", "p1", "a4", "b1") for item in items)


def test_older_than_alone_and_combined() -> None:
    assert _names(select_prunable(IMAGES, PrunePolicy(older_than_s=7 * DAY, now=NOW))) == ["reg/b:1", "reg/a:2"]
    combined = select_prunable(IMAGES, PrunePolicy(keep=2, older_than_s=4 * DAY, now=NOW))
    assert _names(combined) == ["reg/a:2"]  # a3 is #2 newest: kept; d1 (dangling) is only 3 days old


def test_without_keep_or_age_only_dangling_go() -> None:
    assert _names(select_prunable(IMAGES, PrunePolicy(now=NOW))) == ["d1"]


def test_repositories_narrow_and_leave_dangling_alone() -> None:
    assert _names(select_prunable(IMAGES, PrunePolicy(keep=0, repositories=("reg/b",), now=NOW))) == ["reg/b:1"]


def test_an_image_with_several_tags_is_deleted_with_its_last_tag() -> None:
    items = select_prunable(IMAGES, PrunePolicy(keep=0, repositories=("reg/a",), now=NOW))
    by_name = {item.name: item for item in items}
    assert by_name["reg/a:4"].kind == "tag" and by_name["reg/a:4"].size == 0
    assert by_name["reg/a:latest"].kind == "image" and by_name["reg/a:latest"].size == 100
    # a tag in another repository keeps the image: only the selected tag goes
    shared = [_img("s", "reg/x:1", "reg/y:1", age_days=2), _img("t", "reg/x:2", age_days=1)]
    (only,) = select_prunable(shared, PrunePolicy(keep=1, repositories=("reg/x",), now=NOW))
    assert (only.name, only.kind, only.size) == ("reg/x:1", "tag", 0)


def test_builders_without_prune_refuse() -> None:
    builder: RuntimeBuilder = FakeBuilder()
    assert builder.capabilities.prune is False
    with pytest.raises(CapabilityError, match="cannot prune"):
        builder.prune(PrunePolicy())


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))
    return tmp_path


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_local_state(xdg: Path) -> None:
    live_ctx = xdg / "live"
    gone_ctx = xdg / "gone"
    for ctx in (live_ctx, gone_ctx):
        ctx.mkdir()
        (ctx / "f").write_text("1")
        hash_context(str(ctx))
    caches = sorted((xdg / "XDG_CACHE_HOME" / "rtbuild" / "context").glob("*.marshal"))
    assert len(caches) == 2
    (gone_ctx / "f").unlink()
    gone_ctx.rmdir()
    logs = xdg / "XDG_STATE_HOME" / "rtbuild" / "logs"
    logs.mkdir(parents=True)
    (logs / "old.log").write_text("old")
    (logs / "new.log").write_text("new")
    _age(logs / "old.log", 15 * DAY)
    locks = xdg / "XDG_CACHE_HOME" / "rtbuild" / "locks"
    locks.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (locks / "dead.lock").write_text(json.dumps({"pid": int(dead.stdout), "tag": "x"}))
    (locks / "mine.lock").write_text(json.dumps({"pid": os.getpid(), "tag": "y"}))
    (locks / "fresh.lock").write_text(json.dumps({"pid": int(dead.stdout), "tag": "z"}))
    _age(locks / "dead.lock", LOCK_MIN_AGE_S + 60)
    _age(locks / "mine.lock", LOCK_MIN_AGE_S + 60)

    planned = prune_local(PrunePolicy(dry_run=True))
    kinds = sorted((item.kind, Path(item.name).name) for item in planned)
    stale = [c.name for c in caches if (cache_format(c.read_bytes()) or ("", ""))[1] == str(gone_ctx)]
    assert kinds == sorted([("stat-cache", stale[0]), ("log", "old.log"), ("lock", "dead.lock")])
    assert all(Path(item.name).exists() for item in planned)  # dry run: nothing removed

    done = prune_local(PrunePolicy())
    assert all(item.removed and not Path(item.name).exists() for item in done)
    assert (logs / "new.log").exists() and (locks / "mine.lock").exists() and (locks / "fresh.lock").exists()
    assert len(list((xdg / "XDG_CACHE_HOME" / "rtbuild" / "context").glob("*.marshal"))) == 1


def test_a_log_a_running_build_still_writes_is_kept(xdg: Path) -> None:
    """A build holds its log open; a long step printing nothing leaves it unmodified past
    --older-than, and prune removed it (the build's error then named a log that was gone)."""
    logs = xdg / "XDG_STATE_HOME" / "rtbuild" / "logs"
    logs.mkdir(parents=True)
    running, finished = logs / "build-running.log", logs / "build-finished.log"
    for log in (running, finished):
        log.write_text("#5 [2/3] RUN make\n")
        _age(log, 15 * DAY)
    with running.open("a") as held:  # the build (another process here: its open descriptor)
        writer = subprocess.Popen(["sleep", "60"], stdout=held)
    try:
        for policy in (PrunePolicy(dry_run=True), PrunePolicy(older_than_s=60.0)):
            items = {Path(item.name).name: item for item in prune_local(policy)}
            assert sorted(items) == ["build-finished.log", "build-running.log"]  # the running one: kept
            kept = items["build-running.log"]
            assert not kept.removed and kept.error is None and kept.reason.endswith("; kept: a running build writes it")
        assert running.exists() and not finished.exists()
    finally:
        writer.kill()
        writer.wait()
    assert [Path(item.name).name for item in prune_local(PrunePolicy())] == ["build-running.log"]
