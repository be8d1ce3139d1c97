"""The registry calls the Kubernetes builder makes from this machine.

There is no local engine, so this builder reads manifests and config blobs itself (the
no-op skip reads the input-digest label and base image IDs from the registry), uploads the
context blob (transport ``registry``) and puts manifests (an index for several platforms).
Every request goes through the core's :class:`rtbuild.oci.RegistryClient`, with the
credentials of :func:`rtbuild.oci.get_credentials`, sent only in Authorization headers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from rtbuild import PushError, RegistryAuthError, RegistryError
from rtbuild.oci import RegistryClient, parse_reference

if TYPE_CHECKING:
    import httpx
    from rtbuild.oci import Reference

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join((DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX))


class RegistryOps:
    """Manifest/blob reads and writes for one build, over the core's
    :class:`rtbuild.oci.RegistryClient` (its schemes, Basic/Bearer/identity-token auth,
    retries, deadlines, and no credentials to another origin)."""

    def __init__(self, insecure_registries: Iterable[str] = (), timeout: float = 60.0, deadline: float = 120.0) -> None:
        #: Overall limit of one request: httpx's timeout applies per read, so a registry
        #: dripping a byte every few seconds would otherwise hold a call forever.
        self.client = RegistryClient(insecure_registries=insecure_registries, timeout=timeout, deadline=deadline)

    @property
    def deadline(self) -> float:
        return self.client.deadline

    @deadline.setter
    def deadline(self, seconds: float) -> None:
        self.client.deadline = seconds

    def request(
        self,
        ref: Reference,
        method: str,
        path: str,
        *,
        actions: str = "pull",
        headers: Mapping[str, str] | None = None,
        content: bytes | IO[bytes] | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        """One call (see :meth:`RegistryClient.request`); a refusal is a RegistryAuthError."""
        response = self.client.request(
            ref, method, path, action=actions, headers=dict(headers or {}), content=content, url=url
        )
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"registry {ref.registry} refused {method} {ref.repository} (HTTP {response.status_code})",
                step="authenticate to registry",
                hint=f"check the credentials for {ref.registry} (`docker login {ref.registry}`)",
            )
        return response

    # --- reads -------------------------------------------------------------------------

    def manifest(self, image: str | Reference) -> tuple[str, bytes, str] | None:
        """``(media type, body, digest)`` of ``image``'s manifest; ``None`` when absent."""
        ref = parse_reference(image) if isinstance(image, str) else image
        response = self.request(
            ref, "GET", f"/v2/{ref.repository}/manifests/{ref.manifest_ref}", headers={"Accept": ACCEPT}
        )
        if response.status_code == 404:
            return None
        _check(response, ref, "read the manifest of")
        body = response.content
        digest = response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        return response.headers.get("Content-Type", "").split(";")[0], body, digest

    def blob(self, ref: Reference, digest: str) -> bytes:
        response = self.request(ref, "GET", f"/v2/{ref.repository}/blobs/{digest}")
        _check(response, ref, f"read blob {digest} of")
        return response.content

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        response = self.request(ref, "HEAD", f"/v2/{ref.repository}/blobs/{digest}")
        return response.status_code == 200

    def image_config(self, image: str, platform: str | None = None) -> tuple[str, dict[str, Any]] | None:
        """``(image ID, config document)`` of ``image`` as the registry holds it; for a
        manifest list, of the entry for ``platform`` (default linux/amd64). ``None``: absent."""
        ref = parse_reference(image)
        found = self.manifest(ref)
        if found is None:
            return None
        media_type, body, _ = found
        document = _json_object(body, f"the manifest of {image}")
        if media_type in (DOCKER_LIST, OCI_INDEX) or "manifests" in document:
            entries = document.get("manifests", [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise _malformed(f"the index of {image}")
            entry = _entry_for(entries, platform or "linux/amd64")
            if entry is None:
                return None
            if not isinstance(entry.get("digest"), str):
                raise _malformed(f"the index of {image}")
            found = self.manifest(_with_digest(ref, entry["digest"]))
            if found is None:
                return None
            document = _json_object(found[1], f"the manifest of {image} for {platform or 'linux/amd64'}")
        config = document.get("config")
        config_digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(config_digest, str):
            raise _malformed(f"the manifest of {image} (it names no config)")
        return config_digest, _json_object(self.blob(ref, config_digest), f"the config of {image}")

    # --- writes ------------------------------------------------------------------------

    def upload_blob(self, ref: Reference, digest: str, stream: IO[bytes], size: int) -> bool:
        """Upload a blob unless the registry has it; ``True`` when it was uploaded."""
        if self.blob_exists(ref, digest):
            return False
        started = self.request(ref, "POST", f"/v2/{ref.repository}/blobs/uploads/", actions="pull,push")
        _check(started, ref, "start a blob upload to", push=True)
        location = started.headers.get("Location")
        if not location:
            raise _malformed(f"the blob upload to {ref.registry} (no Location header)")
        location = str(started.url.join(location))  # relative to the scheme that answered
        # Appended by hand: httpx's params= would replace the upload's own _state query.
        location += ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")
        done = self.request(
            ref,
            "PUT",
            "",
            url=location,
            actions="pull,push",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=stream,
        )
        _check(done, ref, "upload a blob to", push=True)
        return True

    def put_manifest(self, ref: Reference, reference: str, media_type: str, body: bytes) -> str:
        response = self.request(
            ref,
            "PUT",
            f"/v2/{ref.repository}/manifests/{reference}",
            actions="pull,push",
            headers={"Content-Type": media_type},
            content=body,
        )
        _check(response, ref, "put a manifest to", push=True)
        return response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()


def _malformed(what: str) -> RegistryError:
    return RegistryError(
        f"the registry answered {what} with a malformed document",
        step="query registry",
        hint="check the registry (or a proxy in front of it) serves the distribution API",
    )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise _malformed(what)
    return loaded


def _entry_for(entries: list[dict[str, Any]], platform: str) -> dict[str, Any] | None:
    """The index entry for ``platform``: os, architecture and variant equal (arm64's ``v8``
    is its default); without a requested variant, the first entry of that os/architecture."""
    from rtbuild.oci import normalize_platform

    wanted = normalize_platform(platform)
    loose = None
    for entry in entries:
        plat = entry.get("platform") or {}
        if not isinstance(plat, dict):
            continue
        parts = [plat.get("os", ""), plat.get("architecture", ""), plat.get("variant", "")]
        offered = normalize_platform("/".join(part for part in parts if part))
        if offered == wanted:
            return entry
        if loose is None and wanted.count("/") == 1 and offered.startswith(wanted + "/"):
            loose = entry
    return loose


def _with_digest(ref: Reference, digest: str) -> Reference:
    return parse_reference(f"{ref.registry}/{ref.repository}@{digest}")


def _check(response: httpx.Response, ref: Reference, what: str, *, push: bool = False) -> None:
    if response.status_code < 300:
        return
    error = PushError if push else RegistryError
    raise error(
        f"registry {ref.registry} refused to {what} {ref.repository} (HTTP {response.status_code})",
        step="push to registry" if push else "query registry",
        log_tail=response.text.splitlines()[-5:] if response.text else None,
        hint="check the registry's logs and that this account may push there" if push else None,
    )


__all__ = ["DOCKER_LIST", "DOCKER_MANIFEST", "OCI_INDEX", "OCI_MANIFEST", "RegistryOps"]
