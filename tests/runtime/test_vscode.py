"""rtbuild-vscode: the host-side download (verified, cached, reported), its settings and
errors, the rendered requirements, and real-engine builds on busybox that install a fake
openvscode-server release served from 127.0.0.1 and run it in a container."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rtbuild
import rtbuild_vscode.plugin as vscode_plugin
from rtbuild import Config
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.errors import BuildFailedError, ChecksumMismatchError, ConfigError, DownloadError
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._select import compose_runtime
from rtbuild_vscode.download import fetch_verified
from rtbuild_vscode.plugin import (
    ARCHIVE_PATH,
    DEFAULT_INSTALL_DIR,
    ENV_SHA256,
    ENV_URL,
    LAUNCHER_PATH,
    VSCodePlugin,
    VSCodeSettings,
)

FAKE_VERSION = "1.2.3-rtbuild-fake"
TOP_DIR = f"openvscode-server-v{FAKE_VERSION}-linux-x64"

# A POSIX sh stand-in for the real server: prints its version, or its arguments.
FAKE_SERVER = f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "{FAKE_VERSION}"; exit 0; fi
echo "fake openvscode-server args: $*"
"""


def make_archive(path: Path, *, top: str = TOP_DIR, script: str = FAKE_SERVER) -> str:
    """Write a release-like .tar.gz (``TOP/bin/openvscode-server`` + a file); return its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data, mode in (
            (f"{top}/bin/openvscode-server", script.encode(), 0o755),
            (f"{top}/product.json", b'{"nameShort": "fake"}\n', 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class FileServer:
    url: str  # http://127.0.0.1:PORT
    requests: list[str] = field(default_factory=list)

    def count(self, name: str) -> int:
        return sum(1 for path in self.requests if path.endswith(name))


@contextmanager
def serve_directory(root: Path) -> Iterator[FileServer]:
    """Serve ``root`` over HTTP on 127.0.0.1 (a free port) in a thread."""
    server_info = FileServer(url="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            server_info.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_info.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# --- fixtures ---------------------------------------------------------------------------


@dataclass
class Release:
    url: str
    sha256: str
    path: Path
    server: FileServer


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated download cache; no vscode settings leak in from the environment."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_SHA256, raising=False)
    return tmp_path / "xdg-cache" / "rtbuild" / "downloads"


@pytest.fixture
def release(tmp_path: Path, cache: Path) -> Iterator[Release]:
    root = tmp_path / "www"
    root.mkdir()
    archive = root / "openvscode-server.tar.gz"
    sha256 = make_archive(archive)
    with serve_directory(root) as server:
        yield Release(f"{server.url}/openvscode-server.tar.gz", sha256, archive, server)


def vscode_config(url: str, sha256: str | None, **extra: Any) -> Config:
    table: dict[str, Any] = {"url": url, **extra}
    if sha256 is not None:
        table["sha256"] = sha256
    return Config(plugins={"vscode": table})


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def _cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) if cache.exists() else []


# --- download: verify, cache, report ----------------------------------------------------


def test_download_is_verified_cached_and_reported(release: Release, cache: Path) -> None:
    reporter = RecordingReporter()
    with use_reporter(reporter):
        first = fetch_verified(release.url, release.sha256)
    assert first == cache / release.sha256
    assert first.read_bytes() == release.path.read_bytes()
    kinds = [kind for kind, _ in reporter.events]
    assert kinds[0] == "download_started" and kinds[-1] == "download_finished"
    assert reporter.events[-1][1]["bytes"] == release.path.stat().st_size
    # Second time: served from the cache, the server is not asked again.
    assert fetch_verified(release.url, f"sha256:{release.sha256.upper()}") == first
    assert release.server.count("openvscode-server.tar.gz") == 1
    assert _cache_entries(cache) == [release.sha256]


def test_wrong_checksum_is_a_clear_error_and_caches_nothing(release: Release, cache: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch_verified(release.url, wrong)
    err = caught.value
    assert isinstance(err, rtbuild.AgentRuntimeBuildError) and err.exit_code == 1
    assert release.url in err.message and wrong in err.message and release.sha256 in err.message
    assert err.step == "verify download" and err.hint and "sha256" in err.hint
    assert _cache_entries(cache) == []  # neither the bad file nor a .part leftover


def test_corrupted_cache_entry_is_downloaded_again(release: Release, cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / release.sha256).write_bytes(b"truncated")
    path = fetch_verified(release.url, release.sha256)
    assert path.read_bytes() == release.path.read_bytes()
    assert release.server.count("openvscode-server.tar.gz") == 1


def test_concurrent_requests_download_once(release: Release) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetch_verified(release.url, release.sha256))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert release.server.count("openvscode-server.tar.gz") == 1


def test_http_404_is_a_download_error(release: Release) -> None:
    url = release.url.replace("openvscode-server.tar.gz", "missing.tar.gz")
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        fetch_verified(url, release.sha256)
    assert url in caught.value.message and caught.value.hint


def test_unreachable_url_is_a_download_error(cache: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/openvscode-server.tar.gz"
    with pytest.raises(DownloadError, match="cannot download") as caught:
        fetch_verified(url, "a" * 64)
    assert url in caught.value.message and caught.value.step == "download"
    assert not isinstance(caught.value, ChecksumMismatchError)


def test_file_url_is_supported(release: Release) -> None:
    path = fetch_verified(release.path.as_uri(), release.sha256)
    assert path.read_bytes() == release.path.read_bytes()
    assert release.server.count("openvscode-server.tar.gz") == 0


def test_unsupported_scheme_and_bad_digest_are_config_errors(cache: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported URL"):
        fetch_verified("ftp://127.0.0.1/x.tar.gz", "a" * 64)
    with pytest.raises(ConfigError, match="not a sha256 digest"):
        fetch_verified("http://127.0.0.1/x.tar.gz", "abc123")


# --- settings ---------------------------------------------------------------------------


def test_missing_url_names_the_setting(cache: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        VSCodeSettings.from_config(Config(), env={})
    assert ENV_URL in (caught.value.hint or "") and "[plugins.vscode]" in (caught.value.hint or "")


def test_missing_sha256_names_url_and_how_to_get_the_digest(release: Release) -> None:
    # Reading settings never downloads: the hint says how to see the served digest instead.
    with pytest.raises(ConfigError) as caught:
        VSCodeSettings.from_config(vscode_config(release.url, None), env={})
    err = caught.value
    assert release.url in err.message and "no sha256 configured" in err.message
    assert f"curl -sL {release.url} | sha256sum" in (err.hint or "")
    assert release.sha256 not in err.render()
    assert err.exit_code == 2


def test_environment_wins_over_the_file(release: Release) -> None:
    env = {ENV_URL: release.url, ENV_SHA256: release.sha256}
    settings = VSCodeSettings.from_config(vscode_config("http://127.0.0.1:1/other.tar.gz", "b" * 64), env=env)
    assert (settings.url, settings.sha256) == (release.url, release.sha256)
    assert (settings.install_dir, settings.port) == (DEFAULT_INSTALL_DIR, 3000)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"install_dir": "relative/dir"}, "not a plain absolute path"),
        ({"install_dir": "/opt/x; rm -rf /"}, "not a plain absolute path"),
        ({"install_dir": "/opt/.."}, "not a plain absolute path"),
        ({"install_dir": "/"}, "not a plain absolute path"),
        ({"port": 70000}, "not a TCP port"),
        ({"port": True}, "expected an integer"),
        ({"prot": 3000}, "unknown key"),
    ],
)
def test_invalid_settings(extra: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        VSCodeSettings.from_config(vscode_config("http://127.0.0.1/x.tar.gz", "a" * 64, **extra), env={})


# --- requirements and rendering (no engine) ---------------------------------------------


def _pm(config: Config) -> Any:
    return rtbuild.get_plugin_manager(config, load_entrypoints=False, extra_plugins=[vscode_plugin])


def test_requirements_carry_the_verified_archive(release: Release, cache: Path) -> None:
    config = vscode_config(release.url, release.sha256, install_dir="/srv/code", port=4111)
    req = VSCodePlugin().requirements(config)
    assert req.dependency_files == {ARCHIVE_PATH: cache / release.sha256}
    assert "/srv/code" in req.dockerfile and ARCHIVE_PATH in req.dockerfile
    assert req.env == {"OPENVSCODE_SERVER_ROOT": "/srv/code"}
    launcher = req.files[LAUNCHER_PATH]
    assert isinstance(launcher, str) and launcher.startswith("#!/bin/sh")
    assert "/srv/code/bin/openvscode-server" in launcher and "4111" in launcher
    assert "EXPOSE 4111" in req.source_dockerfile
    assert req.labels["org.rtbuild.vscode.sha256"] == release.sha256


def test_port_changes_only_the_source_hash(release: Release) -> None:
    a = vscode_config(release.url, release.sha256, port=3000)
    b = vscode_config(release.url, release.sha256, port=3001)
    ca = compose_runtime(a, "busybox:latest", ["vscode"], pm=_pm(a))
    cb = compose_runtime(b, "busybox:latest", ["vscode"], pm=_pm(b))
    assert ca.lock_hash == cb.lock_hash and ca.source_hash != cb.source_hash
    archive = next(f for f in ca.deps.files if f.content == release.path.read_bytes())
    group, _, base = archive.name.rpartition("/")
    assert base == ARCHIVE_PATH.rsplit("/", 1)[1]
    assert f'COPY ["{group}/", "{ARCHIVE_PATH.rsplit("/", 1)[0]}/"]' in ca.deps.dockerfile


def test_new_archive_changes_the_lock_hash(release: Release, tmp_path: Path) -> None:
    other = tmp_path / "www" / "other.tar.gz"
    other_sha = make_archive(other, script=FAKE_SERVER + "# v2\n")
    a = vscode_config(release.url, release.sha256)
    b = vscode_config(f"{release.server.url}/other.tar.gz", other_sha)
    assert (
        compose_runtime(a, "busybox:latest", ["vscode"], pm=_pm(a)).lock_hash
        != compose_runtime(b, "busybox:latest", ["vscode"], pm=_pm(b)).lock_hash
    )


def test_unselected_plugin_downloads_nothing(release: Release) -> None:
    config = vscode_config(release.url, "0" * 64)  # would fail if requirements() ran
    without = compose_runtime(config, "busybox:latest", [], pm=_pm(config))
    assert release.server.requests == []
    assert without.plugins == []


def test_registered_as_entry_point() -> None:
    from importlib import metadata

    eps = {ep.name: ep.value for ep in metadata.entry_points(group="rtbuild.plugins")}
    assert eps.get("vscode") == "rtbuild_vscode.plugin"


# --- real engine ------------------------------------------------------------------------


def _docker(cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli, *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture
def repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique repository for this test's runtime images, removed afterwards."""
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    name = f"rtbuild-test/vscode-{uuid.uuid4().hex[:10]}"
    yield name
    ids = _docker(docker_engine, "images", "--format", "{{.Repository}}:{{.Tag}}", name, check=False).stdout.split()
    if ids:
        _docker(docker_engine, "rmi", "-f", *ids, check=False)


