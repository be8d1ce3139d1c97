"""Turning a failed docker build's plain output into an :mod:`rtbuild.errors` error."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rtbuild.errors import AgentRuntimeBuildError, BuildFailedError

from .engine import unreachable
from .runner import TAIL_LINES

_STEP_HEADER = re.compile(r"^#(\d+) \[([^\]]+)\] (.+)$")
_STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_EXIT_CODE = re.compile(r"exit code: (\d+)")
_FAILED_BLOCK = re.compile(r"^ > \[([^\]]+)\] (.+):$")
_DAEMON_DOWN = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "dial unix",
)
_PARSE = re.compile(r"dockerfile parse error.*|unknown instruction:.*", re.IGNORECASE)
_BASE_MISSING = re.compile(r"(pull access denied|not found|failed to resolve|no such host)", re.IGNORECASE)


def build_error(lines: Sequence[str], returncode: int, *, log_path: str, host: str) -> AgentRuntimeBuildError:
    """The error for a build that exited with ``returncode``; ``lines`` is the log's end."""
    tail = [line for line in lines if line.strip()][-TAIL_LINES:]
    text = "\n".join(lines)
    if any(marker in text for marker in _DAEMON_DOWN) and not any(_STEP_HEADER.match(line) for line in lines):
        error = unreachable(host, (tail[-1] if tail else "connection failed").strip())
        error.log_tail, error.log_path = tail, log_path
        return error
    headers = {m.group(1): (m.group(2), m.group(3)) for m in map(_STEP_HEADER.match, lines) if m}
    for line in reversed(lines):
        failed = _STEP_ERROR.match(line)
        if not failed or failed.group(1) not in headers:
            continue
        position, instruction = headers[failed.group(1)]
        code = _EXIT_CODE.search(failed.group(2))
        if code:
            return BuildFailedError(
                f"build step [{position}] {instruction} failed with exit code {code.group(1)}",
                step=instruction,
                log_tail=tail,
                log_path=log_path,
                hint="fix the command in the Dockerfile; the full log has every line",
            )
        if position.startswith("internal") or instruction.startswith("FROM"):
            break
        return BuildFailedError(
            f"build step [{position}] {instruction} failed: {failed.group(2)}",
            step=instruction,
            log_tail=tail,
            log_path=log_path,
        )
    last = tail[-1].strip() if tail else f"docker build exited with {returncode}"
    parse = _PARSE.search(text)
    if parse:
        return BuildFailedError(
            f"the Dockerfile does not parse: {parse.group(0)}",
            step="parse Dockerfile",
            log_tail=tail,
            log_path=log_path,
            hint="fix the Dockerfile line named above",
        )
    block = next((m for m in map(_FAILED_BLOCK.match, reversed(lines)) if m), None)
    resolving = block is not None and (block.group(2).startswith(("FROM", "load metadata for")))
    if resolving or _BASE_MISSING.search(last):
        return BuildFailedError(
            f"base image could not be resolved: {last}",
            step=block.group(2) if block else "resolve base image",
            log_tail=tail,
            log_path=log_path,
            hint="build or load the base image locally first (`rtbuild exists IMAGE --pull`), or fix its name",
        )
    return BuildFailedError(
        f"docker build failed (exit {returncode}): {last}",
        step=block.group(2) if block else "build",
        log_tail=tail,
        log_path=log_path,
    )


__all__ = ["build_error"]
