"""``push_image`` (and ``DockerBuilder.push``) against the real dockerd and docker-registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from _registry_support import ImageTags, RecordingReporter, closed_port, docker_config, run_cli, scratch_images
from rtbuild._framework.progress import use_reporter
from rtbuild.errors import PushError, RegistryAuthError
from rtbuild.oci._registry import manifest_exists
from rtbuild_docker.images import push_image

__all__ = ["scratch_images"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def test_push_to_a_plain_registry_streams_progress(scratch_images: ImageTags, registry: Any) -> None:
    image = scratch_images.unique(registry.host)
    assert manifest_exists(image) is False
    reporter = RecordingReporter()
    with use_reporter(reporter):
        digest = push_image(image)
    assert digest is not None
    assert digest.startswith("sha256:")
    assert manifest_exists(image) is True
    assert manifest_exists(image.rsplit(":", 1)[0] + "@" + digest) is True
    assert "push_started" in reporter.kinds()
    pushed = [fields for kind, fields in reporter.events if kind == "pushed"]
    assert pushed == [{"image": image, "digest": digest, "message": f"pushed {image}"}]
    statuses = [fields["status"] for kind, fields in reporter.events if kind == "push_progress"]
    assert "Pushed" in statuses
    assert any(source == "push" for source, _ in reporter.lines)


def test_push_without_credentials_is_refused_with_a_hint(
    scratch_images: ImageTags, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    image = scratch_images.tag(auth_registry.host, "rt-test/private")
    with pytest.raises(RegistryAuthError) as info:
        push_image(image)
    err = info.value
    assert auth_registry.host in err.message
    assert "refused the push" in err.message
    assert err.step == "push"
    assert err.hint and f"docker login {auth_registry.host}" in err.hint
    assert err.log_tail and err.log_tail[-1].startswith("ERROR:")
    assert err.exit_code == 1


def test_push_with_wrong_credentials_is_refused(
    scratch_images: ImageTags, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = docker_config(tmp_path / "wrong", {auth_registry.host: (auth_registry.username, "wrong-password")})
    monkeypatch.setenv("DOCKER_CONFIG", str(wrong))
    with pytest.raises(RegistryAuthError) as info:
        push_image(scratch_images.tag(auth_registry.host, "rt-test/private"))
    # The hint says the credentials found were refused (and where they came from); it told
    # the user to log in, as if there were none. Never the password itself.
    hint = info.value.hint or ""
    assert f"from {wrong / 'config.json'} were sent and refused" in hint
    assert f"docker login {auth_registry.host}" in hint
    assert "wrong-password" not in json.dumps(info.value.to_dict()) + info.value.render()


def test_push_with_credentials_from_docker_config(
    scratch_images: ImageTags, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = docker_config(tmp_path / "good", {auth_registry.host: (auth_registry.username, auth_registry.password)})
    monkeypatch.setenv("DOCKER_CONFIG", str(good))
    image = scratch_images.tag(auth_registry.host, "rt-test/private")
    digest = push_image(image)
    assert digest is not None
    assert manifest_exists(image) is True  # read back with the same credentials


def test_push_of_an_image_that_is_not_local(scratch_images: ImageTags, registry: Any) -> None:
    image = scratch_images.name(registry.host, "rt-test/not-built")
    with pytest.raises(PushError) as info:
        push_image(image)
    assert not isinstance(info.value, RegistryAuthError)
    assert info.value.hint and "build or tag" in info.value.hint


def test_push_to_an_unreachable_registry(scratch_images: ImageTags) -> None:
    host = f"127.0.0.1:{closed_port()}"
    image = scratch_images.tag(host)
    with pytest.raises(PushError) as info:
        push_image(image)
    assert f"registry {host} is unreachable" in info.value.message
    assert info.value.hint and host in info.value.hint


def test_docker_builder_push_delegates(scratch_images: ImageTags, registry: Any) -> None:
    from rtbuild_docker.builder import DockerBuilder

    image = scratch_images.tag(registry.host)
    DockerBuilder().push(image)
    assert manifest_exists(image) is True
    assert DockerBuilder().image_exists(image, pull_from_repo=False) is True


def test_digest_reference_cannot_be_pushed(docker_engine: str) -> None:
    with pytest.raises(PushError, match="digest"):
        push_image("127.0.0.1:5000/rt-test/x@sha256:" + "a" * 64)


def test_cli_build_push_to_the_auth_registry(scratch_images: ImageTags, auth_registry: Any, tmp_path: Path) -> None:
    """``rtbuild build --push`` end to end: refused without credentials, pushed with them."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN echo registry-side > /rt.txt\n")
    image = scratch_images.name(auth_registry.host, "rt-test/built")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cli("build", str(context), "-t", image, "--push", cwd=tmp_path, docker_config_dir=empty)
    assert refused.returncode == 1
    assert f"registry {auth_registry.host} refused the push" in refused.stderr
    assert f"docker login {auth_registry.host}" in refused.stderr

    good = docker_config(tmp_path / "good", {auth_registry.host: (auth_registry.username, auth_registry.password)})
    pushed = run_cli("build", str(context), "-t", image, "--push", cwd=tmp_path, docker_config_dir=good)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == image
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(good))
        assert manifest_exists(image) is True


def test_push_and_check_with_a_credential_helper(
    scratch_images: ImageTags, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``credsStore`` in config.json: rtbuild runs ``docker-credential-NAME get`` for the secret."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-rttest"
    secret = {"ServerURL": auth_registry.host, "Username": auth_registry.username, "Secret": auth_registry.password}
    answer = json.dumps(secret)
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'if [ "$1" = get ] && [ "$server" = "{auth_registry.host}" ]; then echo \'{answer}\'; exit 0; fi\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "rttest"}))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    image = scratch_images.tag(auth_registry.host, "rt-test/helper")
    assert push_image(image) is not None
    assert manifest_exists(image) is True
