"""The Dockerfile analysis expands build-arg references as the Dockerfile frontend does,
``${A:-word}`` and ``${A:+word}`` (with or without the colon) included: it took only A's
value, so ``FROM ${BASE:-debian}`` without BASE named no image (every Docker build failed
asking the engine for the empty name) and ``FROM ${PIN:+img}`` named PIN's value instead
of the image (the no-op check then watched the wrong base)."""

from __future__ import annotations

import pytest
from rtbuild.enginekit import external_images
from rtbuild.enginekit._inputs import analyse


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "images"),
    [
        ("ARG BASE\nFROM ${BASE:-busybox:1}\n", {}, ["busybox:1"]),
        ("ARG BASE\nFROM ${BASE:-busybox:1}\n", {"BASE": "alpine:3"}, ["alpine:3"]),
        ("ARG BASE\nFROM ${BASE:-busybox:1}\n", {"BASE": ""}, ["busybox:1"]),
        ("ARG BASE\nFROM ${BASE-busybox:1}\n", {}, ["busybox:1"]),  # declared without a value: unset
        ("ARG PIN=1\nFROM ${PIN:+busybox:1}\n", {}, ["busybox:1"]),
        ("ARG PIN\nFROM ${PIN+busybox:1}\n", {"PIN": "x"}, ["busybox:1"]),
        ("ARG PIN\nFROM busybox${PIN:+:$PIN}\n", {"PIN": "2"}, ["busybox:2"]),
        ("ARG PIN\nFROM busybox${PIN:+:$PIN}\n", {}, ["busybox"]),
        ("ARG REG\nARG TAG=1\nFROM ${REG:-${MIRROR:-docker.io}}/lib/app:${TAG}\n", {}, ["docker.io/lib/app:1"]),
        ("ARG V=3\nFROM busybox:${V:?required}\n", {}, ["busybox:3"]),
        ("FROM busybox AS b\nFROM scratch\nARG SRC\nCOPY --from=${SRC:-alpine:3} /x /x\n", {}, ["busybox", "alpine:3"]),
        ("ARG PIN\nFROM ${PIN:+busybox:1}\n", {}, []),  # an empty name: the engine's to refuse
    ],
)
def test_reference_forms(dockerfile: str, build_args: dict[str, str], images: list[str]) -> None:
    assert analyse(dockerfile, build_args).images == images
    assert external_images(dockerfile, build_args) == images  # the cached analysis agrees


def test_an_arg_default_may_use_a_default_form() -> None:
    assert analyse("ARG A\nARG B=${A:-busybox:5}\nFROM $B\n", {}).images == ["busybox:5"]
    assert analyse("ARG A\nARG B=${A:-busybox:5}\nFROM $B\n", {"A": "alpine"}).images == ["alpine"]
