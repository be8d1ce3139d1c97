"""The Dockerfile analysis cache: keyed only by the build args the analysis uses, and bounded.

A build arg that changes on every build (a nonce, a commit SHA) but is only used by RUN or
LABEL must neither make every build parse the Dockerfile again nor leave one more cache
file each time; one the analysis does use (a FROM image, a COPY --from source) must still
key the cache, so a cached answer is never another argument's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rtbuild._framework.paths import keep_newest
from rtbuild.enginekit import _inputs
from rtbuild.enginekit._inputs import analyse, analyse_cached, analysed_args

ARGS = {"BASE": "alpine:3", "TOOL": "tools:9", "URL": "https://x.invalid/f", "NONCE": "n1", "SHA": "abc", "B2": "b:2"}

CASES = [
    # (Dockerfile, the args that may change the analysis)
    ("ARG BASE=busybox\nFROM $BASE\nARG NONCE\nRUN echo $NONCE\nLABEL sha=$SHA\n", {"BASE"}),
    ("FROM busybox AS one\nCOPY --from=${TOOL} /x /x\nRUN echo ${NONCE}\n", {"TOOL"}),
    ("FROM busybox\nRUN --mount=type=bind,from=$TOOL,target=/t true\n", {"TOOL"}),
    ("FROM busybox\nADD $URL /f\nCOPY $NONCE /n\n", {"URL"}),
    ("ARG X=$SHA\nFROM $X\n", {"SHA"}),  # an ARG default naming another arg
    ("FROM ${BASE:-$B2}\n", {"BASE", "B2"}),  # a default naming another arg
    # A continued FROM, with a comment and a blank line inside the continuation.
    ("FROM \\\n# the base\n\n  $BASE\nRUN echo $NONCE \\\n  $SHA\n", {"BASE"}),
    # A comment ending in a backslash does not continue (Docker drops comment lines).
    ("# note \\\nFROM $BASE\nRUN echo $NONCE\n", {"BASE"}),
    ("from $BASE\ncopy --FROM=$TOOL /a /b\n", {"BASE", "TOOL"}),  # keywords in any case
    ("# escape=`\nFROM $BASE\nRUN echo $NONCE\n", set(ARGS)),  # another continuation character
    ("FROM busybox\nRUN echo $NONCE $SHA\n", set()),
    ("\ufeffFROM $BASE\nRUN echo $NONCE\n", {"BASE"}),  # a byte-order mark, which the engines drop
]


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.mark.parametrize(("text", "relevant"), CASES)
def test_only_args_the_analysis_uses_key_it(text: str, relevant: set[str]) -> None:
    kept = analysed_args(text, ARGS)
    assert set(kept) == relevant and all(kept[name] == ARGS[name] for name in kept)
    # The args left out do not change the answer.
    assert analyse(text, kept) == analyse(text, ARGS)


def _entries(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "cache" / "rtbuild" / "dockerfiles"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_a_nonce_used_by_run_shares_one_entry(tmp_path: Path) -> None:
    text = "ARG BASE=busybox:latest\nFROM $BASE\nARG NONCE\nRUN echo $NONCE > /nonce\n"
    for index in range(20):
        assert analyse_cached(text, {"NONCE": f"n{index}"}).images == ["busybox:latest"]
    assert len(_entries(tmp_path)) == 1
    # An arg the FROM line uses still keys the cache: each value gets its own answer.
    assert analyse_cached(text, {"NONCE": "x", "BASE": "alpine:3"}).images == ["alpine:3"]
    assert analyse_cached(text, {"NONCE": "y", "BASE": "debian:12"}).images == ["debian:12"]
    assert analyse_cached(text, {"NONCE": "z"}).images == ["busybox:latest"]
    assert len(_entries(tmp_path)) == 3


def test_the_cache_keeps_only_the_newest_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "ANALYSIS_CACHE_FILES", 4)
    for index in range(9):
        analyse_cached(f"ARG BASE\nFROM $BASE\nLABEL n={index}\n", {"BASE": f"b:{index}"})
    entries = _entries(tmp_path)
    assert len(entries) == 4
    # The newest answers stay (a hit reads, never rewrites, so write order is age order).
    assert analyse_cached("ARG BASE\nFROM $BASE\nLABEL n=8\n", {"BASE": "b:8"}).images == ["b:8"]
    assert _entries(tmp_path) == entries


def test_keep_newest_spares_and_ages(tmp_path: Path) -> None:
    now = time.time()
    for index in range(6):
        path = tmp_path / f"f{index}.x"
        path.write_text("x")
        os.utime(path, (now - index * 3600, now - index * 3600))  # f0 newest, f5 oldest
    (tmp_path / "other.y").write_text("y")
    spare = str(tmp_path / "f5.x")
    keep_newest(tmp_path, keep=2, select=lambda name: name.endswith(".x"), spare=spare)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.x", "f1.x", "f5.x", "other.y"]
    keep_newest(tmp_path, keep=None, max_age_days=0.5 / 24, select=lambda name: name.endswith(".x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.x", "other.y"]
    keep_newest(tmp_path / "missing", keep=0, select=lambda name: True)  # no directory: nothing to do


@pytest.mark.parametrize(
    "text",
    [
        # A byte-order mark (Windows editors write one), which BuildKit and Buildah drop.
        "\ufeffFROM busybox:1\nCOPY --from=tools:2 /t /t\n",
        "\ufeffARG B=busybox:1\nFROM $B\nCOPY --from=tools:2 /t /t\n",
        # Empty lines inside a continued instruction, which BuildKit skips (after a comment too).
        "FROM \\\n\n  busybox:1\nCOPY \\\n   \n  --from=tools:2 /t /t\n",
        "FROM \\\n# the base\n\n  busybox:1\nCOPY --from=tools:2 /t /t\n",
        "# escape=`\nFROM `\n\n  busybox:1\nCOPY --from=tools:2 /t /t\n",
    ],
)
def test_what_the_engines_skip_hides_no_instruction(text: str) -> None:
    """Kept, a byte-order mark or an empty continued line ended or hid an instruction for
    the parser: a base image went untracked (a base moved under its tag was then reused
    stale: test_noop_docker.py::test_from_image_retagged_rebuilds)."""
    assert analyse(text, {}).images == ["busybox:1", "tools:2"]
    assert analyse_cached(text, {}).images == ["busybox:1", "tools:2"]
