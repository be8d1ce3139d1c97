"""What ``podman build``'s in-memory ``--authfile`` holds (no engine): rtbuild's credentials for
the build's registries, merged into Podman's own primary auth file; nothing at all when
rtbuild finds none Podman would not find itself, so Podman's lookup is unchanged."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from rtbuild_podman.auth import build_auth_document


def _pair(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker config dir, Podman's auth file path (absent), a PATH with one helper."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-unit"
    helper.write_text(
        '#!/bin/sh\nread server\ncase "$server" in\n'
        '  helped.test:5000) echo \'{"Username":"hu","Secret":"hs"}\';;\n'
        "  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n"
    )
    helper.chmod(0o700)
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "podman-auth.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path


def _docker_config(root: Path, doc: dict[str, object]) -> None:
    (root / "docker" / "config.json").write_text(json.dumps(doc))


def test_nothing_found_means_no_authfile(env: Path) -> None:
    warnings: list[str] = []
    assert build_auth_document(["docker.io", "plain.test:5000"], warnings.append) is None
    _docker_config(env, {"credsStore": "unit"})
    assert build_auth_document(["plain.test:5000"], warnings.append) is None  # the helper holds nothing
    assert warnings == []


def test_podmans_own_credentials_are_left_to_podman(env: Path) -> None:
    (env / "podman-auth.json").write_text(json.dumps({"auths": {"own.test": {"auth": _pair("o", "p")}}}))
    assert build_auth_document(["own.test"], lambda _: None) is None


def test_helper_and_auths_credentials_merged_into_podmans_file(env: Path) -> None:
    _docker_config(
        env,
        {
            "credsStore": "unit",
            "auths": {"fields.test": {"username": "fu", "password": "fp"}, "both.test": {"auth": _pair("b", "b")}},
        },
    )
    podman_doc = {
        "auths": {
            "own.test": {"auth": _pair("o", "p")},
            "https://kept.test/v1/": {"auth": _pair("k", "k")},
            "helped.test:5000": {},  # docker's placeholder beside a helper: no credential
        },
        "credHelpers": {"both.test": "podmans-own"},
    }
    (env / "podman-auth.json").write_text(json.dumps(podman_doc))
    registries = ["helped.test:5000", "fields.test", "both.test", "own.test", "helped.test:5000"]
    data = build_auth_document(registries, lambda _: None)
    assert data is not None
    doc = json.loads(data)
    # Podman's own entries and helpers stay (an --authfile replaces this file in its lookup).
    assert doc["credHelpers"] == {"both.test": "podmans-own"}
    assert doc["auths"]["own.test"] == {"auth": _pair("o", "p")}
    assert "https://kept.test/v1/" in doc["auths"]
    # What Podman cannot find itself is added: the credsStore helper's answer, and
    # username/password fields (containers/image reads only `auth`) ...
    assert doc["auths"]["helped.test:5000"] == {"auth": _pair("hu", "hs")}
    assert doc["auths"]["fields.test"] == {"auth": _pair("fu", "fp")}
    # ... but never over a helper Podman's own file names for the registry.
    assert "both.test" not in doc["auths"]


def test_a_failing_lookup_is_a_warning_not_a_failed_build(env: Path) -> None:
    _docker_config(env, {"credsStore": "not-installed"})
    warnings: list[str] = []
    assert build_auth_document(["private.test"], warnings.append) is None
    assert len(warnings) == 1 and "private.test" in warnings[0] and "podman looks them up itself" in warnings[0]


def test_identity_tokens_are_added_beside_a_user_pair(env: Path) -> None:
    """An identity token (an ``auths`` entry holding only ``identitytoken``, or a helper's
    ``<token>`` answer) reaches the document beside an ``auth`` of ``user:``: containers/
    image ignores a token without a pair that decodes (``Og==`` is ``:``)."""
    helper = env / "bin" / "docker-credential-tok"
    helper.write_text('#!/bin/sh\nread server\necho \'{"Username":"<token>","Secret":"helper-idt"}\'\n')
    helper.chmod(0o700)
    _docker_config(
        env,
        {
            "credHelpers": {"helped.test": "tok"},
            "auths": {
                "oauth.test": {"identitytoken": "only-idt"},
                "user.test": {"auth": _pair("u", ""), "identitytoken": "u-idt"},
            },
        },
    )
    data = build_auth_document(["oauth.test", "helped.test", "user.test"], lambda _: None)
    assert data is not None
    auths = json.loads(data)["auths"]
    assert auths["oauth.test"] == {"auth": "Og==", "identitytoken": "only-idt"}
    assert auths["helped.test"] == {"auth": "Og==", "identitytoken": "helper-idt"}
    assert auths["user.test"] == {"auth": _pair("u", ""), "identitytoken": "u-idt"}
