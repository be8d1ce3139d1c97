"""A rebuild labels its image with a digest hashed before the engine read the context: a
change in between (even one written back later) must withdraw the label's claim."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rtbuild.context import context_digest
from rtbuild.enginekit import DIGEST_LABEL, carries_digest, confirm_label, record_digest, withdraw_digest

IMAGE_ID = "sha256:" + "cd" * 32
DIGEST = "k1:" + "12" * 16


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (root / "app.py").write_text("v1")
    (root / "sub" / "deep" / "mod.py").write_text("module")
    (root / "junk").mkdir()
    (root / "junk" / "x.log").write_text("ignored")
    (root / ".dockerignore").write_text("junk\n")
    return root


def test_an_untouched_context_is_unchanged_since_its_walk(ctx: Path) -> None:
    walked = context_digest(str(ctx))
    assert walked.changed_since_walk() is None
    assert walked.changed_since_walk() is None  # asking walks again, and changes nothing


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda root: (root / "app.py").write_text("v1"), "app.py"),  # written back as it was
        (lambda root: (root / "app.py").write_text("v2"), "app.py"),
        (lambda root: os.chmod(root / "app.py", 0o600), "app.py"),
        (lambda root: (root / "sub" / "deep" / "new.py").write_text("n"), "sub/deep"),
        (lambda root: (root / "sub" / "deep" / "mod.py").unlink(), "sub/deep"),
        (lambda root: os.rename(root / "app.py", root / "app2.py"), "."),
        (lambda root: (root / "Dockerfile").write_text("FROM scratch\n"), "Dockerfile"),
        (lambda root: (root / ".dockerignore").write_text("junk\n"), ".dockerignore"),
    ],
    ids=["rewrite-same", "edit", "chmod", "new-file", "delete", "rename", "dockerfile", "dockerignore"],
)
def test_every_kind_of_change_shows(ctx: Path, change: Any, expected: str) -> None:
    walked = context_digest(str(ctx))
    change(ctx)
    changed = walked.changed_since_walk()
    assert changed is not None
    assert changed.endswith(expected)


def test_a_path_created_and_removed_again_shows(ctx: Path) -> None:
    walked = context_digest(str(ctx))
    (ctx / "sub" / "deep" / "tmp").write_text("t")
    (ctx / "sub" / "deep" / "tmp").unlink()
    assert walked.changed_since_walk() == "sub/deep"
    walked = context_digest(str(ctx))
    (ctx / "top").write_text("t")
    (ctx / "top").unlink()
    assert walked.changed_since_walk() == "."  # only the root's own timestamps moved


def test_a_change_the_engine_never_receives_does_not_count(ctx: Path) -> None:
    walked = context_digest(str(ctx))
    (ctx / "junk" / "x.log").write_text("still ignored")
    (ctx / "junk" / "y.log").write_text("new, ignored")
    assert walked.changed_since_walk() is None


def test_a_dockerfile_outside_the_context_counts(ctx: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM scratch\n")
    walked = context_digest(str(ctx), ["-f", str(outside)])
    assert walked.changed_since_walk() is None
    outside.write_text("FROM scratch\n")
    assert walked.changed_since_walk() == str(outside)


def _labelled(digest: str, image_id: str = IMAGE_ID) -> dict[str, Any]:
    return {"Id": image_id, "Config": {"Labels": {DIGEST_LABEL: digest}}}


def test_a_withdrawn_label_no_longer_carries_its_digest() -> None:
    assert carries_digest(_labelled(DIGEST), DIGEST)
    assert withdraw_digest(IMAGE_ID, DIGEST)
    assert not carries_digest(_labelled(DIGEST), DIGEST)
    # Only that image: another image with the same label still carries it.
    assert carries_digest(_labelled(DIGEST, "sha256:" + "ef" * 32), DIGEST)
    # A build that proves the image holds those inputs lifts the withdrawal.
    assert record_digest(IMAGE_ID, DIGEST)
    assert carries_digest(_labelled(DIGEST), DIGEST)


def test_a_withdrawal_is_not_a_recorded_digest() -> None:
    assert withdraw_digest(IMAGE_ID, DIGEST)
    assert not carries_digest(_labelled("recorded"), DIGEST)


def test_confirm_label_withdraws_and_reports(ctx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rtbuild import get_reporter

    events: list[tuple[str, dict[str, Any]]] = []
    reporter = get_reporter()
    monkeypatch.setattr(reporter, "event", lambda kind, **fields: events.append((kind, fields)))
    walked = context_digest(str(ctx))
    assert confirm_label(walked, IMAGE_ID, DIGEST) is None
    assert carries_digest(_labelled(DIGEST), DIGEST)
    assert events == []
    (ctx / "app.py").write_text("v1")
    reason = confirm_label(walked, IMAGE_ID, DIGEST)
    assert reason is not None and "app.py" in reason
    assert not carries_digest(_labelled(DIGEST), DIGEST)
    assert [kind for kind, _ in events] == ["digest_withdrawn"]
    assert "withdrawn" in events[0][1]["message"]


def test_a_withdrawal_outlives_many_recorded_digests() -> None:
    from rtbuild.enginekit._records import MAX_DIGESTS

    assert withdraw_digest(IMAGE_ID, DIGEST)
    for index in range(MAX_DIGESTS * 2):
        assert record_digest(IMAGE_ID, f"k1:{index:032x}")
    assert not carries_digest(_labelled(DIGEST), DIGEST)
    assert carries_digest(_labelled("recorded"), f"k1:{MAX_DIGESTS * 2 - 1:032x}")
