"""Every contract v2 field from the CLI (and build-many) to the builder: typed for a v2
builder, as Docker-style flags for a v1 one; --dry-run; builders that need no Dockerfile."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from rtbuild.testing import FakeSite, run_cli

# A v2 builder: overrides build_request and records the typed request it got.
V2_BUILDER = """
import json, os
from rtbuild import BuilderCapabilities, BuildResult, RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    capabilities = BuilderCapabilities(
        target=True, no_cache=True, secrets=True, cache_export=True, multi_platform=True,
        needs_dockerfile=False,
    )
    requests = []

    def build(self, path, tags, platform=None, extra_build_args=None):
        raise AssertionError("a v2 builder is called through build_request")

    def build_request(self, request):
        type(self).requests.append(request)
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.1, cached=True,
                           details={"engine": "v2", "secret": request.secrets[0].value().decode()
                                    if request.secrets else None})

    def plan(self, request):
        return "v2 would build " + " ".join(request.tags)

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-v1", "v1", module="v1_site_builder")
    rtbuild_site.add_builder("rtbuild-v2", "v2", source=V2_BUILDER, module="v2_site_builder")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def _module(name: str) -> Any:
    return sys.modules[f"{name}_site_builder"].SiteBuilder


ALL_FLAGS = [
    "--target", "test", "--no-cache", "-f", "Dockerfile", "--secret", "id=tok,env=RT_SECRET",
    "--cache-from", "type=local,src=/c", "--cache-to", "type=local,dest=/c", "--build-arg", "A=1",
    "--label", "team=agents", "--extra", "--network=none",
]  # fmt: skip


def test_a_v1_builder_gets_every_field_as_a_flag(site: FakeSite, context: Path) -> None:
    flags = [f for f in ALL_FLAGS if f not in ("--secret", "id=tok,env=RT_SECRET")]
    (context / "Dockerfile").write_text("FROM scratch AS test\n")
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", *flags])
    assert result.exit_code == 0, result.stderr
    (call,) = [c for c in _module("v1").calls if c["method"] == "build"]
    assert call["extra_build_args"] == [
        "-f", "Dockerfile", "--build-arg", "A=1", "--label", "team=agents", "--target", "test", "--no-cache",
        "--cache-from", "type=local,src=/c", "--cache-to", "type=local,dest=/c", "--network=none",
    ]  # fmt: skip
    # Secrets are not among what a v1 builder declares: refused before any work.
    refused = run_cli(["build", str(context), "-t", "img:2", "--builder", "v1", "--secret", "id=t,env=RT_SECRET"])
    assert refused.exit_code == 2 and "secrets" in refused.stderr
    assert len([c for c in _module("v1").calls if c["method"] == "build"]) == 1


def test_a_v2_builder_gets_the_typed_request_and_reports_cached_and_details(site: FakeSite, context: Path) -> None:
    args = ["build", str(context), "-t", "img:1", "--builder", "v2", "--platform", "linux/amd64,linux/arm64"]
    result = run_cli([*args, *ALL_FLAGS, "--json"], env={"RT_SECRET": "s3cret"})
    assert result.exit_code == 0, result.stderr
    (request,) = _module("v2").requests
    assert (request.target, request.no_cache, request.dockerfile) == ("test", True, "Dockerfile")
    assert request.build_args == {"A": "1"} and request.labels == {"team": "agents"}
    assert [(s.id, s.env) for s in request.secrets] == [("tok", "RT_SECRET")]
    assert request.cache_from == ["type=local,src=/c"] and request.cache_to == ["type=local,dest=/c"]
    assert request.platforms() == ["linux/amd64", "linux/arm64"] and request.extra_build_args == ["--network=none"]
    assert request.data == {}
    payload = result.json()
    assert payload["cached"] is True and payload["details"]["engine"] == "v2"


def test_a_context_without_a_dockerfile_builds_through_a_builder_that_needs_none(
    site: FakeSite, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "main.py").write_text("print('hi')\n")
    assert run_cli(["build", str(bare), "-t", "img:1", "--builder", "v2"]).exit_code == 0
    refused = run_cli(["build", str(bare), "-t", "img:1", "--builder", "v1"])
    assert refused.exit_code == 2 and "Dockerfile" in refused.stderr


