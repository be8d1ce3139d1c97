"""Where rtbuild keeps files: one place computes the XDG cache and state directories.

Cache (``$XDG_CACHE_HOME/rtbuild``, else ``~/.cache/rtbuild``): what can be rebuilt at any
time (stat caches, entry-point scan, downloads, locks). State (``$XDG_STATE_HOME/rtbuild``,
else ``~/.local/state/rtbuild``): what records history (build logs, metrics). Both are read
from the environment on each call, so tests and services can redirect them; a leading
``~`` in either variable is the user's home.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def cache_dir(*parts: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/rtbuild/PARTS...`` (not created)."""
    env = os.environ if env is None else env
    # A leading ~ is the home also when the shell left it (XDG_CACHE_HOME='~/x'): not ./~/x.
    base = os.path.expanduser(env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"))
    return Path(base, "rtbuild", *parts)


def state_dir(*parts: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/rtbuild/PARTS...`` (not created)."""
    env = os.environ if env is None else env
    base = os.path.expanduser(env.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state"))  # ~ as above
    return Path(base, "rtbuild", *parts)


def keep_newest(
    directory: str | os.PathLike[str],
    *,
    keep: int | None,
    select: Callable[[str], bool],
    max_age_days: float | None = None,
    spare: str | None = None,
    last_use: bool = False,
) -> None:
    """Remove the files of ``directory`` whose names ``select`` picks, beyond the newest
    ``keep`` (by mtime) and those older than ``max_age_days``; ``spare`` (a path) is never
    removed nor counted. For logs and caches that would otherwise grow without bound; a
    file that cannot be removed is left alone. ``last_use`` ranks by the later of mtime and
    atime instead, so a file read recently counts as new (with the usual ``relatime``
    mounts the kernel moves atime at most once a day; ``noatime`` leaves only mtime)."""
    found: list[tuple[float, str]] = []
    try:
        with os.scandir(directory) as scanner:
            for entry in scanner:
                if select(entry.name):
                    st = entry.stat()
                    found.append((max(st.st_mtime, st.st_atime) if last_use else st.st_mtime, entry.path))
    except OSError:
        return
    found.sort(reverse=True)
    cutoff = time.time() - max_age_days * 86400 if max_age_days is not None else None
    kept = 0
    for mtime, path in found:
        if path == spare:
            continue
        kept += 1
        if (keep is not None and kept > keep) or (cutoff is not None and mtime < cutoff):
            with contextlib.suppress(OSError):
                os.unlink(path)


__all__ = ["cache_dir", "keep_newest", "state_dir"]
