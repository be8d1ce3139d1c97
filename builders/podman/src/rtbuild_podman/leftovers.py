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
import errno
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import rtbuild
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


#: How long each podman (or runc) call of the clean-up may take. It runs while Ctrl-C or an
#: error is on its way up; podman waiting for its storage lock, held by another podman
#: process, kept rtbuild from exiting until that process let go.
CLEANUP_S = 10.0
#: TMPDIRs left for the next build's sweep (their owner record names the marker).
_KEEP: set[str] = set()


def remove_leftovers(podman: Podman, tmpdir: str, marker: str) -> list[str] | None:
    """Stop the ``RUN`` containers whose bundles are in ``tmpdir`` (this build's TMPDIR) and
    remove the working containers marked with ``marker``; return the removed IDs. Best
    effort: it runs while an error or an interrupt is on its way up. ``None`` when podman or
    runc did not answer within :data:`CLEANUP_S`: then ``tmpdir`` stays (with its owner
    record) for the next build's sweep, and a warning says so."""
    try:
        return _remove_leftovers(podman, tmpdir, marker)
    except (rtbuild.EngineUnavailableError, subprocess.TimeoutExpired):
        _KEEP.add(tmpdir)
        rtbuild.get_reporter().event(
            "warning",
            message=f"podman did not answer within {CLEANUP_S:.0f} s while rtbuild removed a podman build's working"
            " containers (is its storage locked by another podman process?): the next podman build removes"
            f" them, and {tmpdir}",
        )
        return None


def _remove_leftovers(podman: Podman, tmpdir: str, marker: str) -> list[str]:
    proc = podman.run(
        "info",
        "--format",
        "{{.Store.GraphRoot}}\t{{.Store.GraphDriverName}}\t{{.Host.OCIRuntime.Path}}",
        timeout=CLEANUP_S,
    )
    graph_root, driver, runtime = ([*proc.stdout.strip().split("\t"), "", ""])[:3]
    with contextlib.suppress(OSError):
        for entry in os.scandir(tmpdir):
            if entry.name.startswith("buildah") and entry.is_dir() and runtime:
                # Buildah names the runc container after the bundle: "buildah-" + its basename.
                with contextlib.suppress(OSError, subprocess.CalledProcessError):
                    subprocess.run(
                        [runtime, "delete", "--force", f"buildah-{entry.name}"],
                        capture_output=True,
                        timeout=CLEANUP_S,
                        stdin=subprocess.DEVNULL,
                    )
    listed = podman.run("ps", "-a", "--external", "--format", "json", timeout=CLEANUP_S)
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
        podman.run("rm", "--force", *ids, timeout=CLEANUP_S * 3)
    return ids


#: In each build's TMPDIR: who made it (pid, its start time, its pid namespace) and its marker,
#: so a later build can clean up after one whose rtbuild was killed (``kill -9``).
TMP_PREFIX = "rtbuild-podman-"


#: The owner note of a pull's or push's TMPDIR: no containers to look for after it.
COPY_NOTE = "copy"


def tmp_base() -> str | None:
    """Where podman puts big temp files, and rtbuild its TMPDIRs: ``$TMPDIR``, else
    ``/var/tmp`` (not a tmpfs)."""
    return os.environ.get("TMPDIR") or ("/var/tmp" if os.path.isdir("/var/tmp") else None)


def claim(tmpdir: str, marker: str) -> None:
    """Record this process as the owner of ``tmpdir`` (the build's TMPDIR) and its marker."""
    claim_directory(tmpdir, marker)


