"""Plugins and builders that misuse the contract, as installed distributions through the
CLI: the error names the plugin or builder to blame, exits with the documented code and
shows no traceback; a wrong answer is never taken for a right one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

PRE_BUILD = """
import rtbuild

@rtbuild.hookimpl
def pre_build(request):
    {body}
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def _site_builder() -> type:
    return sys.modules["rtbuild_fake_fake_builder"].SiteBuilder  # type: ignore[no-any-return]


def _build(context: Path, *extra: str) -> tuple[int, str]:
    result = run_cli(["build", str(context), "-t", "app:1", "-q", *extra])
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("request.tags = 'app:2'", "request.tags"),  # iterated letter by letter before
        ("request.build_args = None", "request.build_args"),  # the builder's TypeError before
        ("request.extra_build_args = '--pull'", "request.extra_build_args"),
        ("request.labels['owner'] = None", "request.labels"),
        ("request.push = 'no'", "request.push"),  # a truthy string: it pushed
        ("request.secrets = ['id=x,src=/etc/passwd']", "request.secrets"),
    ],
)
def test_pre_build_leaving_a_field_of_the_wrong_type_is_blamed_on_the_plugin(
    site: FakeSite, context: Path, body: str, field: str
) -> None:
    site.add_plugin("rtbuild-mangle", "mangle", PRE_BUILD.format(body=body))
    code, stderr = _build(context)
    assert code == 2, stderr
    assert f"its pre_build hook left {field} unusable" in stderr
    assert "from: plugin mangle (rtbuild-mangle 1.0)" in stderr
    assert "internal error" not in stderr
    module = sys.modules.get("rtbuild_fake_fake_builder")
    assert module is None or module.SiteBuilder.calls == []  # nothing was built


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        ("request.tags.append('UPPER/Case:1')", "repository names must be lowercase", "tags"),
        ("request.tags.clear()", "a build needs at least one tag", "tags"),
        ("request.platform = 'amd64'", "invalid platform 'amd64'", "platform"),
        ("request.builder = 'nosuch'", "builder 'nosuch' not recognised", "builder"),
        ("request.path = '/nonexistent/ctx'", "'/nonexistent/ctx' does not exist", "path"),
        ("request.target = 'nostage'", "nostage", "target"),
    ],
)
def test_a_value_a_pre_build_hook_set_names_the_plugin_when_refused(
    site: FakeSite, context: Path, body: str, message: str, field: str
) -> None:
    site.add_plugin("rtbuild-setter", "setter", PRE_BUILD.format(body=body))
    code, stderr = _build(context)
    assert code == 2, stderr
    assert message in stderr
    assert "from: plugin setter (rtbuild-setter 1.0)" in stderr
    assert f"request.{field} was set by the pre_build hook of plugin setter" in stderr


def test_the_users_own_bad_value_blames_no_plugin(site: FakeSite, context: Path) -> None:
    # A plugin that changes other fields is not blamed for the user's missing Dockerfile.
    site.add_plugin("rtbuild-labeller", "labeller", PRE_BUILD.format(body="request.target = 'base'"))
    (context / "Dockerfile").unlink()
    code, stderr = _build(context)
    assert code == 2, stderr
    assert "from:" not in stderr


def test_scalar_labels_from_pre_build_reach_the_builder_as_the_config_spells_them(
    site: FakeSite, context: Path
) -> None:
    body = "request.labels['flag'] = True; request.build_args['N'] = 2"
    site.add_plugin("rtbuild-scalars", "scalars", PRE_BUILD.format(body=body))
    code, stderr = _build(context)
    assert code == 0, stderr
    (call,) = _site_builder().calls
    assert call["extra_build_args"] == ["--build-arg", "N=2", "--label", "flag=true"]


EXISTS_PLUGIN = """
import rtbuild

@rtbuild.hookimpl
def image_exists(image_name):
    return "no"
"""


