"""Reading and tampering with a multi-platform tag in a test registry (plain HTTP, no auth),
for the Docker and Podman no-op push tests: what the no-op check must not trust."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def _split(image: str) -> tuple[str, str, str]:
    host, rest = image.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    return host, repo, tag


def manifest(image: str, reference: str | None = None) -> tuple[str, str, bytes]:
    """``(media type, digest, bytes)`` of ``image``'s tag (or ``reference`` in its repository)."""
    host, repo, tag = _split(image)
    response = httpx.get(
        f"http://{host}/v2/{repo}/manifests/{reference or tag}", headers={"Accept": ACCEPT}, trust_env=False
    )
    response.raise_for_status()
    return response.headers["Content-Type"], response.headers["Docker-Content-Digest"], response.content


def put_manifest(image: str, media_type: str, data: bytes) -> None:
    host, repo, tag = _split(image)
    response = httpx.put(
        f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Content-Type": media_type}, content=data, trust_env=False
    )
    assert response.status_code == 201, response.text


def delete_blob(image: str, digest: str) -> None:
    host, repo, _ = _split(image)
    response = httpx.delete(f"http://{host}/v2/{repo}/blobs/{digest}", trust_env=False)
    assert response.status_code == 202, response.text


def blob_there(image: str, digest: str) -> bool:
    host, repo, _ = _split(image)
    return httpx.head(f"http://{host}/v2/{repo}/blobs/{digest}", trust_env=False).status_code == 200


def entries(image: str) -> dict[str, str]:
    """``{architecture: manifest digest}`` of the index under ``image``."""
    media_type, _, data = manifest(image)
    document = json.loads(data)
    assert "manifests" in document, f"{image} is a {media_type}, not an index"
    return {entry["platform"]["architecture"]: entry["digest"] for entry in document["manifests"]}


def edit_index(image: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """PUT the index under ``image`` again with its entries passed through ``change``."""
    media_type, _, data = manifest(image)
    document = json.loads(data)
    document["manifests"] = change(document["manifests"])
    put_manifest(image, media_type, json.dumps(document).encode())


def copy_manifest(source: str, target: str) -> None:
    """Put the manifest ``source`` names under ``target`` (same repository), as a re-tag does."""
    media_type, _, data = manifest(source)
    put_manifest(target, media_type, data)


def layers(image: str) -> list[str]:
    """The layer digests of the single-platform image ``image``."""
    _, _, data = manifest(image)
    return [layer["digest"] for layer in json.loads(data)["layers"]]
