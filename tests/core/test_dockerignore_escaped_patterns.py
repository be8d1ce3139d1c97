"""A .dockerignore pattern holding a backslash escape (``\\#x``, ``c\\*d``) is matched by
both docker clients as a regexp, where the escape stands for the character after it:
``\\#x`` leaves out ``#x`` and sends a file named ``\\#x``. Checked on Docker 20.10
(BuildKit, moby20) and the 28.2 client's legacy builder (moby23). rtbuild compared such a
wildcard-free pattern with the path as text, so it hashed ``#x`` and left ``\\#x`` out:
an edit of ``\\#x`` was reported cached while the image held its old contents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild.context import _hashing
from rtbuild.context._dockerignore import PatternMatcher
from rtbuild.context._validate import context_digest, validate_context
from rtbuild.errors import BuildContextError

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)


#: pattern -> (paths the engine leaves out, paths it sends), as seen on both clients
CASES = {
    "\\#x": (["#x"], ["\\#x"]),
    "c\\*d": (["c*d"], ["c\\*d", "cxd"]),
    "\\#d**": (["#dfoo"], ["\\#dfoo"]),
    "**\\#y": (["#y", "sub/#y"], ["sub/\\#y"]),
}


@pytest.mark.parametrize("flavor", ["moby20", "moby23"])
@pytest.mark.parametrize("pattern", sorted(CASES))
def test_an_escape_matches_the_character_after_it(flavor: str, pattern: str) -> None:
    matcher = PatternMatcher([pattern], flavor=flavor)
    left_out, sent = CASES[pattern]
    assert [path for path in left_out if not matcher.excluded(path)] == []
    assert [path for path in sent if matcher.excluded(path)] == []
    assert matcher.exact


@pytest.mark.parametrize("flavor", ["moby20", "moby23"])
def test_a_trailing_backslash_is_a_bad_pattern_before_the_engine(context: Path, flavor: str) -> None:
    """Both clients refuse it ('syntax error in pattern'), which reached the user as the
    engine's message with the catch-all hint, exit 1."""
    with pytest.raises(BuildContextError, match="escapes nothing") as raised:
        PatternMatcher(["a\\"], flavor=flavor)
    assert raised.value.step == "read .dockerignore"
    (context / ".dockerignore").write_text("keep\\\\\n!a\\\n")
    with pytest.raises(BuildContextError, match="escapes nothing") as raised:
        validate_context(str(context))
    assert raised.value.exit_code == 2 and raised.value.hint
    (context / ".dockerignore").write_text("keep\\\\\n")  # an escaped backslash is fine
    validate_context(str(context))


@pytest.mark.parametrize("flavor", ["moby20", "moby23"])
def test_an_edit_of_a_file_named_like_an_escaped_pattern_changes_the_digest(tmp_path: Path, flavor: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (ctx / ".dockerignore").write_text("\\#x\n")
    (ctx / "\\#x").write_text("one\n")
    (ctx / "#x").write_text("left out\n")
    for path in ctx.iterdir():
        os.utime(path, (OLD, OLD))
    first = context_digest(str(ctx), flavor=flavor)
    assert first.ignore_exact
    (ctx / "#x").write_text("left out, edited\n")
    assert context_digest(str(ctx), flavor=flavor).digest == first.digest
    (ctx / "\\#x").write_text("two\n")
    assert context_digest(str(ctx), flavor=flavor).digest != first.digest
