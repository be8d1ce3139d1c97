"""``BuilderContract``: the conformance suite every builder distribution runs in its own tests.

Subclass it in a test module (the class name must start with ``Test``) and provide the
``builder`` fixture; everything else has a default that fits a local engine::

    from rtbuild.testing import BuilderContract

    class TestMyBuilder(BuilderContract):
        reports_cached = True            # an unchanged rebuild comes back cached

        @pytest.fixture
        def builder(self):
            return MyBuilder.from_config(rtbuild.Config(), "mine")

Every build goes through the core pipeline (:func:`rtbuild.run_build` with only the core's
default plugins), so tag validation and the capability check apply as in real use. What a
builder declares it cannot do (``capabilities.target`` false, ...) must be refused with
:class:`~rtbuild.CapabilityError`; what it declares must work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rtbuild.builder import BuildRequest, BuildResult, BuildSecret, RuntimeBuilder
from rtbuild.errors import AgentRuntimeBuildError, CapabilityError

#: Labels the suite's Dockerfiles set, read back through :meth:`BuilderContract.labels`.
ARG_LABEL = "org.rtbuild.contract.arg"
STAGE_LABEL = "org.rtbuild.contract.stage"
USER_LABEL = "org.rtbuild.contract.label"
#: The ``--secret`` id the suite's secrets check mounts.
SECRET_ID = "rtbuild_contract"


@dataclass
class ContractBuilds:
    """Builds for one contract test: unique tags, the core pipeline, cleanup afterwards."""

    contract: BuilderContract
    builder: RuntimeBuilder
    prefix: str
    root: Path
    made: list[str] = field(default_factory=list)

    def tag(self, what: str) -> str:
        """A unique tag for this test: ``PREFIX:WHAT``."""
        tag = f"{self.prefix}:{what}"
        self.made.append(tag)
        return tag

    def context(self, dockerfile: str, files: Mapping[str, str] | None = None, name: str = "ctx") -> Path:
        """A build context with ``dockerfile`` (``{base}`` is replaced by the base image)."""
        text = dockerfile.replace("{base}", self.contract.base_image)
        return self.contract.make_context(self.root / name, text, dict(files or {}))

    def run(self, context: Path, tags: list[str], **fields: Any) -> BuildResult:
        """Build through :func:`rtbuild.run_build` with the core's default plugins only."""
        from rtbuild._framework.config import Config
        from rtbuild._framework.pipeline import run_build
        from rtbuild._framework.plugins import get_plugin_manager

        config = Config(builder=self.builder.name or "contract")
        pm = get_plugin_manager(config, load_entrypoints=False)
        request = BuildRequest(str(context), tags=list(tags), **fields)
        return run_build(request, config=config, pm=pm, builder=self.builder)


