"""Never stale: a multi-platform build's no-op skip needs every requested platform's image
under the tag, each carrying the input digest. It read the first platform's only, so a tag
re-pushed with one platform (``docker pull`` + ``docker push`` keep the label; an index with
an entry removed) was 'in the registry' and no Job ran. Scripted loopback registry; the
cluster is never reached (a build that is not skipped stops at ``client()``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from _scripted_registry import Request, scripted
from rtbuild import BuildRequest
from rtbuild.enginekit import DIGEST_LABEL
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.registry_ops import OCI_INDEX, OCI_MANIFEST, RegistryOps
from rtbuild_kubernetes.run import _inputs, run_build
from rtbuild_kubernetes.settings import settings_from_table

pytestmark = pytest.mark.timeout(120)

PLATFORMS = "linux/amd64,linux/arm64"


class Reached(Exception):
    """The build went past its no-op check."""


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class TagRegistry:
    """``team/app:1`` is ``tag``: an index of the given platforms' images, or one image."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}

    def image(self, platform: str, label: str) -> tuple[str, bytes]:
        os_name, arch = platform.split("/")[:2]
        config = json.dumps({"os": os_name, "architecture": arch, "config": {"Labels": {DIGEST_LABEL: label}}})
        self.blobs[_digest(config.encode())] = config.encode()
        desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config.encode())}
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc, "layers": []}).encode()
        self.manifests[_digest(body)] = (OCI_MANIFEST, body)
        return _digest(body), body

    def tag_image(self, platform: str, label: str) -> None:
        self.manifests["1"] = self.manifests[self.image(platform, label)[0]]

    def tag_index(self, labels: dict[str, str]) -> None:
        entries = []
        for platform, label in labels.items():
            digest, body = self.image(platform, label)
            os_name, arch = platform.split("/")
            plat = {"os": os_name, "architecture": arch}
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": plat})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        self.manifests["1"] = (OCI_INDEX, index)

    def __call__(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        key = request.path.rsplit("/", 1)[-1]
        if "/manifests/" in request.path and key in self.manifests:
            media_type, body = self.manifests[key]
            return 200, body, {"Content-Type": media_type, "Docker-Content-Digest": _digest(body)}
        if "/blobs/" in request.path and key in self.blobs:
            return 200, self.blobs[key], {}
        return 404, b"", {}


def _run(tmp_path: Path, registry: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))

    def reached() -> Any:
        raise Reached

    monkeypatch.setattr(builder, "client", reached)
    request = BuildRequest(path=str(tmp_path), tags=[f"{registry}/team/app:1"], platform=PLATFORMS)
    return run_build(builder, request, "b1")


def _expected(tmp_path: Path, registry: str) -> str:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (tmp_path / "a").write_text("a\n")
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))
    request = BuildRequest(path=str(tmp_path), tags=[f"{registry}/team/app:1"], platform=PLATFORMS)
    inputs, _ = _inputs(builder, request, RegistryOps())
    assert inputs is not None
    return str(inputs.digest)


def test_a_complete_index_with_the_digest_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = TagRegistry()
    with scripted(handler) as reg:
        digest = _expected(tmp_path, reg.address)
        handler.tag_index({"linux/amd64": digest, "linux/arm64": digest})
        assert _run(tmp_path, reg.address, monkeypatch)["cached"] is True


@pytest.mark.parametrize(
    "tag",
    ["amd64 only in the index", "arm64 entry of another build", "one amd64 image", "one arm64 image"],
)
def test_a_tag_lacking_a_platform_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str) -> None:
    handler = TagRegistry()
    with scripted(handler) as reg:
        digest = _expected(tmp_path, reg.address)
        if tag == "amd64 only in the index":
            handler.tag_index({"linux/amd64": digest})
        elif tag == "arm64 entry of another build":
            handler.tag_index({"linux/amd64": digest, "linux/arm64": "sha256:" + "0" * 64})
        else:
            handler.tag_image("linux/amd64" if "amd64" in tag else "linux/arm64", digest)
        with pytest.raises(Reached):
            _run(tmp_path, reg.address, monkeypatch)
