"""What a plugin author trips on (issue 8 item 4), each fixed: blame, misspelt names with
did-you-mean, the result owning stdout, wrong return values, CLI conveniences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake", version="1.5")
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def build(context: Path, *args: str, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    return run_cli(["build", str(context), "-t", "img:1", *args], env=env)


# --- blame ---------------------------------------------------------------------------------

RAISING = """
from rtbuild import hookimpl, PolicyError

@hookimpl
def pre_build(request):
    if request.tags[0].startswith("policy"):
        raise PolicyError("unpinned base image", step="policy check", hint="pin the base image")
    raise ValueError("a bug in the plugin")
"""


def test_a_plugin_bug_names_the_plugin_and_its_distribution(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-buggy", "buggy", RAISING, version="0.7")
    result = build(context)
    assert result.exit_code == 1
    assert "error: internal error: ValueError: a bug in the plugin" in result.stderr
    assert "from: plugin buggy (rtbuild-buggy 0.7)" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_policy_refusal_is_exit_2_and_blamed_on_the_plugin(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-buggy", "buggy", RAISING, version="0.7")
    result = run_cli(["build", str(context), "-t", "policy:1", "--json"])
    assert result.exit_code == 2
    payload = result.json()
    assert payload["error"] == "PolicyError" and payload["blame"] == "plugin buggy (rtbuild-buggy 0.7)"
    assert "from: plugin buggy (rtbuild-buggy 0.7)" in result.stderr


def test_trace_hooks_says_which_implementation_raised(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-buggy", "buggy", RAISING, version="0.7")
    result = run_cli(["--trace-hooks", "build", str(context), "-t", "img:1"])
    assert "rtbuild trace: pre_build raised ValueError (from pre_build in plugin buggy (rtbuild-buggy 0.7))" in (
        result.stderr
    )


BUILDER_BUG = """
from rtbuild.testing import FakeBuilder

