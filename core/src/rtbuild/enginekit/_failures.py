"""Turning a failed engine CLI build's plain output into an :mod:`rtbuild.errors` error.

Three output dialects are understood: BuildKit's plain progress (``docker build``),
Buildah's (``podman build``) and the legacy docker builder's (``DOCKER_BUILDKIT=0``). Each
way the error names the failing step, its exit code when there is one, the log's last
lines and the full log's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rtbuild.enginekit._runner import TAIL_LINES
from rtbuild.errors import AgentRuntimeBuildError, BuildContextError, BuildFailedError

_STEP_HEADER = re.compile(r"^#(\d+) \[([^\]]+)\] (.+)$")
_STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_EXIT_CODE = re.compile(r"exit (?:code:|status) (\d+)")
_FAILED_BLOCK = re.compile(r"^ > \[([^\]]+)\] (.+):$")
#: Buildah: ``STEP 2/3: RUN ...`` then ``Error: building at STEP "RUN ...": ...``.
_BUILDAH_STEP = re.compile(r"^STEP (\d+(?:/\d+)?): (.+)$")
_BUILDAH_ERROR = re.compile(r'^Error: building at STEP "(.*)$')
#: The legacy builder: ``Step 2/3 : RUN ...``, then ``The command '...' returned a non-zero
#: code: 3`` for a RUN, or the failure itself (``COPY failed: ...``) for any other step.
_LEGACY_STEP = re.compile(r"^Step (\d+/\d+) : (.+)$")
_LEGACY_RUN_FAILED = re.compile(r"^The command '.*' returned a non-zero code: (\d+)$")
_ENGINE_DOWN = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "dial unix",
    "Cannot connect to Podman",
)
_PARSE = re.compile(r"dockerfile parse error.*|unknown instruction:[^&]*", re.IGNORECASE)
_BASE_MISSING = re.compile(
    r"(pull access denied|not found|failed to resolve|no such host|did not resolve to an alias"
    r"|initializing source|creating build container)",
    re.IGNORECASE,
)
_BASE_HINT = "build or load the base image locally first (`rtbuild exists IMAGE --pull`), or fix its name"
#: The base's index lists no image for the platform built (BuildKit; Buildah): it is there.
_NO_PLATFORM = re.compile(r"no match for platform in manifest|no image found in manifest list for", re.IGNORECASE)
BASE_PLATFORM_HINT = (
    "the base image is an index without an image for the platform this build is for: push the base"
    " as an index that lists it, give this platform its own base (ARG TARGETARCH, FROM NAME:${TARGETARCH};"
    " see docs/multi-platform.md), or leave the platform out of --platform"
)
#: The OCI runtime (runc, crun) reporting that it could not create or start a step's process
#: (BuildKit, Buildah and the legacy builder word it differently) ...
_RUNTIME_START = re.compile(
    r"creating container for \[|OCI runtime|runc run failed|unable to start container process|\b(?:runc|crun):",
    re.IGNORECASE,
)
#: ... for a reason of the host's (a busy or exhausted kernel resource), not the command's: a
#: missing executable or a permission error is the Dockerfile's and stays a step failure.
_RUNTIME_TRANSIENT = re.compile(
    r"device or resource busy|resource temporarily unavailable|cannot allocate memory|sealing memfd", re.IGNORECASE
)
RUNTIME_FAULT_HINT = (
    "the container runtime (runc/crun) could not start the step's process, a fault of the engine's host and"
    " not of the Dockerfile: run the build again; if it repeats, check the engine host's free memory and kernel log"
)

#: The engine host's storage (or a quota) ran out: no Dockerfile fix helps.
_DISK_FULL = re.compile(r"no space left on device|disk quota exceeded", re.IGNORECASE)
DISK_FULL_HINT = (
    "the disk the build writes to is full (no space left on device), on the engine's host: free space"
    " (`rtbuild prune`, `docker system prune` or `podman system prune`) or give the engine's storage more room,"
    " then build again"
)
#: 128 + SIGKILL: a step's process killed from outside, most often by the OOM killer.
KILLED_HINT = (
    "the step's process was killed with SIGKILL (exit 137), most often by the kernel's out-of-memory killer:"
    " give the engine's host (or the build's container) more memory, or make the step use less;"
    " the host's kernel log (`dmesg`) says which"
)

#: A COPY/ADD (or RUN --mount) source the engine did not find: BuildKit, the legacy builder
#: and Buildah each word it their own way.
_SOURCE_MISSING = re.compile(
    r'"[^"]*" not found|file not found|no such file or directory|does not exist', re.IGNORECASE
)
SOURCE_MISSING_HINT = (
    "a source path of this step is not there: COPY/ADD sources (and RUN --mount sources) are relative to the"
    " build context directory, or to the stage or image named by --from; check the path exists there and"
    " that .dockerignore does not exclude it"
)
#: The engine could not give a RUN step its network (dockerd started with ``--bridge none``,
#: or its ``docker0`` bridge removed), a fault of the engine's host and not of the command.
_NO_NETWORK = re.compile(r"network bridge not found|could not find bridge|failed to create endpoint", re.IGNORECASE)
NO_NETWORK_HINT = (
    "the engine could not give the step a network (its default bridge is missing: a daemon started with"
    " --bridge none, or one whose docker0 bridge was removed), a fault of the engine's host: restart the"
    " engine with its bridge, or build with --extra=--network=host (or --network=none for steps that need none)"
)
#: The engine's client sending the context met a file that changed since it listed it
#: (deleted, or now a directory): BuildKit's ``read X: is a directory`` at load build context.
_CONTEXT_CHANGED = re.compile(r"is a directory|not a directory|no such file or directory", re.IGNORECASE)
CONTEXT_CHANGED_HINT = (
    "a file of the build context changed while the engine read it (deleted, or replaced by a file of another"
    " kind): something writes the context while it builds (an editor, a package install, a log); let it finish"
    " or stop it, or leave that path out (.dockerignore), and build again"
)
#: The docker client could not read a path of the context it sends: BuildKit's sender
#: (``error from sender: open X: permission denied``, ``lstat X: file name too long``) and
#: the legacy client (``error checking context: can't stat 'X'``, ``no permission to read``).
_CONTEXT_UNREADABLE = re.compile(
    r"(?:error from sender|error checking context): .*?(?:permission denied|can't stat|no permission to read"
    r"|(file name too long))",
    re.IGNORECASE,
)
UNREADABLE_CONTEXT_HINT = (
    "the engine's client could not read a path of the build context: make it readable by the user running"
    " rtbuild, or leave it out (.dockerignore)"
)
TOO_LONG_HINT = (
    "a path in the build context is longer than the system allows (4,096 bytes), and no engine could copy it:"
    " shorten it, or leave it out (.dockerignore)"
)
#: A failure rtbuild does not recognise: the engine's own message is the best guide.
ENGINE_MESSAGE_HINT = "the engine's message above says what failed; the full log has every line"
#: The engine's CLI refused its arguments: most often one passed through as is (--extra).
_UNKNOWN_FLAG = re.compile(r"unknown (?:shorthand )?flag|flag needs an argument|invalid argument .* for .*flag")
UNKNOWN_FLAG_HINT = (
    "the engine's build command does not take that argument: check the --extra arguments (extra_build_args)"
    " against its `build --help`"
)

EngineDown = Callable[[str], AgentRuntimeBuildError]


def _detail_hint(instruction: str, detail: str) -> str:
    """The hint for a step that failed without an exit code, from the engine's ``detail``."""
    if _NO_NETWORK.search(detail):
        return NO_NETWORK_HINT
    copies = instruction.upper().startswith(("COPY", "ADD")) or "--mount" in instruction
    if copies and _SOURCE_MISSING.search(detail):
        return SOURCE_MISSING_HINT
    return ENGINE_MESSAGE_HINT