def test_image_exists_hook_answering_a_string_is_an_error_not_available(site: FakeSite) -> None:
    site.add_plugin("rtbuild-answer", "answer", EXISTS_PLUGIN)
    result = run_cli(["exists", "app:1", "--no-pull"])
    assert result.exit_code == 2, result.stderr  # was 0: "no" read as available
    assert "its image_exists hook returned 'no' instead of True, False or None" in result.stderr
    assert "from: plugin answer (rtbuild-answer 1.0)" in result.stderr
    assert "Traceback" not in result.stderr


BUILDER_ANSWERING_TEXT = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return "absent"
"""


def test_builder_image_exists_answering_a_string_is_an_error_naming_it(rtbuild_site: FakeSite) -> None:
    rtbuild_site.add_builder("rtbuild-texty", "texty", source=BUILDER_ANSWERING_TEXT)
    result = run_cli(["exists", "app:1", "--no-pull", "--builder", "texty"])
    assert result.exit_code == 2, result.stderr  # was 0: "absent" read as available
    assert "image_exists returned 'absent' instead of True or False" in result.stderr
    assert "from: builder texty (rtbuild-texty 1.0)" in result.stderr


CLAIMING_THE_CORES_NAME = """
import rtbuild

@rtbuild.hookimpl
def build(request):
    return "hijacked:1"
"""


def test_a_plugin_named_like_the_cores_own_is_skipped_and_listed(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-dispatch2", "rtbuild.dispatch", CLAIMING_THE_CORES_NAME)
    code, stderr = _build(context)
    assert code == 0, stderr  # was 1: "internal error: ValueError: Plugin name already registered"
    assert "plugin 'rtbuild.dispatch' from rtbuild-dispatch2 1.0 failed to load and was skipped" in stderr
    assert _site_builder().calls  # the core's dispatch built it, not the impostor
    listing = run_cli(["plugins", "--json"])
    assert listing.exit_code == 0, listing.stderr  # was 1: the listing itself broke
    rows = {(row["name"], row["distribution"]): row for row in listing.json()}
    assert rows["rtbuild.dispatch", "rtbuild"]["status"] == "loaded"
    assert rows["rtbuild.dispatch", "rtbuild-dispatch2"]["status"] == "failed"
    strict = run_cli(["build", str(context), "-t", "app:1", "-q"], env={"RTBUILD_STRICT_PLUGINS": "1"})
    assert strict.exit_code == 2, strict.stderr
    assert "from: plugin rtbuild.dispatch (rtbuild-dispatch2 1.0)" in strict.stderr


def test_a_plugin_exiting_on_import_is_skipped_like_one_that_raises(site: FakeSite, context: Path) -> None:
    # A module that parses a command line (argparse) or calls sys.exit() when imported.
    site.add_plugin("rtbuild-exits", "exits", "import sys\nsys.exit('usage: exits [-h]')\n")
    code, stderr = _build(context)
    assert code == 0, stderr  # was 1, with only "usage: exits [-h]" on stderr
    assert "plugin 'exits' from rtbuild-exits 1.0 failed to load and was skipped: SystemExit" in stderr
    listing = run_cli(["plugins", "--json"])
    assert listing.exit_code == 0, listing.stderr
    (row,) = [row for row in listing.json() if row["name"] == "exits"]
    assert row["status"] == "failed"


ABSTRACT_BUILDER = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        return tags[0]
"""

CAPABILITIES_AS_A_DICT = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    capabilities = {"push": True}

    def build(self, path, tags, platform=None, extra_build_args=None):
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (ABSTRACT_BUILDER, "does not implement image_exists"),  # was: internal error, listed available
        # was: an internal error, and `rtbuild builders` crashed for every builder
        (CAPABILITIES_AS_A_DICT, "has capabilities that are a dict, not a rtbuild.BuilderCapabilities"),
    ],
)
def test_a_builder_class_that_breaks_the_contract_is_refused_and_listed_failed(
    rtbuild_site: FakeSite, context: Path, source: str, problem: str
) -> None:
    rtbuild_site.add_builder("rtbuild-broken", "broken", source=source)
    rtbuild_site.add_builder("rtbuild-fine", "fine")
    result = run_cli(["build", str(context), "-t", "app:1", "-q", "--builder", "broken"])
    assert result.exit_code == 2, result.stderr
    assert problem in result.stderr
    assert "from: builder broken (rtbuild-broken 1.0)" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    listing = run_cli(["builders", "--json"])
    assert listing.exit_code == 0, listing.stderr
    rows = {row["name"]: row for row in listing.json()}
    assert rows["broken"]["status"] == "failed" and problem in rows["broken"]["error"]
    assert rows["fine"]["capabilities"] is not None  # one broken builder does not hide the others


