"""The engine's client sending the context meets a file that changed since it listed it
(deleted, or now a directory): BuildKit stops at 'load build context' with 'read X: is a
directory'. The hint said only that the engine's message says what failed; it now says
the context changed under the build. Lines as a real docker build printed them (a file
of the context turned into a directory while it was sent)."""

from __future__ import annotations

import pytest
from rtbuild.enginekit import build_error
from rtbuild.enginekit._failures import ENGINE_MESSAGE_HINT


def _lines(detail: str, step: str = "[internal] load build context") -> list[str]:
    return [
        "#4 [1/2] FROM docker.io/library/busybox:latest",
        "#4 DONE 0.0s",
        f"#5 {step}",
        "#5 sha256:133cbaba600f2d6cc64a696478ce37e2dc803be17b6a62ed2f1a454e1906e622",
        "#5 transferring context: 9.61kB 0.1s done",
        f"#5 ERROR: {detail}",
        "------",
        f" > {step}:",
        "------",
        detail,
    ]


@pytest.mark.parametrize(
    "detail",
    [
        "rpc error: code = Unknown desc = read ctx/sub/f180: is a directory",
        "rpc error: code = Unknown desc = open ctx/sub/f18: no such file or directory",
        "rpc error: code = Unknown desc = lstat ctx/sub/f78/x: not a directory",
    ],
)
def test_a_context_file_changed_while_it_was_sent(detail: str) -> None:
    error = build_error(_lines(detail), 1, log_path=None)
    assert error.step == "load build context"
    assert detail in error.message
    assert error.hint is not None
    assert "changed while the engine read it" in error.hint and ".dockerignore" in error.hint


def test_other_context_failures_keep_the_engine_message_hint() -> None:
    error = build_error(_lines("rpc error: code = Unknown desc = context canceled"), 1, log_path=None)
    assert error.hint == ENGINE_MESSAGE_HINT
