"""A digest record beside an image that cannot be read whole (emptied or cut short by a
crash, a bad block, another user's 0600 file, a directory or FIFO in its place) may have
held a withdrawal of the image's label: the label is then not trusted. Before, any such
record read as 'no record', the label's claim stood, and the next build reused an image
that did not hold its inputs (reproduced on Docker: 'no input changed: reusing'); a FIFO
hung every build of the image."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from _processes import exit_code_in_fork
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.enginekit import DIGEST_LABEL, carries_digest, recorded_digests, withdraw_digest
from rtbuild.enginekit._labelcheck import confirm_label
from rtbuild.enginekit._records import record_path

IMAGE = "sha256:" + "ab" * 32
DIGEST = "k1:" + "5" * 32


class _Warnings(Reporter):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def event(self, kind: str, **fields: object) -> None:
        if kind == "warning":
            self.warnings.append(str(fields.get("message")))


def _info(label: str = DIGEST) -> dict[str, object]:
    return {"Id": IMAGE, "Config": {"Labels": {DIGEST_LABEL: label}}}


def _withdrawn(isolated_cache: Path) -> Path:
    assert withdraw_digest(IMAGE, DIGEST)
    path = record_path(IMAGE)
    assert path is not None and not carries_digest(_info(), DIGEST)
    return path


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:9])  # '!k1:55555': a withdrawal of no digest


def _garbled(path: Path) -> None:
    path.write_bytes(b"!k1:\xe1\xba\x00\x00")


def _zeros(path: Path) -> None:
    path.write_bytes(b"\0" * 4096)  # what a power loss leaves of a file's last blocks


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("damage", [_empty, _cut_short, _garbled, _zeros, _directory, _fifo])
def test_a_damaged_record_never_lets_a_label_stand(isolated_cache: Path, damage: Callable[[Path], None]) -> None:
    path = _withdrawn(isolated_cache)
    damage(path)
    reporter = _Warnings()
    with use_reporter(reporter):
        assert exit_code_in_fork(lambda: 0 if not carries_digest(_info(), DIGEST) else 3) == 0  # a FIFO: no hang
        assert not carries_digest(_info(), DIGEST)
    warnings = reporter.warnings
    assert warnings and str(path) in warnings[-1] and "damaged" in warnings[-1]
    assert recorded_digests(IMAGE) == []
    # A withdrawal written now replaces it; the label stays withdrawn.
    if damage is not _directory:
        assert withdraw_digest(IMAGE, DIGEST) and not carries_digest(_info(), DIGEST)


def test_another_users_record_is_not_trusted(isolated_cache: Path) -> None:
    """A record written by root (mkstemp: mode 0600), read by the user: a withdrawal nobody
    can read. Checked in a child that drops to another user (rtbuild under sudo, then not)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to write a record another user cannot read")
    path = _withdrawn(isolated_cache)
    path.chmod(0o600)
    for directory in (isolated_cache, *path.parents):
        if str(directory).startswith(str(isolated_cache.parent)):
            directory.chmod(0o755)

    def as_nobody() -> int:
        os.setgid(65534)
        os.setuid(65534)
        return 0 if not carries_digest(_info(), DIGEST) else 3

    assert exit_code_in_fork(as_nobody) == 0


class _Unchanged:
    @staticmethod
    def changed_since_walk() -> None:
        return None


def test_an_identical_rebuild_repairs_the_record(isolated_cache: Path) -> None:
    """A rebuild whose context held still gets the same image ID: the damaged record goes,
    or every later build of the image would be built again (and warned about)."""
    path = _withdrawn(isolated_cache)
    _empty(path)
    assert confirm_label(_Unchanged(), IMAGE, DIGEST) is None
    assert not path.exists() and carries_digest(_info(), DIGEST)
    # A whole record (a withdrawal of another build's label) is left alone.
    assert withdraw_digest(IMAGE, DIGEST)
    assert confirm_label(_Unchanged(), IMAGE, DIGEST) is None
    assert recorded_digests(IMAGE) == ["!" + DIGEST]
