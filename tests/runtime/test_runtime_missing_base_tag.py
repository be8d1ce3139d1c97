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