def test_a_hook_calling_sys_exit_is_an_error_naming_the_plugin(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-quits", "quits", PRE_BUILD.format(body="import sys; sys.exit(5)"))
    code, stderr = _build(context)
    assert code == 2, stderr  # was 5, with nothing on stderr
    assert "plugin quits (rtbuild-quits 1.0) called sys.exit() in its pre_build hook with status 5" in stderr
    assert "from: plugin quits (rtbuild-quits 1.0)" in stderr


BUILDER_LIKE_A_SCRIPT = """
import sys
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        sys.exit("docker build failed")

    def image_exists(self, image_name, pull_from_repo=True):
        return None
"""


def test_a_builder_calling_sys_exit_fails_the_build_naming_it(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-script", "script", version="0.2", source=BUILDER_LIKE_A_SCRIPT)
    result = run_cli(["build", str(context), "-t", "app:1", "-q", "--builder", "script"])
    assert result.exit_code == 1, result.stderr  # was 1 with the bare message only: no error, no blame
    assert "error: builder script (rtbuild-script 0.2) called sys.exit() in build: docker build failed" in result.stderr
    assert "from: builder script (rtbuild-script 0.2)" in result.stderr


def test_a_v1_builder_returning_no_name_is_blamed_with_its_distribution(rtbuild_site: FakeSite, context: Path) -> None:
    source = BUILDER_LIKE_A_SCRIPT.replace('sys.exit("docker build failed")', "return None")
    rtbuild_site.add_builder("rtbuild-silent", "silent", version="0.2", source=source)
    result = run_cli(["build", str(context), "-t", "app:1", "-q", "--builder", "silent"])
    assert result.exit_code == 1, result.stderr
    assert "builder 'silent' returned None instead of an image name" in result.stderr
    assert "from: builder silent (rtbuild-silent 0.2)" in result.stderr  # was "builder silent" only


def test_exists_with_a_crashing_image_exists_hook_could_not_tell(site: FakeSite) -> None:
    # Exit 1 means "absent" (scripts rebuild on it); a plugin's bug is "could not tell" (3).
    site.add_plugin(
        "rtbuild-mirror", "mirror", "import rtbuild\n\n@rtbuild.hookimpl\ndef image_exists(image_name):\n    1 / 0\n"
    )
    result = run_cli(["exists", "app:1", "--no-pull", "--json"])
    assert result.exit_code == 3, result.stderr  # was 1, the "not available" code
    document = result.json()
    assert document["exists"] is None and document["error"] == "InternalError"
    assert document["blame"] == "plugin mirror (rtbuild-mirror 1.0)"
    assert "app:1: could not tell whether it exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_v2_builder_whose_build_request_returns_no_result_is_blamed(rtbuild_site: FakeSite, context: Path) -> None:
    source = BUILDER_LIKE_A_SCRIPT.replace(
        "class SiteBuilder(RuntimeBuilder):",
        "class SiteBuilder(RuntimeBuilder):\n    def build_request(self, request):\n        return request.tags[0]\n",
    )
    rtbuild_site.add_builder("rtbuild-v2odd", "v2odd", version="0.3", source=source)
    result = run_cli(["build", str(context), "-t", "app:1", "-q", "--builder", "v2odd"])
    assert result.exit_code == 2, result.stderr
    assert "build_request returned 'app:1' instead of a rtbuild.BuildResult" in result.stderr
    assert "hint: RuntimeBuilder.build_request must return a BuildResult" in result.stderr
    assert "from: builder v2odd (rtbuild-v2odd 0.3)" in result.stderr
