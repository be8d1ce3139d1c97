"""A ``podman pull`` or ``push`` run with live progress, an overall deadline and a stall bound.

Neither podman nor the registry library under it gives up on a registry that stops
answering, so rtbuild does: it stops the whole process group (podman dies with rtbuild too,
kill -9 included). Podman prints nothing to a pipe while a blob uploads, so progress is an
output line or what the process group writes (``wchar`` in ``/proc/PID/io``: the blob's
bytes going to the socket); Go's runtime writes a few bytes a second even when stuck, so
less than :data:`STALL_BYTES` in the stall window is no progress.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

import rtbuild

TAIL_LINES = 20
#: ``Streamed.why`` of a run that Ctrl-C/SIGTERM stopped (``build-many``'s workers).
INTERRUPTED = "was stopped by the interrupt (Ctrl-C or SIGTERM)"
#: Written by the process group within the stall window, this much is progress.
STALL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Streamed:
    """How a run ended: its exit code (``None``: rtbuild stopped it, ``why`` says why) and last lines."""

    code: int | None
    tail: list[str]
    why: str | None = None


def written_by_group(pgid: int) -> int | None:
    """Bytes the processes of group ``pgid`` wrote so far; ``None`` when none can be read."""
    total: int | None = None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            # After "(comm)": state, ppid, pgrp; comm itself may hold spaces and parentheses.
            if int(stat[stat.rindex(b")") + 2 :].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry.name}/io", "rb") as handle:
                lines = handle.read().splitlines()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        for line in lines:
            if line.startswith(b"wchar:"):
                total = (total or 0) + int(line.split()[1])
    return total


class _Watch:
    """Stops ``proc`` at the deadline, or when it made no progress for ``stall`` seconds."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float | None, stall: float | None) -> None:
        self.proc, self.timeout, self.stall = proc, timeout, stall
        self.started = self.active = time.monotonic()
        self.done = threading.Event()
        self.why: str | None = None

    def run(self) -> None:
        step = min(1.0, self.stall / 4) if self.stall else 1.0
        base = written_by_group(self.proc.pid) if self.stall else None
        while not self.done.wait(step):
            now = time.monotonic()
            if self.timeout is not None and now - self.started >= self.timeout:
                return self._stop(f"did not finish within {self.timeout:g} s")
            if self.stall is None:
                continue
            written = written_by_group(self.proc.pid)
            if written is None or base is None or written >= base + STALL_BYTES:
                self.active, base = now, written  # unreadable counters: only the deadline applies
            elif written < base:
                base = written  # a process of the group ended: its count left the sum
            if now - self.active >= self.stall:
                return self._stop(f"stalled: no progress for {self.stall:g} s")

    def _stop(self, why: str) -> None:
        from rtbuild.enginekit import stop_process_group

        self.why = why
        stop_process_group(self.proc)  # its stdout closes: the reading loop ends


def run_streamed(
    argv: list[str],
    action: str,
    *,
    pass_fds: tuple[int, ...] = (),
    timeout: float | None = None,
    stall: float | None = None,
    tmpdir: str | None = None,
) -> Streamed:
    """Run ``argv`` (a pull or push), reporting each line as ``action``, within the bounds;
    with ``TMPDIR=tmpdir`` when given."""
    from rtbuild.enginekit import die_with_parent, stop_process_group

    reporter = rtbuild.get_reporter()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "TMPDIR": tmpdir} if tmpdir else None,
        pass_fds=pass_fds,
        preexec_fn=die_with_parent,
    )
    watch = _Watch(proc, timeout, stall)
    if timeout is not None or stall is not None:
        threading.Thread(target=watch.run, name=f"podman {action} watch", daemon=True).start()
    # build-many pushes in worker threads, which never see Ctrl-C/SIGTERM, and podman runs in
    # a session of its own: without this, the batch waited for the push to end (on a stalled
    # registry, push_stall_timeout) before rtbuild could exit.
    unregister = rtbuild.on_cancel(lambda: watch._stop(INTERRUPTED) if proc.poll() is None else None)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                watch.active = time.monotonic()
                tail.append(text)
                reporter.line(text, source=action)
        code = proc.wait()
        return Streamed(None if watch.why else code, list(tail), watch.why)
    except BaseException:
        stop_process_group(proc)
        raise
    finally:
        unregister()
        watch.done.set()


__all__ = ["INTERRUPTED", "STALL_BYTES", "Streamed", "run_streamed", "written_by_group"]
