"""``refuse_result_args``: the extra arguments every backend refuses because they put the
result where rtbuild cannot see it (a tag, a platform, an export)."""

from __future__ import annotations

import pytest
from rtbuild.enginekit import refuse_result_args
from rtbuild.errors import ConfigError


@pytest.mark.parametrize(
    "extra",
    [
        ["--platform", "linux/arm64"],
        ["--platform=linux/amd64,linux/arm64"],
        ["--arch", "arm64"],  # podman's and buildah's spellings of one
        ["--os=linux"],
        ["--variant", "v8"],
    ],
)
def test_a_platform_among_the_extra_arguments_is_refused(extra: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        refuse_result_args(["--network=host", *extra])
    assert "platform" in str(raised.value) and "--platform" in (raised.value.hint or "")
    assert raised.value.step == "validate request"


@pytest.mark.parametrize("extra", [["--network=host"], ["--label", "os=linux"], ["--build-arg", "arch=arm64"]])
def test_values_that_merely_mention_a_platform_pass(extra: list[str]) -> None:
    refuse_result_args(extra)
