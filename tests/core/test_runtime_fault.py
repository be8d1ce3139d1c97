"""A step the OCI runtime could not start (a fault of the engine's host) is told apart from
a step whose command failed: its own message and a hint to run the build again."""

from __future__ import annotations

from rtbuild import BuildFailedError
from rtbuild.enginekit import RUNTIME_FAULT_HINT, build_error, runtime_fault

#: Buildah in a build pod, as benchmark P9 once saw it (runc failing to seal its memfd copy).
BUILDAH_FAULT = [
    "STEP 1/3: FROM busybox:latest",
    "STEP 2/3: COPY . /app",
    "STEP 3/3: RUN sha256sum /app/* > /sums",
    "error running container: from /usr/bin/runc creating container for [/bin/sh -c sha256sum /app/* > /sums]:"
    " Close_Fd sealing memfd copy: Device or resource busy",
    ": exit status 1",
    'Error: building at STEP "RUN sha256sum /app/* > /sums": while running runtime: exit status 1',
]

BUILDKIT_FAULT = [
    "#5 [2/2] RUN echo hi",
    "#5 ERROR: runc run failed: unable to start container process: error during container init:"
    " fork/exec /proc/self/exe: resource temporarily unavailable",
    "------",
    " > [2/2] RUN echo hi:",
    "------",
]

#: The runtime's words, but the command's fault: no executable of that name.
MISSING_EXECUTABLE = [
    "#5 [2/2] RUN nosuchtool",
    '#5 ERROR: process "/bin/sh -c nosuchtool" did not complete successfully: exit code: 127',
    'runc run failed: unable to start container process: exec: "nosuchtool": executable file not found in $PATH',
]


def test_buildah_runtime_fault_says_run_it_again() -> None:
    assert "sealing memfd copy" in (runtime_fault(BUILDAH_FAULT) or "")
    error = build_error(BUILDAH_FAULT, 1, log_path="/l", engine="podman")
    assert isinstance(error, BuildFailedError)
    assert error.step == "RUN sha256sum /app/* > /sums"
    assert "container runtime could not start" in error.message and "Device or resource busy" in error.message
    assert error.hint == RUNTIME_FAULT_HINT and "again" in error.hint
    assert error.log_tail[-1].startswith("Error: building at STEP") and error.log_path == "/l"


def test_buildkit_runtime_fault_names_the_step() -> None:
    error = build_error(BUILDKIT_FAULT, 1, log_path=None)
    assert error.step == "RUN echo hi" and error.hint == RUNTIME_FAULT_HINT
    assert "resource temporarily unavailable" in error.message


def test_a_command_that_fails_stays_the_dockerfiles_fault() -> None:
    assert runtime_fault(MISSING_EXECUTABLE) is None
    error = build_error(MISSING_EXECUTABLE, 1, log_path=None)
    assert error.hint != RUNTIME_FAULT_HINT and "exit code 127" in error.message
    # A busy device named by the command itself (not by the runtime) is the command's business.
    own = ["#5 [2/2] RUN umount /mnt", "umount: /mnt: target is busy (Device or resource busy)"]
    assert runtime_fault([*own, "#5 ERROR: process did not complete successfully: exit code: 32"]) is None


def test_a_buildah_step_is_named_up_to_its_own_text_when_the_detail_quotes_paths() -> None:
    """Buildah's COPY error quotes paths after `": `: the step is the STEP line's text, not
    everything up to the last quote."""
    lines = [
        "STEP 1/2: FROM busybox:latest",
        'STEP 2/2: COPY missing.txt "a b": /x',
        'Error: building at STEP "COPY missing.txt "a b": /x": checking on sources under "/ctx": copier: stat:'
        ' "/missing.txt": no such file or directory',
    ]
    error = build_error(lines, 1, log_path=None, engine="podman")
    assert error.step == 'COPY missing.txt "a b": /x'
    assert "missing.txt" in error.message