def test_dry_run_prints_the_plan_and_builds_nothing(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "img:1", "-t", "img:2", "--builder", "v2", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "v2 would build img:1 img:2\n"
    assert _module("v2").requests == []
    (context / "Dockerfile").write_text("FROM scratch AS t\n")
    v1 = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--dry-run", "--json", "--target", "t"])
    assert v1.exit_code == 0, v1.stderr
    payload = v1.json()
    assert payload["dry_run"] is True and "--target t" in payload["plan"]
    assert [c for c in _module("v1").calls if c["method"] == "build"] == []


def test_a_target_that_names_no_stage_is_refused_before_any_work(site: FakeSite, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch AS Base\nFROM base AS final\n")
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "tests", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert error["error"] == "BuildContextError" and error["step"] == "check target stage"
    assert "'tests'" in error["message"] and error["hint"] == "use one of: Base, final"
    assert error["log_tail"] == ["stages in Dockerfile: Base, final"]
    assert [c for c in _module("v1").calls if c["method"] == "build"] == []
    # BuildKit takes stage names in any case (Podman only as written): the core refuses
    # only what no engine would build, and leaves the case to the builder.
    assert run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "Base"]).exit_code == 0
    other_case = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "BASE"])
    assert other_case.exit_code == 1 and "step: fake build" in other_case.stderr
    # Without named stages the hint says how to name one; a dry run is refused the same way.
    (context / "Dockerfile").write_text("FROM scratch\n")
    bare = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "t", "--dry-run"])
    assert bare.exit_code == 2 and "FROM IMAGE AS NAME" in bare.stderr and "Traceback" not in bare.stderr
    # A byte-order mark before the first FROM (the engines drop it) hides no stage.
    (context / "Dockerfile").write_bytes(b"\xef\xbb\xbfFROM scratch AS t\r\n")
    assert run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "t"]).exit_code == 0
    # Nor does an empty line inside a continued FROM, which BuildKit skips (the fake builder
    # does not model it: its own error says the core let the build through).
    (context / "Dockerfile").write_text("FROM scratch \\\n\n  AS t\n")
    continued = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "t"])
    assert "check target stage" not in continued.stderr
    # Another frontend's stages are not ours to know: left to the builder (which refuses).
    (context / "Dockerfile").write_text("# syntax=docker/dockerfile:1\nFROM scratch\n")
    syntax = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "t"])
    assert syntax.exit_code == 1 and "step: fake build" in syntax.stderr
    (context / "Dockerfile").write_text("FROM scratch\n")
    frontend = ["--build-arg", "BUILDKIT_SYNTAX=docker/dockerfile:1"]
    by_arg = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--target", "t", *frontend])
    assert by_arg.exit_code == 1 and "step: fake build" in by_arg.stderr


def test_a_missing_named_dockerfile_hints_at_the_context_relative_path(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "-f", "docker/Dockerfile", "--json"])
    assert result.exit_code == 2
    error = result.json()
    assert error["step"] == "validate context" and "docker/Dockerfile" in error["message"]
    relative = f"`--file docker/Dockerfile` is read relative to the context {str(context)!r}"
    assert error["hint"] == relative + " (or give an absolute path)"
    (context / "Dockerfile").unlink()
    plain = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--json"]).json()
    assert plain["hint"] == "add a Dockerfile to the context, or name one with `-f/--file`"


