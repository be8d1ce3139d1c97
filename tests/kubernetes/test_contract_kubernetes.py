"""KubernetesBuilder passes the builder conformance suite (rtbuild.testing.BuilderContract),
every build a Job in the fake cluster, built by the real buildah step image and pushed to a
registry on 127.0.0.1."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import DOCKER, Site, step_image_tag
from rtbuild import RuntimeBuilder
from rtbuild.testing import BuilderContract
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.settings import settings_from_table

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


class TestKubernetesBuilderContract(BuilderContract):
    reports_cached = True
    exists_pull = True

    @pytest.fixture
    def builder(self, site: Site, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> RuntimeBuilder:
        monkeypatch.setenv("DOCKER_CONFIG", str(site.docker_config))
        self.base_image = site.base  # type: ignore[misc]
        self._site = site
        settings = settings_from_table({"kubeconfig": str(cluster.kubeconfig_path), "step_image": step_image_tag()})
        builder = KubernetesBuilder(settings)
        builder.name = "kubernetes"
        return builder

    @pytest.fixture
    def image_prefix(self, site: Site) -> str:
        return f"{site.registry}/contract/k8s-{uuid.uuid4().hex[:8]}"

    def read_file(self, builder: RuntimeBuilder, image: str, path: str) -> bytes | None:
        config = str(self._site.docker_config)
        pulled = subprocess.run([DOCKER, "--config", config, "pull", "-q", image], capture_output=True, timeout=300)
        assert pulled.returncode == 0, pulled.stderr
        try:
            ran = subprocess.run([DOCKER, "run", "--rm", image, "cat", path], capture_output=True, timeout=120)
            return ran.stdout if ran.returncode == 0 else None
        finally:
            subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True, timeout=120)

    def make_context(self, directory: Path, dockerfile: str, files: dict[str, str]) -> Path:
        return super().make_context(directory, dockerfile, files)
