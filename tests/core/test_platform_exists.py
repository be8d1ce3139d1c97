"""The ``platform`` argument of the ``image_exists`` hook reaches builders that take it."""

from __future__ import annotations

import pytest
from rtbuild import ConfigError, RuntimeBuilder
from rtbuild.default_plugins import dispatch
from rtbuild.enginekit import plan_platforms, platform_args, split_platforms
from rtbuild.oci import normalize_platform, platform_tag


class V1(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):  # type: ignore[no-untyped-def]
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):  # type: ignore[no-untyped-def]
        return True


class V2(V1):
    def image_exists(self, image_name, pull_from_repo=True, *, platform=None):  # type: ignore[no-untyped-def]
        return platform in (None, "linux/arm64")


def test_a_builder_without_platform_keyword_refuses_a_platform() -> None:
    assert dispatch.image_exists("x:1", False, V1(), None) is True
    with pytest.raises(ConfigError) as info:
        dispatch.image_exists("x:1", False, V1(), "linux/arm64")
    assert info.value.exit_code == 2


def test_the_platform_reaches_a_builder_that_takes_it() -> None:
    assert dispatch.image_exists("x:1", False, V2(), "linux/arm64") is True
    assert dispatch.image_exists("x:1", False, V2(), "linux/s390x") is False


def test_platform_helpers() -> None:
    assert split_platforms(" linux/amd64, linux/arm64,linux/amd64") == ["linux/amd64", "linux/arm64"]
    assert normalize_platform("Linux/ARM64/v8") == "linux/arm64"
    # 32-bit arm without a variant is v7 to the engines: Docker's builder refused linux/arm.
    assert normalize_platform("linux/arm") == normalize_platform("linux/ARM/v7") == "linux/arm/v7"
    assert normalize_platform("linux/arm/v6") == "linux/arm/v6"
    assert platform_tag("1.0", "linux/arm/v7") == "1.0-linux-arm-v7"
    assert len(platform_tag("x" * 128, "linux/arm64")) == 128
    assert platform_args("linux/arm64")["TARGETARCH"] == "arm64"
    assert platform_args("linux/amd64,linux/arm64") == {}
    plans = plan_platforms(["reg:5000/a/b:1"], ["linux/amd64", "linux/arm64"], push=True)
    assert [p.push_tags for p in plans] == [["reg:5000/a/b:1-linux-amd64"], ["reg:5000/a/b:1-linux-arm64"]]
    local = plan_platforms(["app:1"], ["linux/arm64", "linux/amd64"], push=False)
    assert local[1].tags == ["app:1-linux-amd64", "app:1"]  # the native platform gets the plain tag


def test_check_image_hands_one_spelling_per_platform_to_the_builder() -> None:
    """``exists --platform Linux/ARM64/v8`` reached image_exists verbatim (a builder comparing
    with linux/arm64 said absent), while ``build`` hands builders the engines' spelling."""
    from rtbuild._framework.config import Config
    from rtbuild._framework.pipeline import check_image
    from rtbuild._framework.plugins import get_plugin_manager

    config = Config(load_plugins=[])
    pm = get_plugin_manager(config)
    for given in ("Linux/ARM64/v8", " linux/arm64 ", "linux/arm64,linux/arm64/v8"):
        assert check_image("x:1", False, config=config, pm=pm, builder=V2(), platform=given) is True, given
    assert check_image("x:1", False, config=config, pm=pm, builder=V2(), platform="linux/s390x") is False
