"""The Kubernetes builder's own registry calls (``RegistryOps``) against scripted loopback
registries: where credentials may go, and what a malformed or stuck registry gives."""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import time
from pathlib import Path

import pytest
from _scripted_registry import Request, docker_config, scripted
from rtbuild import RegistryAuthError, RegistryError
from rtbuild.oci import is_loopback, parse_reference
from rtbuild_kubernetes.registry_ops import OCI_MANIFEST, RegistryOps

pytestmark = pytest.mark.timeout(120)


def test_basic_credentials_never_go_to_a_plain_http_realm_on_another_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.1 reaches this machine, but is not "loopback" by rtbuild's rule (as a real
    # non-loopback host would not be): the token request must not be sent there at all.
    with scripted(lambda r: (200, {"token": "tkn"}, {})) as token:
        realm_host = f"127.1:{token.port}"
        assert not is_loopback(realm_host)

        def registry(request: Request) -> tuple[int, bytes, dict[str, str]]:
            if "Authorization" not in request.headers:
                challenge = f'Bearer realm="http://{realm_host}/token",service="reg"'
                return 401, b"", {"WWW-Authenticate": challenge}
            return 404, b"", {}

        with scripted(registry) as reg:
            monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
            docker_config(tmp_path / "docker", reg.address)
            with pytest.raises(RegistryAuthError, match="refusing to send them") as info:
                RegistryOps().image_config(f"{reg.address}/team/app:1")
        assert info.value.step == "authenticate to registry"
        assert realm_host in (info.value.hint or "")
        assert token.log == []


def test_an_upload_location_on_another_host_gets_no_authorization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scripted(lambda r: (201, b"", {}), host="127.0.0.2") as other:

        def registry(request: Request) -> tuple[int, bytes, dict[str, str]]:
            if "Authorization" not in request.headers:
                return 401, b"", {"WWW-Authenticate": 'Basic realm="reg"'}
            if request.method == "HEAD":
                return 404, b"", {}
            if request.method == "POST":
                return 202, b"", {"Location": f"http://{other.address}/storage/upload?sig=1"}
            return 500, b"", {}

        with scripted(registry) as reg:
            monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
            basic = docker_config(tmp_path / "docker", reg.address)
            data = b"context-tar"
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            ref = parse_reference(f"{reg.address}/team/app-rtbuild-context")
            assert RegistryOps().upload_blob(ref, digest, io.BytesIO(data), len(data))
        assert any(r.headers.get("Authorization") == basic for r in reg.log)  # the registry itself: yes
        assert [r.method for r in other.log] == ["PUT"]
        assert "Authorization" not in other.log[0].headers
        assert other.log[0].body == data


def test_an_upload_location_on_the_registry_itself_keeps_the_authorization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def registry(request: Request) -> tuple[int, bytes, dict[str, str]]:
        if "Authorization" not in request.headers:
            return 401, b"", {"WWW-Authenticate": 'Basic realm="reg"'}
        if request.method == "HEAD":
            return 404, b"", {}
        if request.method == "POST":
            return 202, b"", {"Location": f"http://127.0.0.1:{request.port}/v2/team/ctx/blobs/uploads/u1?_state=x"}
        return 201, b"", {}

    with scripted(registry) as reg:
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        basic = docker_config(tmp_path / "docker", reg.address)
        data = b"context-tar"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert RegistryOps().upload_blob(parse_reference(f"{reg.address}/team/ctx"), digest, io.BytesIO(data), 11)
    put = [r for r in reg.log if r.method == "PUT"]
    assert put[-1].headers.get("Authorization") == basic
    assert "_state=x" in put[-1].path and "digest=sha256" in put[-1].path


def test_a_registry_that_drips_its_answer_is_given_up_on_at_the_overall_deadline() -> None:
    def drip(request: Request) -> None:
        handler = request.raw
        handler.send_response(200)
        handler.send_header("Content-Type", OCI_MANIFEST)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(60):  # a byte every second: never a read timeout
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(1)

    ops = RegistryOps()
    ops.deadline = 3
    errors: list[BaseException] = []

    def check(address: str) -> None:
        try:
            ops.image_config(f"{address}/team/base:1")
        except BaseException as exc:
            errors.append(exc)

    with scripted(drip) as reg:
        started = time.monotonic()
        worker = threading.Thread(target=check, args=(reg.address,), daemon=True)
        worker.start()
        worker.join(20)
        took = time.monotonic() - started
        assert not worker.is_alive(), "still waiting on a dripping registry after 20 s"
    assert took < 10
    assert len(errors) == 1 and isinstance(errors[0], RegistryError), errors
    assert errors[0].step == "query registry" and "within 3s" in str(errors[0])