def runtime_fault(lines: Sequence[str]) -> str | None:
    """The output line saying that the OCI runtime could not start a build step's process for a
    transient reason of the engine host's (e.g. runc's ``sealing memfd copy: device or resource
    busy``), or None. Such a build is worth running again unchanged."""
    for line in reversed(lines):
        if _RUNTIME_START.search(line) and _RUNTIME_TRANSIENT.search(line):
            return line.strip()[:300]
    return None


def _step_failed(
    position: str | None, instruction: str, tail: list[str], log_path: str | None, *, code: str | None, detail: str = ""
) -> BuildFailedError:
    """A named step's failure, in the same words whichever engine dialect reported it."""
    where = f"[{position}] " if position else ""
    if code is not None:
        return BuildFailedError(
            f"build step {where}{instruction} failed with exit code {code}",
            step=instruction,
            log_tail=tail,
            log_path=log_path,
            hint=KILLED_HINT if code == "137" else "fix the command in the Dockerfile; the full log has every line",
        )
    return BuildFailedError(
        f"build step {where}{instruction} failed: {detail}",
        step=instruction,
        log_tail=tail,
        log_path=log_path,
        hint=_detail_hint(instruction, detail),
    )


def _buildkit_step(lines: Sequence[str], tail: list[str], log_path: str | None) -> BuildFailedError | None:
    headers = {m.group(1): (m.group(2), m.group(3)) for m in map(_STEP_HEADER.match, lines) if m}
    for line in reversed(lines):
        failed = _STEP_ERROR.match(line)
        if not failed or failed.group(1) not in headers:
            continue
        position, instruction = headers[failed.group(1)]
        code = _EXIT_CODE.search(failed.group(2))
        if code:
            return _step_failed(position, instruction, tail, log_path, code=code.group(1))
        if position.startswith("internal") or instruction.startswith("FROM"):
            return None
        return _step_failed(position, instruction, tail, log_path, code=None, detail=failed.group(2))
    return None


