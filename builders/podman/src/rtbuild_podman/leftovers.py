"""What an interrupted or failed ``podman build`` leaves behind, and removing it.

Podman 4.3 stopped mid-``RUN`` (SIGINT, SIGTERM) exits without cleaning up: the ``RUN``
process keeps running in its runc container (``buildah-buildahNNN``, bundle in Buildah's
temp dir), Buildah's working container stays in storage (``podman ps -a --external``) and
the temp dir stays in ``$TMPDIR``. The builder therefore runs podman with a ``TMPDIR`` of its
own (removed afterwards, bundles included) and marks the build with an unused build arg,
:data:`MARK_ARG` (Buildah records build args in each working container's ``buildah.json``
and leaves unused ones out of layers, cache keys and the image), so that only this build's
containers are removed, never a concurrent build's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from typing import TYPE_CHECKING

from rtbuild.enginekit import OWNER_FILE, claim_directory, dead_owner_note

if TYPE_CHECKING:
    from .engine import Podman

MARK_ARG = "RTBUILD_PODMAN_RUN"
_UNCONSUMED = re.compile(r"^(.*one or more build args were not consumed: \[)([^\]]*)(\].*)$")


def unmark(line: str) -> str:
    """``line`` without :data:`MARK_ARG` in Buildah's "build args were not consumed" warning
    (empty when it was the only one: rtbuild does not show empty lines)."""
    found = _UNCONSUMED.match(line)
    if found is None or MARK_ARG not in found.group(2):
        return line
    rest = [name for name in found.group(2).split() if name != MARK_ARG]
    return f"{found.group(1)}{' '.join(rest)}{found.group(3)}" if rest else ""


def _marked(graph_root: str, driver: str, container_id: str, marker: str) -> bool:
    path = os.path.join(graph_root, f"{driver}-containers", container_id, "userdata", "buildah.json")
    try:
        with open(path, encoding="utf-8") as handle:
            args = json.load(handle).get("Args") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(args, dict) and args.get(MARK_ARG) == marker


def remove_leftovers(podman: Podman, tmpdir: str, marker: str) -> list[str]:
    """Stop the ``RUN`` containers whose bundles are in ``tmpdir`` (this build's TMPDIR) and
    remove the working containers marked with ``marker``; return the removed IDs. Best
    effort: it runs while an error or an interrupt is on its way up."""
    proc = podman.run(
        "info", "--format", "{{.Store.GraphRoot}}\t{{.Store.GraphDriverName}}\t{{.Host.OCIRuntime.Path}}", timeout=60
    )
    graph_root, driver, runtime = ([*proc.stdout.strip().split("\t"), "", ""])[:3]
    with contextlib.suppress(OSError):
        for entry in os.scandir(tmpdir):
            if entry.name.startswith("buildah") and entry.is_dir() and runtime:
                # Buildah names the runc container after the bundle: "buildah-" + its basename.
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        [runtime, "delete", "--force", f"buildah-{entry.name}"],
                        capture_output=True,
                        timeout=60,
                        stdin=subprocess.DEVNULL,
                    )
    listed = podman.run("ps", "-a", "--external", "--format", "json", timeout=60)
    try:
        containers = json.loads(listed.stdout or "[]") if listed.returncode == 0 else []
    except ValueError:
        containers = []
    ids = []
    for container in containers if isinstance(containers, list) else []:
        found = str(container.get("Id") or "") if isinstance(container, dict) else ""
        if found and graph_root and _marked(graph_root, driver, found, marker):
            ids.append(found)
    if ids:
        podman.run("rm", "--force", *ids, timeout=120)
    return ids


#: In each build's TMPDIR: who made it (pid, its start time, its pid namespace) and its marker,
#: so a later build can clean up after one whose rtbuild was killed (``kill -9``).
TMP_PREFIX = "rtbuild-podman-"


def claim(tmpdir: str, marker: str) -> None:
    """Record this process as the owner of ``tmpdir`` (the build's TMPDIR) and its marker."""
    claim_directory(tmpdir, marker)


def sweep_dead_builds(podman: Podman, base: str | None) -> list[str]:
    """Stop and remove what builds whose rtbuild died without cleaning up left (their RUN
    containers, working containers and TMPDIRs under ``base``); return the TMPDIRs removed.
    Costs one directory listing when there is nothing to do."""
    import shutil
    import tempfile

    swept: list[str] = []
    try:
        with os.scandir(base or tempfile.gettempdir()) as listing:
            entries = [entry.path for entry in listing if entry.name.startswith(TMP_PREFIX)]
    except OSError:
        return swept
    for path in entries:
        marker = dead_owner_note(path)
        if marker is None:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            remove_leftovers(podman, path, marker)
        shutil.rmtree(path, ignore_errors=True)
        swept.append(path)
    return swept


__all__ = ["MARK_ARG", "OWNER_FILE", "TMP_PREFIX", "claim", "remove_leftovers", "sweep_dead_builds", "unmark"]