class BuilderContract:
    """What every builder promises, as tests. Subclass it and provide :meth:`builder`.

    Class attributes to set: :attr:`reports_cached`, :attr:`base_image`,
    :attr:`exists_pull`. Methods to override when the defaults do not fit:
    :meth:`make_context`, :meth:`labels`, :meth:`read_file`, :meth:`cleanup`; fixtures:
    ``builder`` (required), ``image_prefix``.
    """

    #: An unchanged rebuild is reported as ``result.cached`` (e.g. Docker's no-op skip).
    reports_cached: ClassVar[bool] = False
    #: Base image of the suite's Dockerfiles; needs ``/bin/sh`` for the ``RUN`` steps.
    base_image: ClassVar[str] = "busybox:latest"
    #: ``pull_from_repo`` for the suite's ``image_exists`` checks (``True`` for a builder
    #: whose images live in a registry; keep ``False`` when tags name no reachable registry).
    exists_pull: ClassVar[bool] = False

    # -- what the subclass provides -------------------------------------------------------

    @pytest.fixture
    def builder(self) -> RuntimeBuilder:
        """The builder under test, with ``name`` set. Override this fixture."""
        raise NotImplementedError("a BuilderContract subclass must provide the `builder` fixture")

    @pytest.fixture
    def image_prefix(self) -> str:
        """A repository (no tag) unique to the test; the suite's images are ``PREFIX:WHAT``."""
        return f"rtbuild-contract/{type(self).__name__.lower()}-{uuid.uuid4().hex[:10]}"

    def make_context(self, directory: Path, dockerfile: str, files: dict[str, str]) -> Path:
        """Write a build context (``Dockerfile`` plus ``files``) and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        for relative, text in files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return directory

    def labels(self, builder: RuntimeBuilder, image: str) -> dict[str, str]:
        """The labels of a built image. Default: ``builder.inspect_image(image).labels``."""
        info = builder.inspect_image(image)
        if info is None:
            pytest.fail(
                f"{type(builder).__name__}.inspect_image({image!r}) returned None: implement inspect_image, "
                "or override BuilderContract.labels to read the image's labels"
            )
        return dict(info.labels)

    def read_file(self, builder: RuntimeBuilder, image: str, path: str) -> bytes | None:
        """A file's content in a built image; ``None`` (the default) skips the file checks."""
        return None

    def cleanup(self, builder: RuntimeBuilder, tags: list[str]) -> None:
        """Remove what the test built (every tag it asked for, built or not). Default: nothing."""

    # -- the harness ----------------------------------------------------------------------

    @pytest.fixture
    def builds(self, builder: RuntimeBuilder, image_prefix: str, tmp_path: Path) -> Iterator[ContractBuilds]:
        """Unique tags, contexts and pipeline builds for one test; cleans up afterwards."""
        helper = ContractBuilds(self, builder, image_prefix, tmp_path)
        try:
            yield helper
        finally:
            self.cleanup(builder, list(dict.fromkeys(helper.made)))

    def _exists(self, builder: RuntimeBuilder, tag: str) -> bool:
        return bool(builder.image_exists(tag, pull_from_repo=self.exists_pull))

    # -- the promises ---------------------------------------------------------------------

    def test_declares_capabilities_and_a_name(self, builder: RuntimeBuilder) -> None:
        from rtbuild.builder import BuilderCapabilities

        assert isinstance(builder, RuntimeBuilder)
        assert isinstance(builder.capabilities, BuilderCapabilities)
        assert builder.name, "the factory sets `name`; set it in the `builder` fixture too"

    def test_build_returns_the_first_tag_and_applies_every_tag(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nCOPY hello.txt /hello.txt\n", {"hello.txt": "hello\n"})
        first, second = builds.tag("one"), builds.tag("two")
        result = builds.run(context, [first, second])
        assert result.image == first
        assert first in result.tags and second in result.tags
        assert result.builder == builds.builder.name
        assert self._exists(builds.builder, first) and self._exists(builds.builder, second)
        content = self.read_file(builds.builder, first, "/hello.txt")
        if content is not None:
            assert content == b"hello\n"

    def test_image_exists_is_false_for_an_absent_image(self, builds: ContractBuilds) -> None:
        assert self._exists(builds.builder, builds.tag(f"absent-{uuid.uuid4().hex[:8]}")) is False

    def test_v1_build_method_still_works(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nLABEL org.rtbuild.contract.v1=yes\n")
        tag = builds.tag("v1")
        assert builds.builder.build(str(context), [tag]) == tag
        assert self._exists(builds.builder, tag)

    def test_build_args_reach_the_build(self, builds: ContractBuilds) -> None:
        context = builds.context(
            f"FROM {{base}}\nARG CONTRACT_ARG=unset\nLABEL {ARG_LABEL}=$CONTRACT_ARG\n"
            'RUN echo "$CONTRACT_ARG" > /contract-arg\n'
        )
        tag = builds.tag("args")
        builds.run(context, [tag], build_args={"CONTRACT_ARG": "from-the-request"})
        assert self.labels(builds.builder, tag).get(ARG_LABEL) == "from-the-request"
        content = self.read_file(builds.builder, tag, "/contract-arg")
        if content is not None:
            assert content.strip() == b"from-the-request"

    def test_labels_reach_the_image(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nLABEL org.rtbuild.contract.from-file=yes\n")
        tag = builds.tag("labels")
        builds.run(context, [tag], labels={USER_LABEL: "from the request"})
        labels = self.labels(builds.builder, tag)
        assert labels.get(USER_LABEL) == "from the request"
        assert labels.get("org.rtbuild.contract.from-file") == "yes"

    def test_target_is_honoured_or_refused(self, builds: ContractBuilds) -> None:
        context = builds.context(
            f"FROM {{base}} AS first\nLABEL {STAGE_LABEL}=first\nFROM {{base}} AS second\nLABEL {STAGE_LABEL}=second\n"
        )
        tag = builds.tag("target")
        if not builds.builder.capabilities.target:
            with pytest.raises(CapabilityError):
                builds.run(context, [tag], target="first")
            assert not self._exists(builds.builder, tag)
            return
        builds.run(context, [tag], target="first")
        assert self.labels(builds.builder, tag).get(STAGE_LABEL) == "first"
        final = builds.tag("final")
        builds.run(context, [final])
        assert self.labels(builds.builder, final).get(STAGE_LABEL) == "second"

    def test_no_cache_is_honoured_or_refused(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n")
        tag = builds.tag("nocache")
        if not builds.builder.capabilities.no_cache:
            with pytest.raises(CapabilityError):
                builds.run(context, [tag], no_cache=True)
            return
        first = builds.run(context, [tag], no_cache=True)
        stamp = self.read_file(builds.builder, tag, "/stamp")
        second = builds.run(context, [tag], no_cache=True)
        assert first.cached is False and second.cached is False
        if stamp is not None:
            assert self.read_file(builds.builder, tag, "/stamp") != stamp, "--no-cache reused the RUN step"

    def test_secrets_are_honoured_or_refused(self, builds: ContractBuilds) -> None:
        """A declared ``secrets`` capability delivers ``--secret`` to ``RUN --mount=type=secret``:
        the step fails unless the file holds the value. Undeclared, the request is refused."""
        value = f"contract-{uuid.uuid4().hex}"
        source = builds.root / "secret.txt"
        source.write_text(value, encoding="utf-8")
        check = f'test "$(cat /run/secrets/{SECRET_ID})" = "{value}"'
        context = builds.context(f"FROM {{base}}\nRUN --mount=type=secret,id={SECRET_ID} {check}\n", name="secret")
        tag = builds.tag("secret")
        secrets = [BuildSecret(SECRET_ID, src=str(source))]
        if not builds.builder.capabilities.secrets:
            with pytest.raises(CapabilityError):
                builds.run(context, [tag], secrets=secrets)
            assert not self._exists(builds.builder, tag)
            return
        try:
            builds.run(context, [tag], secrets=secrets)
        except AgentRuntimeBuildError as exc:
            pytest.fail(f"the builder declares secrets=True, but a build with a --secret failed: {exc}")
        assert self._exists(builds.builder, tag)

    def test_failing_build_raises_with_step_and_log_tail(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nRUN echo contract-failure && exit 3\n")
        tag = builds.tag("fails")
        with pytest.raises(AgentRuntimeBuildError) as info:
            builds.run(context, [tag])
        error = info.value
        assert error.step, "a build failure names the failing step"
        assert error.log_tail, "a build failure carries the last log lines"
        assert error.exit_code != 0
        assert not self._exists(builds.builder, tag)

    def test_unchanged_rebuild_is_reported_cached(self, builds: ContractBuilds) -> None:
        context = builds.context("FROM {base}\nLABEL org.rtbuild.contract.rebuild=yes\n")
        tag = builds.tag("rebuild")
        first = builds.run(context, [tag])
        second = builds.run(context, [tag])
        assert first.image == second.image == tag
        if self.reports_cached:
            assert second.cached is True, "an unchanged rebuild should be reported cached"
        assert self._exists(builds.builder, tag)

    def test_dry_run_plan_builds_nothing(self, builds: ContractBuilds) -> None:
        if not builds.builder.capabilities.dry_run:
            pytest.skip("the builder declares no dry run")
        context = builds.context("FROM {base}\nLABEL org.rtbuild.contract.plan=yes\n")
        tag = builds.tag("plan")
        plan = builds.builder.plan(BuildRequest(str(context), tags=[tag], labels={USER_LABEL: "x"}))
        assert isinstance(plan, str) and plan.strip()
        assert not self._exists(builds.builder, tag)


__all__ = ["ARG_LABEL", "STAGE_LABEL", "USER_LABEL", "BuilderContract", "ContractBuilds"]
