"""Finding a test's own processes by a unique token in their command line (shared by the
Docker and Podman tests that check nothing outlives a stopped build)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def processes_naming(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (a test's own unique token)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def step_processes(token: str) -> list[int]:
    """PIDs of a build step's processes (a RUN under dockerd, conmon or runc): those whose
    command line or environment holds ``token`` (a nonce in the RUN text or a build arg),
    and everything they started (``sleep`` after ``sh -c``: its command line is its own)."""
    found: set[int] = set()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes():
                found.add(int(entry.name))
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def step_processes_running(token: str, name: str, timeout: float = 15.0) -> list[int]:
    """:func:`step_processes` once one of them is called ``name``: the step's output can
    reach the test before its shell has exec'ed the last command (``sh`` still, not
    ``sleep``), most often on a loaded machine. Raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pids = step_processes(token)
        names = []
        for pid in pids:
            try:
                names.append(Path(f"/proc/{pid}/comm").read_text().strip())
            except OSError:
                continue
        if name in names:
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name!r} among the RUN step's processes for {token}: {names}")
        time.sleep(0.05)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    """Until something listens on 127.0.0.1:``port``; raises with ``log``'s end when ``proc``
    (a docker-registry) exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not listen on {port}: {log.read_text()[-2000:]}")


__all__ = ["processes_naming", "step_processes", "step_processes_running", "wait_port"]


def exit_code_in_fork(body: Callable[[], int], timeout: float = 20) -> int:
    """Fork, run ``body`` in the child and exit with what it returns (1 if it raised);
    the child's exit code, or -1 if it was still running after ``timeout`` (killed: hung)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1
