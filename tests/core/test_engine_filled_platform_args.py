"""BuildKit's automatic platform ARGs in FROM lines, as the no-op skip's analysis reads them.

BuildKit fills TARGETARCH & co. (and BUILDARCH & co.) itself: a ``FROM base:${TARGETARCH}``
builds with or without ``ARG TARGETARCH`` and without ``--platform``. The analysis left them
empty, so the Docker builder asked the engine about ``base:`` and failed with a 400 before
the engine ran. It now names them (``Analysis.engine_filled``) for the backend to resolve,
resolves one given as a build arg also without an ARG line (as BuildKit does), and keeps
every digest of a Dockerfile that does not name them in an image as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rtbuild.enginekit import analyse, analyse_cached, compute_inputs, platform_args


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    ("text", "filled"),
    [
        ("ARG TARGETARCH\nFROM base:${TARGETARCH}\n", ["TARGETARCH"]),
        ("FROM base:${TARGETARCH}\n", ["TARGETARCH"]),  # no ARG line: BuildKit's global scope
        ("FROM base:$TARGETOS-$TARGETARCH$TARGETVARIANT\n", ["TARGETARCH", "TARGETOS", "TARGETVARIANT"]),
        ("ARG BASE=base:${BUILDARCH}\nFROM ${BASE}\n", ["BUILDARCH"]),  # through a global ARG default
        ("FROM busybox AS a\nARG TARGETARCH\nCOPY --from=tools:${TARGETARCH} /t /t\n", ["TARGETARCH"]),
        # Only where an image is named: a stage's own platform or a RUN needs no value here.
        ("FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH\nRUN echo $TARGETARCH\nFROM base\n", []),
        ("ARG TARGETARCH=amd64\nFROM base:${TARGETARCH}\n", []),  # a default is the user's value
        ("FROM busybox\nADD https://x.invalid/${TARGETARCH} /f\n", []),
    ],
)
def test_the_automatic_args_an_image_names_unset_are_listed(text: str, filled: list[str]) -> None:
    analysis = analyse(text, {})
    assert analysis.engine_filled == filled
    assert not any("\x00" in image for image in analysis.images)
    assert analyse_cached(text, {}).engine_filled == filled
    assert analyse_cached(text, {}) == analysis  # the cached answer holds it too


def test_given_as_build_args_they_resolve_the_image_with_or_without_an_arg_line() -> None:
    given = platform_args("linux/arm64", build="linux/amd64")
    assert given == {
        "TARGETPLATFORM": "linux/arm64",
        "TARGETOS": "linux",
        "TARGETARCH": "arm64",
        "TARGETVARIANT": "",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }
    for text in ("ARG TARGETARCH\nFROM base:${TARGETARCH}\n", "FROM base:${TARGETARCH}\n"):
        assert analyse(text, given).images == ["base:arm64"]
        assert analyse(text, given).engine_filled == []
    # --platform alone fills the TARGET* ones; BUILDARCH stays the engine's to fill.
    both = analyse("FROM base:${TARGETARCH}\nFROM tool:${BUILDARCH}\n", {}, "linux/arm64")
    assert (both.images, both.engine_filled) == (["base:arm64", "tool:"], ["BUILDARCH"])
    # A stage named by the arch is a stage, not an image, once the arch is known.
    staged = "FROM busybox AS amd64\nFROM busybox AS arm64\nFROM ${TARGETARCH}\n"
    assert analyse(staged, platform_args("linux/amd64")).images == ["busybox"]


class _Inspector:
    def inspect_image(self, name: str) -> dict[str, Any]:
        return {"Id": "sha256:" + name.encode().hex()[:16]}


#: Digests of Dockerfiles that name no automatic ARG in an image (or set it), computed with
#: the code before this change: they must not move (a changed digest rebuilds every image).
GOLDEN = [
    (
        "FROM busybox:latest\nARG GREETING=hi\nCOPY . /ctx\nRUN echo $GREETING\n",
        {},
        None,
        "cd9336ffbe8cd14733ba422b927c3402",
    ),
    (
        "FROM busybox:latest\nARG GREETING=hi\nRUN echo $GREETING\n",
        {"GREETING": "yo"},
        "linux/arm64",
        "ec0393a95ee4df3b736fd9d459203a57",
    ),
    (
        "ARG TARGETARCH\nFROM rtbuild/busybox:${TARGETARCH}\nRUN uname -m\n",
        platform_args("linux/arm64"),
        "linux/arm64",
        "9f1cabe0e1cf926ef8db30a172dfa42e",
    ),
    (
        "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\nRUN echo $TARGETARCH\n"
        "FROM busybox\nCOPY --from=build /a /a\n",
        {},
        None,
        "7dc2a780af8af3596697c10038f4c17a",
    ),
    ("ARG TARGETARCH=amd64\nFROM base:${TARGETARCH}\n", {}, None, "fef67426333ffc4ea49c4060899ac6f2"),
    (
        "FROM base AS one\nFROM one\nCOPY --from=tools:2 /t /t\nRUN --mount=type=bind,from=helper:3,target=/h true\n",
        {"X": "1"},
        None,
        "0193a4e580614ab6c325e93c189db58c",
    ),
]


@pytest.mark.parametrize(("text", "args", "platform", "digest"), GOLDEN)
def test_digests_of_other_dockerfiles_are_unchanged(
    text: str, args: dict[str, str], platform: str | None, digest: str
) -> None:
    inputs = compute_inputs(
        context_digest="c",
        dockerfile_text=text,
        build_args=args,
        labels={"a": "b"},
        platform=platform,
        target=None,
        extra_build_args=[],
        api=_Inspector(),
        analysis=analyse_cached(text, args, platform),
        key=b"k" * 32,
    )
    assert inputs is not None
    assert inputs.digest == "k1:" + digest
