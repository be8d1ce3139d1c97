"""A builder that declares ``secrets`` must deliver them: the conformance suite checks it, and
the builder `rtbuild new builder` writes declares secrets only where its docker client has
BuildKit.

Before, BuilderContract had no secrets check, so the generated builder passed the whole
suite on a docker client without BuildKit (28.x without buildx: the legacy builder, no
``--secret``) while every build with ``--secret`` failed inside the builder with no hint,
after ``rtbuild builders`` and the capability check had said it could.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildFailedError, BuildRequest, BuildResult, Config
from rtbuild.testing import BuilderContract, ContractBuilds, FakeBuilder, run_cli


class SecretsIgnored(FakeBuilder):
    """Declares secrets (FakeBuilder does) but never mounts them: the RUN step fails."""

    def build_request(self, request: BuildRequest) -> BuildResult:
        if request.secrets:
            raise BuildFailedError("cat: can't open '/run/secrets/rtbuild_contract'", step="RUN --mount=type=secret")
        return super().build_request(request)


def test_the_contract_fails_a_builder_whose_declared_secrets_do_not_work(tmp_path: Path) -> None:
    builder = SecretsIgnored()
    builder.name = "ignores-secrets"
    contract = BuilderContract()
    builds = ContractBuilds(contract, builder, "rtbuild-contract/secrets", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="declares secrets=True, but a build with a --secret failed"):
        contract.test_secrets_are_honoured_or_refused(builds)


def _fake_docker(directory: Path, version: str, buildx: bool) -> str:
    directory.mkdir()
    script = directory / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = buildx ]; then exit {0 if buildx else 1}; fi\n'
        f'if [ "$1" = version ]; then echo {version}; exit 0; fi\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    return str(script)


def _generated_builder(tmp_path: Path) -> Any:
    assert run_cli(["new", "builder", "acme-sec", "-o", str(tmp_path)]).exit_code == 0
    path = tmp_path / "rtbuild-acme-sec" / "src" / "rtbuild_acme_sec" / "builder.py"
    spec = importlib.util.spec_from_file_location("rtbuild_acme_sec_builder_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module.AcmeSecBuilder


@pytest.mark.parametrize(("version", "buildx", "secrets"), [("28.2.2", False, False), ("20.10.24", False, True)])
def test_the_generated_builder_declares_secrets_only_with_buildkit(
    tmp_path: Path, version: str, buildx: bool, secrets: bool
) -> None:
    cls = _generated_builder(tmp_path)
    cli = _fake_docker(tmp_path / "bin", version, buildx)
    builder = cls.from_config(Config(builders={"acme-sec": {"cli": cli}}), "acme-sec")
    assert builder.capabilities.secrets is secrets
    assert cls.capabilities.secrets is True  # what `rtbuild builders` lists: the class's
