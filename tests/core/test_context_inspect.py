"""``rtbuild context``: counts after .dockerignore, bytes per rule, digest, warnings, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from rtbuild._observe.context import excluding_rule, inspect_context
from rtbuild._observe.units import human_duration, human_size, parse_duration, parse_size
from rtbuild.cli._main import cli
from rtbuild.context import PatternMatcher, context_digest


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")
    (root / ".dockerignore").write_text("*.log\nbuild\n!build/keep.txt\n")
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "big.bin").write_bytes(b"\0" * 3000)
    (root / "a.log").write_text("x" * 100)
    (root / "build").mkdir()
    (root / "build" / "keep.txt").write_text("k")
    (root / "build" / "drop.txt").write_text("dd")
    (root / "build" / "sub").mkdir()
    (root / "build" / "sub" / "deep.o").write_text("ooo")
    return root


def test_counts_bytes_and_rules(ctx: Path) -> None:
    report = inspect_context(str(ctx))
    # Dockerfile, .dockerignore, src/app.py, big.bin, build/keep.txt
    assert report.files == 5
    expected = sum(os.path.getsize(ctx / p) for p in ("Dockerfile", ".dockerignore", "src/app.py", "big.bin"))
    assert report.bytes == expected + 1
    rules = {r.pattern: (r.files, r.bytes) for r in report.excluded}
    assert rules == {"*.log": (1, 100), "build": (2, 5)}
    assert report.largest_files[0] == ("big.bin", 3000)
    assert report.digest == context_digest(str(ctx)).digest


def test_rule_attribution_follows_last_match() -> None:
    matcher = PatternMatcher(["*.md", "!README.md", "docs", "**/*.tmp"])
    assert excluding_rule(matcher, "x.md") == "*.md"
    assert excluding_rule(matcher, "README.md") is None
    assert excluding_rule(matcher, "docs/a/b.txt") == "docs"
    assert excluding_rule(matcher, "a/b/c.tmp") == "**/*.tmp"


def test_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "w"
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "objects" / "o1").write_bytes(b"x" * 10)
    (root / "web" / "node_modules" / "pkg").mkdir(parents=True)
    (root / "web" / "node_modules" / "pkg" / "i.js").write_text("js")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "huge.bin").write_bytes(b"\0" * 4096)
    os.symlink("../../etc/passwd", root / "web" / "out")
    os.symlink("node_modules", root / "web" / "in")
    report = inspect_context(str(root), large_file=2048)
    text = "\n".join(report.warnings)
    assert ".git/ is sent (1 files, 10 B)" in text
    assert "web/node_modules/ is sent (1 files, 2 B)" in text
    assert "huge.bin is 4.0 KiB" in text
    assert "web/out -> ../../etc/passwd" in text and "web/in" not in text
    assert report.symlinks == 2


def test_no_dockerfile_still_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("1")
    report = inspect_context(str(tmp_path / "d"))
    assert report.files == 1 and report.digest is None
    assert any("no input digest" in w for w in report.warnings)


def test_cli_json_and_table(ctx: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["context", str(ctx), "--json", "--top", "2"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["files"] == 5 and len(data["largest_files"]) == 2
    assert {"pattern": "build", "files": 2, "bytes": 5} in data["excluded"]
    table = runner.invoke(cli, ["context", str(ctx), "--large-file", "1k"])
    assert table.exit_code == 0 and "big.bin is 2.9 KiB" in table.stdout and "excluded by .dockerignore" in table.stdout
    bad = runner.invoke(cli, ["context", str(ctx), "--large-file", "lots"])
    assert bad.exit_code == 2


def test_units() -> None:
    assert parse_size("10M") == 10 << 20 and parse_size("512k") == 512 << 10 and parse_size("7") == 7
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    assert parse_duration("7d") == 7 * 86400 and parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    for bad in ("", "7", "d7", "1x"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert human_size(1536) == "1.5 KiB" and human_size(None) == "-"
    assert human_duration(2.04) == "2.0s" and human_duration(125) == "2m05s"


def test_an_unreadable_dockerfile_is_a_context_error(tmp_path: Path) -> None:
    """Without CAP_DAC_OVERRIDE (as any non-root user), a Dockerfile of mode 000 is a
    BuildContextError of the validate step, not an internal error in the builder."""
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux: on every Debian
        pytest.fail("setpriv is missing (util-linux)")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Dockerfile").chmod(0)
    script = (
        "import sys\n"
        "from rtbuild.context import validate_context\n"
        "from rtbuild.errors import BuildContextError\n"
        "try:\n"
        f"    validate_context({str(tmp_path)!r})\n"
        "except BuildContextError as exc:\n"
        "    print(exc.step, '|', exc.message)\n"
    )
    drop = "-dac_override,-dac_read_search"
    proc = subprocess.run(
        [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("validate context |") and "not readable" in proc.stdout


def test_a_file_name_with_control_characters_stays_one_line_of_the_table(tmp_path: Path) -> None:
    """A name holding a newline split its table row in two (the second half read like an
    entry of its own), and an escape sequence in a name reached the terminal raw."""
    root = tmp_path / "names"
    (root / "dir\tname").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "evil\nname").write_bytes(b"x" * 500)
    (root / "dir\tname" / "f").write_bytes(b"y" * 400)
    (root / "\x1b[2Jclear").write_text("z")
    out = CliRunner().invoke(cli, ["context", str(root)])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert any(line.endswith("  evil\\nname") for line in lines), lines
    assert any(line.endswith("  dir\\tname/") for line in lines), lines
    assert any(line.endswith("  \\x1b[2Jclear") for line in lines), lines
    assert "\x1b" not in out.stdout and not any(line == "name" for line in lines)
    data = json.loads(CliRunner().invoke(cli, ["context", str(root), "--json"]).stdout)
    assert "evil\nname" in [entry["path"] for entry in data["largest_files"]]  # JSON keeps the name as it is


def test_an_ignore_file_an_engine_reads_instead_of_dockerignore_is_warned_about(ctx: Path) -> None:
    """The report follows ``.dockerignore``; BuildKit reads ``Dockerfile.dockerignore`` and
    Podman ``.containerignore`` instead, so the listing would be wrong without a word."""
    assert not [w for w in inspect_context(str(ctx)).warnings if "instead of .dockerignore" in w]
    (ctx / "Dockerfile.dockerignore").write_text("src\n")
    (ctx / ".containerignore").write_text("big.bin\n")
    (ctx / "build.Dockerfile").write_text("FROM busybox:latest\n")
    warned = [w for w in inspect_context(str(ctx)).warnings if "instead of .dockerignore" in w]
    assert warned == [
        "Dockerfile.dockerignore is read by BuildKit and Podman instead of .dockerignore;"
        " this report follows .dockerignore"
    ]
    warned = [w for w in inspect_context(str(ctx), ["-f", "build.Dockerfile"]).warnings if "instead of" in w]
    assert warned == [".containerignore is read by Podman instead of .dockerignore; this report follows .dockerignore"]


def test_a_dockerfile_named_with_f_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    """`rtbuild context ctx -f Dockerfile.prd` (a typo) listed the context, exit 0, with only
    a warning inside the report; a build of the same arguments fails with exit 2."""
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "Dockerfile.prod").write_text("FROM scratch\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "a.txt").rename(ctx / "a.txt")
    (tmp_path / "Dockerfile.prod").rename(ctx / "Dockerfile.prod")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "rtbuild", "context", str(ctx), "--json"]
    typo = subprocess.run([*base, "-f", "Dockerfile.prd"], capture_output=True, text=True, env=env, timeout=120)
    assert typo.returncode == 2, typo.stderr
    assert json.loads(typo.stdout)["error"] == "BuildContextError" and "Dockerfile.prd" in typo.stderr
    named = subprocess.run([*base, "-f", "Dockerfile.prod"], capture_output=True, text=True, env=env, timeout=120)
    assert named.returncode == 0 and json.loads(named.stdout)["digest"]
    unnamed = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)  # no -f: listed
    assert unnamed.returncode == 0 and json.loads(unnamed.stdout)["digest"] is None
