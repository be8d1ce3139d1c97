"""The core's own default behaviour, registered as plugins so the core uses its own hooks."""

from __future__ import annotations

#: Module paths registered, in this order, before any third-party plugin.
DEFAULT_PLUGINS = ("rtbuild.default_plugins.dispatch",)
