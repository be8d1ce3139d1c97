"""A Python warning a plugin or builder issues while a build runs (``warnings.warn``) is shown
by the CLI with the request's secret values masked, as its reporter output is: it went
straight to stderr as ``warning: ...``, so a plugin warning that it could not reach a build
arg's URL printed the URL's password, or a secret-looking build arg's value."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest
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


def _request(context: Path) -> BuildRequest:
    return BuildRequest(
        path=str(context),
        tags=["warned:1"],
        build_args={"API_TOKEN": TOKEN, "PIP_INDEX_URL": f"https://me:{PASSWORD}@127.0.0.1:9/simple"},
    )


def test_a_plugins_warning_is_masked_for_a_library_caller(site: FakeSite, context: Path) -> None:
    """``rtbuild.run_build`` in a platform's own process: only the CLI masked Python warnings,
    so a plugin's warning reached the caller's ``warnings`` display (stderr, a test's
    recorder) with the secret in it."""
    before = warnings.showwarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rtbuild.run_build(_request(context))
    assert result.image == "warned:1"
    shown = [str(w.message) for w in caught]
    assert "pre_build checked ***" in shown
    assert "post_build could not reach https://me:***@127.0.0.1:9/simple" in shown
    assert not any(TOKEN in text or PASSWORD in text for text in shown)
    assert warnings.showwarning is before  # put back once no build runs


def test_a_plugins_warning_is_masked_in_the_callers_log(
    site: FakeSite, context: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A platform that logs its warnings (``logging.captureWarnings``): the log got the secret."""
    logging.captureWarnings(True)
    try:
        with caplog.at_level(logging.WARNING, logger="py.warnings"), warnings.catch_warnings():
            warnings.simplefilter("always")
            rtbuild.run_build(_request(context))
            rtbuild.run_build(_request(context))  # the second build finds the log's hook again
    finally:
        logging.captureWarnings(False)
    text = caplog.text
    assert text.count("pre_build checked ***") == 2 and "could not reach https://me:***@" in text
    assert TOKEN not in text and PASSWORD not in text