@contextlib.contextmanager
def owned_tmpdir(base: str | None, note: str) -> Iterator[str]:
    """A TMPDIR of podman's own under ``base``, claimed with ``note``, removed afterwards.
    One that cannot be made (``base`` full, read-only, missing) is an
    :class:`~rtbuild.EngineUnavailableError` saying so, not an internal error."""
    try:
        tmpdir = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=base)
    except OSError as exc:
        raise _tmpdir_error(base, exc) from exc
    try:
        try:
            claim(tmpdir, note)
        except OSError as exc:
            raise _tmpdir_error(base, exc) from exc
        yield tmpdir
    finally:
        if tmpdir in _KEEP:  # for the next build's sweep (remove_leftovers could not finish)
            _KEEP.discard(tmpdir)
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _tmpdir_error(base: str | None, exc: OSError) -> rtbuild.EngineUnavailableError:
    where = base or tempfile.gettempdir()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"the filesystem of {where} is full: free space there, or point TMPDIR at a directory with room"
        hint += " (podman copies each layer it pulls, pushes or commits there)"
    elif exc.errno == errno.ENOENT and not os.path.isdir(where):
        hint = f"{where} does not exist: create it, or point TMPDIR at an existing directory (or unset it)"
    else:
        hint = f"podman needs a writable {where}: fix its permissions, or point TMPDIR at a writable directory"
    return rtbuild.EngineUnavailableError(
        f"cannot make podman's temp directory under {where}: {exc.strerror or exc}",
        step="prepare podman temp directory",
        hint=hint,
    )


def sweep_dead_builds(podman: Podman, base: str | None) -> list[tuple[str, bool]]:
    """Stop and remove what builds whose rtbuild died without cleaning up left (their RUN
    containers, working containers and TMPDIRs under ``base``, and the TMPDIRs of pulls and
    pushes); return each TMPDIR removed, and whether a pull or push (not a build) left it.
    Costs one directory listing when there is nothing to do."""
    swept: list[tuple[str, bool]] = []
    try:
        with os.scandir(base or tempfile.gettempdir()) as listing:
            entries = [entry.path for entry in listing if entry.name.startswith(TMP_PREFIX)]
    except OSError:
        return swept
    for path in entries:
        marker = dead_owner_note(path)
        if marker is None:
            continue
        if marker != COPY_NOTE:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                if remove_leftovers(podman, path, marker) is None:
                    _KEEP.discard(path)
                    continue  # kept for a later sweep
        shutil.rmtree(path, ignore_errors=True)
        swept.append((path, marker == COPY_NOTE))
    return swept


def sweep_and_report(podman: Podman, base: str | None) -> None:
    """:func:`sweep_dead_builds`, and a ``leftovers_removed`` event when it removed any."""
    swept = sweep_dead_builds(podman, base)
    if swept:
        copies = sum(1 for _path, copy in swept if copy)
        builds = len(swept) - copies
        # A build leaves containers and its TMPDIR; a pull or push only its layer copies.
        what = [f"{builds} killed podman build(s) (RUN and working containers)"] if builds else []
        what += [f"{copies} killed podman pull(s) or push(es) (layer copies)"] if copies else []
        paths = [path for path, _copy in swept]
        rtbuild.get_reporter().event(
            "leftovers_removed",
            paths=paths,
            message=f"removed what {' and '.join(what)} left behind: {', '.join(paths)}",
        )


@contextlib.contextmanager
def copy_tmpdir(podman: Podman) -> Iterator[str]:
    """A TMPDIR of its own for a ``podman pull`` or ``push``, removed afterwards.

    containers/image copies each layer a push sends into a temp file (a pull: a ``storage*``
    dir) under ``$TMPDIR``, else ``/var/tmp``, and podman stopped mid-copy (a stall, the
    deadline, Ctrl-C, rtbuild killed) never removes it: a layer's size left on disk each
    time. After a ``kill -9`` of rtbuild the directory's owner record lets the next pull,
    push or build remove it.
    """
    base = tmp_base()
    sweep_and_report(podman, base)
    with owned_tmpdir(base, COPY_NOTE) as tmpdir:
        yield tmpdir


__all__ = [
    "COPY_NOTE",
    "MARK_ARG",
    "OWNER_FILE",
    "TMP_PREFIX",
    "claim",
    "copy_tmpdir",
    "owned_tmpdir",
    "remove_leftovers",
    "sweep_and_report",
    "sweep_dead_builds",
    "tmp_base",
    "unmark",
]
