"""Never stale: the no-op digest of a multi-platform build covers the base image of every
requested platform (variant included), read from a scripted loopback registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from _scripted_registry import Request, scripted
from rtbuild import BuildRequest
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.registry_ops import OCI_INDEX, OCI_MANIFEST, RegistryOps
from rtbuild_kubernetes.run import _inputs
from rtbuild_kubernetes.settings import settings_from_table

pytestmark = pytest.mark.timeout(120)


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _manifest(config: bytes) -> bytes:
    desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config), "size": len(config)}
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc, "layers": []}).encode()


class IndexRegistry:
    """``lib/base:1`` is an index of one image per platform; ``configs`` can change."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.configs = configs

    def _blobs(self) -> dict[str, bytes]:
        return {p: json.dumps(c).encode() for p, c in self.configs.items()}

    def __call__(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        blobs = self._blobs()
        if request.path.endswith("/manifests/1"):
            entries = []
            for platform, config in blobs.items():
                os_name, arch, *variant = platform.split("/")
                plat = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
                body = _manifest(config)
                entries.append(
                    {"mediaType": OCI_MANIFEST, "digest": _digest(body), "size": len(body), "platform": plat}
                )
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
            return 200, index, {"Content-Type": OCI_INDEX}
        key = request.path.rsplit("/", 1)[-1]
        for config in blobs.values():
            if "/manifests/" in request.path and key == _digest(_manifest(config)):
                return 200, _manifest(config), {"Content-Type": OCI_MANIFEST}
            if "/blobs/" in request.path and key == _digest(config):
                return 200, config, {}
        return 404, b"", {}


def _digest_of(tmp_path: Path, registry: str, platform: str) -> str:
    (tmp_path / "Dockerfile").write_text(f"FROM {registry}/lib/base:1\nRUN echo hi\n")
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))
    request = BuildRequest(path=str(tmp_path), tags=[f"{registry}/team/app:1"], platform=platform)
    inputs, _ = _inputs(builder, request, RegistryOps())
    assert inputs is not None
    return str(inputs.digest)


def test_a_change_of_only_the_arm64_base_changes_a_two_platform_digest(tmp_path: Path) -> None:
    handler = IndexRegistry({"linux/amd64": {"architecture": "amd64"}, "linux/arm64": {"architecture": "arm64"}})
    with scripted(handler) as reg:
        before = _digest_of(tmp_path, reg.address, "linux/amd64,linux/arm64")
        handler.configs["linux/arm64"] = {"architecture": "arm64", "rebuilt": 2}
        after = _digest_of(tmp_path, reg.address, "linux/amd64,linux/arm64")
    assert before != after


def test_the_variant_of_the_base_is_the_requested_one(tmp_path: Path) -> None:
    handler = IndexRegistry(
        {
            "linux/arm/v6": {"architecture": "arm", "variant": "v6"},
            "linux/arm/v7": {"architecture": "arm", "variant": "v7"},
        }
    )
    with scripted(handler) as reg:
        found = RegistryOps().image_config(f"{reg.address}/lib/base:1", "linux/arm/v7")
        assert found is not None and found[1]["variant"] == "v7"
        before = _digest_of(tmp_path, reg.address, "linux/arm/v7")
        handler.configs["linux/arm/v7"] = {"architecture": "arm", "variant": "v7", "rebuilt": 2}
        after = _digest_of(tmp_path, reg.address, "linux/arm/v7")
        assert before != after
        # arm64's default variant v8 is the same platform as plain linux/arm64.
        handler.configs = {"linux/arm64/v8": {"architecture": "arm64", "variant": "v8"}}
        assert RegistryOps().image_config(f"{reg.address}/lib/base:1", "linux/arm64") is not None


def test_without_platform_a_pinned_arm64_node_tracks_the_arm64_base(tmp_path: Path) -> None:
    # node_selector kubernetes.io/arch = arm64 and no --platform: the pod builds from the base's
    # arm64 entry; the digest followed its amd64 one, so a re-pushed arm64 base was never built.
    handler = IndexRegistry({"linux/amd64": {"architecture": "amd64"}, "linux/arm64": {"architecture": "arm64"}})
    (tmp_path / "Dockerfile").write_text("FROM REG/lib/base:1\n")
    table = {"namespace": "builds", "node_selector": {"kubernetes.io/arch": "arm64"}}
    builder = KubernetesBuilder(settings_from_table(table))

    def digest(reg: str) -> str:
        (tmp_path / "Dockerfile").write_text(f"FROM {reg}/lib/base:1\nRUN echo hi\n")
        inputs, _ = _inputs(builder, BuildRequest(path=str(tmp_path), tags=[f"{reg}/team/app:1"]), RegistryOps())
        assert inputs is not None
        return str(inputs.digest)

    with scripted(handler) as reg:
        before = digest(reg.address)
        handler.configs["linux/arm64"] = {"architecture": "arm64", "rebuilt": 2}
        after_arm64 = digest(reg.address)
        handler.configs["linux/amd64"] = {"architecture": "amd64", "rebuilt": 2}
        after_amd64 = digest(reg.address)
    assert before != after_arm64
    assert after_amd64 == after_arm64  # the amd64 entry is not what this pod builds from
