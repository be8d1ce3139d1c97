"""Unit tests of the docker build side: client choice, Dockerfile parsing, error mapping."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rtbuild import BuildFailedError, Config, ConfigError, EngineUnavailableError
from rtbuild.enginekit import external_images, skip_blocked
from rtbuild_docker.builder import DockerBuilder
from rtbuild_docker.buildkit import choose_client, probe
from rtbuild_docker.failures import build_error
from rtbuild_docker.spec import absolute_dockerfile as _absolute_dockerfile


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def fake_cli(tmp_path: Path, name: str, version: str, buildx: bool) -> str:
    path = tmp_path / name
    buildx_line = 'echo "github.com/docker/buildx v0.12.1 abc"; exit 0' if buildx else "exit 1"
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path / (name + ".calls")}\n'
        f'if [ "$1" = "--version" ]; then echo "Docker version {version}, build abc"; exit 0; fi\n'
        f'if [ "$1" = "buildx" ]; then {buildx_line}; fi\n'
        "exit 2\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    probe.cache_clear()
    return str(path)


def test_buildx_preferred(tmp_path: Path) -> None:
    client = choose_client("auto", fake_cli(tmp_path, "d", "28.1.1", buildx=True))
    assert client.mode == "buildx" and client.command()[1:] == ["buildx", "build", "--load"]


def test_old_client_uses_docker_buildkit_env(tmp_path: Path) -> None:
    client = choose_client("auto", fake_cli(tmp_path, "d", "20.10.24+dfsg1", buildx=False))
    assert client.mode == "env" and client.env == {"DOCKER_BUILDKIT": "1"} and client.buildkit


def test_new_client_without_buildx_is_refused_not_legacy(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, "d", "28.5.0", buildx=False)
    with pytest.raises(ConfigError, match="BuildKit") as info:
        choose_client("auto", cli)
    assert info.value.hint is not None and "legacy" in info.value.hint
    with pytest.raises(ConfigError):
        choose_client("buildx", fake_cli(tmp_path, "e", "20.10.24", buildx=False))
    legacy = choose_client("legacy", cli)
    assert legacy.mode == "legacy" and not legacy.buildkit and legacy.env == {"DOCKER_BUILDKIT": "0"}


def test_probe_is_cached_on_disk_until_the_cli_changes(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, "d", "20.10.24", buildx=False)
    calls = tmp_path / "d.calls"
    assert probe(cli) == ("20.10.24", False)
    probe.cache_clear()  # a new process: only the disk cache remains
    before = calls.read_text()
    assert probe(cli) == ("20.10.24", False)
    assert calls.read_text() == before  # the CLI was not run again
    fake_cli(tmp_path, "d", "28.0.1", buildx=True)  # upgraded in place: size/mtime change
    assert probe(cli) == ("28.0.1", True)


def test_unknown_mode_and_missing_cli(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        choose_client("fast")
    with pytest.raises(ConfigError, match="not an executable"):
        choose_client("auto", str(tmp_path / "nope"))


def test_from_config_keys() -> None:
    config = Config(builders={"docker": {"docker_cli": "/usr/bin/docker", "buildkit": "env", "log_dir": "/tmp/x"}})
    builder = DockerBuilder.from_config(config)
    assert (builder.docker_cli, builder.buildkit, builder.log_dir) == ("/usr/bin/docker", "env", "/tmp/x")
    with pytest.raises(ConfigError, match="unknown key"):
        DockerBuilder.from_config(Config(builders={"docker": {"dockercli": "x"}}))
    with pytest.raises(ConfigError, match="must be one of"):
        DockerBuilder.from_config(Config(builders={"docker": {"buildkit": "yes"}}))
    with pytest.raises(ConfigError, match="list of strings"):
        DockerBuilder.from_config(Config(builders={"docker": {"insecure_registries": "h:5000"}}))


def test_external_images() -> None:
    dockerfile = (
        "# syntax comment\n"
        "ARG BASE=busybox:latest\n"
        "ARG TOOLS\n"
        "FROM --platform=$BUILDPLATFORM ${BASE} AS build\n"
        "RUN --mount=type=cache,target=/c --mount=type=bind,from=tools:1,target=/t \\\n"
        "    make\n"
        "FROM build AS test\n"
        "COPY --from=build /out /out\n"
        "COPY --from=0 /a /a\n"
        "COPY --from=helper:2 /bin/h /bin/h\n"
        "FROM scratch\n"
        "COPY --from=test /out /\n"
    )
    assert external_images(dockerfile, {}) == ["busybox:latest", "tools:1", "helper:2"]
    assert external_images(dockerfile, {"BASE": "debian:bookworm"})[0] == "debian:bookworm"


def test_skip_blocked_and_relative_dockerfile(tmp_path: Path) -> None:
    assert skip_blocked(["--network=host", "--cache-from", "x"]) is None
    assert skip_blocked(["--secret", "id=a,src=b"]) == "--secret"
    assert skip_blocked(["--ssh=default"]) == "--ssh"
    out = _absolute_dockerfile(str(tmp_path), ["-f", "sub/Dockerfile", "--network=host"])
    assert out == ["-f", str(tmp_path / "sub" / "Dockerfile"), "--network=host"]
    assert _absolute_dockerfile(str(tmp_path), ["--file=D"]) == [f"--file={tmp_path / 'D'}"]
    assert _absolute_dockerfile(str(tmp_path), ["-f=D"]) == [f"--file={tmp_path / 'D'}"]
    assert _absolute_dockerfile(str(tmp_path), ["-fD", "-q"]) == [f"--file={tmp_path / 'D'}", "-q"]
    # What the digest cannot see: a value from the environment, podman's outside files.
    assert skip_blocked(["--build-arg", "A=1", "--build-arg=B=2"]) is None
    assert skip_blocked(["--build-arg", "TOKEN"]) == "--build-arg TOKEN (its value from the environment)"
    assert skip_blocked(["--build-arg=TOKEN"]) == "--build-arg TOKEN (its value from the environment)"
    assert skip_blocked(["--env", "HOME"]) == "--env HOME (its value from the environment)"
    assert skip_blocked(["-v", "/src:/src"]) == "-v"
    assert skip_blocked(["--volume=/src:/src"]) == "--volume"
    assert skip_blocked(["--ignorefile", "x"]) == "--ignorefile"


FAILED_RUN = """#4 [1/3] FROM docker.io/library/busybox:latest
#4 CACHED

