"""A malformed build-many YAML file is reported by line and column, never by the text there.
PyYAML's pure-Python loader (a PyYAML without libyaml) quotes the line around the error, so
a build arg's value on that line (``API_TOKEN: ...``) was printed on stderr and in --json."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rtbuild import ConfigError
from rtbuild._framework.batchfile import load_batch_file

TOKEN = "yaml-snippet-hunter2"


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize(
    "text",
    [
        f"- path: .\n  tags: [a:1]\n  build_args: {{API_TOKEN: {TOKEN}, OTHER: [a: b}}\n",
        f'- path: .\n  tags: [a:1]\n  build_args:\n    API_TOKEN: "{TOKEN}\n',
    ],
    ids=["flow", "unclosed-quote"],
)
def test_yaml_error_names_the_place_not_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libyaml: bool, text: str
) -> None:
    if not libyaml:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("this PyYAML has no libyaml")
    path = tmp_path / "builds.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="malformed YAML") as info:
        load_batch_file(str(path))
    shown = str(info.value) + info.value.render()
    assert "(line 3, column" in shown or "(line 4, column" in shown  # where, for the user to look
    assert TOKEN not in shown
