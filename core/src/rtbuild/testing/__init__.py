"""Test kit for plugin and builder authors, registered as a pytest plugin (``pytest11``).

Fixtures:

* ``rtbuild_pm``: an isolated plugin manager (core defaults only, no entry points).
* ``fake_builder``: a :class:`FakeBuilder` that records its calls.
* ``rtbuild_site``: a :class:`FakeSite` where tests create installed fake distributions
  with entry points; while the fixture is active, discovery sees only that site and no
  ``RTBUILD_*`` environment variable is set.

Helper: :func:`run_cli` runs the ``rtbuild`` command in-process and captures its output.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtbuild._framework import plugins as _plugins
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.builder import RuntimeBuilder
from rtbuild.errors import BuildFailedError


class FakeBuilder(RuntimeBuilder):
    """A builder that builds nothing: it records calls and remembers the tags it "built"."""

    def __init__(self, images: set[str] | None = None, fail_with: str | None = None) -> None:
        self.images: set[str] = set(images or ())
        self.calls: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.pushed: list[str] = []

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        self.calls.append(
            {
                "method": "build",
                "path": path,
                "tags": list(tags),
                "platform": platform,
                "extra_build_args": list(extra_build_args or []),
            }
        )
        if self.fail_with:
            raise BuildFailedError(self.fail_with, step="fake build", log_tail=["fake log line"])
        self.images.update(tags)
        return tags[0]

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        self.calls.append({"method": "image_exists", "image_name": image_name, "pull_from_repo": pull_from_repo})
        return image_name in self.images

    def push(self, image: str) -> None:
        self.pushed.append(image)


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


#: Source of the builder :meth:`FakeSite.add_builder` installs by default.
SITE_BUILDER_SOURCE = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    calls = []
    images = set()

    def build(self, path, tags, platform=None, extra_build_args=None):
        type(self).calls.append(
            {"method": "build", "path": path, "tags": list(tags), "platform": platform,
             "extra_build_args": list(extra_build_args or [])}
        )
        type(self).images.update(tags)
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        type(self).calls.append({"method": "image_exists", "image_name": image_name, "pull_from_repo": pull_from_repo})
        return image_name in type(self).images
"""


@dataclass
class CliResult:
    """What :func:`run_cli` saw: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: list[str], env: Mapping[str, str | None] | None = None) -> CliResult:
    """Run ``rtbuild ARGS`` in this process (so a :class:`FakeSite` applies) and capture it.

    ``env`` sets (or, with ``None`` values, removes) environment variables for the run.
    """
    from rtbuild.cli._main import main

    saved = {key: os.environ.get(key) for key in (env or {})}
    out, err = io.StringIO(), io.StringIO()
    try:
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def rtbuild_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """An isolated site: discovery sees only the fake distributions added to it."""
    site = FakeSite(tmp_path / "rtbuild-site")
    for name in list(os.environ):
        if name.startswith("RTBUILD_"):  # the site starts from a clean environment
            monkeypatch.delenv(name)
    monkeypatch.syspath_prepend(str(site.root))
    monkeypatch.setattr(_plugins, "SEARCH_PATH", [str(site.root)])
    before = set(sys.modules)
    yield site
    # Forget modules imported from the fake site so the next test starts clean.
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(site.root)):
            del sys.modules[name]


@pytest.fixture
def rtbuild_pm() -> RtbuildPluginManager:
    """A plugin manager with only the core's default plugins (no entry points)."""
    return get_plugin_manager(Config(), load_entrypoints=False)


@pytest.fixture
def fake_builder() -> FakeBuilder:
    return FakeBuilder()


__all__ = [
    "SITE_BUILDER_SOURCE",
    "CliResult",
    "FakeBuilder",
    "FakeDistribution",
    "FakeSite",
    "fake_builder",
    "rtbuild_pm",
    "rtbuild_site",
    "run_cli",
]
