"""PEP 562 lazy exports: a package names its public API without importing it up front.

Keeps ``import rtbuild`` (and ``rtbuild --help``) free of pluggy, httpx and xxhash; each
name is imported from its private module on first use and then cached in the package.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's, no collections.abc, no importlib: see rtbuild/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps a public name to its absolute module, or to ``"module:attribute"`` when
    the name is exported under another one.
    """

    def _module(name: str) -> Any:
        __import__(name)  # importlib.import_module's work, without importing importlib (and warnings)
        return sys.modules[name]

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        module = _module(package)
        value = getattr(_module(module_name), attribute or name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        module = _module(package)
        return sorted({*vars(module), *names})

    return __getattr__, __dir__
