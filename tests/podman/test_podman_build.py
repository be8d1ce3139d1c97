"""PodmanBuilder against the real podman: builds, the no-op skip, failures, exists, push."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names, podman, write_context
from _tmpfs import small_tmpfs
from rtbuild import BuildFailedError, BuildRequest, RegistryAuthError
from rtbuild.oci import manifest_exists
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

STAGES = """\
FROM busybox:latest AS base
ARG GREETING=hi
RUN echo "$GREETING" > /greeting
COPY data.txt /data.txt

FROM base AS final
RUN echo final > /stage

FROM base AS other
RUN echo other > /stage
"""


def test_build_with_every_field_then_noop_skip(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "ctx", STAGES, {"data.txt": "one\n"})
    first, second = names.new(), names.new()
    request = BuildRequest(
        path=str(ctx),
        tags=[first, second],
        build_args={"GREETING": "hello"},
        labels={"org.example.team": "agents"},
        target="final",
    )
    result = builder.build_request(request)
    assert result.cached is False
    assert result.image == first
    out = podman("run", "--rm", first, "cat", "/greeting", "/stage", "/data.txt").stdout
    assert out.split() == ["hello", "final", "one"]
    info = builder.inspect_image(second)
    assert info is not None
    assert info.id == builder.image_id(first) == result.details["image_id"]
    assert info.labels["org.example.team"] == "agents"
    assert info.labels["org.rtbuild.input-digest"] == result.details["input_digest"]
    assert info.platforms == ("linux/amd64",)

    again = builder.build_request(request)
    assert again.cached is True
    assert again.details["image_id"] == result.details["image_id"]

    (ctx / "data.txt").write_text("two\n")
    changed = builder.build_request(request)
    assert changed.cached is False
    assert podman("run", "--rm", first, "cat", "/data.txt").stdout == "two\n"

    forced = builder.build_request(BuildRequest(**{**request.__dict__, "no_cache": True}))
    assert forced.cached is False


def test_failed_step_names_step_exit_code_and_log_tail(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "bad", "FROM busybox:latest\nRUN echo working\nRUN echo broken >&2; exit 3\n")
    with pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()]))
    err = info.value
    assert err.step == "RUN echo broken >&2; exit 3"
    assert "exit code 3" in err.message
    assert err.log_tail and any("broken" in line for line in err.log_tail)
    assert err.log_path and Path(err.log_path).read_text().count("STEP") >= 3


def test_a_target_in_another_case_builds_the_stage_as_on_docker(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """Docker and rtbuild's target check take a stage name in any case; Buildah only as
    written. ``--target FINAL`` for ``AS final`` passed the check, then podman failed with
    'The target "FINAL" was not found' and a hint to pull a base image."""
    dockerfile = STAGES.replace("AS other", "AS Other")
    ctx = write_context(tmp_path / "ctx", dockerfile, {"data.txt": "one\n"})
    for target, stage in (("FINAL", "final"), ("other", "other")):
        tag = names.new()
        request = BuildRequest(path=str(ctx), tags=[tag], target=target)
        assert f"--target {'Other' if stage == 'other' else 'final'}" in builder.plan(request)
        builder.build_request(request)
        shown = podman("run", "--rm", tag, "cat", "/stage").stdout.strip()
        assert shown == stage


def test_copy_from_a_stage_in_another_case_says_podman_wants_it_as_written(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """``COPY --from=BASE`` for ``AS base`` builds on Docker; Buildah stops with 'no stage or
    image found with that name', which rtbuild showed with the catch-all hint."""
    dockerfile = "FROM busybox:latest AS base\nRUN echo b > /b\nFROM busybox:latest\nCOPY --from=BASE /b /b\n"
    ctx = write_context(tmp_path / "ctx", dockerfile)
    with pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()]))
    assert "stage is 'base'" in info.value.message
    assert info.value.hint and "--from=base" in info.value.hint
    assert info.value.log_tail and info.value.log_path


