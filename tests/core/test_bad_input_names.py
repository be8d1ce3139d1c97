"""Bad input a user hands rtbuild, refused before any work (exit 2) with the place named:
build-arg and label names no ``NAME=VALUE`` argument can carry (from the configuration
file, a build-many file or the API), tags pinned to a digest, a key given twice in a YAML
build-many file. Also: naming a 10,000-entry build-many file is linear.

Hypothesis checks that the configuration and the CLI's ``K=V`` parser agree on which
names are usable: whatever the configuration accepts reaches the engine as the same pair."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtbuild import BuildRequest, Config, ConfigError, load_config, run_build
from rtbuild._framework.batch import BatchEntry, load_batch_file, requests_from
from rtbuild._framework.pipeline import plan_build
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild.cli.commands._options import parse_pairs
from rtbuild.errors import InvalidReferenceError
from rtbuild.testing import FakeBuilder, FakeSite, run_cli

DIGEST = "sha256:" + "0" * 64


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return ctx


# --- build-arg and label names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ('push = false\nlabels = { "" = "x" }\n', 2, "'labels'", "the key '' is empty"),
        ('[build_args]\n"A=B" = "x"\n', 1, "'build_args'", "the key 'A=B' holds '='"),
        ('[sandbox]\nbuild_args = { "=" = 1 }\n', 2, "'sandbox.build_args'", "the key '=' holds '='"),
    ],
)
def test_a_config_name_no_argument_can_carry_is_refused_at_its_line(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    # Before: accepted; the engine got `--label =x` (docker refused it after the build
    # started: exit 1, "check the --extra arguments") or `--build-arg A=B=x` (A set to "B=x").
    path = tmp_path / "rtbuild.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.message.startswith(f"{path}:{line}: ") and key in info.value.message
    assert problem in info.value.message and info.value.step == "read configuration"


def test_pyproject_table_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.rtbuild]\nbuild_args = { "" = "1" }\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml:5: .*'tool.rtbuild.build_args'.*the key '' is empty"):
        load_config(path, env={})


@pytest.mark.parametrize("field", ["build_args", "labels"])
@pytest.mark.parametrize("key", ["", "A=B"])
def test_api_request_with_such_a_name_builds_nothing(
    context: Path, rtbuild_pm: RtbuildPluginManager, field: str, key: str
) -> None:
    builder = FakeBuilder()
    request = BuildRequest(str(context), tags=["app:1"], **{field: {key: "v"}})
    with pytest.raises(ConfigError, match=rf"BuildRequest.{field} is unusable: the key {key!r}"):
        run_build(request, config=Config(), pm=rtbuild_pm, builder=builder)
    assert builder.calls == []


def test_build_many_entry_with_such_a_name_is_refused_before_any_build(tmp_path: Path, context: Path) -> None:
    path = tmp_path / "images.toml"
    path.write_text(
        '[[build]]\npath = "ctx"\ntags = ["app:1"]\n\n[[build]]\npath = "ctx"\ntags = ["b:1"]\nlabels = { "" = "x" }\n'
    )
    with pytest.raises(ConfigError, match=r"images.toml: build entry 2 \(b:1\): 'labels' .*the key '' is empty"):
        load_batch_file(path)


KEYS = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=6)
VALUES = st.one_of(
    st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=6),
    st.integers(),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=st.dictionaries(KEYS, VALUES, max_size=3), which=st.sampled_from(["build_args", "labels"]))
def test_config_accepts_exactly_the_pairs_the_cli_reads_back(table: dict[str, Any], which: str) -> None:
    """A table the configuration accepts reaches the engine as ``--build-arg K=V``: read back
    (as the CLI and the engines split it), every pair is the one written. A table it
    refuses is refused as a ConfigError, never another exception."""
    try:
        config = load_config(os.devnull, env={}, overrides={which: table})
    except ConfigError:
        assert any(not key or "=" in key for key in table)
        return
    written = getattr(config, which)
    for key, value in written.items():
        assert parse_pairs([f"{key}={value}"], "--build-arg") == {key: value}


@given(text=st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=8))
def test_cli_pairs_are_what_the_configuration_accepts(text: str) -> None:
    try:
        pairs = parse_pairs([text], "--label")
    except click.BadParameter:
        return
    ((key, value),) = pairs.items()
    assert f"{key}={value}" == text
    load_config(os.devnull, env={}, overrides={"labels": pairs})  # no ConfigError: the same rule


# --- tags pinned to a digest -------------------------------------------------------------------


@pytest.mark.parametrize("tag", [f"app@{DIGEST}", f"app:1@{DIGEST}", f"127.0.0.1:5000/team/app@{DIGEST}"])
def test_a_digest_tag_is_refused_before_the_builder(context: Path, rtbuild_pm: RtbuildPluginManager, tag: str) -> None:
    # Before: accepted; docker started the build, then "build tag cannot contain a digest", exit 1.
    builder = FakeBuilder()
    with pytest.raises(InvalidReferenceError, match="not pinned to a digest") as info:
        run_build(BuildRequest(str(context), tags=["app:2", tag]), config=Config(), pm=rtbuild_pm, builder=builder)
    assert builder.calls == [] and "drop '@sha256:...'" in (info.value.hint or "")
    with pytest.raises(InvalidReferenceError, match="not pinned to a digest"):
        plan_build(BuildRequest(str(context), tags=[tag]), config=Config(), pm=rtbuild_pm, builder=builder)


def test_a_digest_tag_on_the_command_line_exits_2_and_prints_no_result(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-v1", "v1", module="qa_digest_site_builder")
    result = run_cli(
        ["--config", os.devnull, "build", str(context), "-t", f"app@{DIGEST}", "--builder", "v1", "--json", "-q"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "InvalidReferenceError"
    assert "Traceback" not in result.stderr and "not pinned to a digest" in result.stderr


def test_a_digest_tag_in_a_build_many_file_is_refused(tmp_path: Path, context: Path) -> None:
    path = tmp_path / "images.toml"
    path.write_text(f'[[build]]\npath = "ctx"\ntags = ["app:1", "app@{DIGEST}"]\n')
    with pytest.raises(ConfigError, match=r"build entry 1 \(app:1\): invalid tag .*not pinned to a digest"):
        load_batch_file(path)


# --- YAML build-many files ----------------------------------------------------------------


def test_a_yaml_key_given_twice_is_refused_with_its_line(tmp_path: Path, context: Path) -> None:
    # Before: the second `path:` silently replaced the first (TOML refuses the same file).
    path = tmp_path / "images.yaml"
    path.write_text("- path: ctx\n  tags: [a:1]\n- path: ctx\n  tags: [b:1]\n  path: elsewhere\n")
    with pytest.raises(ConfigError) as info:
        load_batch_file(path)
    assert "found key 'path' twice (line 5, column 3)" in info.value.message


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path, context: Path) -> None:
    (tmp_path / "other").mkdir()
    path = tmp_path / "images.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            build:
              - &base {path: other, tags: [a:1], labels: {team: x}}
              - <<: *base
                path: ctx
                tags: [b:1]
            """
        )
    )
    first, second = load_batch_file(path)
    assert first.request.path == str(tmp_path / "other") and second.request.path == str(context)
    assert second.request.labels == {"team": "x"}


