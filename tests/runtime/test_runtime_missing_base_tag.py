"""A base whose tag its registry does not have (HTTP 404) is named as missing, not as one to
`docker pull` (which fails the same way), before the build that will fail on it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rtbuild import Reporter
from rtbuild._framework.config import Config
from rtbuild._framework.progress import use_reporter
from rtbuild.runtime._basedigest import registry_base_id

pytestmark = [pytest.mark.registry]


class _Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"event": kind, **fields})


def test_a_tag_its_registry_does_not_have_is_named_missing(registry: Any) -> None:
    base = registry.ref(f"rt-test/absent-{uuid.uuid4().hex[:8]}") + ":nope"
    recorder = _Recorder()
    with use_reporter(recorder):
        assert registry_base_id(base, Config(load_plugins=[])) is None
    messages = [str(e["message"]) for e in recorder.events if e["event"] == "base_unresolved"]
    assert len(messages) == 1 and "is not in its registry" in messages[0] and "HTTP 404" in messages[0]
    assert "docker pull" not in messages[0]


@pytest.mark.engine
def test_the_build_that_fails_on_it_blames_the_base(docker_engine: str, registry: Any, tmp_path: Any) -> None:
    """The engine's failure came blamed on the builder, with its hint to 'build or load the
    base image locally first (rtbuild exists IMAGE --pull)', which fails the same way."""
    from rtbuild._framework.plugins import get_plugin_manager
    from rtbuild.errors import BuildFailedError
    from rtbuild.runtime import SourcePayload
    from rtbuild.runtime._build import build_runtime_image

    base = registry.ref(f"rt-test/absent-{uuid.uuid4().hex[:8]}") + ":nope"
    (tmp_path / "pay").mkdir()
    (tmp_path / "pay" / "a").write_text("a\n")
    config = Config(load_plugins=[])
    payloads = [SourcePayload.directory(tmp_path / "pay", "/opt/pay")]
    repo = f"rtbuild-test/rt-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BuildFailedError) as caught:
        build_runtime_image(config, base, [], repo=repo, payloads=payloads, pm=get_plugin_manager(config))
    error = caught.value
    assert error.blame == f"base image {base}"
    assert error.hint is not None and "not in its registry" in error.hint and "--base" in error.hint
    assert "rtbuild exists" not in error.hint