def test_copy_from_an_image_podman_cannot_pull_is_a_base_error_as_on_docker(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """``COPY --from=IMAGE`` of an image nowhere to be found: Docker says 'base image could
    not be resolved' at step 'resolve base image'; Podman's 'no stage or image found with
    that name' was 'podman build failed (exit 125)' at step 'build' with the catch-all hint."""
    missing = "rt-podman-test/no-such-image:1"
    dockerfile = f"FROM busybox:latest AS base\nFROM busybox:latest\nCOPY --from={missing} /x /x\n"
    ctx = write_context(tmp_path / "ctx", dockerfile)
    with pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()]))
    err = info.value
    assert "base image could not be resolved" in err.message and "its stages: base" in err.message
    assert err.step == "resolve base image"
    assert err.hint and f"rtbuild exists {missing} --pull" in err.hint
    assert err.log_tail and err.log_path


def test_missing_base_image_is_a_base_error(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "nobase", "FROM rt-podman-test/no-such-base:1\nRUN true\n")
    with pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()]))
    assert "base image could not be resolved" in info.value.message
    assert info.value.hint and "rtbuild exists" in info.value.hint


def test_exists_local_then_registry_then_pull(builder: PodmanBuilder, names: Names, registry: Any) -> None:
    image = registry.ref(names.new())
    names.made.append(image)
    assert builder.image_exists(image) is False  # neither local nor in the registry
    podman("tag", "docker.io/library/busybox:latest", image)
    builder.podman.forget()
    assert builder.image_exists(image, pull_from_repo=False) is True
    builder.push(image)
    assert manifest_exists(image) is True
    podman("rmi", image)
    builder.podman.forget()
    assert builder.image_exists(image, pull_from_repo=False) is False
    assert builder.image_exists(image) is True  # HEAD said yes, then podman pulled it
    assert podman("image", "exists", image, check=False).returncode == 0
    assert builder.image_exists(image, platform="linux/arm64", pull_from_repo=False) is False


def _auth_file(path: Path, host: str, user: str, password: str) -> Path:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": pair}}}))
    return path


def test_push_uses_podman_auth_json(
    builder: PodmanBuilder, names: Names, auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    image = auth_registry.ref(names.new("rt-podman-test/private"))
    names.made.append(image)
    podman("tag", "docker.io/library/busybox:latest", image)
    (tmp_path / "none.json").write_text("{}")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    with pytest.raises(RegistryAuthError) as info:
        builder.push(image)
    assert "podman login" in (info.value.hint or "")
    # Wrong ones are named as refused, by where they came from (they read "log in"), never shown.
    wrong = _auth_file(tmp_path / "wrong.json", auth_registry.host, auth_registry.username, "wrong-pw-5e1d")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(wrong))
    with pytest.raises(RegistryAuthError) as refused:
        builder.push(image)
    assert f"from {wrong} were sent and refused" in (refused.value.hint or "")
    assert "wrong-pw-5e1d" not in json.dumps(refused.value.to_dict())
    good = _auth_file(tmp_path / "auth.json", auth_registry.host, auth_registry.username, auth_registry.password)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(good))
    builder.push(image)
    podman("rmi", image)
    builder.podman.forget()
    assert builder.image_exists(image) is True  # the registry HEAD and the pull use auth.json too


def _push_anonymously_and_pull_back(builder: PodmanBuilder, names: Names, registry: Any) -> None:
    image = registry.ref(names.new("rt-podman-test/anonymous"))
    names.made.append(image)
    podman("tag", "docker.io/library/busybox:latest", image)
    builder.push(image)
    podman("rmi", image)
    builder.podman.forget()
    assert builder.image_exists(image) is True  # pulled back through the same empty authfile


