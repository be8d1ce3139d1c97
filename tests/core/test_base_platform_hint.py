"""A base image whose index lacks the platform built: the engines' words, and the hint.

It read 'build or load the base image locally first ... or fix its name' (and, for a foreign
platform of a multi-platform build, 'push the base as an index'), while the base was in its
registry, as an index, without that platform. Lines from Docker 20.10's BuildKit and Podman
4.3's Buildah, as the real engines printed them.
"""

from __future__ import annotations

import pytest
from rtbuild.enginekit import PlatformPlan, build_each_platform
from rtbuild.enginekit._failures import _BASE_HINT, BASE_PLATFORM_HINT, build_error
from rtbuild.errors import BuildFailedError

BUILDKIT = [
    "#3 [internal] load metadata for 127.0.0.1:5000/mp/a:only",
    "#3 ERROR: no match for platform in manifest sha256:a5fb9a3c17c6: not found",
    "------",
    " > [internal] load metadata for 127.0.0.1:5000/mp/a:only:",
    "------",
    "failed to solve with frontend dockerfile.v0: failed to create LLB definition: no match for platform in"
    " manifest sha256:a5fb9a3c17c6: not found",
]
BUILDAH = [
    "STEP 1/3: FROM 127.0.0.1:5000/mp/a:only",
    "Trying to pull 127.0.0.1:5000/mp/a:only...",
    "Error: creating build container: choosing an image from manifest list docker://127.0.0.1:5000/mp/a:only:"
    ' no image found in manifest list for architecture arm64, variant "", OS linux',
]
MISSING = [
    "#3 [internal] load metadata for 127.0.0.1:5000/mp/nothing:1",
    "#3 ERROR: 127.0.0.1:5000/mp/nothing:1: not found",
    "failed to solve with frontend dockerfile.v0: failed to create LLB definition: 127.0.0.1:5000/mp/nothing:1:"
    " not found",
]


@pytest.mark.parametrize(("lines", "engine"), [(BUILDKIT, "docker"), (BUILDAH, "podman")])
def test_an_index_without_the_platform_is_named_as_such(lines: list[str], engine: str) -> None:
    error = build_error(lines, 1, log_path=None, engine=engine)
    assert "base image could not be resolved" in error.message
    assert error.hint == BASE_PLATFORM_HINT


def test_a_base_that_is_not_there_keeps_its_hint() -> None:
    assert build_error(MISSING, 1, log_path=None).hint == _BASE_HINT


def test_a_multi_platform_build_keeps_the_hint() -> None:
    def build(plan: PlatformPlan) -> dict[str, object]:
        if plan.platform == "linux/arm64":
            raise build_error(BUILDKIT, 1, log_path=None)
        return {"cached": False}

    plans = [PlatformPlan("linux/amd64", ["r/a:1-linux-amd64"]), PlatformPlan("linux/arm64", ["r/a:1-linux-arm64"])]
    with pytest.raises(BuildFailedError) as info:
        build_each_platform(plans, build, lambda tag: None)
    assert info.value.message.startswith("linux/arm64 (platform 2 of 2): ")
    assert info.value.hint == BASE_PLATFORM_HINT
