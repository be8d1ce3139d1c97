"""The image reference grammar (docker/distribution ``reference`` semantics)."""

from __future__ import annotations

import pytest
from rtbuild.errors import ConfigError, InvalidReferenceError
from rtbuild.oci._references import Reference, parse_reference, split_domain

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("user/app", "docker.io", "user/app", "latest", None),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/user/app:v1", "docker.io", "user/app", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
        ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000", "team/app", "1.0", None),
        ("ghcr.io/org/sub/app", "ghcr.io", "org/sub/app", "latest", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("reg.example.com/a__b/c-d.e_f", "reg.example.com", "a__b/c-d.e_f", "latest", None),
        (f"busybox@{SHA}", "docker.io", "library/busybox", None, SHA),
        (f"127.0.0.1:5000/app:1@{SHA}", "127.0.0.1:5000", "app", "1", SHA),
        # A first component without '.', ':' and not localhost is a path, not a host.
        ("team/app:x", "docker.io", "team/app", "x", None),
        # An uppercase first component can only be a host (repositories are lowercase).
        ("MyHost/app", "MyHost", "app", "latest", None),
    ],
)
def test_parse_and_normalise(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_str_is_fully_qualified_and_reparses_to_itself() -> None:
    ref = parse_reference("busybox")
    assert str(ref) == "docker.io/library/busybox:latest"
    assert parse_reference(str(ref)) == ref
    pinned = parse_reference(f"127.0.0.1:5000/app@{SHA}")
    assert str(pinned) == f"127.0.0.1:5000/app@{SHA}"
    assert pinned.manifest_ref == SHA


def test_properties() -> None:
    hub = parse_reference("busybox:1")
    assert hub.name == "docker.io/library/busybox"
    assert hub.api_host == "registry-1.docker.io"
    assert hub.familiar == "busybox:1"
    assert hub.manifest_ref == "1"
    assert parse_reference("user/app").familiar == "user/app:latest"
    local = parse_reference("127.0.0.1:5000/app:2")
    assert local.api_host == "127.0.0.1:5000"
    assert local.familiar == "127.0.0.1:5000/app:2"
    assert Reference("r.io", "a").manifest_ref == "latest"


def test_split_domain() -> None:
    assert split_domain("busybox") == ("docker.io", "library/busybox")
    assert split_domain("a.b/c") == ("a.b", "c")
    assert split_domain("a/b/c") == ("docker.io", "a/b/c")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("  busybox", "whitespace"),
        ("Busybox", "lowercase"),
        ("127.0.0.1:5000/App", "lowercase"),
        ("app:-bad", "tag"),
        ("app:" + "x" * 129, "tag"),
        ("app:", "tag"),
        ("app@sha256:abc", "digest"),
        ("app@sha256:" + "a" * 63, "64 hex"),
        ("app@md5", "digest"),
        ("a//b", "repository"),
        ("a/b/", "repository"),
        ("-app", "repository"),
        ("app_", "repository"),
        ("host..com/app", "registry"),
        ("-host.com/app", "registry"),
        ("a" * 64, "image ID"),
        ("r.io/" + "a" * 260, "longer"),
        (":tag", "missing"),
    ],
)
def test_invalid_references_are_config_errors(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    err = info.value
    assert isinstance(err, ConfigError)
    assert err.exit_code == 2
    assert fragment in err.message
    assert err.step == "parse image reference"
    assert err.hint and "REGISTRY" in err.hint
