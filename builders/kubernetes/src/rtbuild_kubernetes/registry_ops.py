"""The registry calls the Kubernetes builder makes from this machine.

The core's :class:`rtbuild.oci.RegistryClient` answers "does this manifest exist"; this
builder also reads manifests and config blobs (the no-op skip reads the input-digest label
and base image IDs from the registry, since there is no local engine), uploads the context
blob (transport ``registry``) and puts a manifest list (several platforms). Credentials
come from :func:`rtbuild.oci.get_credentials`; they are sent only in Authorization headers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from rtbuild import PushError, RegistryAuthError, RegistryError
from rtbuild.oci import get_credentials, is_insecure, is_loopback, parse_reference

if TYPE_CHECKING:
    import httpx
    from rtbuild.oci import Reference

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join((DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
#: An upload's overall deadline grows by one second per this many bytes (1 MiB/s at worst).
MIN_UPLOAD_RATE = 1024 * 1024


class RegistryOps:
    """Manifest/blob reads and writes with Basic or Bearer auth, one instance per build."""

    def __init__(self, insecure_registries: Iterable[str] = (), timeout: float = 60.0, deadline: float = 120.0) -> None:
        self.insecure = list(insecure_registries)
        self.timeout = timeout
        #: Overall limit of one request: httpx's timeout applies per read, so a registry
        #: dripping a byte every few seconds would otherwise hold a call forever.
        self.deadline = deadline
        self._auth: dict[tuple[str, str], str] = {}

    # --- transport ---------------------------------------------------------------------

    def _plain_ok(self, host: str) -> bool:
        return is_loopback(host) or is_insecure(host, self.insecure)

    def _base(self, registry: str) -> str:
        return f"{'http' if self._plain_ok(registry) else 'https'}://{registry}"

    def _client(self, registry: str) -> httpx.Client:
        import httpx

        return httpx.Client(
            timeout=self.timeout, follow_redirects=True, trust_env=not is_loopback(registry), verify=True
        )

    def _authorize(self, ref: Reference, response: httpx.Response, actions: str) -> str | None:
        header = response.headers.get("WWW-Authenticate", "")
        scheme = header.split(" ", 1)[0].lower()
        creds = get_credentials(ref.registry)
        if scheme == "basic":
            if creds is None or creds.password is None:
                return None
            pair = f"{creds.username or ''}:{creds.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if scheme != "bearer":
            return None
        params = dict(_CHALLENGE.findall(header))
        realm = params.pop("realm", None)
        if not realm:
            return None
        params["scope"] = f"repository:{ref.repository}:{actions}"
        auth = (creds.username or "", creds.password) if creds and creds.password else None
        import httpx

        realm_url = httpx.URL(realm)
        realm_host = realm_url.netloc.decode()
        if auth and realm_url.scheme != "https" and not self._plain_ok(realm_host):
            # The core RegistryClient's rule: a challenge may name any token URL, so Basic
            # credentials go over plain http only to loopback or a listed insecure host.
            raise RegistryAuthError(
                f"registry {ref.registry} wants credentials sent to {realm_url.scheme}://{realm_host}, which is"
                " neither https nor loopback nor a listed insecure registry: refusing to send them",
                step="authenticate to registry",
                hint=f"list {realm_host} in insecure_registries if plain http there is intended",
            )

        try:
            with httpx.Client(timeout=self.timeout) as client:
                token_response = self._within(
                    lambda: client.get(realm, params=params, auth=auth), realm, client.close, self.deadline
                )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"token service {realm} is unreachable: {exc}", step="authenticate to registry"
            ) from exc
        if token_response.status_code >= 400:
            return None
        try:
            body = token_response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(
                f"token service {realm} answered with something that is not a JSON object",
                step="authenticate to registry",
                hint="check the registry's auth configuration (its Bearer realm), or a proxy in front of it",
            )
        token = body.get("token") or body.get("access_token")
        return f"Bearer {token}" if token else None

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
        """One call, answering a 401 challenge once; transport failures are RegistryError."""
        import httpx

        key = (ref.registry, f"{ref.repository}:{actions}")
        sent = dict(headers or {})
        base = self._base(ref.api_host)
        target = url or f"{base}{path}"
        # The registry's credentials go only to the registry itself: an upload Location may
        # name storage on another host or scheme, which gets the request without them.
        own = _origin(target) == _origin(base)
        if own and key in self._auth:
            sent["Authorization"] = self._auth[key]
        budget = self.deadline + int(sent.get("Content-Length") or 0) / MIN_UPLOAD_RATE
        try:
            with self._client(ref.api_host) as client:
                response = self._within(
                    lambda: client.request(method, target, headers=sent, content=content), target, client.close, budget
                )
                if response.status_code == 401 and own and "Authorization" not in sent:
                    authorization = self._authorize(ref, response, actions)
                    if authorization is None:
                        raise RegistryAuthError(
                            f"registry {ref.registry} requires credentials for {ref.repository} ({actions})",
                            step="authenticate to registry",
                            hint=f"run `docker login {ref.registry}`",
                        )
                    self._auth[key] = sent["Authorization"] = authorization
                    if hasattr(content, "seek"):
                        content.seek(0)  # type: ignore[union-attr]
                    response = self._within(
                        lambda: client.request(method, target, headers=sent, content=content),
                        target,
                        client.close,
                        budget,
                    )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {ref.registry} is unreachable: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                step="query registry",
                hint=f"check that {ref.registry} runs and is reachable from this machine",
            ) from exc
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"registry {ref.registry} refused {method} {ref.repository} (HTTP {response.status_code})",
                step="authenticate to registry",
                hint=f"check the credentials for {ref.registry} (`docker login {ref.registry}`)",
            )
        return response

    @staticmethod
    def _within(
        call: Callable[[], httpx.Response], url: str, abort: Callable[[], None], budget: float
    ) -> httpx.Response:
        """``call()`` in a daemon thread, or a RegistryError once ``budget`` seconds passed
        (the client is then closed, which drops the connection)."""
        box: list[Any] = []

        def run() -> None:
            try:
                box.append(call())
            except BaseException as exc:  # handed to the caller's thread
                box.append(exc)

        worker = threading.Thread(target=run, name="rtbuild-k8s-registry", daemon=True)
        worker.start()
        worker.join(budget)
        if worker.is_alive():
            with contextlib.suppress(Exception):
                abort()
            host = url.split("://", 1)[-1].split("/", 1)[0]
            raise RegistryError(
                f"registry {host} did not answer {url.split('?', 1)[0]} within {budget:g}s",
                step="query registry",
                hint=f"the registry {host} is overloaded or stuck; retry later",
            )
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]  # type: ignore[no-any-return]

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
        if location.startswith("/"):
            location = self._base(ref.api_host) + location
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


def _origin(url: str) -> tuple[str, str, int | None]:
    import httpx

    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, parsed.port or default


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
