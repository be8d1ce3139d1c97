"""Plugin and builder discovery through entry points: allow/deny, isolation, listing, tracing.

Builders (``rtbuild.builders``) are listed from metadata without importing them; only the
selected one is imported. Plugins (``rtbuild.plugins``) are filtered by the allow/deny
lists *before* ``ep.load()``, so a disabled plugin's code never runs.
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import pluggy

from rtbuild import hookspecs
from rtbuild._framework.entrypoints import EntryPointInfo
from rtbuild._framework.entrypoints import scan as scan_entry_points
from rtbuild.builder import RuntimeBuilder
from rtbuild.default_plugins import DEFAULT_PLUGINS
from rtbuild.errors import BuilderNotFoundError, PluginError, PluginLoadWarning
from rtbuild.markers import PROJECT_NAME

if TYPE_CHECKING:
    from rtbuild._framework.config import Config

BUILDERS_GROUP = "rtbuild.builders"
PLUGINS_GROUP = "rtbuild.plugins"


@dataclass
class PluginRecord:
    """One discovered builder or plugin, as ``rtbuild plugins`` lists it."""

    name: str
    kind: str  # "builder" | "plugin"
    distribution: str | None
    version: str | None
    status: str  # "loaded" | "available" | "disabled" | "failed"
    value: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Found:
    name: str
    value: str
    distribution: str | None
    version: str | None
    entry_point: EntryPointInfo


#: When set (by ``rtbuild.testing``), discovery looks only at these directories.
SEARCH_PATH: list[str] | None = None


def _scan(groups: Sequence[str]) -> dict[str, list[EntryPointInfo]]:
    """Every entry point of ``groups``, read in one pass (cached; see :mod:`rtbuild.entrypoints`)."""
    scanned = scan_entry_points(SEARCH_PATH)
    return {group: scanned.get(group, []) for group in groups}


def _collect(group: str, eps: Iterable[EntryPointInfo]) -> list[_Found]:
    found: dict[str, _Found] = {}
    for ep in eps:
        dist_name, version = ep.distribution, ep.version
        item = _Found(ep.name, ep.value, dist_name, version, ep)
        previous = found.get(ep.name)
        if previous is None:
            found[ep.name] = item
        elif _norm(previous.distribution) != _norm(dist_name):
            raise PluginError(
                f"{group} entry point {ep.name!r} is registered by two distributions: "
                f"{previous.distribution} {previous.version} ({previous.value}) and "
                f"{dist_name} {version} ({ep.value})",
                step="discover plugins",
                hint=f"uninstall one of them (pip uninstall {dist_name}) or rename its entry point",
            )
        # The same distribution seen twice (e.g. on two sys.path entries): first wins.
    return sorted(found.values(), key=lambda f: f.name)


def discover(group: str) -> list[_Found]:
    """Entry points of ``group``, de-duplicated; a name two distributions claim is an error."""
    return _collect(group, _scan([group])[group])


def _norm(name: str | None) -> str:
    return (name or "").lower().replace("_", "-").replace(".", "-")


def _selected(item: _Found, allow: Sequence[str] | None, deny: Sequence[str]) -> bool:
    keys = {item.name, _norm(item.distribution)}
    if any(name in keys or _norm(name) in keys for name in deny):
        return False
    if allow is None:
        return True
    return any(name in keys or _norm(name) in keys for name in allow)


def _where(exc: BaseException) -> list[str]:
    """Where an import failed (innermost frame) and the error: enough without a traceback."""
    import traceback

    lines: list[str] = []
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        frame = frames[-1]
        lines.append(f'File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"  {frame.line}")
    lines += "".join(traceback.format_exception_only(exc)).splitlines()
    return lines


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class HookTracer:
    """Prints each hook call with its plugins and duration (``RTBUILD_TRACE_HOOKS=1``)."""

    def __init__(self, pm: pluggy.PluginManager, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._starts: list[float] = []
        self._undo = pm.add_hookcall_monitoring(self._before, self._after)

    def _write(self, text: str) -> None:
        print(text, file=self._stream or sys.stderr)

    def _before(self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        self._starts.append(time.perf_counter())
        names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "(no plugins)"
        self._write(f"rtbuild trace: {hook_name} -> [{names}]")

    def _after(
        self, outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._starts.pop()) * 1000
        status = "raised " + type(outcome.exception).__name__ if outcome.exception else "ok"
        self._write(f"rtbuild trace: {hook_name} {status} in {elapsed_ms:.1f} ms")

    def undo(self) -> None:
        self._undo()


class RtbuildPluginManager(pluggy.PluginManager):
    """pluggy's manager plus rtbuild's discovery, listing and builder factory."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._builder_records: dict[str, PluginRecord] | None = None
        self._found: dict[str, list[_Found]] = {}
        self._scanned: dict[str, list[EntryPointInfo]] | None = None
        self._tracer: HookTracer | None = None

    def discovered(self, group: str) -> list[_Found]:
        """``discover(group)``, scanning the installed metadata once per manager."""
        if group not in self._found:
            if self._scanned is None:
                self._scanned = _scan([BUILDERS_GROUP, PLUGINS_GROUP])
            self._found[group] = _collect(group, self._scanned.get(group, []))
        return self._found[group]

    # -- plugins -------------------------------------------------------------------------
    def register_defaults(self) -> None:
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            short = module_name.rsplit(".", 1)[-1]
            self.register(module, name=f"rtbuild.{short}")
            self.records[f"rtbuild.{short}"] = PluginRecord(
                f"rtbuild.{short}",
                "plugin",
                "rtbuild",
                _core_version(),
                "loaded",
                module_name,
                self._hooks_of(module),
            )

    def load_entrypoint_plugins(
        self, allow: Sequence[str] | None = None, deny: Sequence[str] = (), strict: bool = False, check: bool = True
    ) -> None:
        """Import and register every allowed ``rtbuild.plugins`` entry point."""
        for item in self.discovered(PLUGINS_GROUP):
            record = PluginRecord(item.name, "plugin", item.distribution, item.version, "disabled", item.value)
            self.records[item.name] = record
            if not _selected(item, allow, deny):
                continue
            try:
                plugin = item.entry_point.load()
                self.register(plugin, name=item.name)
            except Exception as exc:  # a broken plugin must not break every build
                record.status = "failed"
                record.error = _describe(exc)
                message = (
                    f"plugin {item.name!r} from {item.distribution} {item.version} failed to load "
                    f"and was skipped: {record.error}"
                )
                if strict:
                    raise PluginError(
                        message.replace(" and was skipped", ""),
                        step="load plugins",
                        log_tail=_where(exc),
                        hint="fix or uninstall the plugin, or disable it with RTBUILD_DISABLE_PLUGINS",
                    ) from exc
                warnings.warn(message, PluginLoadWarning, stacklevel=2)
                continue
            record.status = "loaded"
            record.hooks = self._hooks_of(plugin)
        if check:
            self.check()

    def check(self, tolerate: bool = False) -> None:
        """Run pluggy's ``check_pending``: a misspelt hookimpl is an error naming its plugin.

        With ``tolerate`` (for listings), each invalid plugin is unregistered and marked
        ``failed`` instead, so ``rtbuild plugins`` can still show everything.
        """
        while True:
            try:
                self.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin) or repr(exc.plugin)
                record = self.records.get(name)
                dist = f" from {record.distribution} {record.version}" if record and record.distribution else ""
                if not tolerate or record is None:
                    raise PluginError(
                        f"plugin {name!r}{dist} is invalid: {exc}",
                        step="load plugins",
                        hint=f"hooks are: {', '.join(sorted(self._spec_names()))}; mark others optionalhook=True",
                    ) from exc
                self.unregister(exc.plugin)
                record.status, record.error, record.hooks = "failed", f"invalid: {exc}", []

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r} is invalid: {exc}", step="load plugins") from exc

    def _spec_names(self) -> list[str]:
        return [name for name in dir(self.hook) if not name.startswith("_")]

    def _hooks_of(self, plugin: object) -> list[str]:
        callers = self.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def trace_hooks(self, stream: TextIO | None = None) -> None:
        if self._tracer is None:
            self._tracer = HookTracer(self, stream)

    # -- builders ------------------------------------------------------------------------
    def builder_records(self) -> dict[str, PluginRecord]:
        """Installed builders, from metadata only (nothing is imported)."""
        if self._builder_records is None:
            self._builder_records = {
                item.name: PluginRecord(item.name, "builder", item.distribution, item.version, "available", item.value)
                for item in self.discovered(BUILDERS_GROUP)
            }
        return self._builder_records

    def create_builder(self, name: str, config: Config) -> RuntimeBuilder:
        """Import the builder ``name`` and create it with ``from_config``."""
        found = {item.name: item for item in self.discovered(BUILDERS_GROUP)}
        records = self.builder_records()
        if name not in found:
            raise BuilderNotFoundError(name, found)
        item, record = found[name], records[name]
        try:
            cls = item.entry_point.load()
        except Exception as exc:
            record.status, record.error = "failed", _describe(exc)
            raise PluginError(
                f"builder {name!r} from {item.distribution} {item.version} failed to load: {record.error}",
                step="load builder",
                log_tail=_where(exc),
                hint=f"reinstall {item.distribution}, or choose another builder with --builder",
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, RuntimeBuilder)):
            record.status, record.error = "failed", "not a RuntimeBuilder subclass"
            raise PluginError(
                f"builder {name!r} ({item.value}) from {item.distribution} is not a rtbuild.RuntimeBuilder subclass",
                step="load builder",
            )
        builder = _instantiate(cls, config, name)
        builder.name = name
        record.status = "loaded"
        return builder

    def listing(self) -> list[PluginRecord]:
        return [*self.builder_records().values(), *self.records.values()]