def test_dry_run_still_refuses_what_the_builder_cannot_do(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v2", "--dry-run", "--push"])
    assert result.exit_code == 2 and "push" in result.stderr
    multi = run_cli(["build", str(context), "-t", "i:1", "--builder", "v1", "--platform", "linux/amd64,linux/arm64"])
    assert multi.exit_code == 2 and "multi_platform" in multi.stderr


@pytest.mark.parametrize("secret", ["tok", "id=tok", "id=tok,src=a,env=B", "id=tok,file=x"])
def test_a_malformed_secret_is_a_usage_error(site: FakeSite, context: Path, secret: str) -> None:
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v2", "--secret", secret])
    assert result.exit_code == 2 and "--secret" in result.stderr


@pytest.mark.parametrize(
    "secret", ["Zq9-raw-token-value", "ZHE5LXJhdy10b2tlbg==", "id=tok,value=Zq9-raw-token-value", "id=t,x=Zq9,src=a"]
)
def test_a_malformed_secret_is_not_echoed_back(site: FakeSite, context: Path, secret: str) -> None:
    """``--secret "$TOKEN"`` (the value instead of a spec) or an inline ``value=`` must not
    put the value in the error: only the parts rtbuild knows are shown."""
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v2", "--secret", secret, "--json"])
    assert result.exit_code == 2 and "--secret" in result.stderr + result.stdout
    assert "Zq9" not in result.stdout + result.stderr and "ZHE5" not in result.stdout + result.stderr


def test_build_many_entries_take_the_same_fields(site: FakeSite, context: Path, tmp_path: Path) -> None:
    (tmp_path / "ctx2").mkdir()
    (tmp_path / "ctx2" / "Dockerfile.alt").write_text("FROM scratch\n")
    (tmp_path / "images.toml").write_text(
        f'[[build]]\npath = "{context}"\ntags = ["a:1"]\nbuilder = "v2"\ntarget = "t"\nno_cache = true\n'
        'secrets = ["id=tok,src=/dev/null"]\ncache_from = ["r/c"]\ncache_to = ["r/c2"]\nforce = true\n\n'
        '[[build]]\npath = "ctx2"\ntags = ["b:1"]\nbuilder = "v1"\ndockerfile = "Dockerfile.alt"\n'
    )
    result = run_cli(["build-many", str(tmp_path / "images.toml"), "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    (request,) = _module("v2").requests
    assert (request.target, request.no_cache, request.force) == ("t", True, True)
    assert [s.id for s in request.secrets] == ["tok"] and request.cache_from == ["r/c"]
    (call,) = [c for c in _module("v1").calls if c["method"] == "build"]
    assert call["extra_build_args"][:2] == ["-f", "Dockerfile.alt"]
    assert json.loads(result.stdout)["ok"] is True


def test_a_secret_source_must_be_a_small_readable_file(tmp_path: Path) -> None:
    """A FIFO would hang the read (and leave the engine nothing to read); /dev/zero would
    never end; BuildKit refuses secrets over 500 KiB anyway. /dev/null is an empty secret."""
    from rtbuild import BuildSecret, ConfigError

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is a pipe or socket") as info:
        BuildSecret.parse(f"id=tok,src={fifo}").value()
    assert info.value.hint and "env=" in info.value.hint
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024 + 1))
    for source in (big, Path("/dev/zero")):
        with pytest.raises(ConfigError, match="larger than 500 KiB"):
            BuildSecret.parse(f"id=tok,src={source}").value()
    assert BuildSecret.parse("id=tok,src=/dev/null").value() == b""
    fits = tmp_path / "fits"
    fits.write_bytes(b"y" * (500 * 1024))
    assert BuildSecret.parse(f"id=tok,src={fits}").value() == b"y" * (500 * 1024)


def test_a_secret_that_cannot_be_read_is_the_users_to_fix_before_any_work(site: FakeSite, context: Path) -> None:
    args = ["build", str(context), "-t", "img:1", "--builder", "v2", "--json"]
    unset = run_cli([*args, "--secret", "id=tok,env=RT_UNSET_SECRET"], env={"RT_UNSET_SECRET": None})
    assert unset.exit_code == 2
    error = unset.json()
    assert (error["step"], error["blame"]) == ("read secret", None)
    assert "RT_UNSET_SECRET" in error["message"] and "export RT_UNSET_SECRET" in error["hint"]
    missing = run_cli([*args, "--secret", f"id=tok,src={context / 'absent'}"]).json()
    assert missing["step"] == "read secret" and missing["blame"] is None and "src=" in missing["hint"]
    assert _module("v2").requests == []


@pytest.mark.parametrize("text", ["", "# only a comment\n", "RUN echo hi\n", "\ufeffARG X\n"])
def test_a_dockerfile_without_from_is_refused_before_any_work(site: FakeSite, context: Path, text: str) -> None:
    """The engines fail on it as a build error (exit 1, the catch-all hint): "the Dockerfile
    cannot be empty", "file with no instructions", "no build stage in current context"."""
    (context / "Dockerfile").write_text(text)
    result = run_cli(["build", str(context), "-t", "img:1", "--builder", "v1", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert error["error"] == "BuildContextError" and "FROM" in error["hint"]
    assert [c for c in _module("v1").calls if c["method"] == "build"] == []
    for other in ("  from scratch\n", "# syntax=docker/dockerfile:1\nRUN x\n"):  # left to the builder
        (context / "Dockerfile").write_text(other)
        assert "validate context" not in run_cli(["build", str(context), "-t", "img:1", "--builder", "v1"]).stderr
