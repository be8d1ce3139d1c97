"""The pluggy markers for the ``rtbuild`` project name."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "rtbuild"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
