"""What ``pre_build`` and ``build_failed`` hooks report is masked as the builder's output is:
the core's mask began after ``pre_build`` and ended before ``build_failed``, so a hook that
logged the request (``reporter.line``, a ``warning`` event) showed a secret-looking build
arg's value, a URL's password or a ``--secret``'s contents on stderr and in ``--json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildSecret, Config, hookimpl, run_build
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild._framework.progress import use_reporter
from rtbuild.errors import BuildFailedError
from rtbuild.testing import FakeBuilder

TOKEN = "hook-output-hunter2"
PASSWORD = "hook-url-pa55"
SECRET = "hook-secret-file-value"


class _Seen(rtbuild.Reporter):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def line(self, text: str, *, source: str = "build") -> None:
        self.seen.append(text)

    def event(self, kind: str, **fields: Any) -> None:
        self.seen.append(f"{kind} {fields}")


class _Chatty:
    """Reports every value of the request, as a plugin logging what it checks would."""

    @staticmethod
    def _say(request: BuildRequest, hook: str) -> None:
        values = [*request.build_args.values(), *(s.value().decode() for s in request.secrets)]
        for value in values:
            rtbuild.get_reporter().line(f"{hook}: {value}")
            rtbuild.get_reporter().event("warning", message=f"{hook} saw {value}")

    @hookimpl
    def pre_build(self, request: BuildRequest) -> None:
        self._say(request, "pre_build")

    @hookimpl
    def build_failed(self, request: BuildRequest) -> None:
        self._say(request, "build_failed")


@pytest.mark.parametrize("fails", [False, True], ids=["built", "failed"])
def test_hooks_output_is_masked(
    rtbuild_pm: RtbuildPluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setenv("RTBUILD_HOOK_TEST_SECRET", SECRET)
    rtbuild_pm.register(_Chatty())
    request = BuildRequest(
        str(tmp_path),
        tags=["hooks:1"],
        build_args={"API_TOKEN": TOKEN, "INDEX": f"https://me:{PASSWORD}@127.0.0.1:9/simple"},
        secrets=[BuildSecret(id="s", env="RTBUILD_HOOK_TEST_SECRET")],
    )
    seen = _Seen()
    builder = FakeBuilder(fail_with="boom") if fails else FakeBuilder()
    with use_reporter(seen):
        if fails:
            with pytest.raises(BuildFailedError):
                run_build(request, config=Config(), pm=rtbuild_pm, builder=builder)
        else:
            run_build(request, config=Config(), pm=rtbuild_pm, builder=builder)
    hooks = ["pre_build", "build_failed"] if fails else ["pre_build"]
    said = [text for text in seen.seen if any(hook in text for hook in hooks)]
    assert len(said) == 6 * len(hooks)  # each hook's 3 lines and 3 events came through, masked
    shown = "\n".join(said)
    assert "***" in shown
    assert TOKEN not in shown and PASSWORD not in shown and SECRET not in shown


def test_details_a_post_build_hook_adds_are_masked(rtbuild_pm: RtbuildPluginManager, tmp_path: Path) -> None:
    """The result's details were masked before post_build only: what a post_build hook added
    (a scanner's note quoting a build arg) reached ``rtbuild build --json`` and build-many's report."""

    class Noter:
        @hookimpl
        def post_build(self, request: BuildRequest, result: rtbuild.BuildResult) -> None:
            result.details["note"] = {"checked": [f"with {request.build_args['API_TOKEN']}"]}

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    rtbuild_pm.register(Noter())
    request = BuildRequest(str(tmp_path), tags=["hooks:1"], build_args={"API_TOKEN": TOKEN})
    result = run_build(request, config=Config(), pm=rtbuild_pm, builder=FakeBuilder())
    assert result.details["note"] == {"checked": ["with ***"]}
    assert TOKEN not in str(result.to_dict())


def test_pre_build_output_is_masked_in_a_dry_run(rtbuild_pm: RtbuildPluginManager, tmp_path: Path) -> None:
    """``--dry-run`` (plan_build) masked its plan and its error, not what pre_build hooks reported."""
    from rtbuild._framework.pipeline import plan_build

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    rtbuild_pm.register(_Chatty())
    request = BuildRequest(str(tmp_path), tags=["hooks:1"], build_args={"API_TOKEN": TOKEN})
    seen = _Seen()
    with use_reporter(seen):
        plan = plan_build(request, config=Config(), pm=rtbuild_pm, builder=FakeBuilder())
    said = [text for text in seen.seen if "pre_build" in text]
    assert len(said) == 2 and all("***" in text for text in said)
    assert TOKEN not in "\n".join([*seen.seen, plan])
