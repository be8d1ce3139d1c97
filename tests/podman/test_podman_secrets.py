"""Build-arg values and --secret contents never leave a Podman build in rtbuild's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names, write_context
from rtbuild import BuildFailedError, BuildRequest, BuildSecret, ConfigError, Reporter
from rtbuild._framework.progress import use_reporter
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

TOKEN = "tok-5f1e9a-never-shown"
SECRET = "file-secret-77c2d0-never-shown"
ECHOES = (
    "FROM busybox:latest\nARG API_TOKEN\n"
    'RUN echo "arg is $API_TOKEN"\n'
    'RUN --mount=type=secret,id=npmrc echo "file is $(cat /run/secrets/npmrc)"\n'
)
FAILING = 'RUN --mount=type=secret,id=npmrc echo "failing: arg is $API_TOKEN, $(cat /run/secrets/npmrc)"; exit 7\n'


class Recording(Reporter):
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def line(self, text: str, *, source: str = "build") -> None:
        self.seen.append(text)

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))
        self.seen.append(json.dumps(fields, default=str))


def _request(ctx: Path, name: str, secret_file: Path, failing: bool = False) -> BuildRequest:
    if failing:
        # A RUN of its own: the steps above come from the layer cache and print nothing.
        (ctx / "Dockerfile").write_text(ECHOES + FAILING)
    return BuildRequest(
        path=str(ctx),
        tags=[name],
        build_args={"API_TOKEN": TOKEN},
        secrets=[BuildSecret(id="npmrc", src=str(secret_file))],
    )


def test_values_are_masked_in_plan_log_progress_and_errors(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    ctx = write_context(tmp_path / "ctx", ECHOES)
    secret_file = tmp_path / "npmrc"
    secret_file.write_text(SECRET + "\n")
    request = _request(ctx, names.new("localhost/rtbuild-test/secrets"), secret_file)
    plan = builder.plan(request)
    assert "API_TOKEN=***" in plan and TOKEN not in plan

    reporter = Recording()
    with use_reporter(reporter):
        result = builder.build_request(request)
    log = Path(result.details["log_path"]).read_text()
    assert "arg is ***" in log and "file is ***" in log  # the RUN output did reach the log
    assert "API_TOKEN=***" in log.splitlines()[0]
    everything = "\n".join([log, *reporter.seen, json.dumps(result.details, default=str)])
    assert TOKEN not in everything and SECRET not in everything
    warnings = [fields for kind, fields in reporter.events if kind == "warning"]
    assert any("API_TOKEN" in w.get("message", "") and "--secret" in w["message"] for w in warnings)

    reporter = Recording()
    with use_reporter(reporter), pytest.raises(BuildFailedError) as info:
        builder.build_request(_request(ctx, names.new("localhost/rtbuild-test/secrets"), secret_file, failing=True))
    err = info.value
    shown = "\n".join([str(err), err.message, *(err.log_tail or []), *reporter.seen])
    assert "failing: arg is ***, ***" in shown
    assert TOKEN not in shown and SECRET not in shown
    assert err.log_path and TOKEN not in Path(err.log_path).read_text()


def test_an_unset_env_secret_is_a_usage_error_before_podman_runs(
    builder: PodmanBuilder, names: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RTBUILD_TEST_UNSET_SECRET", raising=False)
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n")
    request = BuildRequest(
        path=str(ctx),
        tags=[names.new("localhost/rtbuild-test/secrets")],
        secrets=[BuildSecret(id="tok", env="RTBUILD_TEST_UNSET_SECRET")],
    )
    with pytest.raises(ConfigError, match="RTBUILD_TEST_UNSET_SECRET is not set"):
        builder.build_request(request)
    assert builder.inspect_image(request.tags[0]) is None


def test_cli_exit_2_for_a_missing_secret_source_or_env(names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # its logs
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    for spec in (f"id=tok,src={tmp_path / 'absent'}", "id=tok,env=RTBUILD_TEST_UNSET_SECRET"):
        proc = subprocess.run(
            [rtbuild, "build", str(ctx), "-t", names.new("localhost/rtbuild-test/secrets"), "--builder", "podman",
             "--secret", spec],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 2, (spec, proc.stderr)


def test_a_url_password_with_raw_and_encoded_at_signs_is_masked(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """``PIP_INDEX_URL=https://u:PW@host/simple`` with a raw ``@`` in PW: the command showed
    the part after its first ``@`` and a RUN echoing the URL showed it whole, in the log, the
    progress lines and the error's log tail. Encoded (``%40``), pip prints it decoded."""
    dockerfile = (
        "FROM busybox:latest\nARG PIP_INDEX_URL\nARG ALT_URL\n"
        'RUN echo "url=$PIP_INDEX_URL"; echo "alt=$ALT_URL" | sed s/%40/@/; exit 5\n'
    )
    ctx = write_context(tmp_path / "ctx", dockerfile)
    raw, encoded = "https://u:Zq9@x7k@pypi.example/simple", "https://u:Wv4%40m2j@pypi.example/simple"
    request = BuildRequest(
        path=str(ctx),
        tags=[names.new("localhost/rtbuild-test/secrets")],
        build_args={"PIP_INDEX_URL": raw, "ALT_URL": encoded},
    )
    plan = builder.plan(request)
    assert "PIP_INDEX_URL=https://u:***@pypi.example/simple" in plan
    reporter = Recording()
    with use_reporter(reporter), pytest.raises(BuildFailedError) as info:
        builder.build_request(request)
    err = info.value
    assert err.log_path
    log = Path(err.log_path).read_text()
    assert "url=https://u:***@pypi.example/simple" in log  # the RUN's output reached the log
    assert "alt=https://u:***@pypi.example/simple" in log  # decoded, as pip prints it
    shown = "\n".join([plan, log, str(err), *(err.log_tail or []), *reporter.seen])
    for part in ("Zq9", "x7k", "Wv4", "m2j"):
        assert part not in shown, part


