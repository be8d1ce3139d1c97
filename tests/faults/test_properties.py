"""Property tests (hypothesis): reference parsing against the real ``docker tag`` (oracle
calls batched), .dockerignore matching against what the real client sends (each example
checked by a real build exporting its context), the Dockerfile analysis's base images
against the ones the engine's own parser used (read back from the built image), config and
build-arg parsing (only the documented errors, never a crash)."""

from __future__ import annotations

import contextlib
import json
import os
import string
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from rtbuild import BuildSecret
from rtbuild.cli.commands._options import parse_pairs
from rtbuild.context import PatternMatcher, flavor_for_client, read_patterns
from rtbuild.context._hashing import hash_context
from rtbuild.errors import ConfigError, InvalidReferenceError
from rtbuild.oci import parse_reference

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
# Derandomized: the same candidates every run, so CI is reproducible (a random draw that
# found a new disagreement would turn CI red by chance; run with a seed to explore).
ORACLE = settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)

# --- references vs docker tag ---------------------------------------------------------------

_piece = st.text(alphabet="abz09._-", min_size=0, max_size=8)
_reference = st.one_of(
    st.text(alphabet=string.ascii_lowercase + "AZ09._-/: ü", min_size=0, max_size=30),
    st.builds(
        lambda host, port, parts, tag: (
            (host + (f":{port}" if port else "") + "/" if host else "")
            + "/".join(parts)
            + (f":{tag}" if tag is not None else "")
        ),
        # No "[::1]": rtbuild follows distribution/reference 2.8+ (IPv6 registries, docker 23+);
        # the 20.10 client here refuses them. Documented in docs/security.md.
        st.sampled_from(["", "localhost", "reg.example", "Reg.Example", "a_b.io", "127.0.0.1", "r-1.io"]),
        st.one_of(st.none(), st.integers(0, 70000)),
        st.lists(_piece, min_size=1, max_size=3),
        st.one_of(st.none(), st.text(alphabet="aZ09._-", max_size=130)),
    ),
)


def _docker(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120, check=check)


def _oracle(candidates: list[str]) -> dict[str, bool]:
    """Whether ``docker tag`` accepts each candidate; only tags created here are removed."""
    fresh = [c for c in candidates if _docker("image", "inspect", "--format", "x", c).returncode != 0]
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda c: _docker("tag", "busybox:latest", c), fresh))
    # Only a refusal of the reference counts as "no"; any other failure is the engine's.
    odd = {c: p.stderr for c, p in zip(fresh, procs, strict=True) if p.returncode and "invalid" not in p.stderr}
    assert odd == {}, f"docker tag failed for reasons other than the reference: {odd}"
    codes = [p.returncode for p in procs]
    made = [c for c, code in zip(fresh, codes, strict=True) if code == 0]
    if made:
        _docker("rmi", *made)
    return {c: code == 0 for c, code in zip(fresh, codes, strict=True)}


def _ours(text: str) -> bool:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError:
        return False
    return ref.digest is None


@pytest.mark.engine
@ORACLE
@given(st.lists(_reference, min_size=100, max_size=100, unique=True))
def test_reference_parsing_agrees_with_docker_tag(docker_engine: str, candidates: list[str]) -> None:
    candidates = [c for c in candidates if "@" not in c]  # docker tag refuses digests by design
    verdicts = _oracle(candidates)
    disagree = {c: v for c, v in verdicts.items() if _ours(c) != v}
    assert disagree == {}, f"docker tag says (True = accepted): {disagree}"


# --- .dockerignore vs the real client ----------------------------------------------------------

_name = st.sampled_from(["a", "b", "ab", "a.txt", "b.txt", ".txt", "c.log", "x.py", "a b", "d"])
_tree = st.lists(st.lists(_name, min_size=1, max_size=3).map("/".join), min_size=1, max_size=14, unique=True)
_segment = st.sampled_from(["a", "b", "*", "?", "**", "*.txt", "a*", "*b", "**.txt", ".txt", "c.log", "[ab]", "d"])
_pattern = st.builds(
    lambda bang, parts: ("!" if bang else "") + "/".join(parts),
    st.booleans(),
    st.lists(_segment, min_size=1, max_size=3),
)


def _client_flavor() -> str:
    version = _docker("version", "--format", "{{.Client.Version}}").stdout.strip()
    return flavor_for_client(version)


