"""A Python warning a plugin or builder issues while a build runs (``warnings.warn``) is shown
by the CLI with the request's secret values masked, as its reporter output is: it went
straight to stderr as ``warning: ...``, so a plugin warning that it could not reach a build
arg's URL printed the URL's password, or a secret-looking build arg's value."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

TOKEN = "warned-hunter2-token"
PASSWORD = "warned-url-pa55"

PLUGIN = """
import warnings
import rtbuild

@rtbuild.hookimpl
def pre_build(request):
    warnings.warn("pre_build checked " + request.build_args["API_TOKEN"])

@rtbuild.hookimpl
def post_build(request):
    warnings.warn("post_build could not reach " + request.build_args["PIP_INDEX_URL"])
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-warner", "warner", PLUGIN)
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def test_a_plugins_warning_is_masked(site: FakeSite, context: Path) -> None:
    result = run_cli(
        [
            "build",
            str(context),
            "-t",
            "warned:1",
            "--build-arg",
            f"API_TOKEN={TOKEN}",
            "--build-arg",
            f"PIP_INDEX_URL=https://me:{PASSWORD}@127.0.0.1:9/simple",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "warning: pre_build checked ***" in result.stderr
    assert "warning: post_build could not reach https://me:***@127.0.0.1:9/simple" in result.stderr
    assert TOKEN not in result.stderr + result.stdout and PASSWORD not in result.stderr + result.stdout


THREAD_PLUGIN = """
import threading
import rtbuild

@rtbuild.hookimpl
def post_build(request):
    def upload():
        raise ConnectionError("cannot reach " + request.build_args["PIP_INDEX_URL"])

    worker = threading.Thread(target=upload, name="uploader")
    worker.start()
    worker.join()
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_plugin_threads_failure_is_masked(site: FakeSite, context: Path, debug: bool) -> None:
    """A plugin's background thread that died printed its exception (and with --debug its
    traceback) as it was, while the build still ran."""
    site.add_plugin("rtbuild-uploader", "uploader", THREAD_PLUGIN)
    index = f"PIP_INDEX_URL=https://me:{PASSWORD}@127.0.0.1:9/simple"
    result = run_cli(
        [
            *(["--debug"] if debug else []),
            "build",
            str(context),
            "-t",
            "warned:1",
            "--build-arg",
            index,
            "--build-arg",
            f"API_TOKEN={TOKEN}",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "internal error in background thread uploader: ConnectionError: cannot reach https://me:***@" in result.stderr
    )
    assert ("Traceback" in result.stderr) == debug
    assert PASSWORD not in result.stderr + result.stdout