def _run_in(cli: str, image: str, script: str) -> str:
    return _docker(cli, "run", "--rm", image, "sh", "-c", script).stdout


@pytest.mark.engine
def test_engine_installs_and_runs_openvscode_server(docker_engine: str, release: Release, repo: str) -> None:
    config = vscode_config(release.url, release.sha256, port=3999)
    first = build_runtime_image(config, "busybox:latest", ["vscode"], repo=repo)
    assert first.details["runtime_tier"] == "scratch"
    out = _run_in(
        docker_engine,
        first.image,
        "/opt/openvscode-server/bin/openvscode-server --version;"
        " openvscode-server-start --without-connection-token;"
        ' echo "root=$OPENVSCODE_SERVER_ROOT";'
        " test -e /tmp/rtbuild-vscode || echo archive-removed",
    )
    assert FAKE_VERSION in out
    assert "args: --host 0.0.0.0 --port 3999 --without-connection-token" in out
    assert "root=/opt/openvscode-server" in out and "archive-removed" in out
    inspect = json.loads(_docker(docker_engine, "image", "inspect", first.image).stdout)[0]["Config"]
    assert "3999/tcp" in inspect["ExposedPorts"]
    assert inspect["Labels"]["org.rtbuild.vscode.sha256"] == release.sha256

    # Same inputs: the exact tag is reused, nothing is downloaded or built.
    again = build_runtime_image(config, "busybox:latest", ["vscode"], repo=repo)
    assert (again.image, again.details["runtime_tier"], again.cached) == (first.image, "exact", True)
    assert release.server.count("openvscode-server.tar.gz") == 1

    # A new port is a source-layer change: the installed server (lock layers) is reused.
    moved = build_runtime_image(
        vscode_config(release.url, release.sha256, port=4000), "busybox:latest", ["vscode"], repo=repo
    )
    assert moved.details["runtime_tier"] == "lock" and moved.image != first.image
    assert "--port 4000" in _run_in(docker_engine, moved.image, "openvscode-server-start")


