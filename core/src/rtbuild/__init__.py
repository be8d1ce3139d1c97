"""rtbuild: a pluggable builder system for agent runtime container images.

The public API. Importing it stays light: no docker SDK, rich or backend is imported.
"""

from __future__ import annotations

from rtbuild._lazy import lazy_exports
from rtbuild._version import __version__
from rtbuild.errors import (
    AgentRuntimeBuildError,
    BuildContextError,
    BuilderNotFoundError,
    BuildFailedError,
    CapabilityError,
    ChecksumMismatchError,
    ConfigError,
    DownloadError,
    EngineUnavailableError,
    InvalidReferenceError,
    PluginError,
    PolicyError,
    PostBuildError,
    PushError,
    RegistryAuthError,
    RegistryError,
)

#: Not typing.TYPE_CHECKING: importing typing (~9 ms) would come before the CLI can catch
#: an early Ctrl-C (see rtbuild.cli); mypy treats the name the same.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from rtbuild._framework.atomic import atomic_write
    from rtbuild._framework.config import Config, load_config
    from rtbuild._framework.interrupts import on_cancel
    from rtbuild._framework.paths import cache_dir, state_dir
    from rtbuild._framework.pipeline import check_image, run_build
    from rtbuild._framework.plugins import PluginLoadWarning, RtbuildPluginManager, get_plugin_manager
    from rtbuild._framework.progress import Reporter, get_reporter, use_reporter
    from rtbuild._framework.session import BuildSession
    from rtbuild._framework.settings import builder_settings, load_settings, plugin_settings, setting
    from rtbuild._observe.prune import PruneItem, PrunePolicy
    from rtbuild.builder import BuilderCapabilities, BuildRequest, BuildResult, BuildSecret, ImageInfo, RuntimeBuilder
    from rtbuild.markers import hookimpl, hookspec
    from rtbuild.runtime._build import build_runtime_image, get_runtime_image
    from rtbuild.runtime._plugin import RuntimePlugin, RuntimeRequirements

#: Public names imported on first use (PEP 562), so that ``rtbuild --version`` and
#: ``--help`` load neither pluggy nor importlib.metadata: name -> module.
_LAZY: dict[str, str] = {
    "BuilderCapabilities": "rtbuild.builder",
    "BuildRequest": "rtbuild.builder",
    "BuildSecret": "rtbuild.builder",
    "ImageInfo": "rtbuild.builder",
    "BuildResult": "rtbuild.builder",
    "RuntimeBuilder": "rtbuild.builder",
    "Config": "rtbuild._framework.config",
    "load_config": "rtbuild._framework.config",
    "hookimpl": "rtbuild.markers",
    "hookspec": "rtbuild.markers",
    "check_image": "rtbuild._framework.pipeline",
    "run_build": "rtbuild._framework.pipeline",
    "PluginLoadWarning": "rtbuild.errors",
    "RtbuildPluginManager": "rtbuild._framework.plugins",
    "get_plugin_manager": "rtbuild._framework.plugins",
    "Reporter": "rtbuild._framework.progress",
    "BuildSession": "rtbuild._framework.session",
    "atomic_write": "rtbuild._framework.atomic",
    "builder_settings": "rtbuild._framework.settings",
    "load_settings": "rtbuild._framework.settings",
    "plugin_settings": "rtbuild._framework.settings",
    "setting": "rtbuild._framework.settings",
    "cache_dir": "rtbuild._framework.paths",
    "state_dir": "rtbuild._framework.paths",
    "get_reporter": "rtbuild._framework.progress",
    "use_reporter": "rtbuild._framework.progress",
    "on_cancel": "rtbuild._framework.interrupts",
    "build_runtime_image": "rtbuild.runtime._build",
    "get_runtime_image": "rtbuild.runtime._build",
    "RuntimePlugin": "rtbuild.runtime._plugin",
    "RuntimeRequirements": "rtbuild.runtime._plugin",
    "PruneItem": "rtbuild._observe.prune",
    "PrunePolicy": "rtbuild._observe.prune",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "AgentRuntimeBuildError",
    "BuildContextError",
    "BuildFailedError",
    "BuildRequest",
    "BuildResult",
    "BuildSecret",
    "BuildSession",
    "BuilderCapabilities",
    "BuilderNotFoundError",
    "CapabilityError",
    "ChecksumMismatchError",
    "Config",
    "ConfigError",
    "DownloadError",
    "EngineUnavailableError",
    "ImageInfo",
    "InvalidReferenceError",
    "PluginError",
    "PluginLoadWarning",
    "PolicyError",
    "PostBuildError",
    "PruneItem",
    "PrunePolicy",
    "PushError",
    "RegistryAuthError",
    "RegistryError",
    "Reporter",
    "RtbuildPluginManager",
    "RuntimeBuilder",
    "RuntimePlugin",
    "RuntimeRequirements",
    "__version__",
    "atomic_write",
    "build_runtime_image",
    "builder_settings",
    "cache_dir",
    "check_image",
    "get_plugin_manager",
    "get_reporter",
    "get_runtime_image",
    "hookimpl",
    "hookspec",
    "load_config",
    "load_settings",
    "on_cancel",
    "plugin_settings",
    "run_build",
    "setting",
    "state_dir",
    "use_reporter",
]
