"""Plugin and builder discovery through entry points: allow/deny, isolation, listing, tracing.

Builders (``rtbuild.builders``) are listed from metadata without importing them; only the
selected one is imported. Plugins (``rtbuild.plugins``) are filtered by the allow/deny
lists *before* ``ep.load()``, so a disabled plugin's code never runs.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable, Sequence
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, TextIO

import pluggy

from rtbuild import hookspecs
from rtbuild._framework.entrypoints import MISFILED, EntryPointInfo
from rtbuild._framework.entrypoints import scan as scan_entry_points
from rtbuild._framework.plugins import _names
from rtbuild._framework.plugins._discovery import (
    PluginRecord,
    _class_problem,
    _collect,
    _collect_all,
    _conflict_error,
    _conflict_note,
    _conflicts,
    _describe,
    _Found,
    _instantiate,
    _selected,
    _where,
)
from rtbuild._framework.plugins._names import bad_argument_message, check_configured_names, unknown_hook_message
from rtbuild._framework.plugins._trace import HookTracer
from rtbuild._framework.plugins._wrapping import wrap_impls
from rtbuild.default_plugins import DEFAULT_PLUGINS
from rtbuild.errors import BuilderNotFoundError, PluginError, PluginLoadWarning
from rtbuild.markers import PROJECT_NAME

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild.builder import RuntimeBuilder

BUILDERS_GROUP = "rtbuild.builders"
PLUGINS_GROUP = "rtbuild.plugins"


#: When set (by ``rtbuild.testing``), discovery looks only at these directories.
SEARCH_PATH: list[str] | None = None


def _scan(groups: Sequence[str]) -> dict[str, list[EntryPointInfo]]:
    """Every entry point of ``groups``, read in one pass (cached; see :mod:`rtbuild.entrypoints`)."""
    scanned = scan_entry_points(SEARCH_PATH)
    return {group: scanned.get(group, []) for group in groups}


def discover(group: str) -> list[_Found]:
    """Entry points of ``group``, de-duplicated; a name two distributions claim is an error."""
    return _collect(group, _scan([group])[group])


class RtbuildPluginManager(pluggy.PluginManager):
    """pluggy's manager plus rtbuild's discovery, listing and builder factory."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        #: Rows of plugins whose name two distributions claim (listed, never loaded).
        self.conflict_records: list[PluginRecord] = []
        self._builder_rows: list[PluginRecord] | None = None
        self._found: dict[str, list[_Found]] = {}
        self._scanned: dict[str, list[EntryPointInfo]] | None = None
        self._tracer: HookTracer | None = None
        self._origins: dict[str, str] = {}

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        # pluggy looks every name of a plugin up with inspect.getattr_static (a few
        # milliseconds per plugin manager, on every run_build). A module's names are
        # plain dict entries: only functions can be hooks there, anything else is skipped
        # at once; functions, and every other kind of plugin, go through pluggy as before.
        if isinstance(plugin, ModuleType):
            value = plugin.__dict__.get(name)
            if not isinstance(value, FunctionType):
                if value is None or isinstance(value, (type, ModuleType, str, int, float, tuple, frozenset, dict)):
                    return None
                return super().parse_hookimpl_opts(plugin, name)
            opts = getattr(value, PROJECT_NAME + "_impl", None)
            return opts if isinstance(opts, dict) else None  # type: ignore[return-value]
        return super().parse_hookimpl_opts(plugin, name)

    def discovered_all(self, group: str) -> list[_Found]:
        """Every entry point of ``group`` (two distributions may claim one name), scanned once."""
        if group not in self._found:
            if self._scanned is None:
                self._scanned = _scan([BUILDERS_GROUP, PLUGINS_GROUP, MISFILED])
            self._found[group] = _collect_all(self._scanned.get(group, []))
        return self._found[group]

    def discovered(self, group: str) -> list[_Found]:
        """The entry points of ``group`` whose name only one distribution claims."""
        conflicts = _conflicts(self.discovered_all(group))
        return [item for item in self.discovered_all(group) if item.name not in conflicts]

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
        self,
        allow: Sequence[str] | None = None,
        deny: Sequence[str] = (),
        strict: bool = False,
        check: bool = True,
        tolerate: bool = False,
    ) -> None:
        """Import and register every allowed ``rtbuild.plugins`` entry point.

        A plugin that fails to import is skipped with a warning (an error when ``strict``);
        an invalid one (misspelt hook or argument) or a name two distributions claim is an
        error, unless ``tolerate`` (listings), which marks it ``failed``/``conflict``.
        """
        items = self.discovered_all(PLUGINS_GROUP)
        conflicts = _conflicts(items)
        for item in items:
            record = PluginRecord(item.name, "plugin", item.distribution, item.version, "disabled", item.value)
            if item.name in conflicts:
                record.status, record.error = "conflict", _conflict_note(item, conflicts[item.name])
                self.conflict_records.append(record)
                if _selected(item, allow, deny) and not tolerate:
                    raise _conflict_error(PLUGINS_GROUP, item.name, conflicts[item.name])
                continue
            if item.name in self.records:  # the core's own plugin's name (rtbuild.dispatch)
                record.status, record.error = "failed", f"{item.name!r} is the name of the core's own plugin"
                self.conflict_records.append(record)  # listed beside the core's row, never loaded
                if _selected(item, allow, deny):
                    self._skip(record, record.error, None, strict)
                continue
            self.records[item.name] = record
            if not _selected(item, allow, deny):
                continue
            try:
                plugin = item.entry_point.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must not break every build
                # SystemExit: a module that runs a command line (argparse) or sys.exit() on import.
                record.status = "failed"
                record.error = _describe(exc)
                self._skip(record, record.error, exc, strict)
                continue
            self._origins[item.name] = f"plugin {item.name} ({item.distribution} {item.version})"
            try:
                _names.refuse_class(plugin, self._describe_plugin(item.name), self._origins[item.name])
                self.register(plugin, name=item.name)
            except PluginError as exc:
                if not tolerate:
                    raise
                record.status, record.error = "failed", f"invalid: {exc.message}"
                continue
            record.status, record.hooks = "loaded", self._hooks_of(plugin)
            _names.warn_unmarked_hooks(plugin, self._describe_plugin(item.name), self._spec_names(), record.hooks)
        if check:
            self.check(tolerate)

    def _skip(self, record: PluginRecord, why: str, exc: BaseException | None, strict: bool) -> None:
        """Warn that a plugin failed to load and was skipped (an error when ``strict``)."""
        message = (
            f"plugin {record.name!r} from {record.distribution} {record.version} failed to load and was skipped: {why}"
        )
        if strict:
            raise PluginError(
                message.replace(" and was skipped", ""),
                step="load plugins",
                log_tail=_where(exc) if exc is not None else None,
                hint="fix or uninstall the plugin, or disable it with RTBUILD_DISABLE_PLUGINS",
                blame=f"plugin {record.name} ({record.distribution} {record.version})",
            ) from exc
        warnings.warn(message, PluginLoadWarning, stacklevel=3)

    def _describe_plugin(self, name: str) -> str:
        record = self.records.get(name)
        dist = f" from {record.distribution} {record.version}" if record and record.distribution else ""
        return f"plugin {name!r}{dist}"

    def check(self, tolerate: bool = False) -> None:
        """Unknown hook names are errors naming the plugin, the hook and what it may mean.

        With ``tolerate`` (for listings), each invalid plugin is unregistered and marked
        ``failed`` instead, so ``rtbuild plugins`` can still show everything.
        """
        specs = self._spec_names()
        while True:
            try:
                self.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin) or repr(exc.plugin)
                record = self.records.get(name)
                unknown = [c.name for c in self.get_hookcallers(exc.plugin) or [] if c.name not in specs]
                message, hint = unknown_hook_message(unknown[0], specs) if unknown else (str(exc), None)
                if not tolerate or record is None:
                    raise PluginError(
                        f"{self._describe_plugin(name)} is invalid: {message}",
                        step="load plugins",
                        hint=hint,
                        blame=self._origins.get(name),
                    ) from exc
                self.unregister(exc.plugin)
                record.status, record.error, record.hooks = "failed", f"invalid: {message}", []

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            registered = super().register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            specs = {n: list(getattr(self.hook, n).spec.argnames) for n in self._spec_names()}
            described = self._describe_plugin(name) if name else f"plugin {plugin!r}"
            found = bad_argument_message(str(exc), specs)
            message, hint = found if found else (str(exc), None)
            raise PluginError(
                f"{described} is invalid: {message}",
                step="load plugins",
                hint=hint,
                blame=self._origins.get(name or ""),
            ) from exc
        if registered is not None:
            origin = self._origins.get(registered)
            if origin is None and not registered.startswith("rtbuild."):
                origin = f"plugin {registered}"
            wrap_impls(self, plugin, registered, origin)
        return registered

    def _spec_names(self) -> list[str]:
        """The real hooks (not the callers pluggy makes for unknown hookimpl names)."""
        return sorted(n for n in dir(self.hook) if not n.startswith("_") and getattr(self.hook, n).spec is not None)

    def _hooks_of(self, plugin: object) -> list[str]:
        callers = self.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def trace_hooks(self, stream: TextIO | None = None) -> None:
        if self._tracer is None:
            self._tracer = HookTracer(self, stream)

    # -- builders ------------------------------------------------------------------------
    def builder_rows(self) -> list[PluginRecord]:
        """Every installed builder, from metadata only (nothing is imported); a name two
        distributions claim appears once per distribution, with status ``conflict``."""
        if self._builder_rows is None:
            items = self.discovered_all(BUILDERS_GROUP)
            conflicts = _conflicts(items)
            self._builder_rows = []
            for item in items:
                row = PluginRecord(item.name, "builder", item.distribution, item.version, "available", item.value)
                if item.name in conflicts:
                    row.status, row.error = "conflict", _conflict_note(item, conflicts[item.name])
                self._builder_rows.append(row)
        return self._builder_rows

    def builder_records(self) -> dict[str, PluginRecord]:
        """Installed builders by name (the first row of a conflicting name)."""
        records: dict[str, PluginRecord] = {}
        for row in self.builder_rows():
            records.setdefault(row.name, row)
        return records

    def builder_class(self, name: str) -> type[RuntimeBuilder]:
        """Import builder ``name``'s class (no instance); errors name the distribution."""
        items = [item for item in self.discovered_all(BUILDERS_GROUP) if item.name == name]
        records = self.builder_records()
        if not items:
            from rtbuild._framework.plugins._builders import failed_builders  # the error path only

            raise BuilderNotFoundError(name, records, failed=failed_builders(self))
        if len(items) > 1:
            raise _conflict_error(BUILDERS_GROUP, name, items)
        item, record = items[0], records[name]
        try:
            cls = item.entry_point.load()
        except (Exception, SystemExit) as exc:
            record.status, record.error = "failed", _describe(exc)
            raise PluginError(
                f"builder {name!r} from {item.distribution} {item.version} failed to load: {record.error}",
                step="load builder",
                log_tail=_where(exc),
                hint=f"reinstall {item.distribution}, or choose another builder with --builder",
                blame=f"builder {name} ({item.distribution} {item.version})",
            ) from exc
        problem = _class_problem(cls)  # it could never be created: say so before any work
        if problem:
            record.status, record.error = "failed", problem[0]
            raise PluginError(
                f"builder {name!r} ({item.value}) from {item.distribution} {item.version} {problem[0]}",
                step="load builder",
                hint=f"{problem[1]} (docs/writing-a-builder.md): report it to the authors of {item.distribution},"
                " or uninstall it",
                blame=f"builder {name} ({item.distribution} {item.version})",
            )
        builder_cls: type[RuntimeBuilder] = cls
        return builder_cls

    def create_builder(self, name: str, config: Config) -> RuntimeBuilder:
        """Import the builder ``name`` and create it with ``from_config``."""
        cls = self.builder_class(name)
        record = self.builder_records()[name]
        origin = f"builder {name} ({record.distribution} {record.version})"
        try:
            builder = _instantiate(cls, config, name)
        except Exception as exc:
            from rtbuild._framework.plugins._trace import blame

            blame(exc, origin)
            raise
        builder.name = name
        builder._rtbuild_origin = origin  # type: ignore[attr-defined]  # blame for its errors
        record.status = "loaded"
        return builder

    def listing(self) -> list[PluginRecord]:
        return [*self.builder_rows(), *self.records.values(), *self.conflict_records]


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
        pm.load_entrypoint_plugins(
            config.load_plugins, config.disable_plugins, config.strict_plugins, check=False, tolerate=tolerate_invalid
        )
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check(tolerate=tolerate_invalid)
    if load_entrypoints:
        check_names(config, pm)
    return pm


def check_names(config: Config, pm: RtbuildPluginManager) -> list[str]:
    """Warn (did-you-mean) about configured plugin and builder names nothing installed has."""
    plugins = [n for item in pm.discovered_all(PLUGINS_GROUP) for n in (item.name, item.distribution or "")]
    found = pm.discovered_all(BUILDERS_GROUP)
    names, dists = [i.name for i in found], [i.distribution or "" for i in found]
    messages = _names.warn_misfiled((pm._scanned or {}).get(MISFILED, []))
    return messages + check_configured_names(config, plugins, names, builder_distributions=dists, hook=pm.hook)


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
