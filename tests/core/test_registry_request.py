"""``RegistryClient.request``: one authorized registry call, the public way for a backend to
read and write what ``manifest_exists`` only asks about (the Kubernetes builder's context
upload, manifests and temporary tags go through it).

The flow checks use an ``httpx.MockTransport`` that counts what arrives; the last test
talks to the real docker-registry behind htpasswd."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import httpx
import pytest
from rtbuild import RegistryAuthError, RegistryError
from rtbuild.oci import Credentials, RegistryClient, parse_reference

REALM = 'Bearer realm="https://auth.example.com/token",service="reg.example.com"'


class RotatingRegistry:
    """reg.example.com behind a token service whose every token opens one repository
    until ``expire()``; uploads go to ``storage`` (another origin) when it is set."""

    def __init__(self, storage: str | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.issued = 0
        self.valid: set[str] = set()
        self.storage = storage
        self.reset_next_put = False

    def expire(self) -> None:
        self.valid.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "auth.example.com":
            self.issued += 1
            token = f"t{self.issued}"
            self.valid.add(token)
            return httpx.Response(200, json={"token": token})
        if request.method == "PUT":
            body = request.read()
            self.bodies.append(body)
            if self.reset_next_put:
                self.reset_next_put = False
                raise httpx.ReadError("connection reset by peer", request=request)
        if request.url.host != "reg.example.com":
            return httpx.Response(201)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, headers={"WWW-Authenticate": REALM})
        if request.method == "POST":
            where = f"https://{self.storage}/upload?sig=1" if self.storage else "/v2/app/blobs/uploads/u1?_state=s"
            return httpx.Response(202, headers={"Location": where})
        return httpx.Response(201 if request.method == "PUT" else 200)

    def to_registry(self) -> list[tuple[str, bool]]:
        """(method, carried an Authorization) of each request to the registry itself."""
        return [(r.method, "Authorization" in r.headers) for r in self.requests if r.url.host == "reg.example.com"]


def _client(fake: RotatingRegistry) -> RegistryClient:
    creds = Credentials("u", "p")
    return RegistryClient(credentials=lambda registry: creds, transport=httpx.MockTransport(fake))


REF = parse_reference("reg.example.com/app:1")


def test_the_authorization_goes_up_front_once_a_repository_opened() -> None:
    fake = RotatingRegistry()
    client = _client(fake)
    assert client.request(REF, "GET", "/v2/app/manifests/1").status_code == 200
    assert client.request(REF, "GET", "/v2/app/manifests/2").status_code == 200
    assert fake.to_registry() == [("GET", False), ("GET", True), ("GET", True)]
    assert fake.issued == 1
    # Another action is another scope: a token of its own.
    assert client.request(REF, "POST", "/v2/app/blobs/uploads/", action="pull,push").status_code == 202
    token_scopes = [r.url.params["scope"] for r in fake.requests if r.url.host == "auth.example.com"]
    assert token_scopes == ["repository:app:pull", "repository:app:pull,push"]


def test_an_expired_token_is_fetched_again_once() -> None:
    fake = RotatingRegistry()
    client = _client(fake)
    assert client.request(REF, "GET", "/v2/app/manifests/1").status_code == 200
    fake.expire()
    assert client.request(REF, "GET", "/v2/app/manifests/1").status_code == 200
    assert fake.issued == 2  # not the cached, expired one again
    assert fake.to_registry() == [("GET", False), ("GET", True), ("GET", True), ("GET", True)]


def test_an_upload_body_is_sent_once_when_authorized_and_whole_after_a_reset() -> None:
    fake = RotatingRegistry()
    client = _client(fake)
    started = client.request(REF, "POST", "/v2/app/blobs/uploads/", action="pull,push")
    location = str(started.url.join(started.headers["Location"]))
    data = bytes(range(256)) * 4096  # 1 MiB, streamed from a file object
    fake.reset_next_put = True
    stream = io.BytesIO(data)
    headers = {"Content-Length": str(len(data))}
    done = client.request(REF, "PUT", url=location, action="pull,push", headers=headers, content=stream)
    assert done.status_code == 201
    # Sent with the upload's Authorization (never once without it), then again from its
    # first byte after the connection reset.
    assert fake.bodies == [data, data]
    assert [m for m, authorized in fake.to_registry() if m == "PUT" and not authorized] == []


def test_storage_on_another_origin_gets_no_credentials() -> None:
    fake = RotatingRegistry(storage="storage.example.com")
    client = _client(fake)
    started = client.request(REF, "POST", "/v2/app/blobs/uploads/", action="pull,push")
    location = started.headers["Location"]
    assert client.request(REF, "PUT", url=location, action="pull,push", content=b"x").status_code == 201
    put = [r for r in fake.requests if r.url.host == "storage.example.com"]
    assert len(put) == 1 and "Authorization" not in put[0].headers


def test_a_token_service_answering_html_is_a_registry_error_naming_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(200, text="<html>sign in</html>", headers={"Content-Type": "text/html"})
        return httpx.Response(401, headers={"WWW-Authenticate": REALM})

    client = RegistryClient(credentials=lambda r: None, transport=httpx.MockTransport(handler))
    with pytest.raises(RegistryError, match="not a JSON object") as info:
        client.request(REF, "GET", "/v2/app/manifests/1")
    assert info.value.step == "authenticate to registry" and info.value.hint


def test_refused_twice_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": "never-good"})
        return httpx.Response(401, headers={"WWW-Authenticate": REALM})

    creds = Credentials("u", "p", source="cfg.json")
    client = RegistryClient(credentials=lambda r: creds, transport=httpx.MockTransport(handler))
    with pytest.raises(RegistryAuthError, match=r"refused the credentials from cfg\.json"):
        client.request(REF, "GET", "/v2/app/manifests/1")


@pytest.mark.registry
def test_a_blob_upload_and_a_manifest_through_a_real_registry_with_basic_auth(auth_registry: Any) -> None:
    pair = (auth_registry.username, auth_registry.password)
    client = RegistryClient(credentials=lambda registry: Credentials(*pair))
    ref = parse_reference(f"{auth_registry.host}/rt/request:1")
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    started = client.request(ref, "POST", "/v2/rt/request/blobs/uploads/", action="pull,push")
    assert started.status_code == 202
    location = str(started.url.join(started.headers["Location"]))
    location += ("&" if "?" in location else "?") + "digest=" + digest.replace(":", "%3A")
    stream = io.BytesIO(config)
    headers = {"Content-Length": str(len(config)), "Content-Type": "application/octet-stream"}
    put = client.request(ref, "PUT", url=location, action="pull,push", headers=headers, content=stream)
    assert put.status_code == 201, put.text
    manifest = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
        b'"application/vnd.oci.image.config.v1+json","digest":"'
        + digest.encode()
        + b'","size":'
        + str(len(config)).encode()
        + b'},"layers":[]}'
    )
    media = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    assert client.request(ref, "PUT", "/v2/rt/request/manifests/1", action="pull,push", headers=media, content=manifest)
    got = httpx.get(f"http://{auth_registry.host}/v2/rt/request/blobs/{digest}", auth=pair)
    assert got.content == config
    assert client.manifest_exists(ref) is True
