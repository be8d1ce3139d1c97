"""Runtime images: the runtime-plugin API, composition, tags and tiers, orchestration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild._lazy import lazy_exports

if TYPE_CHECKING:
    from rtbuild.runtime._build import build_runtime_image, get_runtime_image
    from rtbuild.runtime._plugin import FileContent, RuntimePlugin, RuntimeRequirements, SourcePayload
    from rtbuild.runtime._select import available_runtime_plugins

_NAMES = {
    "available_runtime_plugins": "rtbuild.runtime._select",
    "build_runtime_image": "rtbuild.runtime._build",
    "get_runtime_image": "rtbuild.runtime._build",
    "FileContent": "rtbuild.runtime._plugin",
    "RuntimePlugin": "rtbuild.runtime._plugin",
    "RuntimeRequirements": "rtbuild.runtime._plugin",
    "SourcePayload": "rtbuild.runtime._plugin",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = [
    "FileContent",
    "RuntimePlugin",
    "RuntimeRequirements",
    "SourcePayload",
    "available_runtime_plugins",
    "build_runtime_image",
    "get_runtime_image",
]