_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize(
    ("answers", "fragment"),
    [
        ({"manifests/1": (OCI_MANIFEST, b"<html>proxy error</html>")}, "the manifest of"),
        ({"manifests/1": (OCI_MANIFEST, b'{"schemaVersion": 2}')}, "names no config"),
        ({"manifests/1": (_INDEX, b'{"manifests": ["sha256:abc"]}')}, "the index of"),
        ({"manifests/1": (OCI_MANIFEST, b'{"config": {"digest": "sha256:c"}}'), "blobs/": ("", b"[1]")}, "config of"),
    ],
)
def test_malformed_registry_documents_are_registry_errors(answers: dict[str, tuple[str, bytes]], fragment: str) -> None:
    def registry(request: Request) -> tuple[int, bytes, dict[str, str]]:
        for suffix, (media_type, body) in answers.items():
            if suffix in request.path:
                return 200, body, {"Content-Type": media_type} if media_type else {}
        return 404, b"", {}

    with scripted(registry) as reg, pytest.raises(RegistryError, match=fragment) as info:
        RegistryOps().image_config(f"{reg.address}/team/app:1")
    assert info.value.step == "query registry" and info.value.hint


def test_a_token_service_answering_html_and_an_upload_without_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scripted(lambda r: (200, b"<html>login</html>", {"Content-Type": "text/html"})) as token:

        def registry(request: Request) -> tuple[int, bytes, dict[str, str]]:
            if "Authorization" not in request.headers:
                return 401, b"", {"WWW-Authenticate": f'Bearer realm="http://{token.address}/token"'}
            return 404, b"", {}

        with scripted(registry) as reg, pytest.raises(RegistryError, match="not a JSON object"):
            RegistryOps().image_config(f"{reg.address}/team/app:1")

    def no_location(request: Request) -> tuple[int, bytes, dict[str, str]]:
        return (404, b"", {}) if request.method == "HEAD" else (202, b"", {})

    with scripted(no_location) as reg, pytest.raises(RegistryError, match="no Location header"):
        ref = parse_reference(f"{reg.address}/team/app:1")
        RegistryOps().upload_blob(ref, "sha256:" + "0" * 64, io.BytesIO(b"x"), 1)


def test_an_identity_token_login_reads_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker config holding only an ``identitytoken`` (as `az acr login` and other OAuth
    logins write it): the refresh token is exchanged at the realm (grant_type
    refresh_token), as the core client and the docker CLI do. Before, this builder sent an
    anonymous token request and stopped with "requires credentials"."""
    with scripted(
        lambda r: (
            (200, {"access_token": "from-refresh"}, {})
            if r.method == "POST" and b"refresh_token=idt-123" in r.body and b"grant_type=refresh_token" in r.body
            else (401, b"", {})
        )
    ) as token:

        def registry(request: Request) -> tuple[int, bytes | dict[str, object], dict[str, str]]:
            if request.headers.get("Authorization") != "Bearer from-refresh":
                challenge = f'Bearer realm="http://{token.address}/token",service="reg"'
                return 401, b"", {"WWW-Authenticate": challenge}
            if "/manifests/" in request.path:
                return 200, {"schemaVersion": 2, "config": {"digest": "sha256:c0"}}, {"Content-Type": OCI_MANIFEST}
            return 200, {"architecture": "amd64", "os": "linux"}, {}

        with scripted(registry) as reg:
            config = tmp_path / "docker"
            config.mkdir()
            (config / "config.json").write_text(f'{{"auths": {{"{reg.address}": {{"identitytoken": "idt-123"}}}}}}')
            monkeypatch.setenv("DOCKER_CONFIG", str(config))
            found = RegistryOps().image_config(f"{reg.address}/team/app:1")
    assert found is not None and found[0] == "sha256:c0" and found[1]["os"] == "linux"
    assert [r.method for r in token.log] == ["POST"]
