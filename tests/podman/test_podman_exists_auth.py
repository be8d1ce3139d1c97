"""``rtbuild exists`` answers as a Podman user reads them: credentials, ``localhost/`` names."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names
from rtbuild import RegistryAuthError, RegistryError
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def test_no_or_refused_credentials_name_podmans_auth_files_and_podman_login(
    builder: PodmanBuilder, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rtbuild reads Podman's auth files before the docker config, but the error named only
    ``~/.docker/config.json`` and told to run ``docker login``; credentials from a Podman
    auth file that the registry refused were to be checked with ``docker login`` too."""
    image = auth_registry.ref("rt-podman-test/any:1")
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {}}))
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text("{}")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with pytest.raises(RegistryAuthError) as none:
        builder.image_exists(image)
    assert str(auth) in none.value.message and str(tmp_path / "docker") in none.value.message
    assert none.value.hint and f"podman login {auth_registry.host}" in none.value.hint

    pair = base64.b64encode(f"{auth_registry.username}:not-the-password".encode()).decode()
    auth.write_text(json.dumps({"auths": {auth_registry.host: {"auth": pair}}}))
    with pytest.raises(RegistryAuthError) as refused:
        builder.image_exists(image)
    assert "refused the credentials" in refused.value.message and str(auth) in refused.value.message
    assert refused.value.hint and f"podman login {auth_registry.host}" in refused.value.hint


def test_a_localhost_name_absent_from_storage_is_absent(builder: PodmanBuilder, names: Names) -> None:
    """``localhost/NAME`` is what Podman calls an image built as ``-t NAME``. Removed from
    storage, ``rtbuild exists`` asked a registry at https://localhost and answered 'could not
    tell' (exit 3: 'check that the registry localhost is running'); it is absent (exit 1).
    A registry on a localhost port is still asked."""
    tag = names.new("localhost/rt-podman-test/gone")
    assert builder.image_exists(tag) is False
    with pytest.raises(RegistryError):
        builder.image_exists(f"localhost:{_closed_port()}/rt-podman-test/gone:1")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
