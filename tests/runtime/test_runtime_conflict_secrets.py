"""Two runtime plugins setting one build arg or env var differently: the error names both
plugins and the key, and shows the two values only when neither may be a secret (the error
reaches stderr, ``--json`` and logs)."""

from __future__ import annotations

import pytest
from rtbuild.errors import PluginError
from rtbuild.runtime._checks import check_conflicts
from rtbuild.runtime._plugin import RuntimeRequirements


@pytest.mark.parametrize(
    ("kind", "key", "first", "second"),
    [
        ("build_args", "NPM_TOKEN", "npm_Kq7-first-token", "npm_Kq7-second-token"),
        ("env", "PIP_INDEX_URL", "https://pypi.example/simple", "https://__token__:Kq7-pw@pypi.example/simple"),
    ],
)
def test_secret_values_in_a_conflict_are_not_shown(kind: str, key: str, first: str, second: str) -> None:
    one, two = RuntimeRequirements(**{kind: {key: first}}), RuntimeRequirements(**{kind: {key: second}})
    with pytest.raises(PluginError) as info:
        check_conflicts({"one": one, "two": two})
    text = info.value.render()
    assert "'one'" in text and "'two'" in text and key in text and "differently" in text
    assert "Kq7" not in text


def test_plain_values_in_a_conflict_are_shown() -> None:
    one, two = RuntimeRequirements(env={"PORT": "3000"}), RuntimeRequirements(env={"PORT": "8888"})
    with pytest.raises(PluginError, match=r"\('3000' vs '8888'\)"):
        check_conflicts({"one": one, "two": two})