def _instantiate(cls: type[RuntimeBuilder], config: Config, name: str) -> RuntimeBuilder:
    """``cls.from_config(config, name)``; a v1 override taking only ``config`` still works."""
    import inspect

    try:
        params = inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes_name = "name" in params or any(p.kind is p.VAR_POSITIONAL for p in params.values()) or len(params) >= 2
    if takes_name:
        return cls.from_config(config, name)
    return cls.from_config(config)  # type: ignore[call-arg]


def _core_version() -> str:
    from rtbuild._version import __version__

    return __version__


def get_plugin_manager(
    config: Config | None = None,
    *,
    load_entrypoints: bool = True,
    extra_plugins: Iterable[object] = (),
    tolerate_invalid: bool = False,
) -> RtbuildPluginManager:
    """A plugin manager with the core's defaults, the allowed entry-point plugins and ``extra_plugins``.

    ``tolerate_invalid`` marks plugins with misspelt hooks ``failed`` instead of raising
    (``rtbuild plugins`` uses it to list them).
    """
    from rtbuild._framework.config import Config

    config = config or Config()
    pm = RtbuildPluginManager()
    if config.trace_hooks:
        pm.trace_hooks()
    pm.register_defaults()
    if load_entrypoints:
        pm.load_entrypoint_plugins(config.load_plugins, config.disable_plugins, config.strict_plugins, check=False)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check(tolerate=tolerate_invalid)
    return pm


__all__ = [
    "BUILDERS_GROUP",
    "PLUGINS_GROUP",
    "HookTracer",
    "PluginLoadWarning",
    "PluginRecord",
    "RtbuildPluginManager",
    "discover",
    "get_plugin_manager",
]
