"""A hook wrapper (``@hookimpl(wrapper=True)``, old-style ``hookwrapper=True``) is checked and
blamed as a plain implementation is: what it raises, returns or changes names it.

Before, wrappers were left unwrapped: their errors named nobody ("report it"), a
``sys.exit(5)`` in one ended rtbuild with status 5 and no message, an ``image_exists``
wrapper answering ``"no"`` made ``rtbuild exists`` say available (exit 0), a ``post_build``
wrapper setting ``result.image = 5`` printed ``5`` as the result (exit 0), and a request
field a ``pre_build`` wrapper broke before its ``yield`` was blamed on the next plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

BLAME = "from: plugin wb (rtbuild-wb 0.3)"

WRAPPER = """
import os
import rtbuild

def mode():
    return os.environ.get("WB_MODE", "")

@rtbuild.hookimpl(wrapper=True)
def pre_build(request):
    if mode() == "raise_before":
        raise RuntimeError("wrapper bug before yield")
    if mode() == "tags_before":
        request.tags = "app:1"
    if mode() == "no_yield":
        return
    yield
    if mode() == "twice":
        yield
    if mode() == "raise_after":
        raise RuntimeError("wrapper bug after yield")
    if mode() == "exit":
        raise SystemExit(5)

@rtbuild.hookimpl(wrapper=True)
def build(request):
    result = yield
    return 42 if mode() == "build_42" else result

@rtbuild.hookimpl(wrapper=True)
def image_exists(image_name):
    answer = yield
    return "no" if mode() == "exists_no" else answer

@rtbuild.hookimpl(wrapper=True)
def post_build(result):
    yield
    if mode() == "post_image":
        result.image = 5
"""

# A plain plugin that runs inside the wrapper: it must not be blamed for the wrapper's change.
INNER = """
import rtbuild

@rtbuild.hookimpl
def pre_build(request):
    request.labels["inner"] = "yes"
"""

OLD_STYLE = """
import os
import rtbuild

@rtbuild.hookimpl(hookwrapper=True)
def build(request):
    outcome = yield
    if os.environ.get("WB_MODE") == "force_42":
        outcome.force_result(42)

@rtbuild.hookimpl(hookwrapper=True)
def post_build(request):
    yield
    if os.environ.get("WB_MODE") == "raise_secret":
        raise RuntimeError("upload failed with token " + request.build_args["MY_PASSWORD"])
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-inner", "inner", INNER)
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def _build(context: Path, mode: str):  # type: ignore[no-untyped-def]
    return run_cli(["build", str(context), "-t", "img:1"], env={"WB_MODE": mode})


@pytest.mark.parametrize(
    ("mode", "exit_code", "message"),
    [
        ("raise_before", 1, "RuntimeError: wrapper bug before yield"),
        ("raise_after", 1, "RuntimeError: wrapper bug after yield"),
        ("exit", 2, "called sys.exit() in its pre_build hook with status 5"),
        ("tags_before", 2, "plugin wb (rtbuild-wb 0.3): its pre_build hook left request.tags unusable"),
        ("no_yield", 2, "its pre_build wrapper returned without yielding"),
        ("twice", 2, "its pre_build wrapper yields more than once"),
        ("build_42", 2, "its build hook returned 42 instead of an image name"),
        ("post_image", 4, "its post_build hook set BuildResult.image to a int"),
    ],
)
def test_a_wrapper_is_blamed_for_what_it_does(
    site: FakeSite, context: Path, mode: str, exit_code: int, message: str
) -> None:
    site.add_plugin("rtbuild-wb", "wb", WRAPPER, version="0.3")
    result = _build(context, mode)
    assert (result.exit_code, result.stdout) == (exit_code, "")
    assert message in result.stderr and BLAME in result.stderr
    assert "inner" not in result.stderr and "Traceback" not in result.stderr


def test_an_image_exists_wrapper_answering_no_is_not_available(site: FakeSite) -> None:
    site.add_plugin("rtbuild-wb", "wb", WRAPPER, version="0.3")
    result = run_cli(["exists", "absent:1", "--no-pull"], env={"WB_MODE": "exists_no"})
    assert result.exit_code == 2
    assert "its image_exists hook returned 'no'" in result.stderr and BLAME in result.stderr


def test_an_old_style_wrapper_forcing_a_wrong_result_is_blamed(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-wb", "wb", OLD_STYLE, version="0.3")
    result = _build(context, "force_42")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "its build hook returned 42" in result.stderr and BLAME in result.stderr


def test_a_wrapper_passing_things_through_is_not_blamed(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-wb", "wb", WRAPPER, version="0.3")
    site.add_plugin("rtbuild-wb-old", "wb_old", OLD_STYLE)
    assert _build(context, "").stdout.strip() == "img:1"
    assert run_cli(["exists", "absent:1", "--no-pull"]).exit_code == 1
    # An inner implementation's error passes through the wrappers still blamed on it.
    site.add_plugin("rtbuild-bad", "bad", "import rtbuild\n@rtbuild.hookimpl\ndef build():\n    return 7\n")
    result = _build(context, "")
    assert result.exit_code == 2 and "from: plugin bad (rtbuild-bad 1.0)" in result.stderr


def test_an_old_style_wrapper_raising_a_secret_shows_it_masked_and_once(site: FakeSite, context: Path) -> None:
    # pluggy's runner for old-style wrappers warned with the exception's text as raised.
    site.add_plugin("rtbuild-wb", "wb", OLD_STYLE, version="0.3")
    args = ["build", str(context), "-t", "img:1", "--build-arg", "MY_PASSWORD=hunter2xyz"]
    result = run_cli(args, env={"WB_MODE": "raise_secret"})
    assert (result.exit_code, result.stdout) == (4, "")
    assert "RuntimeError: upload failed with token ***" in result.stderr and BLAME in result.stderr
    assert "hunter2xyz" not in result.stderr and "hookwrapper teardown" not in result.stderr
