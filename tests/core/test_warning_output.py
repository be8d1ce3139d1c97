"""Warnings reach a human whatever the display: ``warning: ...`` on stderr (as docs/cli.md
says), still printed under ``-q``, and kept above the live display. They were printed as
``rtbuild: ...``, dropped entirely by ``-q`` (a secret-looking build arg's warning
included), and on a terminal shown only as the live display's status line, which the next
event replaced."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rtbuild._framework.display import make_reporter
from rtbuild._framework.live import LiveReporter
from rtbuild._framework.progress import PlainReporter
from rtbuild.cli.commands._options import progress_mode
from rtbuild.testing import SITE_BUILDER_SOURCE, FakeSite, run_cli

SECRET_WARNING = "secret 'tok': its source"


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    # The v1 site builder, able to take --secret.
    source = SITE_BUILDER_SOURCE.replace("capabilities = V1_CAPABILITIES", "capabilities = FakeBuilder.capabilities")
    rtbuild_site.add_builder("rtbuild-fake", "fake", version="1.5", source=source)
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def _build(context: Path, *args: str) -> tuple[int, str, str]:
    """A build whose --secret source lies in the context: the core warns (it is sent along)."""
    (context / "token.txt").write_text("abcdefgh")
    secret = f"id=tok,src={context / 'token.txt'}"
    result = run_cli(["build", str(context), "-t", "img:1", "--secret", secret, *args])
    return result.exit_code, result.stdout, result.stderr


def test_plain_output_says_warning(site: FakeSite, context: Path) -> None:
    code, stdout, stderr = _build(context)
    assert code == 0 and stdout == "img:1\n"
    assert any(line.startswith(f"warning: {SECRET_WARNING}") for line in stderr.splitlines()), stderr
    assert "abcdefgh" not in stderr


def test_quiet_keeps_warnings_and_nothing_else(site: FakeSite, context: Path) -> None:
    code, stdout, stderr = _build(context, "-q")
    assert code == 0 and stdout == "img:1\n"
    lines = stderr.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), stderr
    assert any(SECRET_WARNING in line for line in lines)


def test_json_quiet_prints_the_result_document_only(site: FakeSite, context: Path) -> None:
    code, stdout, stderr = _build(context, "--json", "-q")
    assert code == 0 and stderr == "" and json.loads(stdout)["image"] == "img:1"
    assert progress_mode(as_json=True, quiet=True) == "silent"


def test_a_quiet_reporter_shows_warnings_only() -> None:
    out = io.StringIO()
    reporter = make_reporter("quiet", out)
    reporter.line("#5 RUN make")
    reporter.event("step", step="RUN make")
    reporter.event("build_finished", message="built img:1")
    reporter.event("warning", message="careful", build="b1")
    assert out.getvalue() == "warning: [b1] careful\n"


def test_plain_reporter_names_the_build_of_a_warning() -> None:
    out = io.StringIO()
    PlainReporter(out).event("warning", message="careful", build="b0")
    PlainReporter(out).event("waiting", message="waiting for the build")
    assert out.getvalue() == "warning: [b0] careful\nrtbuild: waiting for the build\n"


def test_the_live_display_keeps_a_warning_after_later_events() -> None:
    out = io.StringIO()
    reporter = LiveReporter(out)
    reporter.event("build_started", message="building img:1")
    reporter.event("warning", message="secret source in the context")
    reporter.event("step", step="RUN make", message="step 1/2: RUN make")
    reporter.event("build_finished", message="built img:1")
    reporter.close()
    assert "warning: secret source in the context" in out.getvalue()
