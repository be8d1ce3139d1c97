"""The conformance suite against the fake builders (no engine): both branches of every
"honoured or refused" promise run here; tests/docker/test_contract_docker.py runs it on Docker."""

from __future__ import annotations

from typing import ClassVar

import pytest
from rtbuild import BuilderCapabilities, RuntimeBuilder
from rtbuild.testing import BuilderContract, ContractBuilds, FakeBuilder


class TestFakeBuilderContract(BuilderContract):
    reports_cached = True

    @pytest.fixture
    def builder(self) -> RuntimeBuilder:
        builder = FakeBuilder()
        builder.name = "fake"
        return builder


class MinimalFake(FakeBuilder):
    """Declares no optional ability: target and no-cache must be refused before any work."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities()


class TestMinimalBuilderContract(BuilderContract):
    @pytest.fixture
    def builder(self) -> RuntimeBuilder:
        builder = MinimalFake()
        builder.name = "minimal"
        return builder

    def test_refusals_happen_before_the_builder_is_called(self, builds: ContractBuilds, builder: MinimalFake) -> None:
        from rtbuild import CapabilityError

        context = builds.context("FROM {base}\n")
        for fields in ({"target": "x"}, {"no_cache": True}, {"platform": "linux/amd64,linux/arm64"}):
            with pytest.raises(CapabilityError):
                builds.run(context, [builds.tag("refused")], **fields)
        assert [call for call in builder.calls if call["method"] == "build"] == []