def _cli_runtime(*args: str, config_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RTBUILD_CONFIG": str(config_file)}
    return subprocess.run(
        [sys.executable, "-m", "rtbuild", "runtime", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.engine
def test_engine_cli_on_debian_and_public_api(docker_engine: str, release: Release, repo: str, tmp_path: Path) -> None:
    toml = tmp_path / "rtbuild.toml"
    toml.write_text(f'[plugins.vscode]\nurl = "{release.url}"\nsha256 = "{release.sha256}"\n')
    proc = _cli_runtime("--base", "debian:bookworm", "--plugin", "vscode", "--repo", repo, "--json", config_file=toml)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["cached"] is False and result["details"]["runtime_tier"] == "scratch"
    out = _run_in(docker_engine, result["image"], '"$OPENVSCODE_SERVER_ROOT/bin/openvscode-server" --version')
    assert out.strip() == FAKE_VERSION
    # The Python API a runtime calls returns the same (now reused) image.
    config = rtbuild.load_config(toml, env={})
    assert rtbuild.get_runtime_image(config, "debian:bookworm", ["vscode"], repo=repo) == result["image"]


@pytest.mark.engine
def test_engine_wrong_checksum_fails_before_any_build(
    docker_engine: str, release: Release, repo: str, tmp_path: Path, cache: Path
) -> None:
    toml = tmp_path / "rtbuild.toml"
    toml.write_text(f'[plugins.vscode]\nurl = "{release.url}"\nsha256 = "{"f" * 64}"\n')
    proc = _cli_runtime("--base", "busybox:latest", "--plugin", "vscode", "--repo", repo, config_file=toml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "sha256 mismatch" in proc.stderr and release.url in proc.stderr
    assert "f" * 64 in proc.stderr and release.sha256 in proc.stderr and "hint:" in proc.stderr
    assert _docker(docker_engine, "images", "-q", repo).stdout.strip() == ""
    assert _cache_entries(cache) == []


@pytest.mark.engine
def test_engine_archive_without_server_fails_the_build_clearly(
    docker_engine: str, tmp_path: Path, cache: Path, repo: str
) -> None:
    root = tmp_path / "bad-www"
    root.mkdir()
    # A release-like archive whose top directory lacks bin/openvscode-server.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{TOP_DIR}/README")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    (root / "bad.tar.gz").write_bytes(buffer.getvalue())
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    with serve_directory(root) as server:
        config = vscode_config(f"{server.url}/bad.tar.gz", sha256)
        with pytest.raises(BuildFailedError) as caught:
            build_runtime_image(config, "busybox:latest", ["vscode"], repo=repo)
    text = caught.value.render()
    assert "the archive must hold one top directory" in text


# --- hostile or broken URLs and servers ---------------------------------------------------


def test_credentials_in_the_url_are_never_shown(release: Release, cache: Path) -> None:
    secret_url = release.url.replace("http://", "http://u:s3cretTOKEN@") + "?X-Amz-Signature=sig0nly"
    reporter = RecordingReporter()
    with use_reporter(reporter), pytest.raises(ChecksumMismatchError) as caught:
        fetch_verified(secret_url, "0" * 64)
    shown = caught.value.render() + repr(caught.value.to_dict()) + repr(reporter.events)
    assert "s3cretTOKEN" not in shown and "sig0nly" not in shown
    assert "***@127.0.0.1" in caught.value.message


def test_a_malformed_url_and_an_unusable_cache_are_config_errors(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(ConfigError, match="malformed"):
        fetch_verified("http://[::1/x", "0" * 64)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="for downloads"):
        fetch_verified("http://127.0.0.1:9/x", "0" * 64, cache=tmp_path / "afile" / "downloads")


def test_a_server_dripping_bytes_is_stopped_at_the_deadline(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each read gets a byte before the read timeout, so only an overall deadline ends it."""
    from rtbuild_vscode import download

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE_S", 1.0)
    started = time.monotonic()
    try:
        with pytest.raises(DownloadError, match="deadline"):
            fetch_verified(f"http://127.0.0.1:{httpd.server_address[1]}/a.tgz", "0" * 64)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert time.monotonic() - started < 8
    assert _cache_entries(cache) == []
