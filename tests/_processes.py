"""Finding a test's own processes by a unique token in their command line (shared by the
Docker and Podman tests that check nothing outlives a stopped build)."""

from __future__ import annotations

import os
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


__all__ = ["processes_naming"]
