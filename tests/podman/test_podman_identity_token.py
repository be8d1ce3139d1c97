"""A login that left only an identity token (``identitytoken`` in the docker config's
``auths``, as OAuth logins such as ``az acr login`` write it) works for the Podman builder:
a private base for ``podman build``, ``rtbuild exists`` (pull) and ``--push``.

The registry is a real docker-registry with token auth; its token server grants the
identity token only through the OAuth2 refresh-token exchange containers/image makes.
containers/image reads an ``identitytoken`` only beside an ``auth`` that decodes to a
``user:`` pair, so Podman's own lookup of the entry below finds nothing. Before the fix
rtbuild ignored credentials without a password: the base pull and the push failed with
"unauthorized", and ``rtbuild exists`` said the image was there (its own registry client
exchanged the token) and then failed to pull it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _podman_support import Names, isolated_env, podman, write_context
from _podman_token_registry import TokenRegistry, start_token_registry

pytestmark = [pytest.mark.engine, pytest.mark.registry]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    yield from start_token_registry(tmp_path_factory.mktemp("token-registry"))


def _env(tmp_path: Path, registry: TokenRegistry) -> dict[str, str]:
    """Only the identity token, in the docker config; Podman's own auth file empty."""
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"auths": {registry.host: {"identitytoken": registry.identity_token}}})
    )
    return isolated_env(tmp_path, DOCKER_CONFIG=str(config), REGISTRY_AUTH_FILE=str(tmp_path / "podman-auth.json"))


def _rtbuild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RTBUILD, *args], env=env, capture_output=True, text=True, timeout=300)


def test_identity_token_pulls_the_base_exists_and_pushes(
    names: Names, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    reg = token_registry
    base = reg.ref(names.new("rt-podman-test/token-base"))
    names.made.append(base)
    podman(
        "push",
        "--tls-verify=false",
        "--authfile",
        str(reg.setup_authfile(tmp_path / "setup-auth.json")),
        "docker.io/rtbuild/busybox:amd64",
        base,
    )
    podman("rmi", "-f", base, check=False)
    env = _env(tmp_path, reg)
    del reg.grants[:]

    # podman build pulls the private base with the token.
    ctx = write_context(tmp_path / "ctx", f"FROM {base}\nRUN echo built-with-token > /t && cat /t\n")
    image = names.new()
    built = _rtbuild(env, "build", str(ctx), "-t", image, "--builder", "podman", "--platform", "linux/amd64")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == image
    assert "built-with-token" in built.stderr
    refreshed = [g for g in reg.grants if g["method"] == "POST" and g["grant"] == "refresh_token"]
    assert refreshed and all(g["granted"] for g in refreshed), reg.grants

    # exists: not local, the registry has it, podman pulls it.
    podman("rmi", "-f", base, check=False)
    found = _rtbuild(env, "exists", base, "--builder", "podman")
    assert found.returncode == 0, found.stderr
    assert podman("image", "exists", base, check=False).returncode == 0

    # --push to the token registry.
    pushed = reg.ref(names.new("rt-podman-test/token-pushed"))
    names.made.append(pushed)
    del reg.grants[:]
    result = _rtbuild(env, "build", str(ctx), "-t", pushed, "--builder", "podman", "--push", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["image"] == pushed
    assert any("push" in ",".join(g["scopes"]) and g["granted"] for g in reg.grants), reg.grants
    podman("rmi", "-f", pushed, check=False)
    assert podman("pull", "--tls-verify=false", "--authfile", str(tmp_path / "setup-auth.json"), pushed).returncode == 0

    # The token is a secret: in no output or log.
    for proc in (built, found, result):
        assert reg.identity_token not in proc.stdout + proc.stderr
    logs = list((tmp_path / "state").rglob("*.log"))
    assert logs and not any(reg.identity_token in log.read_text(errors="replace") for log in logs)
