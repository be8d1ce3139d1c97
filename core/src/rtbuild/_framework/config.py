"""Configuration: ``rtbuild.toml`` or ``[tool.rtbuild]`` in ``pyproject.toml``, ``RTBUILD_*``
environment variables, CLI flags. Later sources win: defaults < file < environment < flags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rtbuild._framework.settings import check_value, env_value, kind_of, line_of, mismatch, schema_of, text_map
from rtbuild._framework.tomltext import parse_toml
from rtbuild._masking import masked_repr
from rtbuild.errors import ConfigError

DEFAULT_BUILDER = "docker"


@dataclass
class SandboxConfig:
    """The runtime settings an agent platform hands to rtbuild (see docs/configuration.md)."""

    runtime_container_image: str | None = None
    base_container_image: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr


@dataclass
class RuntimeConfig:
    """Defaults for ``rtbuild runtime``."""

    repo: str = "rtbuild/runtime"
    plugins: list[str] = field(default_factory=list)


@dataclass
class Config:
    builder: str = DEFAULT_BUILDER
    platform: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    push: bool = False
    #: Registries reached over plain http (and trusted with credentials there): every
    #: registry call of the core and the builders honours them; loopback always is.
    insecure_registries: list[str] = field(default_factory=list)
    #: Seconds a build waits for another build of the same tag (``None``: as long as it takes).
    lock_timeout: float | None = None
    #: Seconds one engine build may run before rtbuild stops it (``None``: no bound). A
    #: registry that stalls a layer download mid-build would otherwise hold BuildKit forever.
    build_timeout: float | None = None
    #: Allow-list of plugin entry-point or distribution names; ``None`` = all.
    load_plugins: list[str] | None = None
    disable_plugins: list[str] = field(default_factory=list)
    strict_plugins: bool = False
    trace_hooks: bool = False
    #: Per-builder tables (``[builders.NAME]``), handed to ``from_config``.
    builders: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per-plugin tables (``[plugins.NAME]``), read by the plugins themselves.
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    #: Where the file settings came from, if any.
    source: str | None = None

    def builder_config(self, name: str | None = None) -> dict[str, Any]:
        """The ``[builders.NAME]`` table (empty when absent)."""
        return dict(self.builders.get(name or self.builder, {}))

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The ``[plugins.NAME]`` table (empty when absent)."""
        return dict(self.plugins.get(name, {}))

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr


# --- schema -----------------------------------------------------------------------------

#: Value kinds of the schema (also used by the build-many file parser): annotations,
#: checked and named by the one settings helper.
STRING: Any = str
BOOLEAN: Any = bool
STRING_MAP: Any = dict[str, str]
STRING_LIST: Any = list[str]

# The file's schema is the dataclasses' own fields.
_TOP: dict[str, Any] = schema_of(Config, exclude=("source", "sandbox", "runtime"))
_SECTIONS: dict[str, dict[str, Any]] = {"sandbox": schema_of(SandboxConfig), "runtime": schema_of(RuntimeConfig)}

#: Environment variables and the keys they set (docs/configuration.md lists them).
ENV_VARS: dict[str, str] = {
    "RTBUILD_BUILDER": "builder",
    "RTBUILD_PLATFORM": "platform",
    "RTBUILD_PUSH": "push",
    "RTBUILD_BUILD_TIMEOUT": "build_timeout",
    "RTBUILD_INSECURE_REGISTRIES": "insecure_registries",
    "RTBUILD_LOAD_PLUGINS": "load_plugins",
    "RTBUILD_DISABLE_PLUGINS": "disable_plugins",
    "RTBUILD_STRICT_PLUGINS": "strict_plugins",
    "RTBUILD_TRACE_HOOKS": "trace_hooks",
    "RTBUILD_RUNTIME_CONTAINER_IMAGE": "sandbox.runtime_container_image",
    "RTBUILD_BASE_CONTAINER_IMAGE": "sandbox.base_container_image",
    "RTBUILD_RUNTIME_REPO": "runtime.repo",
}


