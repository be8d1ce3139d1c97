"""FakeSite: installed fake distributions with entry points, for discovery tests."""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rtbuild.testing._fake import SITE_BUILDER_SOURCE


@dataclass
class FakeDistribution:
    name: str
    version: str
    site: Path
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)


class FakeSite:
    """A directory of installed fake distributions (``*.dist-info`` + modules)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        name: str,
        *,
        version: str = "1.0",
        entry_points: Mapping[str, Mapping[str, str]] | None = None,
        modules: Mapping[str, str] | None = None,
    ) -> FakeDistribution:
        """Install distribution ``name`` with ``entry_points`` ({group: {name: value}}) and
        ``modules`` ({"pkg/mod.py": source}); sources are dedented."""
        for relative, source in (modules or {}).items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
        eps = {group: dict(items) for group, items in (entry_points or {}).items()}
        text = "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in items.items()) + "\n"
            for group, items in eps.items()
        )
        (info / "entry_points.txt").write_text(text, encoding="utf-8")
        importlib.invalidate_caches()
        return FakeDistribution(name, version, self.root, eps)

    def add_builder(
        self,
        distribution: str,
        name: str,
        *,
        version: str = "1.0",
        source: str | None = None,
        module: str | None = None,
    ) -> FakeDistribution:
        """Install ``distribution`` providing builder ``name``.

        The default source is :data:`SITE_BUILDER_SOURCE`: class ``SiteBuilder`` records
        every call in ``SiteBuilder.calls``. A custom ``source`` must define ``SiteBuilder``.
        """
        module = module or _identifier(f"{distribution}_{name}_builder")
        return self.add(
            distribution,
            version=version,
            entry_points={"rtbuild.builders": {name: f"{module}:SiteBuilder"}},
            modules={f"{module}.py": SITE_BUILDER_SOURCE if source is None else source},
        )

    def add_plugin(
        self, distribution: str, name: str, source: str, *, version: str = "1.0", module: str | None = None
    ) -> FakeDistribution:
        """Install ``distribution`` providing plugin ``name`` whose module is ``source``."""
        module = module or _identifier(f"{distribution}_{name}_plugin")
        return self.add(
            distribution,
            version=version,
            entry_points={"rtbuild.plugins": {name: module}},
            modules={f"{module}.py": source},
        )


def _identifier(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).lower()


__all__ = ["FakeDistribution", "FakeSite"]
