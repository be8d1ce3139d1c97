"""The core masks secret values in whatever any builder reports or raises, its dry-run plan
and its result: a builder written from `rtbuild new builder` (or by hand) streams its
engine's output unmasked, so a `RUN` that printed a secret-looking build arg put its value
in the progress lines, the --json events, the error's log tail and --dry-run's plan."""

from __future__ import annotations

import ast
import os
import stat
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import rtbuild
from rtbuild import BuilderCapabilities, BuildFailedError, BuildRequest, BuildResult, BuildSecret, RuntimeBuilder
from rtbuild._framework.pipeline import plan_build
from rtbuild._framework.progress import use_reporter
from rtbuild.testing import run_cli

TOKEN = "hunter2-very-secret-value"
PASSWORD = "pa55-in-a-url"


class _Lines(rtbuild.Reporter):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def line(self, text: str, *, source: str = "build") -> None:
        self.seen.append(text)

    def event(self, kind: str, **fields: Any) -> None:
        self.seen.append(f"{kind} {fields}")


class _EchoBuilder(RuntimeBuilder):
    """Prints every build arg's value in its output, as a `RUN echo $TOKEN` would."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(secrets=True, dry_run=True)
    fail = False

    def build_request(self, request: BuildRequest) -> BuildResult:
        reporter = rtbuild.get_reporter()
        values = [*request.build_args.values(), *(s.value().decode() for s in request.secrets)]
        for value in values:
            reporter.line(f"step output: {value}")
            reporter.event("step", step=f"RUN echo {value}")
        if self.fail:
            raise BuildFailedError(
                f"failed while printing {values[0]}", step=f"RUN echo {values[0]}", log_tail=values, hint=values[-1]
            )
        return BuildResult(request.tags[0], list(request.tags), "echo", 0.0, details={"echo": values})

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("the typed entry point is used")

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return False

    def plan(self, request: BuildRequest) -> str:
        return "echo-build " + " ".join(f"--build-arg {k}={v}" for k, v in request.build_args.items())


def _request(tmp_path: Path) -> BuildRequest:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return BuildRequest(
        str(tmp_path),
        tags=["mask:1"],
        build_args={"API_TOKEN": TOKEN, "INDEX": f"https://me:{PASSWORD}@pypi.example/simple", "PLAIN": "shown-1"},
    )


def _run(request: BuildRequest, builder: RuntimeBuilder) -> tuple[BuildResult | None, Exception | None, list[str]]:
    lines = _Lines()
    with use_reporter(lines):
        try:
            return rtbuild.run_build(request, config=rtbuild.Config(), builder=builder), None, lines.seen
        except Exception as exc:
            return None, exc, lines.seen


def test_lines_events_and_result_are_masked(tmp_path: Path) -> None:
    result, error, seen = _run(_request(tmp_path), _EchoBuilder())
    assert error is None and result is not None
    shown = "\n".join(seen) + repr(result.details)
    assert TOKEN not in shown and PASSWORD not in shown
    assert "step output: ***" in shown and "shown-1" in shown  # masked, and a plain value kept


def test_an_error_is_masked_everywhere(tmp_path: Path) -> None:
    builder = _EchoBuilder()
    builder.fail = True
    _, error, seen = _run(_request(tmp_path), builder)
    assert isinstance(error, BuildFailedError)
    shown = "\n".join([*seen, str(error), error.render(), repr(error.args), repr(error.to_dict())])
    assert TOKEN not in shown and PASSWORD not in shown
    assert error.message == "failed while printing ***" and "shown-1" in error.log_tail


def test_secret_contents_and_pre_build_args_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASK_TEST_SECRET", "secret-from-the-environment")
    request = _request(tmp_path)
    request.secrets = [BuildSecret("npm", env="MASK_TEST_SECRET")]

    class AddsAnArg:
        @rtbuild.hookimpl
        def pre_build(self, request: BuildRequest, config: rtbuild.Config) -> None:
            request.build_args["DEPLOY_PASSWORD"] = "added-by-a-pre-build-hook"

    pm = rtbuild.get_plugin_manager(rtbuild.Config(), load_entrypoints=False)
    pm.register(AddsAnArg(), name="adds-an-arg")
    lines = _Lines()
    with use_reporter(lines):
        result = rtbuild.run_build(request, config=rtbuild.Config(), pm=pm, builder=_EchoBuilder())
    shown = "\n".join(lines.seen) + repr(result.details)
    assert "secret-from-the-environment" not in shown and "added-by-a-pre-build-hook" not in shown
    assert shown.count("***") >= 4


def test_dry_run_plan_is_masked(tmp_path: Path) -> None:
    plan = plan_build(_request(tmp_path), config=rtbuild.Config(), builder=_EchoBuilder())
    assert TOKEN not in plan and PASSWORD not in plan
    assert "--build-arg API_TOKEN=***" in plan and "PLAIN=shown-1" in plan


def test_a_dry_run_plan_that_fails_is_masked(tmp_path: Path) -> None:
    class RefusingPlan(_EchoBuilder):
        def plan(self, request: BuildRequest) -> str:
            token = request.build_args["API_TOKEN"]
            raise BuildFailedError(f"cannot plan with {token}", step=f"plan {token}", log_tail=[token], hint=token)

    with pytest.raises(BuildFailedError) as caught:
        plan_build(_request(tmp_path), config=rtbuild.Config(), builder=RefusingPlan())
    error = caught.value
    shown = "\n".join([str(error), error.render(), repr(error.args), repr(error.to_dict())])
    assert TOKEN not in shown
    assert error.message == "cannot plan with ***" and error.log_tail == ["***"]


def test_a_request_without_secrets_reports_through_the_callers_reporter(tmp_path: Path) -> None:
    request = _request(tmp_path)
    request.build_args = {"PLAIN": "shown-1"}
    result, error, seen = _run(request, _EchoBuilder())
    assert error is None and result is not None and "step output: shown-1" in seen


def _fake_cli(tmp_path: Path) -> Path:
    """A `docker` that records its command line and environment, and builds nothing."""
    script = tmp_path / "fake-docker"
    record = tmp_path / "record"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = sys.argv[1:]\n"
        "if args[:1] in (['buildx'], ['version']): sys.exit(1 if args[0] == 'buildx' else 0)\n"
        f"open({str(record)!r}, 'w').write(repr((args, os.environ.get('API_TOKEN'))))\n"
        "if '--iidfile' in args: open(args[args.index('--iidfile') + 1], 'w').write('sha256:' + '0' * 64)\n"
        "print('Step 1/1 : FROM scratch')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return record


def test_the_scaffold_builder_keeps_secret_values_off_the_command_line(tmp_path: Path) -> None:
    """`rtbuild new builder`'s docker-CLI builder: a secret-looking build arg reaches the
    client in its environment (only its owner reads /proc/PID/environ), not its argv."""
    assert run_cli(["new", "builder", "maskcheck", "-o", str(tmp_path)]).exit_code == 0
    sys.path.insert(0, str(tmp_path / "rtbuild-maskcheck" / "src"))
    try:
        from rtbuild_maskcheck.builder import MaskcheckBuilder
    finally:
        sys.path.pop(0)
    record = _fake_cli(tmp_path)
    builder = MaskcheckBuilder(cli=str(tmp_path / "fake-docker"))
    builder.name = "maskcheck"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    builder.build_request(BuildRequest(str(context), tags=["mask:2"], build_args={"API_TOKEN": TOKEN}))
    argv, env_value = ast.literal_eval(record.read_text())
    assert TOKEN not in " ".join(argv) and "API_TOKEN" in argv
    assert env_value == TOKEN
    assert TOKEN not in builder.plan(BuildRequest(str(context), tags=["mask:2"], build_args={"API_TOKEN": TOKEN}))
    assert os.environ.get("API_TOKEN") != TOKEN  # rtbuild's own environment is untouched
