"""The ``rtbuild`` command: builder selection, structured args, exit codes, streams, JSON."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from rtbuild.testing import FakeSite, run_cli

# A builder with a push method, that fails when asked to build a tag named "fail:*".
PUSHING_BUILDER = """
from rtbuild import RuntimeBuilder
from rtbuild.errors import BuildFailedError


class SiteBuilder(RuntimeBuilder):
    calls = []
    images = {"present:1"}
    pushed = []

    def build(self, path, tags, platform=None, extra_build_args=None):
        type(self).calls.append({"tags": list(tags), "platform": platform, "extra": list(extra_build_args or [])})
        if tags[0].startswith("fail:"):
            raise BuildFailedError(
                "step 2/3 RUN false failed", step="build", log_tail=["#5 RUN false", "exit code: 1"],
                hint="fix the Dockerfile",
            )
        if tags[0].startswith("bug:"):
            raise ValueError("a bug in the backend")
        type(self).images.update(tags)
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        type(self).calls.append({"exists": image_name, "pull": pull_from_repo})
        return image_name in type(self).images

    def push(self, tag):
        type(self).pushed.append(tag)
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    for name in ("docker", "envb", "fileb", "flagb"):
        rtbuild_site.add_builder(f"rtbuild-{name}", name, module=f"{name}_site_builder")
    rtbuild_site.add_builder("rtbuild-pushy", "pushy", source=PUSHING_BUILDER, module="pushy_site_builder")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def calls(builder: str) -> list[dict[str, Any]]:
    module = sys.modules.get(f"{builder}_site_builder")
    return [] if module is None else list(module.SiteBuilder.calls)


