"""The .dockerignore matcher against Docker's (moby/patternmatcher) documented behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.context._dockerignore import PatternMatcher, read_patterns
from rtbuild.errors import BuildContextError


def excluded(patterns: list[str], path: str) -> bool:
    return PatternMatcher(patterns).excluded(path)


def test_read_patterns_comments_trim_and_leading_slash() -> None:
    text = "\ufeff# comment\n  \n/abs/path\n  spaced  \n ! keep \n #kept\n./dot/../x\n"
    assert read_patterns(text) == ["abs/path", "spaced", "!keep", "#kept", "x"]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.go", "a.go", True),
        ("*.go", "dir/a.go", False),  # * does not cross directories
        ("**/*.go", "dir/sub/a.go", True),
        ("**/*.go", "a.go", True),
        ("**.go", "dir/sub/a.go", True),  # leading ** is a suffix match
        ("**/foo", "foo", True),
        ("**/foo", "a/b/foo", True),
        ("**/foo", "a/b/foo/inner.txt", True),  # a matching parent excludes its children
        ("**/foo", "a/xfoo", False),
        ("foo/**/bar", "foo/bar", True),
        ("foo/**/bar", "foo/x/y/bar", True),
        ("foo/**", "foo/x", True),
        ("foo/**", "foox", False),
        ("dir", "dir/file", True),
        ("dir", "dirx/file", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("[^a].txt", "b.txt", True),
        ("[^a].txt", "a.txt", False),
        ("file.txt", "filextxt", False),  # '.' is literal
        ("a+b(c)", "a+b(c)", True),
        ("*", "anything/below", True),
        ("**", "x/y/z", True),
    ],
)
def test_pattern_semantics(pattern: str, path: str, expected: bool) -> None:
    assert excluded([pattern], path) is expected


def test_exceptions_last_match_wins() -> None:
    patterns = ["*.md", "!README.md", "README*"]
    assert excluded(patterns, "CHANGES.md")
    assert excluded(patterns, "README.md")  # excluded again by the last pattern
    assert not excluded(["*.md", "!README.md"], "README.md")


def test_exception_inside_excluded_directory() -> None:
    matcher = PatternMatcher(["logs", "!logs/keep.log"])
    assert matcher.excluded("logs/other.log")
    assert not matcher.excluded("logs/keep.log")
    assert matcher.may_reinclude_below("logs")
    # Old fsutil (20.10) skips the directory; newer fsutil walks it when an exception
    # holds a wildcard (not only a trailing /** or /*).
    assert not PatternMatcher(["logs", "!*.log"], flavor="moby20").may_reinclude_below("logs")
    assert PatternMatcher(["logs", "!*.log"], flavor="moby23").may_reinclude_below("logs")
    assert PatternMatcher(["vendor", "!**/*.go"], flavor="moby23").may_reinclude_below("vendor")
    assert not PatternMatcher(["logs", "!other/**"], flavor="moby23").may_reinclude_below("logs")
    assert not PatternMatcher(["logs"]).may_reinclude_below("logs")


def test_an_exception_with_a_wildcard_reaches_into_an_excluded_directory(tmp_path: Path) -> None:
    """docker 23+: `vendor` + `!**/*.go` sends vendor/pkg/a.go, so its edit changes the digest."""
    from rtbuild.context._validate import context_digest

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "vendor" / "pkg").mkdir(parents=True)
    (tmp_path / "vendor" / "pkg" / "a.go").write_text("package a\n")
    (tmp_path / ".dockerignore").write_text("vendor\n!**/*.go\n")
    first = context_digest(str(tmp_path), flavor="moby23", use_cache=False, collect_paths=True)
    assert ("vendor/pkg/a.go", "f") in (first.paths or [])
    (tmp_path / "vendor" / "pkg" / "a.go").write_text("package b\n")
    assert context_digest(str(tmp_path), flavor="moby23", use_cache=False).digest != first.digest


def test_lone_bang_is_an_error() -> None:
    with pytest.raises(BuildContextError, match="illegal exclusion"):
        PatternMatcher(["!"])


def test_empty_matcher_is_falsy() -> None:
    assert not PatternMatcher([])
    assert not PatternMatcher([]).excluded("x")


def test_a_file_counts_as_kept_out_only_when_every_engines_ignore_file_excludes_it(tmp_path: Path) -> None:
    """BuildKit reads ``Dockerfile.dockerignore`` instead of ``.dockerignore``; Podman reads
    ``.containerignore`` first. A secret's source excluded by ``.dockerignore`` alone is still
    sent by an engine that reads the other file (the warning about it was silent)."""
    from rtbuild.context import sent_with_context

    secret = tmp_path / ".npmrc"
    secret.write_text("token\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text(".npmrc\n")
    assert sent_with_context(str(tmp_path), [str(secret)]) == []
    (tmp_path / "Dockerfile.dockerignore").write_text("*.md\n")
    assert sent_with_context(str(tmp_path), [str(secret)]) == [str(secret)]
    (tmp_path / "Dockerfile.dockerignore").write_text(".npmrc\n")
    assert sent_with_context(str(tmp_path), [str(secret)]) == []
    (tmp_path / ".containerignore").write_text("*.md\n")  # read by Podman after Dockerfile.dockerignore
    assert sent_with_context(str(tmp_path), [str(secret)]) == []
    (tmp_path / "Dockerfile.dockerignore").unlink()  # Podman now reads .containerignore, Docker .dockerignore
    assert sent_with_context(str(tmp_path), [str(secret)]) == [str(secret)]
    (tmp_path / "build.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "build.Dockerfile.containerignore").write_text("**/.npmrc\n")
    (tmp_path / "build.Dockerfile.dockerignore").write_text(".npmrc\n")
    assert sent_with_context(str(tmp_path), [str(secret)], "build.Dockerfile") == []


def test_two_different_dockerfiles_named_are_refused(tmp_path: Path) -> None:
    """The engines' clients build the last ``-f``, rtbuild read the first."""
    from rtbuild.context import dockerfile_args, validate_context

    for name in ("A", "B"):
        (tmp_path / name).write_text("FROM scratch\n")
    assert dockerfile_args(["-f", "A", "--file=B", "-fC", "-f=D", "--file", "E", "--target", "x"]) == list("ABCDE")
    assert validate_context(str(tmp_path), ["-f", "A", "--file", str(tmp_path / "A")]) == str(tmp_path / "A")
    with pytest.raises(BuildContextError) as info:
        validate_context(str(tmp_path), ["-f", "A", "--pull", "--file=B"])
    assert "'A', 'B'" in info.value.message and info.value.hint


def test_a_fifo_dockerignore_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer: rtbuild context, a runtime payload's hash and the
    build's own hash each hung on it for ever."""
    import os

    from _processes import exit_code_in_fork
    from rtbuild.context._dockerignore import read_dockerignore
    from rtbuild.errors import BuildContextError

    os.mkfifo(tmp_path / ".dockerignore")

    def read() -> int:
        try:
            read_dockerignore(str(tmp_path))
        except BuildContextError as exc:
            return 0 if "not a regular file" in exc.message else 2
        return 3

    assert exit_code_in_fork(read, timeout=10) == 0
