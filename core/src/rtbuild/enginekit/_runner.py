"""Run one engine CLI build (docker, podman): stream its plain progress live, keep the
full log in a file.

The process gets its own session so Ctrl-C (or any exception) stops the whole process
group, not just the CLI, and temporary files (the image-id file) are always removed.
Step lines are recognised in both BuildKit's plain progress (``#5 [2/3] RUN ...``) and
Buildah's (``STEP 2/3: RUN ...``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rtbuild._framework.paths import state_dir
from rtbuild._framework.progress import get_reporter

TAIL_LINES = 20
#: BuildKit plain progress, then Buildah (podman build): the instruction being run.
STEP_PATTERNS = (re.compile(r"^#\d+ \[[^\]]+\] (.+)$"), re.compile(r"^STEP \d+(?:/\d+)?: (.+)$"))


def step_of(line: str) -> str | None:
    """The instruction a progress line starts, if it starts one."""
    for pattern in STEP_PATTERNS:
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


def default_log_dir() -> str:
    return str(state_dir("logs"))


def log_path_for(log_dir: str, tag: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)[:80]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(log_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"build-{stamp}-{safe}-", suffix=".log", dir=log_dir)
    os.close(fd)
    return path


@dataclass
class RunResult:
    returncode: int
    log_path: str
    image_id: str | None = None
    tail: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT then SIGTERM then SIGKILL to the build's process group."""
    for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_build(
    argv: list[str],
    *,
    env: dict[str, str],
    log_path: str,
    stream: bool = True,
    keep_lines: int = 400,
    on_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``argv`` (a ``docker build``/``podman build`` command ending with the context,
    without ``--iidfile``) and stream its output; the engine must be started with
    ``start_new_session`` semantics, which this does.

    ``on_line`` sees every output line as it arrives (the step profile is timed from it).
    """
    reporter = get_reporter()
    tmpdir = tempfile.mkdtemp(prefix="rtbuild-build-")
    iidfile = os.path.join(tmpdir, "iid")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lines: deque[str] = deque(maxlen=keep_lines)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            proc = subprocess.Popen(
                [*argv[:-1], "--iidfile", iidfile, argv[-1]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
            assert proc.stdout is not None
            for raw in proc.stdout:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                log.write(text + "\n")
                tail.append(text)
                lines.append(text)
                if on_line is not None:
                    on_line(text)
                if stream and text:
                    reporter.line(text, source="build")
                    step = step_of(text)
                    if step:
                        reporter.event("step", step=step)
            returncode = proc.wait()
        image_id = None
        if returncode == 0 and os.path.exists(iidfile):
            with open(iidfile, encoding="utf-8") as handle:
                image_id = handle.read().strip() or None
        return RunResult(returncode, log_path, image_id, list(tail), list(lines))
    except BaseException:
        if proc is not None and proc.poll() is None:
            stop_process_group(proc)
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


__all__ = [
    "STEP_PATTERNS",
    "TAIL_LINES",
    "RunResult",
    "default_log_dir",
    "log_path_for",
    "run_build",
    "step_of",
    "stop_process_group",
]
