"""``--repo`` of prune and metrics takes a repository as the engine names it. A tag
('app:1') or a malformed name matched nothing: prune removed nothing and metrics counted
nothing, exit 0, without a word. Both are usage errors (exit 2) now."""

from __future__ import annotations

import os

import pytest
from rtbuild.testing import FakeSite, run_cli

COMMANDS = [["prune", "--dry-run"], ["metrics", "--file", "no-metrics.jsonl"]]


@pytest.mark.parametrize("command", COMMANDS, ids=["prune", "metrics"])
@pytest.mark.parametrize(
    ("repo", "says"),
    [("app:1", "names a tag or digest; give the repository alone: 'app'"), ("BAD NAME", "is not a repository")],
)
def test_a_tag_or_malformed_repo_is_a_usage_error(
    rtbuild_site: FakeSite, command: list[str], repo: str, says: str
) -> None:
    result = run_cli(["--config", os.devnull, *command, "--repo", repo, "--json"], env={"RTBUILD_CONFIG": None})
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr and result.json()["error"] == "BadParameter"


@pytest.mark.parametrize("repo", ["app", "127.0.0.1:5000/team/app", "ghcr.io/org/tool"])
def test_repositories_pass(rtbuild_site: FakeSite, repo: str) -> None:
    result = run_cli(["--config", os.devnull, "metrics", "--repo", repo, "--json"], env={"RTBUILD_CONFIG": None})
    assert result.exit_code == 0, result.stderr
