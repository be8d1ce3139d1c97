"""The docker client could not read a path of the context it sends (a directory this user
may not list, a path over 4,096 bytes): the build is the context's fault, a
BuildContextError (exit 2) with a hint, as rtbuild's own hash reports it on a later
build. It was a BuildFailedError (exit 1) with the catch-all hint, and for a long path a
4 KiB message. Lines as docker 20.10 (BuildKit) and the 28.2 client's legacy builder
printed them."""

from __future__ import annotations

import pytest
from rtbuild.enginekit import build_error
from rtbuild.enginekit._failures import ENGINE_MESSAGE_HINT
from rtbuild.errors import BuildContextError

LONG = "/".join(["d" * 250] * 18)

BUILDKIT_DIR = [
    "#1 [internal] load build definition from Dockerfile",
    "#1 sha256:a62825e7dd9477b12248049fe3967802134585746204ecfd2b415733110a35d4",
    "#1 transferring dockerfile: 65B done",
    "#1 ERROR: error from sender: open ctx/priv: permission denied",
    "------",
    " > [internal] load build definition from Dockerfile:",
    "------",
    "failed to solve with frontend dockerfile.v0: failed to read dockerfile: error from sender: open ctx/priv:"
    " permission denied",
]
BUILDKIT_LONG = [
    "#5 [internal] load build context",
    "#5 sha256:3062c486be48177a7c8bfb42b3489204c4e98874557388c94580b38933e0a368",
    f"#5 ERROR: error from sender: lstat ctx/{LONG}: file name too long",
    "------",
    " > [internal] load build context:",
    "------",
    f"error from sender: lstat ctx/{LONG}: file name too long",
]
LEGACY_DIR = [
    "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.",
    "",
    "error checking context: can't stat '/tmp/ctx/priv'",
]
LEGACY_LONG = [f"error checking context: lstat /tmp/ctx/{LONG}: file name too long"]


@pytest.mark.parametrize(
    ("lines", "hint"),
    [
        (BUILDKIT_DIR, "make it readable"),
        (LEGACY_DIR, "make it readable"),
        (BUILDKIT_LONG, "longer than the system allows"),
        (LEGACY_LONG, "longer than the system allows"),
    ],
)
def test_a_context_path_the_client_cannot_read_is_the_contexts_error(lines: list[str], hint: str) -> None:
    error = build_error(lines, 1, log_path=None)
    assert isinstance(error, BuildContextError)
    assert error.exit_code == 2 and error.hint is not None and hint in error.hint and ".dockerignore" in error.hint
    assert len(error.message) < 400 and ("priv" in error.message or error.message.endswith("file name too long"))
    assert all(len(line) < 400 for line in error.log_tail)


def test_a_step_reading_a_missing_permission_is_still_the_steps() -> None:
    lines = [
        "#6 [2/2] RUN cat /root/x",
        "#6 0.2 cat: can't open '/root/x': Permission denied",
        '#6 ERROR: process "/bin/sh -c cat /root/x" did not complete successfully: exit code: 1',
        "------",
        " > [2/2] RUN cat /root/x:",
        "------",
    ]
    error = build_error(lines, 1, log_path=None)
    assert not isinstance(error, BuildContextError) and "exit code 1" in error.message
    other = build_error(["error from sender: context canceled"], 1, log_path=None)
    assert not isinstance(other, BuildContextError) and other.hint == ENGINE_MESSAGE_HINT
