"""A secret value is masked also as engines print it inside a quoted string or a URL. Docker
20.10's BuildKit quotes the URL of a failed ``ADD`` with Go's ``%q``, so a build arg value
holding a ``"`` was printed as ``\\"`` and the raw value matched nothing: the line below
(captured from the real engine, ``ADD https://127.0.0.1:9/file?token=${API_TOKEN} /f``)
reached the log, the error message, its log tail and ``--json`` with the token."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from rtbuild.enginekit import Redactor

TOKEN = 'Tk ab"c<d>é'
ENGINE_LINE = (
    '#5 ERROR: Get "https://127.0.0.1:9/file?token=Tk ab\\"c<d>é": dial tcp 127.0.0.1:9: connect: connection refused'
)


def test_the_engines_go_quoted_error_line_is_masked() -> None:
    shown = Redactor.for_build({"API_TOKEN": TOKEN})(ENGINE_LINE)
    assert (
        shown == '#5 ERROR: Get "https://127.0.0.1:9/file?token=***": dial tcp 127.0.0.1:9: connect: connection refused'
    )


@pytest.mark.parametrize(
    "spelt",
    [
        'pa"ss\\word\tx',  # raw
        'pa\\"ss\\\\word\\tx',  # Go %q / JSON
        quote('pa"ss\\word\tx', safe=""),  # percent-encoded in a URL
    ],
    ids=["raw", "quoted", "percent-encoded"],
)
def test_each_spelling_of_a_secret_file_value_is_masked(spelt: str) -> None:
    redactor = Redactor.for_build({}, [b'pa"ss\\word\tx'])
    assert redactor(f"error: {spelt}: refused") == "error: ***: refused"


def test_a_multi_line_secret_quoted_whole_is_masked() -> None:
    value = "-----BEGIN KEY-----\nabcdefgh\n-----END KEY-----\n"
    line = f"failed to parse {json.dumps(value)}"
    assert Redactor.for_build({}, [value.encode()])(line) == 'failed to parse "***"'
