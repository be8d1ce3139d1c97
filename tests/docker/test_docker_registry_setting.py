"""[builders.docker] insecure_registries items are checked as the core's own
insecure_registries (e034590): 'reg-a reg-b' is no registry and matched none. A failed
check of a list setting does not show the list whole (an item may hold a password)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import ConfigError, load_config
from rtbuild_docker.builder import DockerBuilder


def _builder(tmp_path: Path, items: str) -> DockerBuilder:
    path = tmp_path / "rtbuild.toml"
    path.write_text(f"[builders.docker]\ninsecure_registries = {items}\n")
    return DockerBuilder.from_config(load_config(path, env={}))


def test_two_registries_in_one_item_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _builder(tmp_path, '["reg-a:5000", "reg-b reg-c"]')
    assert str(raised.value).endswith("[builders.docker] insecure_registries: item 2 holds several: 'reg-b reg-c'")


def test_a_password_in_an_item_is_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _builder(tmp_path, '["user:s3cret@reg.example"]')
    assert "item 1 is not a host[:port] or CIDR" in str(raised.value) and "s3cret" not in str(raised.value)


def test_registries_and_cidrs_pass(tmp_path: Path) -> None:
    builder = _builder(tmp_path, '["reg-a:5000", "10.0.0.0/8", "[::1]:5000"]')
    assert builder.insecure_registries == ["reg-a:5000", "10.0.0.0/8", "[::1]:5000"]
