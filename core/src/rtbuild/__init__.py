"""rtbuild: a pluggable builder system for agent runtime container images.

The public API. Importing it stays light: no docker SDK, rich or backend is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AgentRuntimeBuildError,
    BuildContextError,
    BuilderNotFoundError,
    BuildFailedError,
    ChecksumMismatchError,
    ConfigError,
    DownloadError,
    EngineUnavailableError,
    InvalidReferenceError,
    PluginError,
    PushError,
    RegistryAuthError,
    RegistryError,
)

if TYPE_CHECKING:
    from .builder import BuildRequest, BuildResult, RuntimeBuilder
    from .config import Config, load_config
    from .markers import hookimpl, hookspec
    from .pipeline import check_image, run_build
    from .plugins import PluginLoadWarning, RtbuildPluginManager, get_plugin_manager
    from .runtime import build_runtime_image, get_runtime_image
    from .runtime_plugin import RuntimePlugin, RuntimeRequirements

#: Public names imported on first use (PEP 562), so that ``rtbuild --version`` and
#: ``--help`` load neither pluggy nor importlib.metadata: name -> submodule.
_LAZY: dict[str, str] = {
    "BuildRequest": "builder",
    "BuildResult": "builder",
    "RuntimeBuilder": "builder",
    "Config": "config",
    "load_config": "config",
    "hookimpl": "markers",
    "hookspec": "markers",
    "check_image": "pipeline",
    "run_build": "pipeline",
    "PluginLoadWarning": "plugins",
    "RtbuildPluginManager": "plugins",
    "get_plugin_manager": "plugins",
    "build_runtime_image": "runtime",
    "get_runtime_image": "runtime",
    "RuntimePlugin": "runtime_plugin",
    "RuntimeRequirements": "runtime_plugin",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AgentRuntimeBuildError",
    "BuildContextError",
    "BuildFailedError",
    "BuildRequest",
    "BuildResult",
    "BuilderNotFoundError",
    "ChecksumMismatchError",
    "Config",
    "ConfigError",
    "DownloadError",
    "EngineUnavailableError",
    "InvalidReferenceError",
    "PluginError",
    "PluginLoadWarning",
    "PushError",
    "RegistryAuthError",
    "RegistryError",
    "RtbuildPluginManager",
    "RuntimeBuilder",
    "RuntimePlugin",
    "RuntimeRequirements",
    "__version__",
    "build_runtime_image",
    "check_image",
    "get_plugin_manager",
    "get_runtime_image",
    "hookimpl",
    "hookspec",
    "load_config",
    "run_build",
]