def _legacy_step(lines: Sequence[str], tail: list[str], log_path: str | None) -> BuildFailedError | None:
    for index in range(len(lines) - 1, -1, -1):  # the last step started is the one that failed
        header = _LEGACY_STEP.match(lines[index])
        if header is None:
            continue
        position, instruction = header.group(1), header.group(2).strip()
        after = [line.strip() for line in lines[index + 1 :] if line.strip() and not line.startswith(" ---> ")]
        if not after:
            return None
        code = next((m.group(1) for m in map(_LEGACY_RUN_FAILED.match, after) if m), None)
        return _step_failed(position, instruction, tail, log_path, code=code, detail=after[-1][:300])
    return None


def _buildah_step(lines: Sequence[str], tail: list[str], log_path: str | None) -> BuildFailedError | None:
    failed = next((m for m in map(_BUILDAH_ERROR.match, reversed(lines)) if m), None)
    if failed is None:
        return None
    rest = failed.group(1)
    # The instruction ends where a STEP line's text does: the detail after it may hold
    # `": ` too (quoted paths), and so may an instruction (RUN echo "a": b).
    steps = (m for m in map(_BUILDAH_STEP.match, reversed(lines)) if m)
    step = next((m for m in steps if rest.startswith(m.group(2).strip() + '": ')), None)
    if step is not None:
        instruction, position = step.group(2).strip(), step.group(1)
        detail = rest[len(instruction) + 3 :]
    else:
        instruction, _, detail = rest.partition('": ')
        instruction, position = instruction.strip(), None
    code = _EXIT_CODE.search(detail)
    if code and instruction.upper().startswith("RUN"):
        return _step_failed(position, instruction, tail, log_path, code=code.group(1))
    parse = _PARSE.search(detail)
    if parse:
        return BuildFailedError(
            f"the Dockerfile does not parse: {parse.group(0).strip()}",
            step="parse Dockerfile",
            log_tail=tail,
            log_path=log_path,
            hint="fix the Dockerfile line named above",
        )
    return _step_failed(position, instruction, tail, log_path, code=None, detail=detail[:300])


def build_error(
    lines: Sequence[str],
    returncode: int,
    *,
    log_path: str | None,
    engine: str = "docker",
    engine_down: EngineDown | None = None,
) -> AgentRuntimeBuildError:
    """The error for a build that exited with ``returncode``; ``lines`` is the log's end.

    ``engine_down(detail)`` makes the backend's own "engine unreachable" error (naming its
    host and how to start it) when the output says the engine could not be reached.
    """
    error = _classify(lines, returncode, log_path=log_path, engine=engine, engine_down=engine_down)
    if isinstance(error, BuildFailedError) and error.step != "parse Dockerfile":
        full = disk_full_line(lines)
        if full is not None:  # a step or the export that ran out of room: not the Dockerfile's fault
            error.hint = DISK_FULL_HINT
            if not _DISK_FULL.search(error.message):
                error.message = f"{error.message} ({_last_words(full, 200)})"
                error.args = (error.message,)
    return error