def build(context: Path, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return run_cli(["build", str(context), "-t", "img:1", *args], env=env)


# --- builder factory ---------------------------------------------------------------------


def test_default_builder_is_docker(site: FakeSite, context: Path) -> None:
    result = build(context)
    assert result.exit_code == 0, result.stderr
    assert len(calls("docker")) == 1


def test_config_file_beats_default(site: FakeSite, context: Path, tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('builder = "fileb"\n')
    assert build(context).exit_code == 0
    assert len(calls("fileb")) == 1 and calls("docker") == []


def test_env_beats_config_file(site: FakeSite, context: Path, tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('builder = "fileb"\n')
    assert build(context, env={"RTBUILD_BUILDER": "envb"}).exit_code == 0
    assert len(calls("envb")) == 1 and calls("fileb") == []


def test_flag_beats_env(site: FakeSite, context: Path, tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('builder = "fileb"\n')
    result = build(context, "--builder", "flagb", "--json", env={"RTBUILD_BUILDER": "envb"})
    assert result.exit_code == 0, result.stderr
    assert len(calls("flagb")) == 1 and calls("envb") == [] and calls("fileb") == []
    assert result.json()["builder"] == "flagb"


def test_unknown_builder_exit_2_lists_choices(site: FakeSite, context: Path) -> None:
    result = build(context, "--builder", "nope")
    assert result.exit_code == 2
    assert "builder 'nope' not recognised, choose one of: docker, envb, fileb, flagb, pushy" in result.stderr
    assert "hint:" in result.stderr and result.stdout == ""


# --- structured args for two-method builders -------------------------------------------------


def test_build_args_and_labels_reach_the_builder_as_entries(site: FakeSite, context: Path) -> None:
    result = build(
        context,
        "-t",
        "img:latest",
        "--platform",
        "linux/amd64",
        "--build-arg",
        "A=B",
        "--build-arg",
        "EMPTY=",
        "--label",
        "org.example.team=agents",
        "--extra",
        "--pull",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "img:1\n"
    (call,) = calls("docker")
    assert call["tags"] == ["img:1", "img:latest"] and call["platform"] == "linux/amd64"
    assert call["extra_build_args"] == [
        "--build-arg",
        "A=B",
        "--build-arg",
        "EMPTY=",
        "--label",
        "org.example.team=agents",
        "--pull",
    ]


def test_malformed_build_arg_is_a_usage_error(site: FakeSite, context: Path) -> None:
    result = build(context, "--build-arg", "NOEQUALS")
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.stderr and "--build-arg" in result.stderr
    assert calls("docker") == []


# --- exit codes, streams, debug, JSON ------------------------------------------------------


def test_success_prints_only_the_image_on_stdout(site: FakeSite, context: Path) -> None:
    result = build(context)
    assert result.exit_code == 0
    assert result.stdout == "img:1\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "{ctx}", "-t", "img:1", "--json"],
        ["exists", "present:1", "--builder", "pushy", "--json"],
        ["plugins", "--json"],
        ["prune", "--dry-run", "--json"],
    ],
)
def test_a_plugin_printing_at_import_does_not_reach_stdout(site: FakeSite, context: Path, argv: list[str]) -> None:
    site.add_plugin("rtbuild-chatty", "chatty", 'print("CHATTY AT IMPORT")\n', module="chatty_import_plugin")
    sys.modules.pop("chatty_import_plugin", None)
    result = run_cli([arg.replace("{ctx}", str(context)) for arg in argv])
    assert "CHATTY" not in result.stdout
    assert "CHATTY AT IMPORT" in result.stderr
    json.loads(result.stdout)  # stdout is the result and only the result


def test_an_unusable_cache_dir_is_a_usage_error_not_an_internal_one(
    site: FakeSite, context: Path, tmp_path: Path
) -> None:
    (tmp_path / "cachefile").write_text("")
    result = build(context, "--json", env={"XDG_CACHE_HOME": str(tmp_path / "cachefile")})
    assert result.exit_code == 2, result.stderr
    assert result.json()["error"] == "ConfigError" and "cachefile" in result.json()["message"]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_build_json_result(site: FakeSite, context: Path) -> None:
    result = build(context, "-t", "img:2", "--json")
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    assert payload["image"] == "img:1" and payload["tags"] == ["img:1", "img:2"]
    assert payload["builder"] == "docker" and payload["cached"] is False
    assert isinstance(payload["duration_s"], float)
    # Progress in JSON mode goes to stderr as one JSON object per line.
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"build_started", "build_finished"} <= {event["event"] for event in events}


def test_build_failure_exit_1_with_step_log_and_hint(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "fail:1", "--builder", "pushy"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: step 2/3 RUN false failed" in result.stderr
    assert "step: build" in result.stderr and "| exit code: 1" in result.stderr
    assert "hint: fix the Dockerfile" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(site: FakeSite, context: Path) -> None:
    result = run_cli(["--debug", "build", str(context), "-t", "fail:1", "--builder", "pushy"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "error: step 2/3 RUN false failed" in result.stderr


def test_json_errors_go_to_stdout_as_json(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "fail:1", "--builder", "pushy", "--json"])
    assert result.exit_code == 1
    payload = result.json()
    assert payload == {
        "error": "BuildFailedError",
        "message": "step 2/3 RUN false failed",
        "step": "build",
        "log_tail": ["#5 RUN false", "exit code: 1"],
        "hint": "fix the Dockerfile",
        "log_path": None,
        "blame": "builder pushy (rtbuild-pushy 1.0)",
        "exit_code": 1,
    }


def test_a_json_that_is_another_options_value_asks_for_no_json(site: FakeSite, context: Path) -> None:
    """``--extra --json`` hands ``--json`` to the builder; the error was printed as JSON
    on stdout all the same, found by a search of argv meant for failures before parsing."""
    result = run_cli(["build", str(context), "-t", "fail:1", "--builder", "pushy", "--extra", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: step 2/3 RUN false failed" in result.stderr


def test_internal_error_exit_1_no_traceback_unless_debug(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "bug:1", "--builder", "pushy"])
    assert result.exit_code == 1
    assert "internal error: ValueError: a bug in the backend" in result.stderr
    assert "--debug" in result.stderr and "Traceback" not in result.stderr
    debug = run_cli(["--debug", "build", str(context), "-t", "bug:1", "--builder", "pushy"])
    assert debug.exit_code == 1 and "Traceback (most recent call last)" in debug.stderr


def test_build_many_names_a_bug_s_author_and_shows_its_traceback_under_debug(
    site: FakeSite, context: Path, tmp_path: Path
) -> None:
    batch = tmp_path / "images.toml"
    batch.write_text(f'[defaults]\nbuilder = "pushy"\n\n[[build]]\npath = "{context}"\ntags = ["bug:1"]\n')
    plain = run_cli(["build-many", str(batch)])
    assert plain.exit_code == 1
    assert "internal error: ValueError: a bug in the backend" in plain.stderr
    assert "from: builder pushy" in plain.stderr and "Traceback" not in plain.stderr
    debug = run_cli(["--debug", "build-many", str(batch), "--json"])
    assert debug.exit_code == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "a bug in the backend" in debug.stderr
    [failed] = debug.json()["builds"]
    assert failed["error"]["blame"].startswith("builder pushy")


def test_missing_context_exit_2(site: FakeSite, tmp_path: Path) -> None:
    result = run_cli(["build", str(tmp_path / "nowhere"), "-t", "img:1"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "step: validate context" in result.stderr


def test_context_without_dockerfile_exit_2(site: FakeSite, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli(["build", str(tmp_path / "empty"), "-t", "img:1"])
    assert result.exit_code == 2 and "no Dockerfile" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["build", "."],  # no -t
        ["nosuchcommand"],
        ["build"],
        ["exists"],
        ["--no-such-flag"],
    ],
)
def test_usage_errors_exit_2(site: FakeSite, args: list[str]) -> None:
    result = run_cli(args)
    assert result.exit_code == 2, result
    assert result.stdout == ""
    assert "Usage:" in result.stderr or "Error:" in result.stderr


def test_the_console_script_freezes_its_heap_for_exit_but_main_does_not(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `rtbuild` script spares the final collection a pass over everything (gc.freeze);
    main(), which platforms and tests call in their own process, leaves their heap alone."""
    import gc

    from rtbuild.cli import _main

    frozen: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setattr(sys, "argv", ["rtbuild", "--version"])
    assert _main.main(["--version"]) == 0
    assert frozen == []
    with pytest.raises(SystemExit) as exited:
        _main.run()
    assert exited.value.code == 0 and frozen == [1]
    monkeypatch.setattr(sys, "argv", ["rtbuild", "no-such-command"])
    with pytest.raises(SystemExit) as failed:
        _main.run()
    assert failed.value.code == 2 and frozen == [1, 1]


def test_help_and_version(site: FakeSite) -> None:
    from rtbuild import __version__
    from rtbuild.cli._main import COMMANDS, cli

    helped = run_cli(["--help"])
    assert helped.exit_code == 0
    for name in ("build", "exists", "plugins", "builders"):
        assert name in helped.stdout
    for option in ("--debug", "--config", "--no-plugins", "--trace-hooks", "--version"):
        assert option in helped.stdout
    version = run_cli(["--version"])
    assert version.exit_code == 0 and __version__ in version.stdout
    for name, target in COMMANDS.items():
        module = target.split(":")[0]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue  # another engineer's command, not written yet
        sub = run_cli([name, "--help"])
        assert sub.exit_code == 0, (name, sub.stderr)
        command = cli.get_command(click.Context(cli), name)
        if isinstance(command, click.Group):  # `rtbuild new builder|plugin`: each subcommand
            for child in command.commands:
                assert "--json" in run_cli([name, child, "--help"]).stdout, f"{name} {child} lacks --json"
            continue
        assert "--json" in sub.stdout, f"{name} lacks --json"


def test_push_uses_the_builders_push(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "a:1", "-t", "a:2", "--builder", "pushy", "--push"])
    assert result.exit_code == 0, result.stderr
    assert sys.modules["pushy_site_builder"].SiteBuilder.pushed == ["a:1", "a:2"]


def test_push_without_push_support_exit_2_before_any_work(site: FakeSite, context: Path) -> None:
    result = build(context, "--push")
    assert result.exit_code == 2
    assert "cannot do what this build asks: push" in result.stderr
    assert "step: check builder capabilities" in result.stderr


# --- exists --------------------------------------------------------------------------------


def test_exists_exit_codes(site: FakeSite) -> None:
    present = run_cli(["exists", "present:1", "--builder", "pushy"])
    assert present.exit_code == 0 and "available" in present.stderr and present.stdout == ""
    absent = run_cli(["exists", "absent:1", "--builder", "pushy", "--no-pull"])
    assert absent.exit_code == 1 and "not found" in absent.stderr
    recorded = [c for c in calls("pushy") if "exists" in c]
    assert recorded == [{"exists": "present:1", "pull": True}, {"exists": "absent:1", "pull": False}]


@pytest.mark.parametrize("platform", ["linux", "x y", ",", "linux/amd64/v8/extra", "linux/amd64, "])
def test_exists_refuses_a_malformed_platform_instead_of_answering_absent(site: FakeSite, platform: str) -> None:
    result = run_cli(["exists", "present:1", "--builder", "pushy", "--platform", platform, "--json"])
    assert result.exit_code == 2, result.stderr
    assert "invalid platform" in result.stderr and "os/arch" in result.stderr
    assert not [c for c in calls("pushy") if "exists" in c]  # the builder was never asked


def test_exists_refuses_a_malformed_reference_before_asking_the_builder(site: FakeSite) -> None:
    result = run_cli(["exists", "Bad Ref", "--builder", "pushy", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert (error["error"], error["blame"]) == ("InvalidReferenceError", None)
    assert not [c for c in calls("pushy") if "exists" in c]


def test_exists_json(site: FakeSite) -> None:
    result = run_cli(["exists", "absent:1", "--builder", "pushy", "--json"])
    assert result.exit_code == 1
    assert result.json() == {"image": "absent:1", "exists": False, "pull": True}


def test_exists_uses_env_builder_and_reports_unknown(site: FakeSite) -> None:
    result = run_cli(["exists", "present:1"], env={"RTBUILD_BUILDER": "pushy"})
    assert result.exit_code == 0
    unknown = run_cli(["exists", "x:1", "--builder", "nope"])
    assert unknown.exit_code == 2 and "not recognised" in unknown.stderr


def test_exists_after_build_sees_the_image(site: FakeSite, context: Path) -> None:
    assert run_cli(["build", str(context), "-t", "fresh:1", "--builder", "pushy"]).exit_code == 0
    assert run_cli(["exists", "fresh:1", "--builder", "pushy"]).exit_code == 0


@pytest.mark.parametrize("value", ["nan", "-1"])
def test_lock_timeout_must_be_a_number_of_seconds(site: FakeSite, context: Path, value: str) -> None:
    result = build(context, "--lock-timeout", value)
    assert result.exit_code == 2 and "--lock-timeout" in result.stderr
    assert calls("docker") == []  # refused before any build
