"""A docker context whose endpoint speaks TLS works as the same TLS from the environment.

The engine is the real dockerd behind a TLS forwarder (a TLS server on loopback that
requires a client certificate from the test's CA and pumps bytes to
/var/run/docker.sock). The contexts are made by the real ``docker context create``, so
their certificates sit where the docker CLI keeps them. The forwarder records which
client each connection came from (its User-Agent): rtbuild's own calls (the docker SDK)
and the docker CLI it runs must both arrive over TLS, with the context's certificates.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from rtbuild import BuildRequest
from rtbuild_docker import DockerBuilder

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
__all__ = ["context", "images", "isolated_dirs"]  # fixtures, re-exported for pytest

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"  # as conftest's
SDK_AGENT = "docker-sdk-python"  # rtbuild's own engine calls
CLI_AGENT = "Docker-Client"  # the docker CLI's build


class TLSForwarder:
    """A TLS endpoint on 127.0.0.1 in front of the real dockerd.

    It requires a client certificate signed by ``ca`` and then pumps bytes both ways to
    the engine's unix socket, so HTTP upgrades (BuildKit's session) pass untouched.
    asyncio in one thread: any number of connections, and each connection's TLS state
    is only ever touched by that thread (OpenSSL objects are not thread-safe).
    """

    def __init__(self, ca: Path, cert: Path, key: Path, engine: str = "/var/run/docker.sock") -> None:
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.verify_mode = ssl.CERT_REQUIRED
        self.tls.load_verify_locations(str(ca))
        self.tls.load_cert_chain(str(cert), str(key))
        self.engine = engine
        self.agents: list[str] = []  #: the User-Agent of every connection served
        self.refused = 0  #: connections whose TLS handshake failed
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-forwarder", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.host = f"tcp://127.0.0.1:{self.port}"

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.agents)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # The handshake here, not in start_server(ssl=...): asyncio drops a failed one silently.
        try:
            await client_w.start_tls(self.tls, ssl_handshake_timeout=10)
        except (TimeoutError, OSError):  # ssl.SSLError is an OSError
            with self._lock:
                self.refused += 1
            client_w.close()
            return
        try:
            engine_r, engine_w = await asyncio.open_unix_connection(self.engine)
        except OSError:
            client_w.close()
            return
        first = await client_r.read(65536)
        agent = re.search(rb"(?im)^user-agent:\s*([^\r\n]*)", first)
        with self._lock:
            self.agents.append(agent.group(1).decode() if agent else "?")
        engine_w.write(first)
        await asyncio.gather(self._pump(client_r, engine_w, half_close=True), self._pump(engine_r, client_w))
        for writer in (engine_w, client_w):
            writer.close()

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, half_close: bool = False) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            if half_close and dst.can_write_eof():
                dst.write_eof()  # a client done sending still reads the engine's answer
            else:
                dst.close()
        except OSError:
            dst.close()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _signed(pki: Path, name: str, ca: str, subject: str, extensions: str) -> None:
    """``NAME.pem`` and ``NAME-key.pem``, signed by ``CA.pem``."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", pki / f"{name}-key.pem", "-subj", subject,
             "-out", pki / f"{name}.csr")  # fmt: skip
    (pki / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", pki / f"{name}.csr", "-CA", pki / f"{ca}.pem", "-CAkey", pki / f"{ca}-key.pem",
        "-CAcreateserial", "-days", "2", "-extfile", pki / f"{name}.ext", "-out", pki / f"{name}.pem",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki() -> Iterator[Path]:
    """The engine's CA, its server certificate (IP:127.0.0.1) and a client certificate;
    and another CA with a client certificate of its own (a stranger's)."""
    pki = Path(tempfile.mkdtemp(prefix="rt-pki-"))
    try:
        for ca in ("ca", "other-ca"):
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=rtbuild test {ca}",
                     "-keyout", pki / f"{ca}-key.pem", "-out", pki / f"{ca}.pem")  # fmt: skip
        _signed(pki, "server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        _signed(pki, "client", "ca", "/CN=rtbuild client", "extendedKeyUsage=clientAuth\n")
        _signed(pki, "stranger", "other-ca", "/CN=stranger", "extendedKeyUsage=clientAuth\n")
        yield pki
    finally:
        shutil.rmtree(pki, ignore_errors=True)


@pytest.fixture(scope="module")
def forwarder(pki: Path, docker_engine: str) -> Iterator[TLSForwarder]:
    served = TLSForwarder(pki / "ca.pem", pki / "server.pem", pki / "server-key.pem")
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def docker_config(docker_engine: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rt-dockercfg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _docker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "RTBUILD_"))}
    return subprocess.run(
        [DOCKER, *args], env={**env, "DOCKER_CONFIG": str(config)}, capture_output=True, text=True, timeout=120
    )


