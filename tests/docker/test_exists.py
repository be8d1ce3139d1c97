"""``image_exists`` / ``rtbuild exists`` on the real dockerd and real docker-registry.

Scenarios: local, remote-only (pushed, then removed locally), missing, pull on demand
through the real CLI, a registry with htpasswd auth, an unreachable registry, engine down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _registry_support import (
    ImageTags,
    RecordingReporter,
    closed_port,
    docker,
    docker_config,
    local_image_id,
    run_cli,
    scratch_images,
)
from rtbuild._framework.progress import use_reporter
from rtbuild.errors import EngineUnavailableError, InvalidReferenceError, RegistryAuthError, RegistryError
from rtbuild_docker.images import image_exists, push_image

__all__ = ["scratch_images"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def _remote_only(images: ImageTags, host: str) -> str:
    """An image that only the registry has: tag busybox, push it, untag it locally."""
    image = images.tag(host)
    push_image(image)
    docker("rmi", image)
    assert local_image_id(image) is None
    return image


def test_local_image_exists_without_the_registry(scratch_images: ImageTags) -> None:
    # The registry named in the tag does not even run: a local image needs no registry.
    image = scratch_images.tag(f"127.0.0.1:{closed_port()}")
    assert image_exists(image, pull_from_repo=False) is True
    assert image_exists(image, pull_from_repo=True) is True
    assert image_exists("busybox", pull_from_repo=False) is True  # docker.io/library/busybox:latest
    image_id = local_image_id("busybox:latest")
    assert image_id is not None
    assert image_exists(image_id, pull_from_repo=True) is True


def test_remote_only_image_is_pulled_on_demand(scratch_images: ImageTags, registry: Any) -> None:
    # A layer no local image shares, so the engine really downloads it.
    image = scratch_images.unique(registry.host)
    image_id = local_image_id(image)
    push_image(image)
    docker("rmi", image)
    assert local_image_id(image) is None
    assert image_exists(image, pull_from_repo=False) is False
    assert local_image_id(image) is None  # --no-pull never pulls
    reporter = RecordingReporter()
    with use_reporter(reporter):
        assert image_exists(image, pull_from_repo=True) is True
    assert local_image_id(image) == image_id
    assert "pull_started" in reporter.kinds()
    assert "pulled" in reporter.kinds()
    assert any(source == "pull" and "Pulling from rt-test/unique" in text for source, text in reporter.lines)
    layer_statuses = [fields["status"] for kind, fields in reporter.events if kind == "pull_progress"]
    assert "Pull complete" in layer_statuses


def test_missing_image_is_false_without_noise(scratch_images: ImageTags, registry: Any) -> None:
    image = scratch_images.name(registry.host, "rt-test/never-pushed")
    reporter = RecordingReporter()
    with use_reporter(reporter):
        assert image_exists(image, pull_from_repo=True) is False
        assert image_exists(image, pull_from_repo=False) is False
    assert local_image_id(image) is None
    assert reporter.lines == []  # no pull was attempted
    assert reporter.kinds() == ["not_found"]
    # A missing tag of a repository that exists is missing too.
    pushed = _remote_only(scratch_images, registry.host)
    other_tag = pushed.rsplit(":", 1)[0] + ":other"
    assert image_exists(other_tag, pull_from_repo=True) is False


def test_cli_exists_pull_no_pull_and_absent(scratch_images: ImageTags, registry: Any, tmp_path: Path) -> None:
    """The issue's acceptance check, through the installed ``rtbuild`` console script."""
    image = _remote_only(scratch_images, registry.host)
    cfg = tmp_path / "docker-config"
    cfg.mkdir()

    no_pull = run_cli("exists", image, "--no-pull", cwd=tmp_path, docker_config_dir=cfg)
    assert no_pull.returncode == 1, no_pull.stderr
    assert "not found" in no_pull.stderr
    assert local_image_id(image) is None

    pulled = run_cli("exists", image, "--pull", cwd=tmp_path, docker_config_dir=cfg)
    assert pulled.returncode == 0, pulled.stderr
    assert "available" in pulled.stderr
    assert local_image_id(image) is not None

    absent = scratch_images.name(registry.host, "rt-test/absent")
    missing = run_cli("exists", absent, "--pull", cwd=tmp_path, docker_config_dir=cfg)
    assert missing.returncode == 1, missing.stderr
    assert "error" not in missing.stderr.lower()
    assert local_image_id(absent) is None


def test_cli_exists_json_streams_pull_events(scratch_images: ImageTags, registry: Any, tmp_path: Path) -> None:
    image = _remote_only(scratch_images, registry.host)
    proc = run_cli("exists", image, "--json", cwd=tmp_path, docker_config_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"image": image, "exists": True, "pull": True}
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    kinds = [event["event"] for event in events]
    assert "pull_started" in kinds
    assert "pulled" in kinds
    assert any(event["event"] == "log" and event["source"] == "pull" for event in events)


