"""``BuilderCapabilities.platforms`` empty (the default) refuses no single platform: the request's
platform reaches the builder. The docs said "() = the engine's native one", so a builder
author expected the core to refuse ``--platform linux/arm64`` for a native-only builder; it
reached the builder (a third-party builder on the docker CLI then failed in the engine, on a
registry lookup, instead of a CapabilityError before any work)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import ClassVar

import pytest
from rtbuild import BuilderCapabilities, BuildRequest, CapabilityError, Config, run_build
from rtbuild.builder import BuilderCapabilities as Capabilities
from rtbuild.testing import FakeBuilder

REPO = Path(__file__).resolve().parents[2]


class AmdOnly(FakeBuilder):
    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(platforms=("linux/amd64",))


def test_no_declared_platforms_passes_the_platform_to_the_builder(rtbuild_pm, context: Path) -> None:  # type: ignore[no-untyped-def]
    builder = FakeBuilder()
    run_build(BuildRequest(str(context), tags=["img:1"], platform="linux/arm64"), config=Config(), pm=rtbuild_pm,
              builder=builder)  # fmt: skip
    assert [call["platform"] for call in builder.calls if call["method"] == "build"] == ["linux/arm64"]


def test_declared_platforms_refuse_the_others_before_the_builder(rtbuild_pm, context: Path) -> None:  # type: ignore[no-untyped-def]
    builder = AmdOnly()
    with pytest.raises(CapabilityError, match="platform linux/arm64"):
        run_build(BuildRequest(str(context), tags=["img:1"], platform="linux/arm64"), config=Config(), pm=rtbuild_pm,
                  builder=builder)  # fmt: skip
    assert builder.calls == []


def test_the_docs_say_what_an_empty_tuple_means() -> None:
    page = (REPO / "docs" / "writing-a-builder.md").read_text(encoding="utf-8")
    assert "() = the engine's native one" not in page
    assert "an empty tuple (the default) refuses no single platform" in page
    assert "only the engine's native platform" not in inspect.getsource(Capabilities)