# --- many entries ----------------------------------------------------------------------------


class _CountingTag(str):
    """A tag that counts how often it is compared: the naming of unnamed entries compared
    every entry's first tag with every other's (list.count in a loop)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        type(self).compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_naming_unnamed_entries_is_linear(context: Path) -> None:
    n = 400
    requests = [BuildRequest(str(context), tags=[_CountingTag(f"app:{i}")]) for i in range(n)]
    _CountingTag.compared = 0
    entries: list[BatchEntry] = requests_from(requests)
    # Before: n * (n - 1) = 159,600 comparisons (5.8 s of a 10,000-entry file's 14.5 s load).
    assert _CountingTag.compared < 10 * n
    assert [e.name for e in entries] == [f"app:{i}" for i in range(n)]
    twice = requests_from([BuildRequest(str(context), tags=["a:1"]), BuildRequest(str(context), tags=["a:1"])])
    assert [e.name for e in twice] == ["a:1#1", "a:1#2"]


# --- rtbuild runtime --repo ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "problem"),
    [("UP", "repository names must be lowercase"), ("bad repo", "is not a valid repository name")],
)
def test_a_malformed_runtime_repo_is_named_as_given(repo: str, problem: str) -> None:
    from types import SimpleNamespace

    from rtbuild.runtime._select import runtime_tags

    composition: Any = SimpleNamespace(lock_hash="1" * 16, source_hash="2" * 16)
    # Before: "invalid image reference 'UP:0.1.0_1111..._2222...'", a tag the user never wrote,
    # and no word of --repo / [runtime] repo / RTBUILD_RUNTIME_REPO.
    with pytest.raises(InvalidReferenceError) as info:
        runtime_tags(composition, repo)
    assert info.value.message.startswith(f"runtime repository {repo!r} is not a repository name: ")
    assert problem in info.value.message and "1111" not in info.value.message
    assert "RTBUILD_RUNTIME_REPO" in (info.value.hint or "")
    assert runtime_tags(composition, "127.0.0.1:5000/rt").lock.startswith("127.0.0.1:5000/rt:")


# --- a secret id given twice -----------------------------------------------------------------


def test_a_secret_id_given_twice_is_refused_before_any_work(
    rtbuild_site: FakeSite, context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: accepted, and Docker 20.10's BuildKit mounted the last one (the env value, not the file's).
    rtbuild_site.add_builder("rtbuild-v1", "v1", module="qa_secret_site_builder")
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("QA_TOKEN", "from-env")
    twice = ["--secret", f"id=tok,src={tmp_path / 'token'}", "--secret", "id=tok,env=QA_TOKEN"]
    for extra in ([], ["--dry-run"]):
        result = run_cli(
            ["--config", os.devnull, "build", str(context), "-t", "app:1", "--builder", "v1", *twice, *extra]
        )
        assert result.exit_code == 2 and result.stdout == ""
        assert "the id 'tok' is given twice" in result.stderr and "from-" not in result.stderr
    assert "qa_secret_site_builder" not in sys.modules  # refused before the builder was even loaded
    ok = run_cli(["--config", os.devnull, "build", str(context), "-t", "app:1", "--builder", "v1", "--dry-run",
                  "--secret", "id=a,env=QA_TOKEN", "--secret", "id=b,env=QA_TOKEN"])  # fmt: skip
    assert "given twice" not in ok.stderr  # (refused next for its capabilities: v1 declares no secrets)
    path = tmp_path / "images.toml"
    path.write_text('[[build]]\npath = "ctx"\ntags = ["app:1"]\nsecrets = ["id=tok,env=A", "id=tok,env=B"]\n')
    with pytest.raises(ConfigError, match=r"build entry 1 \(app:1\): .*the id 'tok' is given twice"):
        load_batch_file(path)


def test_a_malformed_platform_in_a_build_many_file_is_refused_before_any_build(tmp_path: Path, context: Path) -> None:
    # Before: the file was accepted; entry 1 built, entry 2 failed at 'validate request' (exit 1),
    # though "the file is checked completely before any build starts".
    path = tmp_path / "images.yaml"
    path.write_text("- path: ctx\n  tags: [a:1]\n- path: ctx\n  tags: [b:1]\n  platform: linux\n")
    with pytest.raises(ConfigError, match=r"images.yaml: build entry 2 \(b:1\): invalid platform 'linux'") as info:
        load_batch_file(path)
    assert info.value.step == "read build-many file"
    path.write_text("defaults: {platform: 'linux/amd64,linux/arm64'}\nbuild: [{path: ctx, tags: [a:1]}]\n")
    (entry,) = load_batch_file(path)
    assert entry.request.platform == "linux/amd64,linux/arm64"


def test_a_trailing_iidfile_without_its_file_is_refused_before_the_builder(
    context: Path, rtbuild_pm: RtbuildPluginManager
) -> None:
    # Before: not seen as --iidfile at all; docker took the context for its FILE and failed
    # after rtbuild started it ('"docker build" requires exactly 1 argument', exit 1).
    builder = FakeBuilder()
    request = BuildRequest(str(context), tags=["app:1"], extra_build_args=["--network=none", "--iidfile"])
    with pytest.raises(ConfigError, match="--iidfile '' is empty") as info:
        run_build(request, config=Config(), pm=rtbuild_pm, builder=builder)
    assert info.value.step == "check --iidfile" and builder.calls == []


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path, context: Path) -> None:
    # Before: "malformed TOML: Invalid statement (at line 1, column 1)", for a file that
    # looks right in every editor (Notepad's UTF-8 writes a BOM).
    bom = b"\xef\xbb\xbf"
    path = tmp_path / "rtbuild.toml"
    path.write_bytes(bom + b'builder = "podman"\n[build_args]\nA = "1"\n')
    config = load_config(path, env={})
    assert config.builder == "podman" and config.build_args == {"A": "1"}
    path.write_bytes(bom + b'builder = "podman"\nbuiler = 1\n')
    with pytest.raises(ConfigError, match=r"rtbuild.toml:2: unknown key 'builer'"):
        load_config(path, env={})
    batch = tmp_path / "images.toml"
    batch.write_bytes(bom + b'[[build]]\npath = "ctx"\ntags = ["app:1"]\n')
    (entry,) = load_batch_file(batch)
    assert entry.request.tags == ["app:1"]


@pytest.mark.parametrize("path", ["-", "https://example.invalid/app.git#main", "git@example.invalid:team/app.git"])
def test_a_context_on_stdin_or_at_a_url_is_explained(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rtbuild_site: FakeSite
) -> None:
    # Before: "build context './-' does not exist" and "check the PATH argument", for what
    # `docker build -` / `docker build URL` accept.
    monkeypatch.chdir(tmp_path)
    rtbuild_site.add_builder("rtbuild-v1", "v1", module="qa_context_site_builder")
    monkeypatch.setenv("RTBUILD_BUILDER", "v1")
    result = run_cli(["--config", os.devnull, "build", path, "-t", "app:1", "--dry-run"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "does not exist" in result.stderr and "not stdin (-) or a URL" in result.stderr
    plain = run_cli(["--config", os.devnull, "build", "nope", "-t", "app:1", "--dry-run"])
    assert plain.exit_code == 2 and "check the PATH argument" in plain.stderr


@pytest.mark.parametrize(
    ("labels", "extra"), [({"team name": "x"}, []), ({"ok": "a value with spaces"}, ["--label", " x=1"])]
)
def test_a_label_name_with_whitespace_is_refused_before_the_builder(
    context: Path, rtbuild_pm: RtbuildPluginManager, labels: dict[str, str], extra: list[str]
) -> None:
    # Before: accepted; docker refused it once started ("label 'team name' contains whitespaces",
    # exit 125 -> rtbuild exit 1 with a hint about --extra).
    builder = FakeBuilder()
    request = BuildRequest(str(context), tags=["app:1"], labels=labels, extra_build_args=extra)
    with pytest.raises(ConfigError, match="is empty or holds whitespace") as info:
        run_build(request, config=Config(), pm=rtbuild_pm, builder=builder)
    assert info.value.step == "validate request" and builder.calls == []
    fine = BuildRequest(str(context), tags=["app:1"], labels={"ok": "a value with spaces"})
    assert run_build(fine, config=Config(), pm=rtbuild_pm, builder=builder).image == "app:1"