def _last_words(text: str, limit: int) -> str:
    """The end of ``text`` in at most about ``limit`` characters, from a word's start."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "…" + (cut.split(" ", 1)[1] if " " in cut else cut)


def _end(line: str, limit: int = 300) -> str:
    """``line``, or its last ``limit`` characters (a path's end says where it is)."""
    line = line.strip()
    return line if len(line) <= limit else "…" + line[-limit:]


def disk_full_line(lines: Sequence[str]) -> str | None:
    """The output line saying the build ran out of disk (``no space left on device``,
    ``disk quota exceeded``), not one that only repeats a step's own text; or None."""
    return next((line.strip() for line in reversed(lines) if _DISK_FULL.search(line) and not _echoes(line)), None)


def host_fault_hint(lines: Sequence[str], exit_code: int | None) -> str | None:
    """A hint about the engine's host for a failed step whose output or exit code says the
    host, not the Dockerfile, stopped it: :data:`DISK_FULL_HINT` for a full disk,
    :data:`KILLED_HINT` for a step killed with SIGKILL (exit code 137, or a build step the
    output says ended with 137); None otherwise. For backends that map failures themselves
    (a pod's log); :func:`build_error` applies it already."""
    if disk_full_line(lines) is not None:
        return DISK_FULL_HINT
    codes = (m.group(1) for m in map(_EXIT_CODE.search, lines[-TAIL_LINES:]) if m)
    killed = exit_code == 137 or "137" in codes
    return KILLED_HINT if killed else None


def _echoes(line: str) -> bool:
    """Whether ``line`` repeats a step's own text (``RUN echo 'no space left on device'``)."""
    return bool(
        _STEP_HEADER.match(line)
        or _FAILED_BLOCK.match(line)
        or _BUILDAH_STEP.match(line)
        or (line.startswith('Error: building at STEP "') and line[25:].upper().startswith("RUN "))
        or _LEGACY_STEP.match(line)
        or "executor failed running [" in line
        or 'process "/bin/sh -c' in line
        or _LEGACY_RUN_FAILED.match(line)
    )


def _classify(
    lines: Sequence[str],
    returncode: int,
    *,
    log_path: str | None,
    engine: str,
    engine_down: EngineDown | None,
) -> AgentRuntimeBuildError:
    tail = [line for line in lines if line.strip()][-TAIL_LINES:]
    text = "\n".join(lines)
    started = any(_STEP_HEADER.match(line) or _BUILDAH_STEP.match(line) or _LEGACY_STEP.match(line) for line in lines)
    if engine_down is not None and any(marker in text for marker in _ENGINE_DOWN) and not started:
        error = engine_down((tail[-1] if tail else "connection failed").strip())
        error.log_tail, error.log_path = tail, log_path
        return error
    found = (
        _buildkit_step(lines, tail, log_path)
        or _buildah_step(lines, tail, log_path)
        or _legacy_step(lines, tail, log_path)
    )
    last = tail[-1].strip() if tail else f"{engine} build exited with {returncode}"
    parse = _PARSE.search(text)
    if parse and (found is None or found.step == "parse Dockerfile"):
        return BuildFailedError(
            f"the Dockerfile does not parse: {parse.group(0).strip()}",
            step="parse Dockerfile",
            log_tail=tail,
            log_path=log_path,
            hint="fix the Dockerfile line named above",
        )
    block = next((m for m in map(_FAILED_BLOCK.match, reversed(lines)) if m), None)
    fault = runtime_fault(lines)
    if fault is not None:
        step = found.step if found is not None else (block.group(2) if block else "build")
        return BuildFailedError(
            f"the container runtime could not start build step {step}: {fault}",
            step=step,
            log_tail=tail,
            log_path=log_path,
            hint=RUNTIME_FAULT_HINT,
        )
    resolving = block is not None and block.group(2).startswith(("FROM", "load metadata for"))
    from_step = found is not None and (found.step or "").upper().startswith("FROM")
    if resolving or from_step or (found is None and _BASE_MISSING.search(last)):
        return BuildFailedError(
            f"base image could not be resolved: {last}",
            step=block.group(2) if block else (found.step if found else "resolve base image"),
            log_tail=tail,
            log_path=log_path,
            hint=BASE_PLATFORM_HINT if _NO_PLATFORM.search(text) else _BASE_HINT,
        )
    if found is not None:
        return found
    unreadable = next((m for m in map(_CONTEXT_UNREADABLE.search, reversed(tail)) if m), None)
    if unreadable is not None:
        # The context's fault, as rtbuild's own hash reports it on a later build (exit 2).
        return BuildContextError(
            f"{engine} could not send the build context: {_end(unreadable.string)}",
            step=block.group(2) if block else "load build context",
            log_tail=[_end(line) for line in tail],
            log_path=log_path,
            hint=TOO_LONG_HINT if unreadable.group(1) else UNREADABLE_CONTEXT_HINT,
        )
    # The refused argument, not the "See 'docker build --help'." that follows it.
    flag = next((line.strip() for line in reversed(tail) if _UNKNOWN_FLAG.search(line)), None)
    hint = NO_NETWORK_HINT if _NO_NETWORK.search(last) else UNKNOWN_FLAG_HINT if flag else ENGINE_MESSAGE_HINT
    if block is not None and block.group(2) == "load build context" and _CONTEXT_CHANGED.search(last):
        hint = CONTEXT_CHANGED_HINT
    return BuildFailedError(
        f"{engine} build failed (exit {returncode}): {flag or last}",
        step=block.group(2) if block else "build",
        log_tail=tail,
        log_path=log_path,
        hint=hint,
    )


__all__ = [
    "CONTEXT_CHANGED_HINT",
    "DISK_FULL_HINT",
    "ENGINE_MESSAGE_HINT",
    "KILLED_HINT",
    "NO_NETWORK_HINT",
    "RUNTIME_FAULT_HINT",
    "SOURCE_MISSING_HINT",
    "TOO_LONG_HINT",
    "UNKNOWN_FLAG_HINT",
    "UNREADABLE_CONTEXT_HINT",
    "EngineDown",
    "build_error",
    "disk_full_line",
    "host_fault_hint",
    "runtime_fault",
]
