"""`rtbuild.enginekit.warn_secret_args`: the one warning every CLI backend gives for secret-looking build args."""

from __future__ import annotations

from typing import Any

import rtbuild
from rtbuild._framework.progress import use_reporter
from rtbuild.enginekit import SECRET_ADVICE, warn_secret_args


class _Events(rtbuild.Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def _warn(build_args: dict[str, str], **kwargs: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    events = _Events()
    with use_reporter(events):
        names = warn_secret_args(build_args, **kwargs)
    return names, events.events


def test_names_the_secret_looking_args_once_and_never_their_values() -> None:
    names, events = _warn({"API_TOKEN": "tok-123456", "DB_PASSWORD": "pw-abcdef", "VERSION": "1.2"})
    assert names == ["API_TOKEN", "DB_PASSWORD"]
    assert len(events) == 1
    kind, fields = events[0]
    assert kind == "warning"
    assert fields["names"] == ["API_TOKEN", "DB_PASSWORD"]
    message = fields["message"]
    assert "API_TOKEN, DB_PASSWORD" in message and "VERSION" not in message
    assert "tok-123456" not in repr(fields) and "pw-abcdef" not in repr(fields)
    assert message.endswith(SECRET_ADVICE)
    assert "image's history" in message


def test_no_event_without_secret_looking_args() -> None:
    names, events = _warn({"VERSION": "1", "PYTHON": "3.11"})
    assert names == []
    assert events == []


def test_handling_and_advice_are_the_builders_own() -> None:
    _, events = _warn(
        {"SIGNING_KEY": "k" * 10},
        handling="and reach the pod only through the per-build Secret,",
        advice="use a Secret instead",
    )
    message = events[0][1]["message"]
    assert "output and reach the pod only through the per-build Secret, but stay" in message
    assert message.endswith("use a Secret instead")
    assert SECRET_ADVICE not in message
