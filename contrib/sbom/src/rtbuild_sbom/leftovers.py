"""The scan's helper containers that a killed scan left behind.

A scan ``create``s a container (never started) and removes it once its filesystem is read.
A process killed in between (``kill -9``, the OOM killer, a CI runner's hard timeout) cannot
remove it: each such container stayed for good and kept its image from being removed.
So each helper container names its maker in :data:`OWNER_LABEL` (``BOOT:PIDNS:PID:START``:
the host's boot id, the pid namespace, the pid and its start time, so neither a reused pid
nor another host or container sharing the engine is taken for it), and every scan first
removes those whose maker is gone. A container whose maker cannot be judged here (another
host, another boot, another pid namespace, no label) is left alone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

#: The label naming the process that made a helper container.
OWNER_LABEL = "org.rtbuild.sbom.owner"
#: Seconds each engine call of the sweep may take (it must never hold a scan up for long).
_CALL_S = 60


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _host() -> str | None:
    """``BOOT:PIDNS`` of this process, or None where /proc does not tell (then nothing is judged)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return None
    return f"{boot.strip()}:{namespace}" if boot and boot.strip() else None


def _start_time(pid: int) -> str | None:
    stat = _read(f"/proc/{pid}/stat")
    try:
        return stat.rpartition(")")[2].split()[19] if stat else None  # field 22: starttime
    except IndexError:
        return None


def owner() -> str:
    """This process as :data:`OWNER_LABEL`'s value (empty when /proc does not tell)."""
    host, pid = _host(), os.getpid()
    start = _start_time(pid)
    return f"{host}:{pid}:{start}" if host and start else ""


def _maker_is_gone(label: str, host: str) -> bool:
    """Whether ``label`` (``BOOT:PIDNS:PID:START``) names a process of this host and pid
    namespace that no longer runs."""
    parts = label.split(":")
    if len(parts) != 4 or f"{parts[0]}:{parts[1]}" != host or not parts[2].isdigit():
        return False
    pid, started = int(parts[2]), parts[3]
    if pid == os.getpid():
        return False
    return _start_time(pid) != started  # gone, or its pid reused by a newer process


def _run(cmd: Sequence[str], env: dict[str, str]) -> str | None:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=_CALL_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def sweep(cli: Sequence[str], env: dict[str, str], container_label: str) -> list[str]:
    """Remove the helper containers (``container_label``) whose maker on this host is gone;
    the IDs removed. Best effort: an engine that does not answer is the scan's to report."""
    host = _host()
    if host is None:
        return []
    listed = _run([*cli, "ps", "-aq", "--no-trunc", "--filter", f"label={container_label}"], env)
    ids = listed.split() if listed else []
    if not ids:
        return []
    # `inspect` and `index .Config.Labels`: the same template for docker and podman (their
    # `ps --format` spell a label differently).
    shown = _run([*cli, "inspect", "--format", f'{{{{.Id}}}} {{{{index .Config.Labels "{OWNER_LABEL}"}}}}', *ids], env)
    gone = []
    for line in (shown or "").splitlines():
        cid, _, label = line.strip().partition(" ")
        if cid and _maker_is_gone(label.strip(), host):
            gone.append(cid)
    if gone and _run([*cli, "rm", "-f", "-v", *gone], env) is None:  # -v: its anonymous volumes too
        return []
    return gone


__all__ = ["OWNER_LABEL", "owner", "sweep"]