def test_a_docker_config_dir_without_config_json_means_no_credentials(
    builder: PodmanBuilder, names: Names, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for docker: Podman 4 alone stopped with `stat …/config.json: no such file`."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    _push_anonymously_and_pull_back(builder, names, registry)


def test_a_registry_auth_file_not_yet_written_means_no_credentials(
    builder: PodmanBuilder, names: Names, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``REGISTRY_AUTH_FILE`` naming a file `podman login` has not written yet: no
    credentials, as for rtbuild's lookup and ``podman build``. Podman 4's pull and push
    alone stopped with `stat …/auth.json: no such file or directory`."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "not-yet" / "auth.json"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.docker/config.json
    _push_anonymously_and_pull_back(builder, names, registry)
    assert not (tmp_path / "not-yet").exists()


def test_cli_builds_and_answers_exists_without_docker(names: Names, tmp_path: Path) -> None:
    """The done-when check: no docker binary on PATH, DOCKER_HOST at a socket that does
    not exist (the shared dockerd keeps running)."""
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN echo podman-only > /built\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("podman", "conmon", "runc", "crun", "newuidmap", "newgidmap"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bindir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    env.update(PATH=f"{bindir}:/usr/sbin:/sbin", DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    image = names.new()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([rtbuild, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    built = cli("build", str(ctx), "-t", image, "--builder", "podman")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith(image)
    assert cli("exists", image, "--builder", "podman").returncode == 0
    assert cli("exists", names.new(), "--builder", "podman", "--no-pull").returncode == 1
    assert podman("run", "--rm", image, "cat", "/built").stdout == "podman-only\n"


def test_noop_skip_for_a_single_component_name(builder: PodmanBuilder, tmp_path: Path) -> None:
    """``app:1`` is stored as ``localhost/app:1``: the batched inspect must still find it."""
    ctx = write_context(tmp_path / "one", "FROM busybox:latest\nLABEL one=component\n")
    name = f"rt-podman-single-{os.getpid()}:1"
    try:
        assert builder.build_request(BuildRequest(path=str(ctx), tags=[name])).cached is False
        assert builder.build_request(BuildRequest(path=str(ctx), tags=[name])).cached is True
    finally:
        podman("rmi", "-f", name, check=False)


def test_what_the_digest_cannot_see_turns_the_skip_off(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    """A `# syntax` frontend (BuildKit's; podman reads it as a comment, so it still builds)
    and a .containerignore (podman reads it instead of .dockerignore): always built."""
    name = names.new()
    frontend = write_context(tmp_path / "frontend", "# syntax=docker/dockerfile:1\nFROM busybox:latest\n", {})
    assert builder.build_request(BuildRequest(path=str(frontend), tags=[name])).cached is False
    assert builder.build_request(BuildRequest(path=str(frontend), tags=[name])).cached is False
    ignored = write_context(tmp_path / "ignored", "FROM busybox:latest\nCOPY . /ctx\n", {"a.txt": "a\n"})
    (ignored / ".dockerignore").write_text("a.txt\n")
    (ignored / ".containerignore").write_text("")
    assert builder.build_request(BuildRequest(path=str(ignored), tags=[name])).cached is False
    (ignored / "a.txt").write_text("b\n")  # the digest would not see this edit
    assert builder.build_request(BuildRequest(path=str(ignored), tags=[name])).cached is False
    assert podman("run", "--rm", name, "cat", "/ctx/a.txt").stdout == "b\n"


def test_a_dockerfile_specific_ignore_file_turns_the_skip_off(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    name = names.new()
    ctx = write_context(tmp_path / "specific", "FROM busybox:latest\nCOPY . /ctx\n", {"a.txt": "a\n"})
    (ctx / "Dockerfile.dockerignore").write_text("*.md\n")
    assert builder.build_request(BuildRequest(path=str(ctx), tags=[name])).cached is False
    assert builder.build_request(BuildRequest(path=str(ctx), tags=[name])).cached is False


def test_a_change_between_the_hash_and_the_build_withdraws_the_label(
    builder: PodmanBuilder, names: Names, tmp_path: Path, edited_meanwhile: Callable[..., Any]
) -> None:
    """Podman reads the context while it builds, after rtbuild hashed it: an edit in
    between (written back afterwards) must not leave a label that names the old bytes."""
    import rtbuild_podman.build

    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nCOPY data.txt /data.txt\n", {"data.txt": "one\n"})
    data = ctx / "data.txt"
    request = BuildRequest(path=str(ctx), tags=[names.new()])
    builder.build_request(request)
    data.write_text("two\n")
    with edited_meanwhile(rtbuild_podman.build, "run_build", data, "meanwhile\n", "two\n"):
        raced = builder.build_request(request)
    assert not raced.cached and raced.details.get("input_digest") is None
    assert podman("run", "--rm", request.tags[0], "cat", "/data.txt").stdout == "meanwhile\n"
    again = builder.build_request(request)
    assert not again.cached, "the image holding 'meanwhile' was reused for 'two'"
    assert podman("run", "--rm", request.tags[0], "cat", "/data.txt").stdout == "two\n"
    assert builder.build_request(request).cached


def test_a_label_that_cannot_be_withdrawn_goes_with_its_tags(
    builder: PodmanBuilder,
    names: Names,
    tmp_path: Path,
    edited_meanwhile: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same race with the cache directory full (a small tmpfs, filled): the withdrawal
    could not be written, and the next build reused the image holding 'meanwhile'."""
    import rtbuild_podman.build
    from rtbuild import AgentRuntimeBuildError

    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nCOPY data.txt /data.txt\n", {"data.txt": "one\n"})
    data = ctx / "data.txt"
    request = BuildRequest(path=str(ctx), tags=[names.new()])
    builder.build_request(request)
    data.write_text("two\n")
    with small_tmpfs(tmp_path / "small", "64k", dirs=("cache",), full=True) as small:
        monkeypatch.setenv("XDG_CACHE_HOME", str(small / "cache"))
        with (
            edited_meanwhile(rtbuild_podman.build, "run_build", data, "meanwhile\n", "two\n"),
            pytest.raises(AgentRuntimeBuildError) as info,
        ):
            builder.build_request(request)
        assert info.value.step == "withdraw digest label" and "its tags were removed" in info.value.message
        assert podman("image", "exists", request.tags[0], check=False).returncode == 1
        again = builder.build_request(request)
    assert not again.cached, "the image holding 'meanwhile' was reused for 'two'"
    assert podman("run", "--rm", request.tags[0], "cat", "/data.txt").stdout == "two\n"


def test_a_short_base_name_podman_cannot_resolve_says_why(names: Names, tmp_path: Path) -> None:
    """``FROM org/image:tag`` means docker.io to Docker; Podman pulls a name without a
    registry only through registries.conf (Debian's has no unqualified-search-registries):
    the error's hint says so and how to fix it (it said to fix the name before)."""
    conf = tmp_path / "registries.conf"
    conf.write_text("")  # no unqualified-search-registries, whatever the machine has
    ctx = write_context(tmp_path / "ctx", "FROM rtbuild-nope/short-name-base:1\nRUN true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env.update(CONTAINERS_REGISTRIES_CONF=str(conf), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("rtbuild")),
            "build",
            str(ctx),
            "-t",
            names.new(),
            "--builder",
            "podman",
            "--json",
            "-q",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildFailedError" and error["step"] == "resolve base image"
    assert "rtbuild-nope/short-name-base:1" in error["message"]
    assert "unqualified-search-registries" in error["hint"] and "docker.io/" in error["hint"]


def test_a_build_rotates_its_log_dir(names: Names, tmp_path: Path) -> None:
    """Before each build the log directory keeps the newest ``log_keep`` logs and none older
    than ``log_max_age_days`` (as Docker's): Podman's logs piled up without end."""
    logs = tmp_path / "logs"
    logs.mkdir()
    old = [logs / f"build-old-{n}.log" for n in range(4)]
    for age, log in enumerate(old):
        log.write_text("#1 old\n")
        then = time.time() - 3600 * (age + 1)  # old[0] the newest
        os.utime(log, (then, then))
    ancient = logs / "build-ancient.log"
    ancient.write_text("#1 ancient\n")
    os.utime(ancient, (time.time() - 40 * 86400,) * 2)
    foreign = logs / "notes.txt"  # not a build log: never touched
    foreign.write_text("mine\n")
    builder = PodmanBuilder(log_dir=str(logs), log_keep=2, log_max_age_days=30)
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n", {})
    result = builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()]))
    new_log = Path(result.details["log_path"])
    assert sorted(p.name for p in logs.iterdir()) == sorted([old[0].name, old[1].name, new_log.name, foreign.name])
