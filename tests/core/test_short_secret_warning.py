"""A secret too short to mask (under 4 characters: masking every occurrence of so few would
hide nothing and break the log) is warned about by its id or name, never its value. Such a
``--secret`` or secret-looking build arg was shown unmasked by a step that printed it,
without a word, while the build-arg warning said its value was masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildSecret, Config, run_build
from rtbuild._framework.progress import use_reporter
from rtbuild.testing import FakeBuilder


class _Events(rtbuild.Reporter):
    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "warning":
            self.warnings.append(fields)


def _warned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, arg: str) -> list[dict[str, Any]]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setenv("SHORT_TEST_SECRET", secret)
    request = BuildRequest(
        str(tmp_path),
        tags=["short:1"],
        build_args={"API_TOKEN": arg},
        secrets=[BuildSecret(id="pin", env="SHORT_TEST_SECRET")],
    )
    events = _Events()
    with use_reporter(events):
        run_build(request, config=Config(), builder=FakeBuilder())
    return [w for w in events.warnings if "cannot mask" in w["message"]]


def test_short_secrets_are_named_in_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (warning,) = _warned(tmp_path, monkeypatch, "q7\n", "z9")
    assert warning["secrets"] == ["pin"] and warning["names"] == ["API_TOKEN"]
    assert "secret 'pin'" in warning["message"] and "build arg API_TOKEN" in warning["message"]
    assert "q7" not in str(warning) and "z9" not in str(warning)


def test_maskable_secrets_get_no_such_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _warned(tmp_path, monkeypatch, "long-enough", "also-long") == []