#5 [2/3] RUN echo hello
#5 0.239 hello
#5 DONE 0.3s

#6 [3/3] RUN echo bad && exit 3
#6 0.285 bad
#6 ERROR: executor failed running [/bin/sh -c echo bad && exit 3]: exit code: 3
------
 > [3/3] RUN echo bad && exit 3:
------
executor failed running [/bin/sh -c echo bad && exit 3]: exit code: 3""".splitlines()


def test_failed_step_mapping() -> None:
    error = build_error(FAILED_RUN, 1, log_path="/logs/x.log", host="unix:///var/run/docker.sock")
    assert isinstance(error, BuildFailedError)
    assert error.step == "RUN echo bad && exit 3"
    assert "[3/3]" in error.message and "exit code 3" in error.message
    assert error.log_path == "/logs/x.log" and error.log_tail[-1].startswith("executor failed")
    assert len(error.log_tail) <= 20


LEGACY_HEAD = [
    "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.",
    "Sending build context to Docker daemon  2.048kB",
    "Step 1/3 : FROM busybox:latest",
    " ---> a79d7d0462a2",
    "Step 2/3 : RUN echo fine",
    " ---> Running in 4c1f0e2a9b7d",
    "fine",
    " ---> 9d2e5c7b1a33",
]


def test_legacy_builder_failures_name_their_step() -> None:
    run = [*LEGACY_HEAD, "Step 3/3 : RUN echo bad && exit 3", " ---> Running in 0f3c", "bad"]
    run.append("The command '/bin/sh -c echo bad && exit 3' returned a non-zero code: 3")
    error = build_error(run, 3, log_path="/l", host="h")
    assert isinstance(error, BuildFailedError) and error.step == "RUN echo bad && exit 3"
    assert "[3/3]" in error.message and "exit code 3" in error.message and error.hint
    copy = [*LEGACY_HEAD, "Step 3/3 : COPY missing.txt /x", "COPY failed: file not found in build context"]
    error = build_error(copy, 1, log_path="/l", host="h")
    assert error.step == "COPY missing.txt /x" and "COPY failed: file not found" in error.message
    base = [LEGACY_HEAD[1], "Step 1/1 : FROM nonexistent-zzz:latest", 'Get "https://x/v2/": dial tcp: no such host']
    error = build_error(base, 1, log_path="/l", host="h")
    assert error.step == "FROM nonexistent-zzz:latest" and "base image could not be resolved" in error.message


def test_daemon_down_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nope.sock")
    lines = ["Cannot connect to the Docker daemon at unix:///tmp/nope.sock. Is the docker daemon running?"]
    error = build_error(lines, 1, log_path="/l", host="unix:///tmp/nope.sock")
    assert isinstance(error, EngineUnavailableError)
    assert "DOCKER_HOST" in error.message and error.hint is not None and "dockerd" in error.hint


def test_parse_error_mapping() -> None:
    lines = [
        "#1 [internal] load build definition from Dockerfile",
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "dockerfile parse error line 2: unknown instruction: RUNN",
    ]
    error = build_error(lines, 1, log_path="/l", host="h")
    assert isinstance(error, BuildFailedError) and error.step == "parse Dockerfile"
    assert "line 2" in error.message


def test_every_spelling_of_the_dockerfile_flag_is_read() -> None:
    from rtbuild.context import dockerfile_arg

    for args in (["-f", "D"], ["--file", "D"], ["--file=D"], ["-f=D"], ["-fD"], ["-q", "-fD"]):
        assert dockerfile_arg(args) == "D", args
    assert dockerfile_arg(["--force-rm", "-q"]) is None


def test_the_default_platform_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --platform the docker client builds for $DOCKER_DEFAULT_PLATFORM: the spec
    (so the input digest, and the argv) names it."""
    from rtbuild import BuildRequest

    builder = DockerBuilder.from_config(Config())
    monkeypatch.setenv("DOCKER_DEFAULT_PLATFORM", "linux/arm64")
    spec = builder.spec_for(BuildRequest(path=".", tags=["a:1"]))
    assert spec.platform == "linux/arm64" and spec.build_args["TARGETARCH"] == "arm64"
    assert builder.spec_for(BuildRequest(path=".", tags=["a:1"], platform="linux/amd64")).platform == "linux/amd64"
    monkeypatch.delenv("DOCKER_DEFAULT_PLATFORM")
    assert builder.spec_for(BuildRequest(path=".", tags=["a:1"])).platform is None


