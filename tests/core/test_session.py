"""BuildSession: resident no-ops answer from an inotify watch, and every change is seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildResult, BuildSession, Config, RuntimeBuilder
from rtbuild.context import context_digest


class DigestBuilder(RuntimeBuilder):
    """Builds "images" as records of the context digest; an equal digest is a no-op."""

    name = "digest"
    capabilities = rtbuild.BuilderCapabilities()

    def __init__(self) -> None:
        self.images: dict[str, str] = {}
        self.builds = 0

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("build_request is the entry point")

    def build_request(self, request: BuildRequest) -> BuildResult:
        digest = context_digest(request.path).digest
        cached = all(self.images.get(tag) == digest for tag in request.tags)
        if not cached:
            self.builds += 1
            for tag in request.tags:
                self.images[tag] = digest
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.0, cached=cached)

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return image_name in self.images


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuildSession:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = Config(load_plugins=[])
    return BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=DigestBuilder())


def _build(session: BuildSession, context: Path) -> BuildResult:
    return session.build(BuildRequest(path=str(context), tags=["app:1"], builder="digest"))


def test_unchanged_context_answers_from_the_watch(session: BuildSession, context: Path) -> None:
    assert not _build(session, context).cached
    assert session.stats() == {"resident_hits": 0, "walks": 1}
    for _ in range(3):
        assert _build(session, context).cached
    assert session.stats() == {"resident_hits": 3, "walks": 1}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: (c / "app.py").write_text("changed"), id="edit"),
        pytest.param(lambda c: os.chmod(c / "app.py", 0o755), id="chmod"),
        pytest.param(lambda c: (c / "app.py").rename(c / "main.py"), id="rename"),
        pytest.param(lambda c: (c / "app.py").unlink(), id="delete"),
        pytest.param(
            lambda c: (c / "new" / "deep").mkdir(parents=True) or (c / "new/deep/x").write_text("x"), id="new-dir"
        ),
        pytest.param(lambda c: (c / ".dockerignore").write_text("*.py\n"), id="dockerignore"),
        pytest.param(lambda c: (c / "Dockerfile").write_text("FROM other\n"), id="dockerfile"),
    ],
)
def test_every_change_is_seen(session: BuildSession, context: Path, change: object) -> None:
    (context / "app.py").write_text("original")
    first = _build(session, context)
    assert not first.cached and _build(session, context).cached
    change(context)  # type: ignore[operator]
    after = _build(session, context)
    assert not after.cached, "a changed context was reported unchanged"
    assert session.stats()["walks"] == 2


def test_a_file_in_a_new_directory_changed_later_is_seen(session: BuildSession, context: Path) -> None:
    _build(session, context)
    (context / "pkg").mkdir()
    (context / "pkg" / "mod.py").write_text("v1")
    assert not _build(session, context).cached  # the new dir is walked and then watched
    assert _build(session, context).cached
    (context / "pkg" / "mod.py").write_text("v2")
    assert not _build(session, context).cached


def test_a_closed_session_refuses_to_build(session: BuildSession, context: Path) -> None:
    session.close()
    with pytest.raises(rtbuild.AgentRuntimeBuildError, match="closed"):
        _build(session, context)
