"""Every error a user can cause says what to do next: each ``raise`` of an rtbuild error in
the core, the backends and the bundled plugins passes a ``hint=`` (or its class has a
default hint). So does every error that is made to be raised elsewhere (``return
BuildFailedError(...)`` from a function mapping an engine's output: a COPY of a missing
file, a step on an engine without a network and an unexpected engine answer had none)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import rtbuild.errors as errors

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "core" / "src", *sorted((ROOT / "builders").glob("*/src")), *sorted((ROOT / "contrib").glob("*/src"))]


def _default_hint(cls: type[errors.AgentRuntimeBuildError]) -> str | None:
    """The hint an instance gets when the raise passes none (some set it in ``__init__``)."""
    for args in (("message",), ("name", ())):
        try:
            return cls(*args).hint  # type: ignore[arg-type]
        except TypeError:
            continue
    return None


def _classes_without_a_default_hint() -> set[str]:
    return {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.AgentRuntimeBuildError) and _default_hint(cls) is None
    }


def _hintless_raises(sources: list[Path]) -> list[str]:
    needs_hint = _classes_without_a_default_hint()
    found = []
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                # Every construction of an error: raised here, or returned to be raised.
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                # `hint=` or `**kwargs` (a wrapper passing its caller's hint on).
                if name in needs_hint and not any(k.arg in ("hint", None) for k in node.keywords):
                    found.append(f"{path.relative_to(source.parent)}:{node.lineno}: {name}")
    return found


def test_every_raised_error_carries_a_hint() -> None:
    assert _hintless_raises(SOURCES) == []


def test_the_check_finds_a_raise_without_a_hint(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(
        "raise ConfigError('no hint', step='s')\n"
        "raise errors.BuildFailedError('no hint either')\n"
        "raise ConfigError('hinted', hint='do this')\n"
        "raise RegistryAuthError('a default hint')\n"
        "raise PluginError('passed on', **kwargs)\n"
        "return BuildFailedError('made here, raised by the caller')\n"
        "error = EngineUnavailableError('kept for later', hint='start it')\n"
    )
    assert _hintless_raises([tmp_path / "src"]) == [
        "src/mod.py:1: ConfigError",
        "src/mod.py:2: BuildFailedError",
        "src/mod.py:6: BuildFailedError",
    ]