def test_a_proxy_password_podman_forwards_into_run_is_masked(
    builder: PodmanBuilder, names: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """podman build hands each RUN the proxy variables of its own environment (--http-proxy,
    on by default), which rtbuild's are: a step printing them (``env``, pip's proxy errors)
    showed the proxy's password in the log, progress and the error's log tail."""
    password = "Prx9-proxy-never-shown"
    monkeypatch.setenv("HTTPS_PROXY", f"http://puser:{password}@127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://puser:Qm3%40proxy-encoded@127.0.0.1:9")
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN env | grep -i _proxy | sed s/%40/@/; exit 2\n")
    reporter = Recording()
    with use_reporter(reporter), pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[names.new("localhost/rtbuild-test/secrets")]))
    err = info.value
    assert err.log_path
    log = Path(err.log_path).read_text()
    assert "HTTPS_PROXY=http://puser:***@127.0.0.1:9" in log  # podman did forward it
    assert "http_proxy=http://puser:***@127.0.0.1:9" in log
    shown = "\n".join([log, str(err), *(err.log_tail or []), *reporter.seen])
    for part in (password, "Qm3"):
        assert part not in shown, part


def test_a_build_arg_podman_takes_from_the_environment_is_masked(
    builder: PodmanBuilder, names: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--extra=--build-arg=API_TOKEN`` (no value): podman gives the arg the value of
    API_TOKEN in its environment, rtbuild's. rtbuild read only ``K=V`` forms: no warning, and
    a step echoing the arg showed the token in the log, progress and the error's log tail."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    ctx = write_context(tmp_path / "ctx", 'FROM busybox:latest\nARG API_TOKEN\nRUN echo "tok=$API_TOKEN"; exit 3\n')
    for extra in (["--build-arg=API_TOKEN"], ["--build-arg", "API_TOKEN"]):
        request = BuildRequest(
            path=str(ctx), tags=[names.new("localhost/rtbuild-test/secrets")], extra_build_args=extra, no_cache=True
        )
        reporter = Recording()
        with use_reporter(reporter), pytest.raises(BuildFailedError) as info:
            builder.build_request(request)
        err = info.value
        assert err.log_path
        log = Path(err.log_path).read_text()
        assert "tok=***" in log  # podman did pass the value
        shown = "\n".join([log, str(err), *(err.log_tail or []), *reporter.seen])
        assert TOKEN not in shown
        warnings = [fields for kind, fields in reporter.events if kind == "warning"]
        assert any("API_TOKEN" in w.get("message", "") for w in warnings)


def test_an_extra_build_arg_overriding_the_requests_is_masked(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """``--build-arg API_TOKEN=a --extra=--build-arg=API_TOKEN=b``: podman reads the extra
    arguments last and builds with ``b``. rtbuild masked the request's ``a`` (its own parser
    let the request win), and a step echoing the arg showed ``b`` in the log, progress and
    the error's log tail."""
    ctx = write_context(tmp_path / "ctx", 'FROM busybox:latest\nARG API_TOKEN\nRUN echo "tok=$API_TOKEN"; exit 3\n')
    request = BuildRequest(
        path=str(ctx),
        tags=[names.new("localhost/rtbuild-test/secrets")],
        build_args={"API_TOKEN": "request-value-not-used"},
        extra_build_args=[f"--build-arg=API_TOKEN={TOKEN}"],
        no_cache=True,
    )
    reporter = Recording()
    with use_reporter(reporter), pytest.raises(BuildFailedError) as info:
        builder.build_request(request)
    err = info.value
    assert err.log_path
    log = Path(err.log_path).read_text()
    assert "tok=***" in log  # podman built with the extra value
    shown = "\n".join([log, str(err), *(err.log_tail or []), *reporter.seen])
    assert TOKEN not in shown


def test_build_args_of_takes_the_later_spelling_as_podman_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The request's args come first on podman's command line, the extra ones last; a bare
    ``--build-arg K`` takes ``K`` from the environment in its place among them."""
    from rtbuild_podman.build import build_args_of

    monkeypatch.setenv("K_FROM_ENV", "env")
    request = BuildRequest(
        path=".",
        tags=["x"],
        build_args={"A": "request", "B": "request"},
        extra_build_args=["--build-arg", "A=extra", "--build-arg=K_FROM_ENV=given", "--build-arg", "K_FROM_ENV"],
    )
    assert build_args_of(request) == {"A": "extra", "B": "request", "K_FROM_ENV": "env"}
    request.extra_build_args.append("--build-arg=K_FROM_ENV=last")
    assert build_args_of(request)["K_FROM_ENV"] == "last"