def _validate(data: Mapping[str, Any], source: str, text: str, prefix: str) -> None:
    root = prefix.rstrip(".")

    def fail(section: str | None, key: str, problem: str, detail: str = "", hint: str = "") -> None:
        line = line_of(text, ".".join(part for part in (root, section) if part), key)
        where = f"{source}:{line}" if line else source
        dotted = f"{prefix}{section + '.' if section else ''}{key}"
        hint = hint or "see docs/configuration.md for the known keys and their types"
        if problem == "unknown key" and not prefix and not section and key in ("tool", "rtbuild"):
            # pyproject.toml's [tool.rtbuild] copied into rtbuild.toml: 'builder' was the did-you-mean
            header = f"[{'tool.' * (key == 'tool')}rtbuild]"
            hint = f"in {os.path.basename(source)} the keys stand at the top: drop the {header} header"
        elif problem == "unknown key":
            import difflib

            known = _SECTIONS[section] if section else {**_TOP, **_SECTIONS}
            close = difflib.get_close_matches(key, list(known), n=1)
            if close:
                hint = f"did you mean {close[0]!r}? " + hint
        message = f"{where}: {problem} {dotted!r}" + (f": {detail}" if detail else "")
        raise ConfigError(message, step="read configuration", hint=hint)

    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                fail(None, key, "expected a table for")
            for sub, subvalue in value.items():
                kind = _SECTIONS[key].get(sub)
                if kind is None:
                    fail(key, sub, "unknown key")
                elif not check_value(subvalue, kind):
                    fail(key, sub, f"expected a {kind_of(kind)} for", mismatch(subvalue, kind))
            continue
        kind = _TOP.get(key)
        if kind is None:
            fail(None, key, "unknown key")
        elif not check_value(value, kind):
            fail(None, key, f"expected a {kind_of(kind)} for", mismatch(value, kind))
        elif key == "lock_timeout" and not value >= 0:  # not ">= 0" also catches NaN
            fail(None, key, "expected seconds (0 or more) for", f"got {value}")
        elif key == "build_timeout" and value is not None and not value > 0:  # and NaN; inf: no bound
            fail(None, key, "expected seconds (more than 0, or inf for no bound) for", f"got {value}")
        elif key in ("load_plugins", "disable_plugins") and value and (bad := _plugin_list_problem(value)):
            hint = _one_per_item_hint(source, key, ("plugins", "plugin"), ["metrics", "sbom"])
            fail(None, key, "expected one plugin name per item of", bad, hint)
        elif key == "insecure_registries" and (problem := insecure_registries_problem(value)):
            if "several" not in problem:
                hint = "write host[:port] (reg.example:5000) or a CIDR (10.0.0.0/8)"
            else:
                hint = _one_per_item_hint(source, key, ("registries", "registry"), ["reg-a:5000", "reg-b"])
            fail(None, key, "expected one registry per item of", problem, hint)


def _one_per_item_hint(source: str, key: str, nouns: tuple[str, str], example: list[str]) -> str:
    """How to write several items of a list setting: commas in its environment variable
    (``source`` names it), one item each in a file."""
    import json  # only on a mistake

    if source.startswith("environment variable"):
        return f"separate {nouns[0]} with commas: {source.rpartition(' ')[2]}={','.join(example)}"
    return f"list each {nouns[1]} as an item of its own: {key} = {json.dumps(example)}"


def _plugin_list_problem(names: list[str]) -> str | None:
    """An item with blanks inside: several names written as one ('metrics sbom'), which
    matched no plugin, so a disable list disabled nothing."""
    for name in names:
        if any(ch.isspace() for ch in name.strip()):
            return f"{name!r} holds several names"
    return None


