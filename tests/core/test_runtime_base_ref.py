"""A malformed runtime base image (--base, [sandbox] base_container_image or
RTBUILD_BASE_CONTAINER_IMAGE) is refused before any engine call, naming where it came
from. It reached the engine, whose 400 'invalid reference format' came with the hint to
'check the image name or argument the message names'."""

from __future__ import annotations

import os

import pytest
from rtbuild import ConfigError, build_runtime_image, load_config
from rtbuild.testing import FakeSite, run_cli


def test_a_malformed_base_argument_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        build_runtime_image(load_config(os.devnull, env={}), "Bad:Ref", [])
    assert "the runtime image's base 'Bad:Ref' (from --base) is not an image reference" in str(raised.value)
    assert raised.value.step == "compose runtime image" and raised.value.exit_code == 2


def test_a_malformed_configured_base_is_named() -> None:
    config = load_config(os.devnull, env={"RTBUILD_BASE_CONTAINER_IMAGE": "BAD REF"})
    with pytest.raises(ConfigError) as raised:
        build_runtime_image(config, None, [])
    assert "(from [sandbox] base_container_image (RTBUILD_BASE_CONTAINER_IMAGE))" in str(raised.value)


def test_cli_exit_2_before_the_engine(rtbuild_site: FakeSite) -> None:
    rtbuild_site.add_builder("rtbuild-docker", "docker", module="base_ref_site_builder")
    result = run_cli(["--config", os.devnull, "runtime", "--base", "Bad:Ref", "--json"], env={"RTBUILD_CONFIG": None})
    assert result.exit_code == 2, result.stderr
    assert result.json()["error"] == "ConfigError" and "not an image reference" in result.stderr
