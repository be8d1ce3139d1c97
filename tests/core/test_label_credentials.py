"""A label holding a URL with a password is refused before any work, for every builder.

A label is stored in the image's configuration (``docker inspect``), readable by anyone who
can pull the image, and the log's command line and ``--dry-run`` showed it whole: GitLab's
``--label org.opencontainers.image.source=$CI_REPOSITORY_URL`` put the job token
(``https://gitlab-ci-token:TOKEN@host/...``) into the image.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest, ConfigError
from rtbuild.testing import FakeBuilder, FakeSite, run_cli

TOKEN = "glcbt-Jz8-job-token"
URL = f"https://gitlab-ci-token:{TOKEN}@gitlab.example/group/app.git"


@pytest.fixture
def context(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path / "ctx"


@pytest.mark.parametrize(
    "flags",
    [
        ["--label", f"org.opencontainers.image.source={URL}"],
        [f"--extra=--label=org.opencontainers.image.source={URL}"],
        ["--extra=--label", f"--extra=org.opencontainers.image.source={URL}"],
    ],
    ids=["label", "extra-joined", "extra-separate"],
)
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"], ["--json"]], ids=["build", "dry-run", "json"])
def test_the_cli_refuses_it_and_never_shows_the_token(context: Path, flags: list[str], dry_run: list[str]) -> None:
    result = run_cli(["build", str(context), "-t", "app:1", *flags, *dry_run])
    assert result.exit_code == 2, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert "org.opencontainers.image.source" in result.stdout + result.stderr
    assert "CI_PROJECT_URL" in result.stdout + result.stderr


def test_the_api_refuses_it_before_the_builder_runs(context: Path) -> None:
    builder = FakeBuilder()
    request = BuildRequest(path=str(context), tags=["app:1"], labels={"src": URL})
    with pytest.raises(ConfigError) as info:
        rtbuild.run_build(request, builder=builder)
    assert TOKEN not in info.value.render()
    assert builder.calls == []


def test_a_url_without_a_password_is_a_label_like_any_other(context: Path) -> None:
    builder = FakeBuilder()
    request = BuildRequest(path=str(context), tags=["app:1"], labels={"src": "https://gitlab.example/group/app"})
    rtbuild.run_build(request, builder=builder)
    assert [call["method"] for call in builder.calls].count("build") == 1
