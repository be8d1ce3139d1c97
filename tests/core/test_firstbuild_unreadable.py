"""A first build's hash that cannot read an entry of the context says so after the build
(ConcurrentDigest.unreadable): the engine's client met the same entry and may have built
without its contents (BuildKit's sends a file it cannot open as an empty one)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from rtbuild.context._walkerrors import ContextChanged
from rtbuild.enginekit import ConcurrentDigest, Inputs
from rtbuild.errors import BuildContextError

pytestmark = pytest.mark.usefixtures("isolated_cache")
IMAGE_ID = "sha256:" + "cd" * 32


def _finished(ctx: Path, exc: BaseException) -> ConcurrentDigest:
    def compute() -> Inputs:
        raise exc

    concurrent = ConcurrentDigest(str(ctx), str(ctx / "Dockerfile"), compute)
    concurrent.start()
    assert concurrent.finish(IMAGE_ID) is None
    return concurrent


def _from_oserror(code: int) -> BuildContextError:
    try:
        try:
            raise OSError(code, "nope")
        except OSError as exc:
            raise BuildContextError("cannot read ctx/secret: Permission denied", step="hash context") from exc
    except BuildContextError as error:
        return error


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENAMETOOLONG])
def test_an_entry_the_hash_could_not_read_is_the_builds_error(context: Path, code: int) -> None:
    error = _from_oserror(code)
    concurrent = _finished(context, error)
    assert concurrent.unreadable() is error
    assert concurrent.reason is not None and "hashing failed" in concurrent.reason


def test_a_context_that_never_held_still_or_another_failure_is_not(context: Path) -> None:
    try:
        raise ContextChanged(str(context / "f"), FileNotFoundError(errno.ENOENT, "gone"))
    except ContextChanged as changed:
        never_still = changed.error()
        never_still.__cause__ = changed
    assert _finished(context, never_still).unreadable() is None
    assert _finished(context, RuntimeError("bug")).unreadable() is None
    assert _finished(context, BuildContextError("no Dockerfile", step="hash context")).unreadable() is None
