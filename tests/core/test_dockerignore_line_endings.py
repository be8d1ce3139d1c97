""".dockerignore lines end where the docker client's do: at LF only (Go's bufio.ScanLines,
one CR before it dropped). rtbuild read the file in text mode and split it with
str.splitlines, so a file saved with CR line endings was one pattern per line for
rtbuild and one pattern of the whole file for the client: rtbuild left out files the
client sent, and an edit of one was reported cached (reproduced with the 28.2 client's
legacy builder; BuildKit 20.10 failed such a build with 'stream terminated by
RST_STREAM ... PROTOCOL_ERROR', the patterns travelling in a gRPC header). A pattern
with a control character is now refused before the engine, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.context import read_dockerignore, read_patterns, validate_context
from rtbuild.context._dockerignore import PatternMatcher
from rtbuild.errors import BuildContextError


def test_crlf_lines_are_lines() -> None:
    assert read_patterns("a.log\r\n!keep.log \r\n\r\n# c\r\nb\r") == ["a.log", "!keep.log", "b"]


def test_a_cr_alone_ends_no_line(context: Path) -> None:
    (context / ".dockerignore").write_bytes(b"a.log\rb.log\r")
    assert read_dockerignore(str(context)) == ["a.log\rb.log"]


def test_other_breaks_python_knows_end_no_line_either() -> None:
    # str.splitlines also breaks at \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029
    assert read_patterns("a\u2028b\n") == ["a\u2028b"]
    assert read_patterns("\u00a0a\u3000\n") == ["a"]  # Go's TrimSpace trims these too


def test_a_pattern_with_a_control_character_is_refused_before_the_engine(context: Path) -> None:
    (context / ".dockerignore").write_bytes(b"a.log\rb.log\r")
    with pytest.raises(BuildContextError, match="control character") as caught:
        validate_context(str(context))
    error = caught.value
    assert error.exit_code == 2 and error.step == "read .dockerignore"
    assert error.hint is not None and "line endings" in error.hint
    with pytest.raises(BuildContextError):
        PatternMatcher(["x\x1by"])
    assert PatternMatcher(["tab\there"]).excluded("tab\there")  # a tab is no control character here
