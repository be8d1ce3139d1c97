"""A context directory whose name starts with a dash (`rtbuild build -t app:1 -- -ctx`):
rtbuild validated and hashed it, then handed it to the engine's CLI as its last argument,
which read it as options ('unknown shorthand flag: 'c' in -ctx', exit 125, blamed on the
--extra arguments). The core spells it ./-ctx for every builder."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import BuildRequest
from rtbuild._framework.pipeline import validate_request


@pytest.mark.parametrize(("given", "spelt"), [("-ctx", "./-ctx"), ("--", "./--"), ("./-ctx", "./-ctx"), ("ctx", "ctx")])
def test_a_path_that_reads_as_an_option_is_spelt_as_a_path(given: str, spelt: str) -> None:
    request = BuildRequest(path=given, tags=["app:1"])
    validate_request(request)
    assert request.path == spelt


def test_the_same_directory_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "-ctx").mkdir()
    monkeypatch.chdir(tmp_path)
    request = BuildRequest(path="-ctx", tags=["app:1"])
    validate_request(request)
    assert Path(request.path).resolve() == (tmp_path / "-ctx").resolve()