class SiteBuilder(FakeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        raise KeyError("engine handle")
"""


def test_a_builder_bug_names_the_builder_and_its_distribution(site: FakeSite, context: Path) -> None:
    site.add_builder("rtbuild-shaky", "shaky", version="2.2", source=BUILDER_BUG)
    result = build(context, "--builder", "shaky", "--trace-hooks")
    assert result.exit_code == 1
    assert "from: builder shaky (rtbuild-shaky 2.2)" in result.stderr
    assert "build raised KeyError (from build in builder shaky (rtbuild-shaky 2.2))" in result.stderr


def test_a_build_hook_returning_a_wrong_value_is_blamed_on_the_plugin(site: FakeSite, context: Path) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef build(request):\n    return 42\n"
    site.add_plugin("rtbuild-odd", "odd", source, version="3.1")
    result = build(context, "--json")
    assert result.exit_code == 2
    payload = result.json()
    assert payload["error"] == "PluginError" and payload["blame"] == "plugin odd (rtbuild-odd 3.1)"
    assert "returned 42" in payload["message"]


# --- misspelt names ------------------------------------------------------------------------


def test_a_misspelt_hook_argument_is_an_error_not_a_silent_skip(site: FakeSite, context: Path) -> None:
    # No RTBUILD_STRICT_PLUGINS: a policy plugin with a typo must not be switched off quietly.
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_build(requets, config):\n    pass\n"
    site.add_plugin("rtbuild-typo", "typo", source, version="1.1")
    result = build(context)
    assert result.exit_code == 2
    assert "plugin 'typo' from rtbuild-typo 1.1 is invalid" in result.stderr
    assert "'requets' (did you mean 'request'?)" in result.stderr
    assert "pre_build passes: request, config" in result.stderr
    listed = run_cli(["plugins", "--json"])
    assert listed.exit_code == 0
    (row,) = [r for r in listed.json() if r["name"] == "typo"]
    assert row["status"] == "failed" and "requets" in row["error"]


def test_a_misspelt_hook_name_gets_did_you_mean_and_only_real_hooks(site: FakeSite, context: Path) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_biuld(request):\n    pass\n"
    site.add_plugin("rtbuild-misspelt", "misspelt", source)
    result = build(context)
    assert result.exit_code == 2
    assert "'pre_biuld' is not an rtbuild hook (did you mean 'pre_build'" in result.stderr
    hint = next(line for line in result.stderr.splitlines() if "hint:" in line)
    assert "pre_build" in hint and "pre_biuld" not in hint


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RTBUILD_DISABLE_PLUGINS": "stmp"}, "RTBUILD_DISABLE_PLUGINS / disable_plugins names 'stmp'"),
        ({"RTBUILD_LOAD_PLUGINS": "stmp"}, "RTBUILD_LOAD_PLUGINS / load_plugins names 'stmp'"),
    ],
)
def test_unknown_names_in_the_plugin_lists_get_did_you_mean(
    site: FakeSite, context: Path, env: dict[str, str], expected: str
) -> None:
    site.add_plugin("rtbuild-stamp", "stamp", "")
    result = build(context, env=env)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    assert f"warning: {expected}, which is no installed plugin (did you mean 'stamp'?)" in result.stderr


def test_unknown_config_tables_get_did_you_mean(site: FakeSite, context: Path, tmp_path: Path) -> None:
    site.add_plugin("rtbuild-stamp", "stamp", "")
    (tmp_path / "rtbuild.toml").write_text('[plugins.stmap]\nlabel = "x"\n\n[builders.fkae]\nx = 1\n')
    result = build(context)
    assert result.exit_code == 0, result.stderr
    assert "warning: [plugins.stmap] configures no installed plugin (did you mean 'stamp'?)" in result.stderr
    assert "warning: [builders.fkae] configures no installed builder (did you mean 'fake'?)" in result.stderr


def test_a_builder_name_in_a_plugin_list_is_explained(site: FakeSite, context: Path) -> None:
    result = build(context, env={"RTBUILD_LOAD_PLUGINS": "fake"})
    assert result.exit_code == 0
    assert "names 'fake', a builder: the plugin lists never filter builders" in result.stderr


# --- stdout belongs to the result ----------------------------------------------------------

PRINTING = """
from rtbuild import hookimpl

@hookimpl
def pre_build(request):
    print("chatty plugin says hello")

@hookimpl
def post_build(result):
    print("chatty plugin says bye")
"""


def test_a_printing_plugin_cannot_corrupt_stdout(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-chatty", "chatty", PRINTING)
    plain = build(context, "-q")
    assert plain.exit_code == 0 and plain.stdout == "img:1\n"
    assert "chatty plugin says hello" in plain.stderr and "chatty plugin says bye" in plain.stderr
    as_json = build(context, "--json")
    assert as_json.exit_code == 0 and as_json.json()["image"] == "img:1"


def test_a_printing_image_exists_hook_cannot_corrupt_exists_json(site: FakeSite) -> None:
    source = (
        "from rtbuild import hookimpl\n\n@hookimpl\ndef image_exists(image_name):\n"
        "    print('looking for', image_name)\n    return True\n"
    )
    site.add_plugin("rtbuild-mirror", "mirror", source)
    result = run_cli(["exists", "img:1", "--json"])
    assert result.exit_code == 0 and result.json()["exists"] is True
    assert "looking for img:1" in result.stderr


# --- CLI conveniences ----------------------------------------------------------------------


def test_json_quiet_prints_no_event_stream(site: FakeSite, context: Path) -> None:
    loud = build(context, "--json")
    assert any(json.loads(line).get("event") == "build_started" for line in loud.stderr.splitlines())
    quiet = build(context, "--json", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.json()["image"] == "img:1"


def test_debug_is_accepted_after_the_subcommand(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "bad tag!", "--debug"])
    assert result.exit_code == 2 and "Traceback (most recent call last)" in result.stderr


def test_a_mistyped_command_gets_did_you_mean(site: FakeSite) -> None:
    result = run_cli(["biuld"])
    assert result.exit_code == 2
    assert "No such command 'biuld'. Did you mean 'build'" in result.stderr


def test_tags_are_validated_before_pre_build(site: FakeSite, context: Path) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_build(request):\n    print('ran')\n"
    site.add_plugin("rtbuild-watch", "watch", source)
    result = run_cli(["build", str(context), "-t", "UPPER/Case:1"])
    assert result.exit_code == 2 and "ran" not in result.stderr


def test_a_plugin_name_two_distributions_claim_breaks_only_that_name(site: FakeSite, context: Path) -> None:
    site.add_plugin("rtbuild-first", "dup", "", module="first_dup")
    site.add_plugin("rtbuild-second", "dup", "", module="second_dup", version="2.0")
    failed = build(context)
    assert failed.exit_code == 2 and "rtbuild-first 1.0" in failed.stderr and "rtbuild-second 2.0" in failed.stderr
    listed = run_cli(["plugins", "--json"])
    assert listed.exit_code == 0
    assert sorted(r["distribution"] for r in listed.json() if r["status"] == "conflict") == [
        "rtbuild-first",
        "rtbuild-second",
    ]
    assert build(context, env={"RTBUILD_DISABLE_PLUGINS": "dup"}).exit_code == 0