def test_cli_exists_json_names_the_platform_in_one_spelling(scratch_images: ImageTags, tmp_path: Path) -> None:
    """--json echoed --platform as typed ('Linux/ARM64/v8, linux/arm64'), not the platform asked about."""
    image = scratch_images.unique("127.0.0.1:5")  # local only: no registry is asked with --no-pull
    proc = run_cli(
        "exists", image, "--no-pull", "--json", "--platform", "Linux/ARM64/v8, linux/arm64",
        cwd=tmp_path, docker_config_dir=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # a local amd64 image
    assert json.loads(proc.stdout) == {"image": image, "exists": False, "pull": False, "platform": "linux/arm64"}


def test_auth_registry_needs_credentials_to_pull(scratch_images: ImageTags, auth_registry: Any, tmp_path: Path) -> None:
    creds = {auth_registry.host: (auth_registry.username, auth_registry.password)}
    good = docker_config(tmp_path / "good", creds)
    empty = tmp_path / "empty"
    empty.mkdir()
    image = scratch_images.tag(auth_registry.host, "rt-test/private")
    # Push with credentials (through the CLI-independent API), then forget it locally.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(good))
        push_image(image)
    docker("rmi", image)

    refused = run_cli("exists", image, "--pull", cwd=tmp_path, docker_config_dir=empty)
    assert refused.returncode == 3  # could not tell (docs/cli.md)
    assert f"registry {auth_registry.host} requires authentication" in refused.stderr
    assert f"docker login {auth_registry.host}" in refused.stderr  # the hint
    assert local_image_id(image) is None

    wrong = docker_config(tmp_path / "wrong", {auth_registry.host: (auth_registry.username, "not-the-password")})
    bad = run_cli("exists", image, "--pull", cwd=tmp_path, docker_config_dir=wrong)
    assert bad.returncode == 3
    assert "refused the credentials" in bad.stderr

    ok = run_cli("exists", image, "--pull", cwd=tmp_path, docker_config_dir=good)
    assert ok.returncode == 0, ok.stderr
    assert local_image_id(image) is not None

    absent = run_cli(
        "exists", f"{auth_registry.host}/rt-test/private:nope", "--pull", cwd=tmp_path, docker_config_dir=good
    )
    assert absent.returncode == 1
    assert "error" not in absent.stderr.lower()


def test_auth_errors_are_registry_auth_errors(
    scratch_images: ImageTags, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    image = scratch_images.name(auth_registry.host, "rt-test/private")
    with pytest.raises(RegistryAuthError) as info:
        image_exists(image, pull_from_repo=True)
    assert auth_registry.host in info.value.message
    assert info.value.exit_code == 1
    assert image_exists(image, pull_from_repo=False) is False  # no registry asked, no error


def test_unreachable_registry_is_an_error_naming_it(scratch_images: ImageTags, tmp_path: Path) -> None:
    host = f"127.0.0.1:{closed_port()}"
    image = scratch_images.name(host, "rt-test/img")
    with pytest.raises(RegistryError) as info:
        image_exists(image, pull_from_repo=True)
    assert host in info.value.message
    assert "unreachable" in info.value.message
    proc = run_cli("exists", image, cwd=tmp_path, docker_config_dir=tmp_path)
    assert proc.returncode == 3  # could not tell: `exists X || build` must not rebuild in an outage
    assert f"registry {host} is unreachable" in proc.stderr
    assert "hint:" in proc.stderr


def test_invalid_reference_is_a_usage_error(docker_engine: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidReferenceError):
        image_exists("127.0.0.1:5000/UPPER:1", pull_from_repo=True)
    proc = run_cli("exists", "Not/A/Valid:ref!", cwd=tmp_path, docker_config_dir=tmp_path)
    assert proc.returncode == 2
    assert "invalid image reference" in proc.stderr


def test_engine_down_names_docker_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"unix://{tmp_path}/no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(EngineUnavailableError) as info:
        image_exists("busybox:latest", pull_from_repo=False)
    assert host in info.value.message
    assert "DOCKER_HOST" in info.value.message
    assert info.value.hint and "dockerd" in info.value.hint
    proc = run_cli(
        "exists", "busybox:latest", cwd=tmp_path, docker_config_dir=tmp_path, extra_env={"DOCKER_HOST": host}
    )
    assert proc.returncode == 3
    assert host in proc.stderr


def test_pull_by_digest(scratch_images: ImageTags, registry: Any) -> None:
    image = scratch_images.unique(registry.host)
    digest = push_image(image)
    assert digest is not None
    docker("rmi", image)
    pinned = image.rsplit(":", 1)[0] + "@" + digest
    scratch_images.made.append(pinned)
    assert image_exists(pinned, pull_from_repo=False) is False
    assert image_exists(pinned, pull_from_repo=True) is True
    assert local_image_id(pinned) is not None
    wrong = image.rsplit(":", 1)[0] + "@sha256:" + "0" * 64
    assert image_exists(wrong, pull_from_repo=True) is False
