"""rtbuild: a pluggable builder system for agent runtime container images.

The public API. Importing it stays light: no docker SDK, rich or backend is imported.
"""

from __future__ import annotations

from ._version import __version__
from .builder import BuildRequest, BuildResult, RuntimeBuilder
from .config import Config, load_config
from .errors import (
    AgentRuntimeBuildError,
    BuildContextError,
    BuilderNotFoundError,
    BuildFailedError,
    ConfigError,
    EngineUnavailableError,
    PluginError,
    PushError,
    RegistryAuthError,
    RegistryError,
)
from .markers import hookimpl, hookspec
from .pipeline import check_image, run_build
from .plugins import PluginLoadWarning, RtbuildPluginManager, get_plugin_manager

__all__ = [
    "AgentRuntimeBuildError",
    "BuildContextError",
    "BuildFailedError",
    "BuildRequest",
    "BuildResult",
    "BuilderNotFoundError",
    "Config",
    "ConfigError",
    "EngineUnavailableError",
    "PluginError",
    "PluginLoadWarning",
    "PushError",
    "RegistryAuthError",
    "RegistryError",
    "RtbuildPluginManager",
    "RuntimeBuilder",
    "__version__",
    "check_image",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "load_config",
    "run_build",
]
