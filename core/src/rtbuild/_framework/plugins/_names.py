"""Names a user or plugin author can get wrong, each reported with did-you-mean.

Hook names and hook arguments (a misspelt one would silently turn a policy plugin off),
and the plugin/builder names in the allow and deny lists and in ``[plugins.X]`` /
``[builders.X]`` tables (a typo in a deny list must not go unnoticed).
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rtbuild._framework.entrypoints import GROUPS
from rtbuild.errors import PluginLoadWarning

if TYPE_CHECKING:
    from rtbuild._framework.config import Config


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(name, sorted(set(choices)), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def unknown_hook_message(hook: str, specs: Sequence[str]) -> tuple[str, str]:
    """Message and hint for a hook implementation whose name is no hook."""
    return (
        f"{hook!r} is not an rtbuild hook{did_you_mean(hook, specs)}",
        f"hooks are: {', '.join(sorted(specs))}; mark others @hookimpl(optionalhook=True)",
    )


_ARG_ERROR = re.compile(r"for hook '(?P<hook>\w+)'.*?Argument\(s\) \{(?P<args>[^}]*)\}", re.DOTALL)


def bad_argument_message(pluggy_message: str, spec_args: dict[str, list[str]]) -> tuple[str, str] | None:
    """Message and hint for a hookimpl argument the hook does not have, or a wrapper that
    does not yield (from pluggy's text)."""
    if "is not a generator function" in pluggy_message:  # @hookimpl(wrapper=True) without a yield
        named = re.search(r"for hook '(\w+)'", pluggy_message)
        return (
            f"its {named.group(1) if named else ''} hook is marked wrapper=True but does not yield",
            "a wrapper is a generator around the other implementations: `result = yield` gives their result"
            " (or raises their exception), then return it (docs/hooks.md, Wrappers); or drop wrapper=True",
        )
    match = _ARG_ERROR.search(pluggy_message)
    if not match or match.group("hook") not in spec_args:
        return None
    hook = match.group("hook")
    valid = spec_args[hook]
    args = [a.strip().strip("'\"") for a in match.group("args").split(",") if a.strip()]
    parts = [f"{arg!r}{did_you_mean(arg, valid)}" for arg in args]
    noun = "argument" if len(args) == 1 else "arguments"
    return (
        f"its {hook} hook takes {noun} {', '.join(parts)}, which {hook} does not have",
        f"{hook} passes: {', '.join(valid)} (take any subset of them, by these names)",
    )


def _warn(message: str) -> None:
    warnings.warn(message, PluginLoadWarning, stacklevel=3)


def check_configured_names(
    config: Config,
    plugin_names: Iterable[str],
    builder_names: Iterable[str],
    *,
    builder_distributions: Iterable[str] = (),
    check_lists: bool = True,
    hook: Any = None,
) -> list[str]:
    """Warn about names that match no installed plugin or builder; return the messages.

    ``plugin_names`` are entry-point and distribution names of installed plugins,
    ``builder_names`` the installed builders' names.
    """
    plugins = {n for n in plugin_names if n}
    normalised = {_norm(n) for n in plugins}
    builders = set(builder_names)
    builder_dists = {_norm(n) for n in builder_distributions if n} | {_norm(n) for n in builders}
    messages: list[str] = []

    def known(name: str) -> bool:
        return name in plugins or _norm(name) in normalised

    if check_lists:
        lists = (
            ("RTBUILD_LOAD_PLUGINS / load_plugins", config.load_plugins or []),
            ("RTBUILD_DISABLE_PLUGINS / disable_plugins", config.disable_plugins),
        )
        for where, names in lists:
            for name in names:
                if known(name):
                    continue
                if _norm(name) in builder_dists:
                    messages.append(
                        f"{where} names {name!r}, a builder: the plugin lists never filter builders "
                        "(select one with --builder / RTBUILD_BUILDER)"
                    )
                    continue
                messages.append(f"{where} names {name!r}, which is no installed plugin{did_you_mean(name, plugins)}")
    runtime: set[str] | None = None
    for name in config.plugins:
        if not known(name):
            if runtime is None:  # [plugins.NAME] of a runtime plugin: asked only for an unknown table
                runtime = _runtime_plugin_names(hook, config)
            if name not in runtime:
                choices = plugins | runtime
                messages.append(f"[plugins.{name}] configures no installed plugin{did_you_mean(name, choices)}")
    for name in config.builders:
        if name not in builders:
            messages.append(f"[builders.{name}] configures no installed builder{did_you_mean(name, builders)}")
    for message in messages:
        _warn(message)
    return messages


def warn_unmarked_hooks(plugin: object, described: str, hooks: Iterable[str], marked: Iterable[str]) -> list[str]:
    """Warn about functions named after a hook but not marked ``@rtbuild.hookimpl``; return them.

    pluggy calls only marked functions, so a plugin whose author left the decorator off
    would be silently inactive (a policy plugin switched off). In a module, only
    functions defined there count (an imported helper named ``build`` is not meant)."""
    module = getattr(plugin, "__name__", None) if isinstance(plugin, ModuleType) else None
    found = []
    for hook in sorted(set(hooks) - set(marked)):
        func = getattr(plugin, hook, None)
        if callable(func) and (module is None or getattr(func, "__module__", None) == module):
            found.append(hook)
    if found:
        names = ", ".join(found)
        _warn(
            f"{described} defines {names} without @rtbuild.hookimpl, so rtbuild never calls"
            f" {'it' if len(found) == 1 else 'them'}: mark {'it' if len(found) == 1 else 'each'}"
            " @rtbuild.hookimpl, or rename it"
        )
    return found


def warn_misfiled(entries: Iterable[Any], groups: Sequence[str] = GROUPS) -> list[str]:
    """Warn about entry points in a group named like rtbuild's but not one it reads
    (``rtbuild.plugin``): rtbuild never sees them; return the messages."""
    messages = [
        f"{ep.distribution} {ep.version} declares entry point {ep.name!r} = {ep.value!r} in group {ep.group!r},"
        f" which rtbuild does not read{did_you_mean(ep.group, groups)}: it reads {' and '.join(groups)}"
        for ep in entries
    ]
    for message in messages:
        _warn(message)
    return messages


def refuse_class(plugin: object, described: str, blame: str | None) -> None:
    """An entry point naming a class whose hook implementations are methods taking ``self``:
    pluggy would call them unbound and every build would fail with a TypeError naming no
    cause. A ``PluginError`` asking for an instance instead."""
    from rtbuild.errors import PluginError  # here: only a wrong plugin needs it

    if not isinstance(plugin, type):
        return
    methods = []
    for name in dir(plugin):
        value = getattr(plugin, name, None)
        if inspect.isfunction(value) and hasattr(value, "rtbuild_impl"):
            params = list(inspect.signature(value).parameters)
            if params and params[0] == "self":
                methods.append(name)
    if methods:
        cls = plugin.__qualname__
        raise PluginError(
            f"{described} is invalid: its entry point names the class {cls}, whose hook"
            f" {'method' if len(methods) == 1 else 'methods'} {', '.join(methods)}"
            f" {'takes' if len(methods) == 1 else 'take'} self",
            step="load plugins",
            hint=f"point the entry point at an instance (plugin = {cls}() in {plugin.__module__},"
            f' then "{plugin.__module__}:plugin"), or make the hooks module-level functions',
            blame=blame,
        )


def _runtime_plugin_names(hook: Any, config: Config) -> set[str]:
    """The names of the runtime plugins offered (their settings are ``[plugins.NAME]`` too);
    a ``runtime_plugins`` hook that fails here is left to the runtime command to report."""
    if hook is None:
        return set()
    try:
        return {str(getattr(p, "name", "")) for offered in hook.runtime_plugins(config=config) for p in offered or ()}
    except Exception:
        return set()


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


__all__ = [
    "bad_argument_message",
    "check_configured_names",
    "did_you_mean",
    "refuse_class",
    "unknown_hook_message",
    "warn_misfiled",
    "warn_unmarked_hooks",
]
