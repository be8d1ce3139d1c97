"""``insecure_registries`` items are registries: host[:port], [IPv6]:port or a CIDR.

``RTBUILD_INSECURE_REGISTRIES="a b"`` (spaces where the docs say commas) was one item,
'a b', that matches no registry: both were then refused over plain http, with nothing
pointing at the variable. It is a configuration error naming it, as a file item is."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import load_config
from rtbuild.errors import ConfigError
from rtbuild.testing import FakeSite, run_cli


@pytest.mark.parametrize(
    "value",
    ["reg.example:5000", "localhost", "10.0.0.9", "10.0.0.0/8", "[::1]:5000", "fe80::/64", "http://reg:5000/"],
)
def test_registry_forms_are_accepted(value: str) -> None:
    assert load_config(env={"RTBUILD_INSECURE_REGISTRIES": value}).insecure_registries == [value]


def test_space_separated_registries_in_the_environment_are_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env={"RTBUILD_INSECURE_REGISTRIES": "reg-a:5000 reg-b"})
    error = raised.value
    assert "environment variable RTBUILD_INSECURE_REGISTRIES" in str(error)
    assert "item 1 holds several: 'reg-a:5000 reg-b'" in str(error)
    assert error.hint is not None and "commas" in error.hint and error.exit_code == 2


def test_comma_separated_registries_in_the_environment_still_work() -> None:
    config = load_config(env={"RTBUILD_INSECURE_REGISTRIES": "reg-a:5000, reg-b,"})
    assert config.insecure_registries == ["reg-a:5000", "reg-b"]


def test_a_file_item_holding_two_registries_names_file_line_and_item(tmp_path: Path) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text('builder = "docker"\ninsecure_registries = ["ok:5000", "reg-a,reg-b"]\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert f"{path}:2:" in str(raised.value) and "item 2 holds several: 'reg-a,reg-b'" in str(raised.value)
    assert raised.value.hint is not None and "item of its own" in raised.value.hint


def test_a_non_registry_item_does_not_show_a_password() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env={"RTBUILD_INSECURE_REGISTRIES": "user:s3cret@reg.example"})
    assert "item 1 is not a host[:port] or CIDR" in str(raised.value)
    assert "s3cret" not in str(raised.value) + str(raised.value.hint)


def test_cli_exits_2_with_nothing_on_stdout(rtbuild_site: FakeSite, tmp_path: Path) -> None:
    result = run_cli(["plugins"], env={"RTBUILD_INSECURE_REGISTRIES": "reg-a reg-b"})
    assert result.exit_code == 2, result.stderr
    assert "error: environment variable RTBUILD_INSECURE_REGISTRIES" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