@pytest.mark.engine
@settings(max_examples=16, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(_tree, st.lists(_pattern, min_size=1, max_size=4))
def test_dockerignore_matches_what_the_client_sends(docker_engine: str, files: list[str], patterns: list[str]) -> None:
    # a path cannot be both a file and a directory
    assume(not any(other.startswith(f + "/") for f in files for other in files))
    flavor = _client_flavor()
    matcher = PatternMatcher(read_patterns("\n".join(patterns)), flavor=flavor)
    assume(matcher.exact)
    with tempfile.TemporaryDirectory() as tmp:
        ctx, out = Path(tmp, "ctx"), Path(tmp, "out")
        ctx.mkdir()
        for rel in files:
            (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
            (ctx / rel).write_text(rel)
        (ctx / ".dockerignore").write_text("\n".join(patterns) + "\n")
        dockerfile = Path(tmp, "Dockerfile")
        dockerfile.write_text("FROM scratch\nCOPY . /\n")
        build = subprocess.run(
            [DOCKER, "build", "-q", "-f", str(dockerfile), "-o", f"type=local,dest={out}", str(ctx)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert build.returncode == 0, build.stderr
        sent = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {".dockerignore"}
        ours = hash_context(str(ctx), matcher, use_cache=False, collect_paths=True)
        assert ours.paths is not None
        hashed = {rel for rel, kind in ours.paths if kind == "f"} - {".dockerignore"}
        assert hashed == sent, f"patterns {patterns}: only ours {hashed - sent}, only sent {sent - hashed}"


# --- Dockerfile analysis vs the engine's own parser -----------------------------------------------

#: Local base images, each holding /base.txt with its own number: which one a stage used
#: is read back from the built image, so the engine's parser is the oracle.
_BASES = [f"rtbuild-test-prop-base-{k}:1" for k in range(3)]


@pytest.fixture(scope="module")
def prop_bases(docker_engine: str) -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        for k, tag in enumerate(_BASES):
            (Path(tmp) / "base.txt").write_text(f"{k}\n")
            (Path(tmp) / "Dockerfile").write_text("FROM scratch\nCOPY base.txt /base.txt\n")
            _docker("build", "-q", "-t", tag, tmp, check=True)
    yield _BASES
    _docker("rmi", *_BASES)


_stage = st.tuples(
    st.integers(0, len(_BASES) - 1),  # which base
    st.booleans(),  # named through an ARG (global, before the first FROM)
    st.sampled_from(["", "continued", "blank", "spaces", "comment", "comment+blank", "space-after-escape"]),
    st.booleans(),  # "AS" in lower case
)


@st.composite
def _dockerfile(draw: st.DrawFn) -> tuple[str, int]:
    """A multi-stage Dockerfile in the ways people write them (a byte-order mark, CRLF,
    lower-case keywords, a backtick escape, FROMs continued over empty and comment lines),
    whose final stage copies each stage's /base.txt; and the number of stages."""
    bom, crlf, lower, backtick = draw(st.booleans()), draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    stages = draw(st.lists(_stage, min_size=1, max_size=4))
    esc = "`" if backtick else "\\"
    kw = str.lower if lower else str.upper
    lines = ["# escape=`"] if backtick else []
    lines += [f"{kw('ARG')} B{i}={_BASES[k]}" for i, (k, via_arg, _, _) in enumerate(stages) if via_arg]
    for i, (k, via_arg, split, lower_as) in enumerate(stages):
        ref = f"${{B{i}}}" if via_arg else _BASES[k]
        alias = f"{'as' if lower_as else 'AS'} s{i}"
        if not split:
            lines.append(f"{kw('FROM')} --platform=linux/amd64 {ref} {alias}")
            continue
        lines.append(f"{kw('FROM')}\t{esc}" + ("  " if split == "space-after-escape" else ""))
        lines += ["  # the base"] if split.startswith("comment") else []
        lines += {"blank": [""], "spaces": ["   "], "comment+blank": [""]}.get(split, [])
        lines.append(f"  {ref} {esc}")
        lines.append(f"  {alias}")
    lines.append(f"{kw('FROM')} scratch")
    lines += [f"{kw('COPY')} --from=s{i} /base.txt /s{i}.txt" for i in range(len(stages))]
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    return ("\ufeff" if bom else "") + text, len(stages)


@pytest.mark.engine
@settings(
    max_examples=16, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck), derandomize=True
)
@given(_dockerfile())
def test_dockerfile_analysis_sees_the_bases_the_engine_uses(prop_bases: list[str], case: tuple[str, int]) -> None:
    """An image the analysis does not see is an image the no-op check does not track: a base
    moved under its tag would be reused stale (a byte-order mark and an empty continued
    line did that)."""
    from rtbuild.enginekit._inputs import analyse

    text, count = case
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_bytes(text.encode("utf-8"))
        out = Path(tmp, "out")
        build = subprocess.run(
            [DOCKER, "build", "-q", "-o", f"type=local,dest={out}", tmp],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert build.returncode == 0, f"{text!r}: {build.stderr}"
        used = {prop_bases[int((out / f"s{i}.txt").read_text())] for i in range(count)}
    assert set(analyse(text, {}).images) == used, repr(text)


# --- config and build-arg parsing ---------------------------------------------------------------

_scalar = st.one_of(st.text(max_size=10), st.integers(-5, 5), st.booleans(), st.lists(st.text(max_size=5), max_size=3))
_keys = st.sampled_from(
    [
        "builder",
        "platform",
        "push",
        "build_args",
        "labels",
        "insecure_registries",
        "lock_timeout",
        "load_plugins",
        "strict_plugins",
        "bogus_key",
        "sandbox",
        "runtime",
    ]
)


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _scalar, max_size=5))
def test_config_files_load_or_fail_with_config_error(tmp_path_factory: pytest.TempPathFactory, table: dict) -> None:
    from rtbuild._framework.config import read_config_file

    path = tmp_path_factory.mktemp("cfg") / "rtbuild.toml"
    path.write_text("".join(f"{key} = {_toml(value)}\n" for key, value in table.items()))
    with contextlib.suppress(ConfigError):
        read_config_file(path)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_config_bytes_load_or_fail_with_config_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from rtbuild._framework.config import read_config_file

    path = tmp_path_factory.mktemp("cfgb") / "rtbuild.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        read_config_file(path)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=4))
def test_build_arg_pairs(values: list[str]) -> None:
    try:
        pairs = parse_pairs(values, "--build-arg")
    except click.BadParameter:
        assert any("=" not in v or v.startswith("=") for v in values)
        return
    for value in values:
        assert value.partition("=")[0] in pairs
    assert pairs == {v.partition("=")[0]: v.partition("=")[2] for v in values}


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=40))
def test_secret_specs_parse_or_fail_with_config_error(text: str) -> None:
    try:
        secret = BuildSecret.parse(text)
    except ConfigError:
        return
    assert secret.id and (secret.src is None) != (secret.env is None)
    assert "id=" + secret.id in secret.flag()
