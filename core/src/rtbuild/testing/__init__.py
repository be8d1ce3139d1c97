"""Test kit for builder and plugin authors, registered as a pytest plugin (``pytest11``).

Documented in docs/testing.md. Fixtures (available in any test once rtbuild is installed):

* ``rtbuild_pm``: an isolated plugin manager (core defaults only, no entry points).
* ``fake_builder``: a :class:`FakeBuilder` that records its calls.
* ``rtbuild_site``: a :class:`FakeSite` where tests create installed fake distributions
  with entry points; while the fixture is active, discovery sees only that site and no
  ``RTBUILD_*`` environment variable is set.

Classes and helpers: :class:`BuilderContract` (the conformance suite a builder's tests
subclass), :class:`FakeBuilder`, :class:`FakeSite`, :func:`run_cli` / :class:`CliResult`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtbuild._framework import plugins as _plugins
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.testing._cli import CliResult, run_cli
from rtbuild.testing._contract import ARG_LABEL, STAGE_LABEL, USER_LABEL, BuilderContract, ContractBuilds
from rtbuild.testing._fake import SITE_BUILDER_SOURCE, FakeBuilder, FakeFlags, parse_flags
from rtbuild.testing._site import FakeDistribution, FakeSite


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
    """A fresh :class:`FakeBuilder` named ``fake``."""
    builder = FakeBuilder()
    builder.name = "fake"
    return builder


__all__ = [
    "ARG_LABEL",
    "SITE_BUILDER_SOURCE",
    "STAGE_LABEL",
    "USER_LABEL",
    "BuilderContract",
    "CliResult",
    "ContractBuilds",
    "FakeBuilder",
    "FakeDistribution",
    "FakeFlags",
    "FakeSite",
    "fake_builder",
    "parse_flags",
    "rtbuild_pm",
    "rtbuild_site",
    "run_cli",
]