#: An ``insecure_registries`` item: host[:port], [IPv6]:port or a CIDR, as dockerd's
#: ``insecure-registries`` (an http:// or https:// prefix and a trailing / are tolerated).
_REGISTRY = re.compile(r"(?:https?://)?(?:\[[0-9A-Fa-f:.]+\](?::\d+)?|[A-Za-z0-9._:-]+)(?:/\d{1,3})?/?")


def insecure_registries_problem(items: list[str]) -> str | None:
    """What is wrong with an ``insecure_registries`` list: 'a b' would match no registry, so
    the registry it meant would be refused over https later, far from the typo."""
    for number, item in enumerate(items, start=1):
        if _REGISTRY.fullmatch(item):
            continue
        shown = "" if "@" in item else f": {item!r}"  # user:password@host is not shown
        if any(c.isspace() or c == "," for c in item.strip()):
            return f"item {number} holds several{shown}"
        return f"item {number} is not a host[:port] or CIDR{shown}"
    return None


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``rtbuild.toml``, or ``pyproject.toml`` with ``[tool.rtbuild]``, upwards."""
    try:
        directory = (start or Path.cwd()).resolve()
    except FileNotFoundError:  # the shell's directory was removed (rm -rf, a checkout made again)
        where = f" {os.environ['PWD']}" if os.environ.get("PWD") else ""
        raise ConfigError(
            f"the current directory{where} no longer exists: no rtbuild.toml can be looked for from it",
            step="read configuration",
            hint='cd to an existing directory (`cd "$PWD"` if it was made again), or name the file with --config',
        ) from None
    for candidate_dir in (directory, *directory.parents):
        rt = candidate_dir / "rtbuild.toml"
        if rt.is_file():
            return rt
        py = candidate_dir / "pyproject.toml"
        if py.is_file():
            try:
                text = py.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if re.search(_HEADER, text, re.MULTILINE) or _tool_rtbuild_key(text):
                return py
    return None


_TOOL = r"""(?:tool|"tool"|'tool')[ \t]*\.[ \t]*(?:rtbuild|"rtbuild"|'rtbuild')"""
_HEADER = rf"^[ \t]*\[\[?[ \t]*{_TOOL}[ \t]*[\].]"  # [tool.rtbuild], [ tool."rtbuild".X ], [[tool.rtbuild]]
#: A key that may open the table (``rtbuild``, quoted or not, at a line start, in an inline
#: table, or after ``tool.``): only it is worth a TOML parse (~4 ms a CLI call), not a
#: mention such as ``"rtbuild.setting"`` in ruff's settings.
_KEY = rf"""(?:^|[{{,])[ \t]*(?:{_TOOL}|rtbuild|"rtbuild"|'rtbuild')[ \t]*[.=\]]"""


def _tool_rtbuild_key(text: str) -> bool:
    """``[tool.rtbuild]`` written without its header (``rtbuild = {...}`` or ``rtbuild.builder
    = ...`` under ``[tool]``, ``tool.rtbuild...`` at the top): the file was passed over."""
    if not re.search(_KEY, text, re.MULTILINE):
        return False
    import tomllib  # imported here: only a pyproject.toml that may hold the table needs it

    try:
        tool = tomllib.loads(text).get("tool")
    except tomllib.TOMLDecodeError:
        return False
    return isinstance(tool, dict) and "rtbuild" in tool


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse and validate one file; returns the rtbuild table."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad) is no TOML statement
    except OSError as exc:
        raise ConfigError(
            f"cannot read configuration file {path}: {exc.strerror}",
            step="read configuration",
            hint="make it readable by this user, or name another file with --config / RTBUILD_CONFIG",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
            step="read configuration",
            hint="TOML files are UTF-8: re-save the file as UTF-8",
        ) from None
    data = parse_toml(text, str(path), step="read configuration", hint="fix the TOML syntax at the line shown")
    prefix = ""
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("rtbuild", {}) if isinstance(tool, dict) else {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: [tool.rtbuild] must be a table, not {type(data).__name__}",
                step="read configuration",
                hint="see docs/configuration.md for the known keys and their types",
            )
        prefix = "tool.rtbuild."
    _validate(data, str(path), text, prefix)
    return data


def _apply(config: Config, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if key == "sandbox":
            for sub, subvalue in value.items():
                if sub == "build_args":
                    subvalue = text_map(subvalue)
                setattr(config.sandbox, sub, subvalue)
        elif key == "runtime":
            for sub, subvalue in value.items():
                setattr(config.runtime, sub, subvalue)
        elif key in ("build_args", "labels"):
            getattr(config, key).update(text_map(value))
        elif key in ("builders", "plugins"):
            for name, table in value.items():
                getattr(config, key).setdefault(name, {}).update(table)
        else:
            setattr(config, key, value)


def _env_settings(env: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, key in ENV_VARS.items():
        if name not in env:
            continue
        raw = env[name]
        section, _, sub = key.rpartition(".")
        kind = _SECTIONS[section][sub] if section else _TOP[key]
        if not raw and kind_of(kind) not in ("boolean", "list of strings"):
            continue
        value = env_value(raw, kind, name)
        if key in ("build_timeout", "insecure_registries", "load_plugins", "disable_plugins"):
            _validate({key: value}, f"environment variable {name}", "", "")
        if section:
            data.setdefault(section, {})[sub] = value
        else:
            data[key] = value
    return data


def _is_devnull(path: Path) -> bool:
    try:
        return os.path.samefile(path, os.devnull)
    except OSError:
        return False


def _refuse_config_path(path: Path) -> None:
    hint = "fix the path given with --config or RTBUILD_CONFIG, or unset it to use rtbuild.toml"
    if path.is_dir():
        what = "is a directory, not a file"
    elif path.exists():  # a pipe (--config <(...)), a socket or a device: its text is read more than once
        what = "is not a regular file (a pipe or a device)"
        hint = f"write the configuration to a file and name that, or use {os.devnull} for none; " + hint
    else:
        what = "does not exist"
    raise ConfigError(f"configuration file {path} {what}", step="read configuration", hint=hint)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    search_from: Path | None = None,
) -> Config:
    """Build a :class:`Config`: defaults < file < environment < ``overrides`` (CLI flags).

    ``path`` (or ``RTBUILD_CONFIG``) names the file; otherwise the nearest
    ``rtbuild.toml`` / ``pyproject.toml`` with ``[tool.rtbuild]`` is used, if any.
    ``overrides`` use the same keys as the file; ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    config = Config()
    file_path: Path | None
    if path is not None:  # ~ expanded as the shell would: --config=~/x, RTBUILD_CONFIG='~/x' reach us as written
        file_path = Path(os.path.expanduser(path))
    elif env.get("RTBUILD_CONFIG"):
        file_path = Path(os.path.expanduser(env["RTBUILD_CONFIG"]))
    else:
        file_path = find_config_file(search_from)
    if file_path is not None and _is_devnull(file_path):
        file_path = None  # --config /dev/null: no file at all, not even the nearest rtbuild.toml
    if file_path is not None:
        if not file_path.is_file():
            _refuse_config_path(file_path)
        _apply(config, read_config_file(file_path))
        config.source = str(file_path)
    _apply(config, _env_settings(env))
    if overrides:
        clean = {k: v for k, v in overrides.items() if v is not None}
        _validate(clean, "command-line flags", "", "")
        _apply(config, clean)
    if config.build_timeout == float("inf"):  # lifts a file's or the environment's bound
        config.build_timeout = None
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """A plain-dict view (used by ``--json`` outputs and tests)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, (SandboxConfig, RuntimeConfig)):
            value = {g.name: getattr(value, g.name) for g in fields(value)}
        out[f.name] = value
    return out


__all__ = [
    "ENV_VARS",
    "Config",
    "RuntimeConfig",
    "SandboxConfig",
    "config_to_dict",
    "find_config_file",
    "insecure_registries_problem",
    "load_config",
]
