"""Discovery records: what an entry point is, conflicts between distributions, load errors."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rtbuild._framework.entrypoints import EntryPointInfo
from rtbuild.errors import PluginError

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild.builder import RuntimeBuilder


#: What became of a discovered builder or plugin (``rtbuild plugins`` shows it).
PluginStatus = Literal["loaded", "available", "disabled", "failed", "conflict"]


@dataclass
class PluginRecord:
    """One discovered builder or plugin, as ``rtbuild plugins`` lists it."""

    name: str
    kind: Literal["builder", "plugin"]
    distribution: str | None
    version: str | None
    status: PluginStatus
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


def _collect_all(eps: Iterable[EntryPointInfo]) -> list[_Found]:
    """Every entry point, sorted by name; the same distribution seen twice counts once
    (e.g. on two sys.path entries), two distributions claiming one name are both kept."""
    found: list[_Found] = []
    for ep in eps:
        item = _Found(ep.name, ep.value, ep.distribution, ep.version, ep)
        if any(f.name == ep.name and _norm(f.distribution) == _norm(ep.distribution) for f in found):
            continue
        found.append(item)
    return sorted(found, key=lambda f: f.name)


def _conflicts(items: Sequence[_Found]) -> dict[str, list[_Found]]:
    by_name: dict[str, list[_Found]] = {}
    for item in items:
        by_name.setdefault(item.name, []).append(item)
    return {name: claims for name, claims in by_name.items() if len(claims) > 1}


def _conflict_error(group: str, name: str, claims: Sequence[_Found]) -> PluginError:
    first, second = claims[0], claims[1]
    return PluginError(
        f"{group} entry point {name!r} is registered by two distributions: "
        f"{first.distribution} {first.version} ({first.value}) and "
        f"{second.distribution} {second.version} ({second.value})",
        step="discover plugins",
        hint=f"uninstall one of them (pip uninstall {second.distribution}) or rename its entry point",
    )


def _conflict_note(item: _Found, claims: Sequence[_Found]) -> str:
    others = [f"{c.distribution} {c.version}" for c in claims if c is not item]
    return f"conflict: {item.name!r} is also registered by {', '.join(others)}"


def _collect(group: str, eps: Iterable[EntryPointInfo]) -> list[_Found]:
    items = _collect_all(eps)
    for name, claims in _conflicts(items).items():
        raise _conflict_error(group, name, claims)
    return items


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


def _class_problem(cls: object) -> tuple[str, str] | None:
    """What makes an entry point's target no usable builder class, and the hint, or ``None``."""
    from rtbuild.builder import BuilderCapabilities, RuntimeBuilder  # here: listing plugins does not need it

    contract = "a rtbuild.builders entry point names a RuntimeBuilder subclass implementing build and image_exists"
    if not (isinstance(cls, type) and issubclass(cls, RuntimeBuilder)):
        return "is not a rtbuild.RuntimeBuilder subclass", contract
    if inspect.isabstract(cls):
        return "does not implement " + ", ".join(sorted(getattr(cls, "__abstractmethods__", ()))), contract
    if not isinstance(getattr(cls, "capabilities", None), BuilderCapabilities):
        kind = type(getattr(cls, "capabilities", None)).__name__
        return f"has capabilities that are a {kind}, not a rtbuild.BuilderCapabilities", contract
    if getattr(cls.from_config, "__func__", None) is getattr(RuntimeBuilder.from_config, "__func__", None):
        try:  # the default from_config calls cls(): an __init__ that needs arguments cannot be met
            params = list(inspect.signature(cls).parameters.values())
        except (TypeError, ValueError):
            params = []
        needed = [p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if needed:
            return (
                f"cannot be created: its __init__ needs {', '.join(needed)}, and it does not override"
                f" from_config, whose default calls {cls.__qualname__}()",
                "define @classmethod from_config(cls, config, name) that reads [builders.NAME] with"
                " config.builder_config(name) and returns cls(...)",
            )
    return None


def _instantiate(cls: type[RuntimeBuilder], config: Config, name: str) -> RuntimeBuilder:
    """``cls.from_config(config, name)``; a v1 override taking only ``config`` still works
    (the class passed :func:`_class_problem` when it was loaded)."""
    try:
        params = inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes_name = "name" in params or any(p.kind is p.VAR_POSITIONAL for p in params.values()) or len(params) >= 2
    if takes_name:
        return cls.from_config(config, name)
    return cls.from_config(config)  # type: ignore[call-arg]


__all__ = [
    "PluginRecord",
    "_Found",
    "_class_problem",
    "_collect",
    "_collect_all",
    "_conflict_error",
    "_conflict_note",
    "_conflicts",
    "_describe",
    "_instantiate",
    "_norm",
    "_selected",
    "_where",
]
