"""A base image's ONBUILD triggers run in the child's build: what they fetch counts too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rtbuild.enginekit import compute_inputs


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))


class Base:
    def __init__(self, onbuild: list[str] | None) -> None:
        self.onbuild = onbuild

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        return {"Id": "sha256:" + "ab" * 32, "Config": {"OnBuild": self.onbuild, "Labels": None}}


def _inputs(onbuild: list[str] | None, build_args: dict[str, str] | None = None) -> Any:
    return compute_inputs(
        context_digest="c",
        dockerfile_text="FROM example/base:1\nCOPY . /app\n",
        build_args=build_args or {},
        labels={},
        platform=None,
        target=None,
        extra_build_args=[],
        api=Base(onbuild),
    )


@pytest.mark.parametrize(
    "triggers",
    [
        ["ADD https://example.invalid/a.tgz /a.tgz"],
        ["ADD https://github.com/moby/buildkit.git /src"],
        ["COPY . /app", "COPY --from=example/tools:2 /bin/tool /bin/tool"],
        ["ARG SRC", "ADD $SRC /x"],  # unresolvable: counts as remote
    ],
    ids=["add-url", "add-git", "copy-from-image", "unresolved"],
)
def test_triggers_the_digest_cannot_see_turn_the_skip_off(triggers: list[str]) -> None:
    assert _inputs(triggers) is None


@pytest.mark.parametrize("triggers", [None, [], ["COPY . /app", "RUN make"]], ids=["null", "empty", "local"])
def test_triggers_that_read_only_the_context_keep_the_digest(triggers: list[str] | None) -> None:
    inputs = _inputs(triggers)
    assert inputs is not None and inputs.digest.startswith("k1:")
