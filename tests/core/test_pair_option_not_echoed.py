"""A ``--build-arg``/``--label`` without ``KEY=`` is a usage error that does not echo the
value: ``--build-arg "$GH_TOKEN"`` (the name forgotten) printed the token on stderr and in
``--json`` ("expected KEY=VALUE, got 'ghp_...'"), as a malformed ``--secret`` did before 4796ab0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild.testing import run_cli

TOKEN = "ghp_pairHunter2NoName"


@pytest.mark.parametrize("option", ["--build-arg", "--label"])
@pytest.mark.parametrize("value", [TOKEN, f"={TOKEN}"], ids=["no-equals", "no-name"])
def test_a_value_without_a_name_is_not_echoed(context: Path, option: str, value: str) -> None:
    result = run_cli(["build", str(context), "-t", "pair:1", option, value, "--json"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.stderr and option in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2
    assert TOKEN not in result.stderr + result.stdout
