"""The OCI distribution client and docker-config credentials.

Challenge parsing, credential lookup and the Bearer token flow are unit tests (the Bearer
flow with httpx.MockTransport, since Debian's registry only does htpasswd); manifest
checks run against the real docker-registry on 127.0.0.1 (fixtures in tests/conftest.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rtbuild.errors import ConfigError, RegistryAuthError, RegistryError
from rtbuild.oci._credentials import Credentials, get_credentials, hostname_of, load_docker_config
from rtbuild.oci._registry import RegistryClient, is_insecure, is_loopback, manifest_exists, parse_challenge

# --- challenge parsing ------------------------------------------------------------------


def test_parse_bearer_challenge() -> None:
    header = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:a/b:pull",
    }


def test_parse_challenge_quoted_commas_escapes_and_bare_values() -> None:
    challenge = parse_challenge('Bearer realm="https://a/t", scope="repository:x:pull,push", error=insufficient_scope')
    assert challenge is not None
    assert challenge.params["scope"] == "repository:x:pull,push"
    assert challenge.params["error"] == "insufficient_scope"
    escaped = parse_challenge(r'Basic realm="say \"hi\""')
    assert escaped is not None
    assert escaped.scheme == "basic"
    assert escaped.params == {"realm": 'say "hi"'}


@pytest.mark.parametrize("header", [None, "", "   "])
def test_parse_empty_challenge(header: str | None) -> None:
    assert parse_challenge(header) is None


def test_loopback_and_insecure_detection() -> None:
    assert is_loopback("127.0.0.1:5000")
    assert is_loopback("127.1.2.3")
    assert is_loopback("localhost:5000")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com:5000")
    assert not is_loopback("10.0.0.1:5000")
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert is_insecure("reg.lan:5000", ["reg.lan:5000"])
    assert is_insecure("reg.lan:5000", ["http://reg.lan"])
    assert not is_insecure("reg.lan:5001", ["reg.lan:5000"])
    assert not is_insecure("reg.lan", ["10.0.0.0/8"])


# --- docker config credentials ------------------------------------------------------------


def _write_config(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return directory


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_auths(tmp_path: Path) -> None:
    cfg = _write_config(
        tmp_path,
        {
            "auths": {
                "127.0.0.1:5000": {"auth": _b64("alice:pa:ss")},
                "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")},
                "https://reg.example.com/v2/": {"username": "bob", "password": "pw"},
                "tok.example.com": {"identitytoken": "refresh-me"},
            }
        },
    )
    alice = get_credentials("127.0.0.1:5000", config_dir=cfg)
    assert alice is not None
    assert (alice.username, alice.password) == ("alice", "pa:ss")  # ':' in passwords survives
    assert str(cfg / "config.json") == alice.source
    hub = get_credentials("docker.io", config_dir=cfg)
    assert hub is not None
    assert hub.username == "hubuser"
    bob = get_credentials("reg.example.com", config_dir=cfg)
    assert bob is not None
    assert (bob.username, bob.password) == ("bob", "pw")
    token = get_credentials("tok.example.com", config_dir=cfg)
    assert token is not None
    assert token.identity_token == "refresh-me"
    assert get_credentials("127.0.0.1:5001", config_dir=cfg) is None
    assert "pa:ss" not in repr(alice)


def test_credentials_follow_docker_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_config(tmp_path / "conf", {"auths": {"r.io": {"auth": _b64("u:p")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "conf"))
    creds = get_credentials("r.io")
    assert creds is not None
    assert creds.auth_config("r.io") == {"username": "u", "password": "p", "serveraddress": "r.io"}
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    assert get_credentials("r.io") is None
    assert load_docker_config(tmp_path / "empty") == {}


def test_malformed_docker_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        get_credentials("r.io", config_dir=tmp_path)
    _write_config(tmp_path, {"auths": {"r.io": {"auth": _b64("no-colon")}}})
    with pytest.raises(ConfigError, match="user:password"):
        get_credentials("r.io", config_dir=tmp_path)


def test_hostname_of() -> None:
    assert hostname_of("https://index.docker.io/v1/") == "index.docker.io"
    assert hostname_of("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert hostname_of("reg.io") == "reg.io"


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on PATH for fake ``docker-credential-*`` helper scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield bin_dir


def _helper(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_cred_helpers_and_creds_store(tmp_path: Path, helper_bin: Path) -> None:
    # The helper echoes which server it was asked about, proving the docker protocol (stdin).
    _helper(
        helper_bin,
        "fake",
        'read server; [ "$1" = get ] || exit 3\n'
        'if [ "$server" = "127.0.0.1:5000" ]; then echo \'{"ServerURL":"x","Username":"hu","Secret":"hs"}\'; '
        'elif [ "$server" = "https://index.docker.io/v1/" ]; then echo \'{"Username":"<token>","Secret":"idt"}\'; '
        "else echo 'credentials not found in native keychain'; exit 1; fi\n",
    )
    cfg = _write_config(
        tmp_path / "c1",
        {"credHelpers": {"127.0.0.1:5000": "fake"}, "auths": {"127.0.0.1:5000": {"auth": _b64("file:pw")}}},
    )
    creds = get_credentials("127.0.0.1:5000", config_dir=cfg)
    assert creds == Credentials("hu", "hs", None, "docker-credential-fake")
    store = _write_config(tmp_path / "c2", {"credsStore": "fake", "auths": {"other.io": {"auth": _b64("f:p")}}})
    hub = get_credentials("docker.io", config_dir=store)
    assert hub is not None
    assert hub.identity_token == "idt"
    assert hub.auth_config() == {"identitytoken": "idt"}
    # Not in the store: fall back to the file's auths, else nothing.
    other = get_credentials("other.io", config_dir=store)
    assert other is not None
    assert other.username == "f"
    assert get_credentials("nothing.io", config_dir=store) is None


def test_broken_or_missing_helper_is_an_auth_error(tmp_path: Path, helper_bin: Path) -> None:
    _helper(helper_bin, "broken", "echo 'keychain locked' >&2; exit 2\n")
    cfg = _write_config(tmp_path / "c", {"credsStore": "broken"})
    with pytest.raises(RegistryAuthError) as info:
        get_credentials("r.io", config_dir=cfg)
    assert "docker-credential-broken" in info.value.message
    assert info.value.log_tail == ["keychain locked"]
    missing = _write_config(tmp_path / "m", {"credsStore": "nosuchhelper"})
    with pytest.raises(RegistryAuthError, match="not installed") as info2:
        get_credentials("r.io", config_dir=missing)
    assert info2.value.hint and "credsStore" in info2.value.hint


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"auths": ["r.io"]}, "`auths` is not an object"),
        ({"credHelpers": ["fake"]}, "`credHelpers` is not an object"),
        ({"credHelpers": {"r.io": 5}}, "`credHelpers` is not an object"),
        ({"credsStore": ["fake"]}, "`credsStore` is not a helper name"),
        ({"auths": {"r.io": {"auth": 5}}}, "`auth` of a registry"),
        ({"auths": {"r.io": {"username": "u", "password": ["p"]}}}, "`password` of a registry"),
    ],
)
def test_a_wrongly_shaped_docker_config_is_a_config_error(tmp_path: Path, document: Any, fragment: str) -> None:
    """Valid JSON of the wrong shape names the file and the key (it was an AttributeError)."""
    cfg = _write_config(tmp_path / "c", document)
    with pytest.raises(ConfigError, match=fragment) as info:
        get_credentials("r.io", config_dir=cfg)
    assert str(cfg / "config.json") in info.value.message


def test_a_helper_printing_bytes_that_are_not_utf8_is_an_auth_error(tmp_path: Path, helper_bin: Path) -> None:
    _helper(helper_bin, "binary", "printf '\\377\\376{}'\n")
    _helper(helper_bin, "numeric", 'echo \'{"Username": "u", "Secret": 12345}\'\n')
    for name in ("binary", "numeric"):
        cfg = _write_config(tmp_path / name, {"credsStore": name})
        with pytest.raises(RegistryAuthError, match=f"docker-credential-{name}") as info:
            get_credentials("r.io", config_dir=cfg)
        assert "12345" not in info.value.render()


# --- Bearer token flow (unit, MockTransport) -------------------------------------------------


class FakeTokenRegistry:
    """A registry at reg.example.com with a token service at auth.example.com."""

    def __init__(self, user: str = "u", password: str = "p", public: bool = False) -> None:
        self.user, self.password, self.public = user, password, public
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "auth.example.com":
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if auth != "Bearer good-token":
            return httpx.Response(
                401,
                headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="reg.example.com"'},
            )
        assert "application/vnd.oci.image.index.v1+json" in request.headers["Accept"]
        return httpx.Response(200 if request.url.path.endswith("/app/manifests/1") else 404)

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("service") == "reg.example.com" or b"service=reg.example.com" in request.content
        if request.method == "POST":
            ok = b"refresh_token=idt" in request.content and b"grant_type=refresh_token" in request.content
        else:
            expected = "Basic " + _b64(f"{self.user}:{self.password}")
            ok = request.headers.get("Authorization") == expected or (
                self.public and "Authorization" not in request.headers
            )
        if not ok:
            return httpx.Response(401, json={"details": "incorrect username or password"})
        return httpx.Response(200, json={"token": "good-token"})


def _client(fake: FakeTokenRegistry, creds: Credentials | None) -> RegistryClient:
    return RegistryClient(credentials=lambda registry: creds, transport=httpx.MockTransport(fake))


def test_bearer_token_with_basic_credentials() -> None:
    fake = FakeTokenRegistry()
    client = _client(fake, Credentials("u", "p"))
    assert client.manifest_exists("reg.example.com/app:1") is True
    assert client.manifest_exists("reg.example.com/app:2") is False
    token_requests = [r for r in fake.requests if r.url.host == "auth.example.com"]
    assert token_requests[0].url.params["scope"] == "repository:app:pull"
    assert token_requests[0].url.scheme == "https"
    assert len(token_requests) == 1  # the token is reused within one client


def test_bearer_anonymous_token_for_public_repositories() -> None:
    assert _client(FakeTokenRegistry(public=True), None).manifest_exists("reg.example.com/app:1") is True


def test_bearer_with_identity_token() -> None:
    assert _client(FakeTokenRegistry(), Credentials(identity_token="idt")).manifest_exists("reg.example.com/app:1")


def test_bearer_refused_credentials_name_the_registry() -> None:
    with pytest.raises(RegistryAuthError) as info:
        _client(FakeTokenRegistry(), Credentials("u", "wrong", source="cfg.json")).manifest_exists(
            "reg.example.com/app:1"
        )
    assert "reg.example.com" in info.value.message
    assert "cfg.json" in info.value.message
    assert info.value.hint and "docker login reg.example.com" in info.value.hint
    assert info.value.exit_code == 1


# --- the real docker-registry --------------------------------------------------------------


def _gzip_tar() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        data = b"hello from rtbuild\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _upload_blob(client: httpx.Client, base: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = client.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = httpx.URL(base).join(start.headers["Location"])
    put = client.put(location.copy_merge_params({"digest": digest}), content=data)
    assert put.status_code == 201, put.text
    return digest


def push_tiny_image(host: str, repo: str, tag: str, auth: tuple[str, str] | None = None) -> None:
    """Push a one-layer OCI image straight through the distribution API (no engine needed)."""
    base = f"http://{host}"
    with httpx.Client(auth=auth, trust_env=False) as client:
        layer = _gzip_tar()
        layer_digest = _upload_blob(client, base, repo, layer)
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        config_digest = _upload_blob(client, base, repo, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
        put = client.put(
            f"{base}/v2/{repo}/manifests/{tag}",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert put.status_code == 201, put.text


@pytest.mark.registry
def test_manifest_exists_on_a_real_registry(registry: Any) -> None:
    push_tiny_image(registry.host, "rt/client", "v1")
    assert manifest_exists(f"{registry.host}/rt/client:v1") is True
    # Missing tag, missing repository: False, no exception.
    assert manifest_exists(f"{registry.host}/rt/client:v2") is False
    assert manifest_exists(f"{registry.host}/rt/never-pushed") is False
    digest = "sha256:" + "0" * 64
    assert manifest_exists(f"{registry.host}/rt/client@{digest}") is False


@pytest.mark.registry
def test_manifest_by_digest(registry: Any) -> None:
    push_tiny_image(registry.host, "rt/bydigest", "v1")
    head = httpx.head(
        f"http://{registry.host}/v2/rt/bydigest/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    digest = head.headers["Docker-Content-Digest"]
    assert manifest_exists(f"{registry.host}/rt/bydigest@{digest}") is True


@pytest.mark.registry
def test_auth_registry_basic_challenge(auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    push_tiny_image(auth_registry.host, "rt/private", "v1", auth=(auth_registry.username, auth_registry.password))
    ref = f"{auth_registry.host}/rt/private:v1"
    # No credentials anywhere: an auth error naming the registry, with a login hint.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    with pytest.raises(RegistryAuthError) as info:
        manifest_exists(ref)
    assert auth_registry.host in info.value.message
    assert "no credentials" in info.value.message
    assert info.value.hint and f"docker login {auth_registry.host}" in info.value.hint
    # The right credentials in a docker config: it answers.
    pair = _b64(f"{auth_registry.username}:{auth_registry.password}")
    good = _write_config(tmp_path / "good", {"auths": {auth_registry.host: {"auth": pair}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(good))
    assert manifest_exists(ref) is True
    assert manifest_exists(f"{auth_registry.host}/rt/private:missing") is False
    # Wrong password: refused, and the message says where the credentials came from.
    bad = _write_config(tmp_path / "bad", {"auths": {auth_registry.host: {"auth": _b64("rtuser:wrong")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(bad))
    with pytest.raises(RegistryAuthError) as refused:
        manifest_exists(ref)
    assert "refused the credentials" in refused.value.message
    assert str(bad / "config.json") in refused.value.message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_registry_is_a_registry_error() -> None:
    host = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(RegistryError) as info:
        manifest_exists(f"{host}/rt/app:1")
    err = info.value
    assert not isinstance(err, RegistryAuthError)
    assert host in err.message
    assert "unreachable" in err.message
    assert err.step == "query registry"
    assert err.hint and host in err.hint


# --- scheme choice and status mapping (unit, MockTransport) -----------------------------------


def _recording(handler: Any) -> tuple[RegistryClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        response: httpx.Response = handler(request)
        return response

    client = RegistryClient(
        insecure_registries=["reg.lan:5000"], credentials=lambda registry: None, transport=httpx.MockTransport(record)
    )
    return client, seen


def test_insecure_registry_falls_back_from_https_to_http() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number", request=request)
        return httpx.Response(200)

    client, seen = _recording(handler)
    assert client.manifest_exists("reg.lan:5000/app:1") is True
    assert [str(r.url) for r in seen] == [
        "https://reg.lan:5000/v2/app/manifests/1",
        "http://reg.lan:5000/v2/app/manifests/1",
    ]


def test_secure_registry_tls_failure_hints_at_insecure_registries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number", request=request)

    client, seen = _recording(handler)
    with pytest.raises(RegistryError) as info:
        client.manifest_exists("other.lan:5000/app:1")
    assert [r.url.scheme for r in seen] == ["https"]  # never silently downgraded
    assert "other.lan:5000" in info.value.message
    assert info.value.hint and "insecure_registries" in info.value.hint


def test_loopback_is_plain_http_only() -> None:
    client, seen = _recording(lambda request: httpx.Response(404))
    assert client.manifest_exists("localhost:5000/app") is False
    assert [str(r.url) for r in seen] == ["http://localhost:5000/v2/app/manifests/latest"]


def test_connection_reset_is_retried_a_bounded_number_of_times() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return httpx.Response(200)

    client, _ = _recording(handler)
    assert client.manifest_exists("localhost:5000/app") is True
    assert len(calls) == 3

    def always_reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    failing, seen = _recording(always_reset)
    with pytest.raises(RegistryError, match="unreachable"):
        failing.manifest_exists("localhost:5000/app")
    assert len(seen) == 3


def test_head_not_allowed_falls_back_to_get() -> None:
    client, seen = _recording(lambda r: httpx.Response(405 if r.method == "HEAD" else 200))
    assert client.manifest_exists("localhost:5000/app") is True
    assert [r.method for r in seen] == ["HEAD", "GET"]


@pytest.mark.parametrize(("status", "fragment"), [(429, "rate limiting"), (500, "HTTP 500"), (503, "HTTP 503")])
def test_other_statuses_are_registry_errors(status: int, fragment: str) -> None:
    client, _ = _recording(lambda r: httpx.Response(status))
    with pytest.raises(RegistryError, match=fragment) as info:
        client.manifest_exists("localhost:5000/app")
    assert not isinstance(info.value, RegistryAuthError)
    assert "localhost:5000" in info.value.message


def test_a_429_with_retry_after_is_asked_again_after_it() -> None:
    """A registry rate-limiting rtbuild's checks (build-many's no-op and base checks, -j 4)
    says when to come back; each answer was a RegistryError at once, failing the build."""
    answers = [httpx.Response(429, headers={"Retry-After": "0.1"})] * 2 + [httpx.Response(200)]
    client, seen = _recording(lambda r: answers[len(seen) - 1])
    assert client.manifest_exists("localhost:5000/app") is True
    assert len(seen) == 3
    # Not given, or longer than the request may take: the answer stands, asked once.
    for headers in ({}, {"Retry-After": "3600"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}):
        client, seen = _recording(lambda r, h=headers: httpx.Response(429, headers=h))
        with pytest.raises(RegistryError, match="rate limiting"):
            client.manifest_exists("localhost:5000/app")
        assert len(seen) == 1
    client, seen = _recording(lambda r: httpx.Response(429, headers={"Retry-After": "0"}))
    with pytest.raises(RegistryError, match="rate limiting"):
        client.manifest_exists("localhost:5000/app")
    assert len(seen) == 3  # RETRY_ATTEMPTS in all


def test_unsupported_challenge() -> None:
    client, _ = _recording(lambda r: httpx.Response(401, headers={"WWW-Authenticate": 'Negotiate realm="x"'}))
    with pytest.raises(RegistryError, match="unsupported challenge"):
        client.manifest_exists("localhost:5000/app")


# --- answers a registry should never give ---------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "config", "fragment"),
    [
        (b"<html>proxy error</html>", b"{}", "manifest .* not a JSON object"),
        (b'{"manifests": ["sha256:abc"]}', b"{}", "not a manifest descriptor"),
        (b'{"manifests": [{"digest": "sha256:a", "platform": "linux"}]}', b"{}", "not a manifest descriptor"),
        (b'{"config": {"digest": "sha256:c"}}', b"not json", "config blob .* not a JSON object"),
    ],
)
def test_malformed_manifests_are_registry_errors(manifest: bytes, config: bytes, fragment: str) -> None:
    """platforms_of (every backend's platform check) on garbage: a RegistryError, not a
    JSONDecodeError or AttributeError from deep inside."""
    from rtbuild.oci import platforms_of

    def answer(request: httpx.Request) -> httpx.Response:
        if "/blobs/" in request.url.path:
            return httpx.Response(200, content=config)
        return httpx.Response(200, content=manifest, headers={"Content-Type": "application/json"})

    client, _ = _recording(answer)
    with pytest.raises(RegistryError, match=fragment) as info:
        platforms_of(client, "localhost:5000/app:1")
    assert info.value.step == "query registry" and info.value.hint


@pytest.mark.parametrize("realm", ["http://[::1", "ftp://auth.example.com/token", "/token"])
def test_a_malformed_token_realm_is_a_registry_error(realm: str) -> None:
    client, _ = _recording(
        lambda r: httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})
    )
    with pytest.raises(RegistryError, match="not an http\\(s\\) URL"):
        client.manifest_exists("localhost:5000/app")


def test_a_token_service_echoing_the_password_is_masked_in_the_error() -> None:
    creds = Credentials("alice", "S3cretPassw0rd", None, "test")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            sent = request.headers.get("Authorization", "")
            return httpx.Response(500, text=f"backend failed for {sent}\npassword was S3cretPassw0rd\n")
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="x"'}
        )

    client = RegistryClient(credentials=lambda registry: creds, transport=httpx.MockTransport(answer))
    with pytest.raises(RegistryError, match="answered HTTP 500") as info:
        client.manifest_exists("reg.example.com/app:1")
    shown = info.value.render() + json.dumps(info.value.to_dict())
    assert "S3cretPassw0rd" not in shown and _b64("alice:S3cretPassw0rd") not in shown
    assert "***" in shown


def test_a_docker_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"auths": {"r.io": {"auth": "\xff"}}}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_docker_config(tmp_path)


def test_a_cancelled_run_stops_waiting_for_a_registry_that_does_not_answer() -> None:
    """build-many's workers never see Ctrl-C/SIGTERM: one waiting for a registry that took the
    connection and never answered (a base image check, the no-op skip's lookup) held rtbuild's
    exit for the request's whole deadline (30 s; 27.6 s measured with 4 jobs)."""
    from rtbuild._framework.interrupts import Cancelled, cancel_scope

    release = threading.Event()

    def never(request: httpx.Request) -> httpx.Response:
        release.wait(60)
        return httpx.Response(200)

    client = RegistryClient(credentials=lambda registry: None, transport=httpx.MockTransport(never))
    stop = threading.Event()
    raised: list[BaseException] = []

    def worker() -> None:
        with cancel_scope(stop):
            try:
                client.manifest_exists("localhost:5000/app")
            except BaseException as exc:  # handed to the test
                raised.append(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    time.sleep(0.3)  # the request is under way
    stop.set()
    thread.join(15)
    release.set()
    assert not thread.is_alive(), "the registry wait went on after the run was cancelled"
    assert raised and isinstance(raised[0], Cancelled)
