"""No-op skip correctness without an engine: .dockerignore dialects, hostile patterns,
the ctime-aware change detector, what the Dockerfile fetches, the keyed digest, masking."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rtbuild.context import PatternMatcher, flavor_for_client
from rtbuild.context._hashing import hash_context
from rtbuild.context._validate import context_digest
from rtbuild.enginekit import MASK, Redactor, analyse, compute_inputs, digest_key, looks_secret, redact_argv

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


# --- .dockerignore ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "moby20", "moby23"),
    [
        ("**.txt", "a.txt", False, True),  # 20.10: (.*/)?\.txt -- only files named ".txt"
        ("**.txt", "d/.txt", True, True),
        ("**.txt", "d/a.txt", False, True),
        ("**/b", "x/a/b/c", False, True),  # 20.10 checks the parent only at the pattern's depth
        ("*/b", "a/b/c", True, True),
        ("**/*.go", "a/b/c.go", True, True),
        ("foo/**", "foo/x/y", True, True),
        ("*.md", "docs/a.md", False, False),
        ("docs", "docs/a/b.md", True, True),
    ],
)
def test_dialects(pattern: str, path: str, moby20: bool, moby23: bool) -> None:
    assert PatternMatcher([pattern], flavor="moby20").excluded(path) is moby20
    assert PatternMatcher([pattern], flavor="moby23").excluded(path) is moby23


def test_client_version_picks_the_dialect() -> None:
    assert flavor_for_client("20.10.24+dfsg1") == "moby20"
    assert flavor_for_client("28.2.2") == "moby23"
    assert flavor_for_client("") == "moby23"


@pytest.mark.parametrize("pattern", ["a+b", "x(y)", "a|b", "\\d*", "[[a]]"])
def test_regex_syntax_the_old_client_reads_differently_is_not_modelled(pattern: str) -> None:
    assert not PatternMatcher([pattern], flavor="moby20").exact
    assert PatternMatcher(["*.log", "!keep.log", "**/tmp"], flavor="moby20").exact


@pytest.mark.timeout(30)  # Python's re needs hours for these; the DFA a few milliseconds
@pytest.mark.parametrize("flavor", ["moby20", "moby23"])
def test_hostile_patterns_do_not_backtrack(flavor: str) -> None:
    patterns = ["*a*a*a*a*a*a*a*a*a*a*b", "**/*a*a*a*a*a*a*a*c/**", "a*" * 30 + "c", "?*?*?*?*?*?*?*?*z"]
    matcher = PatternMatcher(patterns, flavor=flavor)
    for name in ("a" * 3000, "a/" * 1500 + "a" * 200, "ab" * 1500 + "a"):
        assert not matcher.excluded(name)
    assert matcher.excluded("a" * 50 + "b")


# --- change detector --------------------------------------------------------------------


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")
    (ctx / "data.txt").write_text("aaaa\n")
    for path in ctx.iterdir():
        os.utime(path, (OLD, OLD))
    return ctx


def test_recent_ctime_is_racy_even_with_an_old_mtime(tmp_path: Path) -> None:
    """cp -p / tar x / rsync -a: the mtime is old, the write is not; such files are never
    trusted from the stat cache within the racy window (1-second timestamps)."""
    ctx = _ctx(tmp_path)
    hash_context(str(ctx))
    second = hash_context(str(ctx))
    assert second.cache_hits == 0 and second.bytes_hashed > 0  # re-read, not trusted


def test_same_size_rewrite_with_mtime_set_back_is_reported(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    first = context_digest(str(ctx))
    assert first.cold and not first.stat_invisible
    (ctx / "data.txt").write_text("bbbb\n")
    os.utime(ctx / "data.txt", (OLD, OLD))
    second = context_digest(str(ctx))
    assert second.digest != first.digest and not second.cold
    assert second.stat_invisible == ["data.txt"]


# --- what the Dockerfile fetches ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile", "remote"),
    [
        ("FROM busybox\nADD http://127.0.0.1:1/f /f\n", True),
        ("FROM busybox\nADD https://example.invalid/a.tgz /\n", True),
        ("FROM busybox\nADD git@github.com:o/r.git /src\n", True),
        ('FROM busybox\nADD ["https://x.invalid/f", "/f"]\n', True),
        ("FROM busybox\nARG URL=http://x.invalid/f\nADD $URL /f\n", True),
        ("FROM busybox\nADD ${UNSET} /f\n", True),  # cannot tell: assume remote
        ("# syntax=docker/dockerfile:1\nFROM busybox\nCOPY . /\n", True),
        ("# escape=`\n# syntax=docker/dockerfile:1\nFROM busybox\n", True),  # any order
        ("# check=skip=all\n#syntax = docker/dockerfile:1\nFROM busybox\n", True),
        ("# a comment\n# syntax=docker/dockerfile:1\nFROM busybox\n", False),  # not a directive any more
        ("FROM busybox\n# syntax=docker/dockerfile:1\n", False),
        ("FROM busybox\nADD local.tgz /\nCOPY . /ctx\n", False),
        ("FROM busybox\nADD --chown=1:1 \\\n  a.txt /a\n", False),
        ("# a comment\nFROM busybox\nRUN echo http://x.invalid\n", False),
    ],
)
def test_remote_sources_turn_the_skip_off(dockerfile: str, remote: bool) -> None:
    assert bool(analyse(dockerfile, {}).remote) is remote


def test_a_frontend_named_by_build_arg_turns_the_skip_off() -> None:
    analysis = analyse("FROM busybox\nCOPY . /\n", {"BUILDKIT_SYNTAX": "docker/dockerfile:1"})
    assert analysis.remote == ["BUILDKIT_SYNTAX frontend docker/dockerfile:1"]


def test_external_images_include_stage_args_and_mounts() -> None:
    text = (
        "ARG BASE=busybox:latest\nFROM $BASE AS one\nARG TOOL=tools:1\n"
        "COPY --from=$TOOL /x /x\nRUN --mount=type=bind,from=helper:2,target=/h true\n"
        "FROM one\nCOPY --from=one /x /y\n"
    )
    assert analyse(text, {}).images == ["busybox:latest", "tools:1", "helper:2"]
    assert analyse(text, {"TOOL": "tools:2"}).images[1] == "tools:2"


# --- the keyed digest -------------------------------------------------------------------------


class _NoImages:
    def inspect_image(self, name: str) -> None:
        return None


def _digest(build_args: dict[str, str], key: bytes | None = None) -> str:
    inputs = compute_inputs(
        context_digest="c",
        dockerfile_text="FROM scratch\n",
        build_args=build_args,
        labels={},
        platform=None,
        target=None,
        extra_build_args=[],
        api=_NoImages(),  # type: ignore[arg-type]
        key=key,
    )
    assert inputs is not None
    return inputs.digest


def test_digest_is_keyed_per_host(tmp_path: Path) -> None:
    key = digest_key()
    assert len(key) >= 32 and digest_key() == key  # created once, then reused
    path = tmp_path / "state" / "rtbuild" / "digest.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _digest({"PASSWORD": "hunter2"}) == _digest({"PASSWORD": "hunter2"}, key)
    assert _digest({"PASSWORD": "hunter2"}, b"k" * 32) != _digest({"PASSWORD": "hunter2"}, key)
    assert _digest({"PASSWORD": "hunter2"}).startswith("k1:")


# --- masking ----------------------------------------------------------------------------------


def test_secret_names_and_masking() -> None:
    assert all(map(looks_secret, ["DB_PASSWORD", "gh_token", "MY_SECRET_X", "AWS_SECRET_ACCESS_KEY", "API_KEY"]))
    assert not any(map(looks_secret, ["KEYBOARD", "VERSION", "MONKEY_BUSINESS"]))
    argv = ["docker", "build", "--build-arg", "API_KEY=s3cr3t-v4lue", "--build-arg", "V=1", "--build-arg=TOKEN=abcd"]
    assert redact_argv(argv) == [
        "docker",
        "build",
        "--build-arg",
        f"API_KEY={MASK}",
        "--build-arg",
        "V=1",
        f"--build-arg=TOKEN={MASK}",
    ]
    redact = Redactor.for_build({"API_KEY": "s3cr3t-v4lue", "V": "1"}, [b"file-secret\n"])
    assert redact("echo s3cr3t-v4lue file-secret 1") == f"echo {MASK} {MASK} 1"


def test_a_cached_analysis_still_sees_a_frontend_named_by_build_arg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtbuild.enginekit import analyse_cached

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = "FROM busybox\nCOPY . /\n"
    assert analyse_cached(text, {}).remote == []
    assert analyse_cached(text, {"BUILDKIT_SYNTAX": "docker/dockerfile:1"}).remote
