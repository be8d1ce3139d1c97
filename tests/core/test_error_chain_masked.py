"""A secret value is masked in every exception chained to a build's error, not only in the
error itself: ``--debug`` prints the whole chain (``traceback.print_exception``), and an
embedding program logs it with ``traceback.format_exception`` or ``repr``. A builder that
raised ``BuildFailedError(...) from CalledProcessError(cmd)`` (or inside an ``except``) showed
the value from its ``__cause__``/``__context__``; ``str()`` of a ``CalledProcessError`` or an
``OSError`` read their ``cmd``/``filename`` attributes, which masking ``args`` left whole."""

from __future__ import annotations

import subprocess
import traceback
from pathlib import Path
from typing import ClassVar

import pytest
import rtbuild
from rtbuild import (
    BuilderCapabilities,
    BuildFailedError,
    BuildRequest,
    BuildResult,
    RuntimeBuilder,
    hookimpl,
    run_build,
)
from rtbuild._framework.pipeline import plan_build
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild.testing import FakeBuilder

TOKEN = "chained-hunter2-value"
WEBHOOK = "https://ci:hook-pa55@127.0.0.1:9/failed"


def _chained(value: str) -> BaseException:
    try:
        try:
            raise FileNotFoundError(2, "No such file", f"/run/{value}")
        except OSError as inner:
            raise subprocess.CalledProcessError(1, ["curl", "-H", f"auth: {value}"], output=value.encode()) from inner
    except subprocess.CalledProcessError as exc:
        exc.add_note(f"while fetching with {value}")
        return exc


class _ChainBuilder(RuntimeBuilder):
    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(dry_run=True)
    how = "cause"

    def _raise(self, request: BuildRequest) -> None:
        cause = _chained(request.build_args["API_TOKEN"])
        if self.how == "cause":
            raise BuildFailedError("engine failed", step="run engine") from cause
        if self.how == "context":
            try:
                raise cause
            except subprocess.CalledProcessError:
                raise BuildFailedError("engine failed", step="run engine")  # noqa: B904 - the implicit chain
        if self.how == "group":
            raise BaseExceptionGroup("several", [ValueError("x"), cause])
        raise cause

    def build_request(self, request: BuildRequest) -> BuildResult:
        self._raise(request)
        raise AssertionError

    def plan(self, request: BuildRequest) -> str:
        self._raise(request)
        raise AssertionError

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("the typed entry point is used")

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return False


def _shown(exc: BaseException) -> str:
    chain = [exc, exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())]
    return "".join(traceback.format_exception(exc)) + "".join(f"{e!r} {e}" for e in chain if e is not None)


@pytest.mark.parametrize("how", ["cause", "context", "bare", "group"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["build", "dry-run"])
def test_no_secret_in_the_error_chain(tmp_path: Path, how: str, dry_run: bool) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    request = BuildRequest(str(tmp_path), tags=["chain:1"], build_args={"API_TOKEN": TOKEN})
    builder = _ChainBuilder()
    builder.how = how
    with pytest.raises(BaseException) as caught:
        if dry_run:
            plan_build(request, config=rtbuild.Config(), builder=builder)
        else:
            rtbuild.run_build(request, config=rtbuild.Config(), builder=builder)
    shown = _shown(caught.value)
    assert "***" in shown
    assert TOKEN not in shown
    assert request.build_args["API_TOKEN"] == TOKEN  # the request keeps its value


def test_no_secret_in_a_failing_build_failed_hooks_warning(
    rtbuild_pm: RtbuildPluginManager, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """The warning about a ``build_failed`` hook that raised quoted its exception as it was:
    a recorder posting the request to a webhook failed with the URL (and its password), or a
    build arg's value, in the message, printed as ``warning: ...`` on stderr."""

    class Recorder:
        @hookimpl
        def build_failed(self, request: BuildRequest) -> None:
            raise subprocess.CalledProcessError(7, ["curl", "-d", request.build_args["API_TOKEN"], WEBHOOK])

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    rtbuild_pm.register(Recorder())
    request = BuildRequest(str(tmp_path), tags=["chain:1"], build_args={"API_TOKEN": TOKEN, "HOOK": WEBHOOK})
    with pytest.raises(BuildFailedError):
        run_build(request, config=rtbuild.Config(), pm=rtbuild_pm, builder=FakeBuilder(fail_with="boom"))
    (warning,) = [w for w in recwarn if "build_failed hook raised" in str(w.message)]
    assert "CalledProcessError" in str(warning.message) and "***" in str(warning.message)
    assert TOKEN not in str(warning.message) and "hook-pa55" not in str(warning.message)


def test_the_logs_path_stays_usable(tmp_path: Path) -> None:
    """Masking the chain masks the attributes of each exception, but not the build log's path
    the error names (where the user looks next), even when a value is part of it."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    log = tmp_path / f"build-{TOKEN}.log"

    class Logged(_ChainBuilder):
        def build_request(self, request: BuildRequest) -> BuildResult:
            raise BuildFailedError(f"failed with {TOKEN}", step="run engine", log_path=str(log))

    request = BuildRequest(str(tmp_path), tags=["chain:1"], build_args={"API_TOKEN": TOKEN})
    with pytest.raises(BuildFailedError) as caught:
        run_build(request, config=rtbuild.Config(), builder=Logged())
    assert caught.value.message == "failed with ***"
    assert caught.value.log_path == str(log)
