"""Where rtbuild keeps files: one place computes the XDG cache and state directories.

Cache (``$XDG_CACHE_HOME/rtbuild``, else ``~/.cache/rtbuild``): what can be rebuilt at any
time (stat caches, entry-point scan, downloads, locks). State (``$XDG_STATE_HOME/rtbuild``,
else ``~/.local/state/rtbuild``): what records history (build logs, metrics). Both are read
from the environment on each call, so tests and services can redirect them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(*parts: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/rtbuild/PARTS...`` (not created)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "rtbuild", *parts)


def state_dir(*parts: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/rtbuild/PARTS...`` (not created)."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base, "rtbuild", *parts)


__all__ = ["cache_dir", "state_dir"]
