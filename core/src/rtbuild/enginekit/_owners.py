"""Owner records: which rtbuild process made a directory, so that what a killed (``kill -9``)
process left can be told from what a live one is using.

The record is ``PID STARTTIME PIDNS NOTE`` in ``.rtbuild-owner``: a pid reused by another
process has another start time, and a record made in another pid namespace (a container
sharing /tmp) is never judged here, since its pids mean nothing in this one.
"""

from __future__ import annotations

import os

OWNER_FILE = ".rtbuild-owner"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def claim_directory(directory: str, note: str = "-") -> None:
    """Record this process as the owner of ``directory``, with ``note`` (one word: what a
    later sweep needs to clean up after it, e.g. a marker naming its containers)."""
    pid = os.getpid()
    with open(os.path.join(directory, OWNER_FILE), "w", encoding="utf-8") as handle:
        handle.write(f"{pid} {_start_time(pid)} {_pid_namespace()} {note}\n")


def dead_owner_note(directory: str) -> str | None:
    """The note of ``directory``'s owner when that process is gone, else ``None``. A
    directory without an owner record, or one made in another pid namespace, is never taken
    for dead."""
    try:
        with open(os.path.join(directory, OWNER_FILE), encoding="utf-8") as handle:
            pid_text, started, namespace, note = handle.read().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if namespace != _pid_namespace() or pid <= 0 or pid == os.getpid():
        return None
    # A live pid with another start time is a new process that reused the number.
    return note if _start_time(pid) != started else None


__all__ = ["OWNER_FILE", "claim_directory", "dead_owner_note"]