def test_concurrent_first_probes_run_the_cli_once(tmp_path: Path) -> None:
    import threading

    cli = fake_cli(tmp_path, "d", "20.10.24", buildx=False)
    script = Path(cli).read_text().replace("#!/bin/sh\n", "#!/bin/sh\nsleep 0.2\n", 1)
    Path(cli).write_text(script)  # a slow CLI: every thread asks while the first probe runs
    probe.cache_clear()
    start = threading.Barrier(8)
    answers: list[tuple[str, bool]] = []

    def ask() -> None:
        start.wait()
        answers.append(probe(cli))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [("20.10.24", False)] * 8
    assert (tmp_path / "d.calls").read_text().splitlines() == ["--version", "buildx version"]


def test_a_stalled_platform_pull_is_a_registry_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `docker pull` that never ends is killed after PULL_TIMEOUT_S and reported as the
    pull step's RegistryError, not a TimeoutExpired traceback."""
    from rtbuild import RegistryError
    from rtbuild_docker import platforms
    from rtbuild_docker.buildkit import BuildClient

    cli = tmp_path / "docker"
    cli.write_text('#!/bin/sh\necho "pulling from the mirror" >&2\nexec sleep 30\n')
    cli.chmod(0o755)
    builder = DockerBuilder.from_config(Config())
    monkeypatch.setattr(builder, "client", lambda: BuildClient(str(cli), "env", "20.10.24"))
    monkeypatch.setattr(platforms, "_local_platform", lambda builder, name: None)
    monkeypatch.setattr(platforms, "has_platforms", lambda client, ref, wanted: True)
    monkeypatch.setattr(platforms, "PULL_TIMEOUT_S", 1)
    with pytest.raises(RegistryError) as info:
        platforms.image_exists_for(builder, "127.0.0.1:5000/rt-test/slow:1", True, "linux/arm64")
    assert info.value.step == "pull image" and "did not finish" in str(info.value)
    assert info.value.log_tail == ["pulling from the mirror"]