def _create_context(config: Path, name: str, host: str, **files: Path | str) -> None:
    """``docker context create NAME --docker host=HOST,ca=...,cert=...,key=...``, the real CLI."""
    spec = ",".join([f"host={host}", *(f"{key}={value}" for key, value in files.items())])
    proc = _docker(config, "context", "create", name, "--docker", spec)
    assert proc.returncode == 0, proc.stderr


def _env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "RTBUILD_"))}
    # A CA bundle for everything else (as behind a TLS-intercepting proxy): requests would
    # let it replace the engine's CA (psf/requests#3829); the engine's CA must win.
    bundle = {"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
    return {**env, **bundle, "DOCKER_CONFIG": str(config), **extra}


def _rtbuild(config: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([h.RTBUILD, *args], env=_env(config, **extra), capture_output=True, text=True, timeout=600)


def _agents(forwarder: TLSForwarder, since: int) -> list[str]:
    return forwarder.seen()[since:]


def test_build_noop_exists_and_prune_through_a_tls_context(
    images: h.Images, context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path
) -> None:
    _create_context(
        docker_config, "rt-tls", forwarder.host, ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client-key.pem"
    )
    assert _docker(docker_config, "context", "use", "rt-tls").returncode == 0
    tag, seen = images.tag("1"), len(forwarder.seen())

    # Before: a ConfigError (exit 2), "connects with TLS, which rtbuild reads from the environment only".
    first = _rtbuild(docker_config, "build", str(context), "-t", tag, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["cached"] is False
    agents = _agents(forwarder, seen)
    assert any(a.startswith(SDK_AGENT) for a in agents), agents  # rtbuild's checks, over TLS
    assert any(a.startswith(CLI_AGENT) for a in agents), agents  # the CLI's build, over TLS
    built = h.inspect(images.cli, tag)  # on the engine behind the forwarder
    assert built is not None
    assert built["Config"]["Labels"]["org.rtbuild.input-digest"]

    seen = len(forwarder.seen())
    again = _rtbuild(docker_config, "build", str(context), "-t", tag, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is True
    agents = _agents(forwarder, seen)
    assert agents and all(a.startswith(SDK_AGENT) for a in agents), agents  # the no-op check asked over TLS

    seen = len(forwarder.seen())
    assert _rtbuild(docker_config, "exists", tag, "--no-pull").returncode == 0
    absent = _rtbuild(docker_config, "exists", f"{images.repo}:absent", "--no-pull")
    assert absent.returncode == 1, absent.stderr
    assert len(_agents(forwarder, seen)) >= 2

    # Prune over TLS (before: "rtbuild prune talks to the engine over a plain socket").
    fresh = f"GREETING={uuid.uuid4().hex}"  # not in BuildKit's cache: the newest image
    newer = _rtbuild(docker_config, "build", str(context), "-t", images.tag("2"), "--build-arg", fresh)
    assert newer.returncode == 0, newer.stderr
    seen = len(forwarder.seen())
    pruned = _rtbuild(docker_config, "prune", "--keep", "1", "--repo", images.repo, "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert [(i["name"], i["removed"]) for i in json.loads(pruned.stdout)["items"]] == [(tag, True)]
    assert h.inspect(images.cli, tag) is None
    assert h.inspect(images.cli, images.tag("2")) is not None
    assert _agents(forwarder, seen)


@pytest.mark.parametrize("verify", ["1", "0"])
def test_the_same_tls_from_the_environment(
    images: h.Images, context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path, verify: str
) -> None:
    """Any DOCKER_TLS_VERIFY value but the empty one means TLS, verified, to the docker CLI
    (and the SDK): `0` included, so rtbuild's own calls must not go plain HTTP then."""
    certs = docker_config / "certs"
    certs.mkdir()
    for source, target in (("ca", "ca"), ("client", "cert"), ("client-key", "key")):
        shutil.copy(pki / f"{source}.pem", certs / f"{target}.pem")
    tls = {"DOCKER_HOST": forwarder.host, "DOCKER_TLS_VERIFY": verify, "DOCKER_CERT_PATH": str(certs)}
    seen = len(forwarder.seen())
    built = _rtbuild(docker_config, "build", str(context), "-t", images.tag(), "--json", **tls)
    assert built.returncode == 0, built.stderr
    assert _rtbuild(docker_config, "build", str(context), "-t", images.tag(), "--json", **tls).returncode == 0
    agents = _agents(forwarder, seen)
    assert any(a.startswith(CLI_AGENT) for a in agents) and any(a.startswith(SDK_AGENT) for a in agents), agents


def test_a_configured_docker_host_takes_the_environments_tls_as_the_cli_does(
    images: h.Images, context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path
) -> None:
    """`[builders.docker] docker_host` with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH in the
    environment (and DOCKER_HOST unset): the docker CLI child speaks TLS to that host, so
    rtbuild's own calls must too. Before, the SDK went plain HTTP to the TLS port unless the
    host was also $DOCKER_HOST, and the no-op check failed against a build that worked."""
    certs = docker_config / "certs"
    certs.mkdir()
    for source, target in (("ca", "ca"), ("client", "cert"), ("client-key", "key")):
        shutil.copy(pki / f"{source}.pem", certs / f"{target}.pem")
    config = docker_config / "rtbuild.toml"
    config.write_text(f'[builders.docker]\ndocker_host = "{forwarder.host}"\n')
    tls = {"RTBUILD_CONFIG": str(config), "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
    seen = len(forwarder.seen())
    built = _rtbuild(docker_config, "build", str(context), "-t", images.tag(), "--json", **tls)
    assert built.returncode == 0, built.stderr
    again = _rtbuild(docker_config, "build", str(context), "-t", images.tag(), "--json", **tls)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is True
    assert _rtbuild(docker_config, "exists", images.tag(), "--no-pull", **tls).returncode == 0
    agents = _agents(forwarder, seen)
    assert any(a.startswith(CLI_AGENT) for a in agents) and any(a.startswith(SDK_AGENT) for a in agents), agents
    assert h.inspect(images.cli, images.tag()) is not None  # on the engine behind the forwarder


def test_the_cli_gets_the_context_tls_as_its_variables(
    context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create_context(
        docker_config, "rt-tls", forwarder.host, ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client-key.pem"
    )
    tls_dir = next((docker_config / "contexts" / "tls").glob("*/docker"))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-tls")
    monkeypatch.setenv("DOCKER_TLS", "1")  # the environment's, which the context overrides
    plan = DockerBuilder().plan(BuildRequest(path=str(context), tags=["rt-test/plan:1"]))
    assert f"DOCKER_HOST={forwarder.host}" in plan
    assert f"DOCKER_CERT_PATH={tls_dir}" in plan
    assert "DOCKER_TLS_VERIFY=1" in plan
    assert "DOCKER_TLS=''" in plan


def test_skip_tls_verify_talks_tls_without_checking_the_engine(
    images: h.Images, context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path
) -> None:
    # The other CA cannot verify the forwarder's certificate: only SkipTLSVerify lets it by.
    _create_context(
        docker_config, "rt-tls-skip", forwarder.host,
        ca=pki / "other-ca.pem", cert=pki / "client.pem", key=pki / "client-key.pem", **{"skip-tls-verify": "true"},
    )  # fmt: skip
    seen = len(forwarder.seen())
    built = _rtbuild(docker_config, "build", str(context), "-t", images.tag(), "--json", DOCKER_CONTEXT="rt-tls-skip")
    assert built.returncode == 0, built.stderr
    agents = _agents(forwarder, seen)
    assert any(a.startswith(CLI_AGENT) for a in agents) and any(a.startswith(SDK_AGENT) for a in agents), agents


@pytest.mark.parametrize(
    ("name", "files", "refused_by"),
    [
        # The client cannot verify the engine: the forwarder's certificate is not from this CA.
        ("rt-tls-other-ca", {"ca": "other-ca.pem", "cert": "client.pem", "key": "client-key.pem"}, "client"),
        # The engine refuses a client certificate from another CA, and a client without one.
        ("rt-tls-stranger", {"ca": "ca.pem", "cert": "stranger.pem", "key": "stranger-key.pem"}, "engine"),
        ("rt-tls-no-cert", {"ca": "ca.pem"}, "engine"),
    ],
)
def test_wrong_certificates_are_an_unavailable_engine_with_a_hint(
    context: Path,
    pki: Path,
    forwarder: TLSForwarder,
    docker_config: Path,
    name: str,
    files: dict[str, str],
    refused_by: str,
) -> None:
    _create_context(docker_config, name, forwarder.host, **{key: pki / f for key, f in files.items()})
    refused = forwarder.refused
    proc = _rtbuild(docker_config, "exists", "busybox:latest", "--no-pull", DOCKER_CONTEXT=name)
    assert proc.returncode == 3, proc.stderr  # could not tell
    assert "Traceback" not in proc.stderr
    assert f"cannot reach the Docker engine at {forwarder.host} (docker context '{name}'" in proc.stderr
    assert "ca.pem must have signed the engine's certificate" in proc.stderr  # the hint
    if refused_by == "client":
        assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    assert forwarder.refused > refused  # no TLS session was ever established

    built = _rtbuild(docker_config, "build", str(context), "-t", "rt-test/never:1", "--json", DOCKER_CONTEXT=name)
    assert built.returncode == 1, built.stderr
    error: dict[str, Any] = json.loads(built.stdout)
    assert error["error"] == "EngineUnavailableError"
    assert forwarder.host in error["message"]


def test_a_tls_context_without_its_ca_is_a_configuration_error(
    context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path
) -> None:
    # The CLI would verify against the system's roots, which DOCKER_CERT_PATH cannot say.
    _create_context(docker_config, "rt-tls-no-ca", forwarder.host, cert=pki / "client.pem", key=pki / "client-key.pem")
    seen = len(forwarder.seen())
    proc = _rtbuild(docker_config, "exists", "busybox:latest", "--no-pull", DOCKER_CONTEXT="rt-tls-no-ca")
    assert proc.returncode == 2, proc.stderr
    assert "docker context 'rt-tls-no-ca' (DOCKER_CONTEXT) connects with TLS but has no ca.pem" in proc.stderr
    assert "docker context update rt-tls-no-ca" in proc.stderr
    assert forwarder.seen()[seen:] == []  # nothing was sent, least of all in plain HTTP


@pytest.mark.registry
def test_push_and_pull_through_a_tls_context(
    images: h.Images, context: Path, pki: Path, forwarder: TLSForwarder, docker_config: Path, registry: Any
) -> None:
    _create_context(
        docker_config, "rt-tls", forwarder.host, ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client-key.pem"
    )
    image = f"{registry.host}/rt-test/tls-context:{uuid.uuid4().hex[:10]}"
    try:
        pushed = _rtbuild(docker_config, "build", str(context), "-t", image, "--push", DOCKER_CONTEXT="rt-tls")
        assert pushed.returncode == 0, pushed.stderr
        h.docker(images.cli, "image", "rm", image)
        seen = len(forwarder.seen())
        pulled = _rtbuild(docker_config, "exists", image, "--pull", DOCKER_CONTEXT="rt-tls")
        assert pulled.returncode == 0, pulled.stderr
        assert h.inspect(images.cli, image) is not None  # pulled onto the engine behind the forwarder
        assert any(a.startswith(SDK_AGENT) for a in _agents(forwarder, seen))
    finally:
        h.docker(images.cli, "image", "rm", image, check=False)
