"""Fixtures shared by the core suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A minimal build context: a directory with a ``FROM scratch`` Dockerfile."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return ctx


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory where fake plugins and builders leave a file when they are imported."""
    directory = tmp_path / "marks"
    directory.mkdir()
    monkeypatch.setenv("RTBUILD_TEST_MARKS", str(directory))
    return directory


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_CACHE_HOME`` in the test's own directory (stat caches, records, analyses)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache
