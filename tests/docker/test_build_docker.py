"""DockerBuilder on the real engine: tags, args, labels, target, failures, engine down, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from _processes import step_processes_running
from rtbuild import BuildContextError, BuildFailedError, Config
from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore
from rtbuild.context._hashing import hash_context
from rtbuild.enginekit import DISK_FULL_HINT, KILLED_HINT, carries_digest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def run_in(cli: str, image: str, *command: str) -> str:
    return h.docker(cli, "run", "--rm", "--network=none", image, *command).stdout


def test_build_all_tags_args_and_labels(images: h.Images, context: Path) -> None:
    tags = [images.tag("one"), images.tag("two"), images.tag("three")]
    result = h.build(images, context, tags, build_args={"GREETING": "hello-arg"}, labels={"org.example.team": "agents"})
    assert result.image == tags[0] and result.tags == tags and not result.cached
    ids = set()
    for tag in tags:
        info = h.inspect(images.cli, tag)
        assert info is not None, f"{tag} missing after the build"
        ids.add(info["Id"])
        assert info["Config"]["Labels"]["org.example.team"] == "agents"
        # A first build records its digest beside the image (the label says "recorded").
        assert carries_digest(info, result.details["input_digest"])
    assert ids == {result.details["image_id"]}
    assert run_in(images.cli, tags[1], "cat", "/greeting").strip() == "hello-arg"
    log = Path(result.details["log_path"])
    assert log.is_file() and "naming to" in log.read_text()
    assert "(buildx" in result.details["client"] or "(env" in result.details["client"]  # never legacy


def test_target_stage(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text(
        "FROM busybox:latest AS first\nRUN echo first > /stage\n"
        "FROM busybox:latest AS second\nRUN echo second > /stage\n"
    )
    h.build(images, context, [images.tag("first")], target="first")
    h.build(images, context, [images.tag("final")])
    assert run_in(images.cli, images.tag("first"), "cat", "/stage").strip() == "first"
    assert run_in(images.cli, images.tag("final"), "cat", "/stage").strip() == "second"


def test_extra_build_args_pass_through(images: h.Images, context: Path) -> None:
    (context / "Dockerfile.alt").write_text("FROM busybox:latest\nLABEL alt=yes\nRUN echo alt > /which\n")
    h.build(images, context, extra_build_args=["--network=host", "-f", "Dockerfile.alt"])
    info = h.inspect(images.cli, images.tag())
    assert info is not None and info["Config"]["Labels"]["alt"] == "yes"


def test_failing_step_names_instruction_exit_code_and_log(images: h.Images, context: Path) -> None:
    lines = " && ".join(f"echo line-{n}" for n in range(30))
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN {lines} && echo boom-marker && exit 7\n")
    with pytest.raises(BuildFailedError) as info:
        h.build(images, context)
    error = info.value
    assert "exit code 7" in error.message
    assert error.step is not None and error.step.startswith("RUN echo line-0")
    assert 0 < len(error.log_tail) <= 20
    assert any("boom-marker" in line for line in error.log_tail)
    assert error.log_path is not None and "boom-marker" in Path(error.log_path).read_text()
    rendered = error.render()
    assert error.log_path in rendered and "exit code 7" in rendered
    assert h.inspect(images.cli, images.tag()) is None


def test_a_full_disk_or_a_killed_step_is_not_blamed_on_the_dockerfile(images: h.Images, context: Path) -> None:
    # /dev/full answers every write with ENOSPC: the engine's own "disk full", for real.
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN dd if=/dev/zero of=/dev/full bs=1k count=1\n")
    with pytest.raises(BuildFailedError) as full:
        h.build(images, context)
    assert full.value.step == "RUN dd if=/dev/zero of=/dev/full bs=1k count=1"
    assert "No space left on device" in full.value.message and full.value.hint == DISK_FULL_HINT
    # A command whose own text holds the words (echoed in the step's header and error
    # lines) is still the Dockerfile's own failure.
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN test 'no space left on device' = x\n")
    with pytest.raises(BuildFailedError) as quoted:
        h.build(images, context)
    assert quoted.value.hint is not None and quoted.value.hint.startswith("fix the command")
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN sh -c 'kill -9 $$' || exit $?\n")
    # Not PID 1 (which ignores signals it has no handler for), and not exec'ed into it.
    with pytest.raises(BuildFailedError) as killed:
        h.build(images, context)
    assert "exit code 137" in killed.value.message and killed.value.hint == KILLED_HINT
    assert h.inspect(images.cli, images.tag()) is None


def test_a_failed_legacy_build_leaves_no_container(images: h.Images, context: Path) -> None:
    # The legacy builder keeps a failed step's container unless --force-rm is passed.
    marker = f"legacy-marker-{uuid.uuid4().hex[:12]}"
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {marker} && exit 3\n")

    def containers() -> set[str]:
        # Only this step's: other tests may run busybox containers on the engine meanwhile.
        listed = h.docker(images.cli, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}").stdout
        return {line.split()[0] for line in listed.splitlines() if marker in line}

    config = Config(builders={"docker": {"buildkit": "legacy"}})
    with pytest.raises(BuildFailedError) as info:
        h.build(images, context, config=config)
    assert info.value.step == f"RUN echo {marker} && exit 3" and "exit code 3" in info.value.message
    assert containers() == set()


def test_missing_dockerfile_fails_before_the_engine(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    empty = tmp_path / "nodockerfile"
    empty.mkdir()
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # any engine contact would fail differently
    try:
        with pytest.raises(BuildContextError, match="no Dockerfile"):
            h.build(images, empty)
        with pytest.raises(BuildContextError, match="does not exist"):
            h.build(images, tmp_path / "missing")
    finally:
        del os.environ["DOCKER_HOST"]


def test_a_dockerfile_linked_out_of_its_directory_fails_before_the_engine(
    images: h.Images, tmp_path: Path, isolated_dirs: Path
) -> None:
    """BuildKit's client sends the Dockerfile's own directory, so a symlink to a file
    elsewhere cannot be followed: the engine failed with 'failed to read dockerfile: open
    /var/lib/docker/tmp/buildkit-mount...' blamed on the build. Now it is a
    BuildContextError (exit 2) naming the link's target; a link within the directory builds."""
    ctx, elsewhere = tmp_path / "linked", tmp_path / "elsewhere"
    for folder in (ctx, elsewhere, ctx / "sub"):
        folder.mkdir()
    (elsewhere / "Dockerfile").write_text(h.BUSYBOX_DOCKERFILE)
    (ctx / "Dockerfile.real").write_text(h.BUSYBOX_DOCKERFILE)
    (ctx / "app.txt").write_text("version 1\n")
    (ctx / "Dockerfile").symlink_to("../elsewhere/Dockerfile")
    with pytest.raises(BuildContextError, match="symlink") as info:
        h.build(images, ctx)
    assert str(elsewhere / "Dockerfile") in info.value.message and info.value.exit_code == 2
    (ctx / "sub" / "Dockerfile").symlink_to("../Dockerfile.real")  # in the context, not in sub/
    with pytest.raises(BuildContextError, match="outside its own directory"):
        h.build(images, ctx, dockerfile="sub/Dockerfile")
    (ctx / "Dockerfile").unlink()
    (ctx / "Dockerfile").symlink_to("Dockerfile.real")
    assert h.build(images, ctx).cached is False


def dead_socket(tmp_path: Path) -> str:
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: connection refused
    return f"unix://{path}"


@pytest.mark.parametrize("scratch_force", [False, True], ids=["skip-check", "cli-build"])
def test_engine_down_names_docker_host(images: h.Images, context: Path, tmp_path: Path, scratch_force: bool) -> None:
    host = dead_socket(tmp_path)
    args = [str(context), "-t", images.tag(), "--json"]
    if scratch_force:
        # FROM scratch + --force: nothing is inspected first, so the docker CLI meets the dead engine.
        (context / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /\n")
        args.append("--force")
    proc = h.cli_build(*args, env={"DOCKER_HOST": host})
    assert proc.returncode == 1, proc.stderr
    assert "DOCKER_HOST" in proc.stderr and host in proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["error"] == "EngineUnavailableError"
    assert "dockerd" in payload["hint"]


@pytest.mark.parametrize("scheme", ["tcp", "ssh"])
def test_a_password_in_docker_host_is_never_shown(images: h.Images, context: Path, scheme: str) -> None:
    """``DOCKER_HOST=tcp://user:PW@host`` (the docker CLI drops the password; for ssh:// it
    refuses one): the engine-unreachable error printed the whole URL, password included."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: connection refused
    host = f"{scheme}://rtuser:Zq9-host-password@127.0.0.1:{port}"
    outputs = [h.cli_build(str(context), "-t", images.tag(), "--json", env={"DOCKER_HOST": host})]
    exists = [h.RTBUILD, "exists", "busybox:latest", "--no-pull", "--json"]
    outputs.append(subprocess.run(exists, capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": host}))
    for proc in outputs:
        assert proc.returncode in (1, 3), proc.stderr
        assert "Zq9" not in proc.stdout + proc.stderr
        assert f"{scheme}://rtuser:***@127.0.0.1:{port}" in proc.stderr


def test_cli_json_and_exit_codes(images: h.Images, context: Path) -> None:
    first = h.cli_build(str(context), "-t", images.tag("a"), "-t", images.tag("b"), "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["cached"] is False and result["tags"] == [images.tag("a"), images.tag("b")]
    assert any(json.loads(line).get("event") == "log" for line in first.stderr.splitlines() if line.startswith("{"))
    second = h.cli_build(str(context), "-t", images.tag("a"), "-t", images.tag("b"), "--json")
    assert second.returncode == 0 and json.loads(second.stdout)["cached"] is True
    forced = h.cli_build(str(context), "-t", images.tag("a"), "-t", images.tag("b"), "--json", "--force")
    assert forced.returncode == 0 and json.loads(forced.stdout)["cached"] is False
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN exit 4\n")
    failed = h.cli_build(str(context), "-t", images.tag("a"), "--json")
    assert failed.returncode == 1
    error = json.loads(failed.stdout)
    assert error["error"] == "BuildFailedError" and error["step"] == "RUN exit 4" and error["log_path"]


def test_dockerignore_matches_what_the_engine_receives(images: h.Images, context: Path) -> None:
    for rel in [
        "keep.txt",
        "a.log",
        "sub/b.log",
        "sub/c.txt",
        "logs/x.txt",
        "logs/keep.me",
        "deep/er/f.tmp",
        "deep/er/g.txt",
        "node_modules/m/index.js",
        "docs/README.md",
        "docs/other.md",
    ]:
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text(rel)
    (context / ".dockerignore").write_text(
        "# comment\n*.log\nlogs\n!logs/keep.me\n**/*.tmp\n/node_modules\ndocs/*.md\n!docs/README.md\nDockerfile\n"
    )
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\nCOPY . /ctx\nRUN cd /ctx && find . -type f | sed 's|^./||' | sort > /files\n"
    )
    h.build(images, context)
    engine_files = set(run_in(images.cli, images.tag(), "cat", "/files").split())
    ours = hash_context(str(context), PatternMatcher(read_dockerignore(str(context))), collect_paths=True)
    assert ours.paths is not None
    our_files = {rel for rel, kind in ours.paths if kind == "f"}
    # Docker always sends the Dockerfile; whether COPY sees it when ignored is the engine's business.
    assert our_files - {"Dockerfile"} == engine_files - {"Dockerfile"}
    assert "logs/keep.me" in engine_files and "docs/README.md" in engine_files and "a.log" not in engine_files


def test_ctrl_c_stops_the_build_and_leaves_no_temp_files(images: h.Images, context: Path, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    # A RUN of its own: one that any earlier build ran to the end is a BuildKit cache hit.
    nonce = uuid.uuid4().hex
    # The nonce in sleep's environment too: sh execs the last command, so its command line goes.
    (context / "Dockerfile").write_text(
        f"FROM busybox:latest\nRUN echo started-sleeping {nonce} && NONCE={nonce} sleep 120\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path / "TMPDIR")}
    proc = subprocess.Popen(
        [h.RTBUILD, "build", str(context), "-t", images.tag(), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    children: list[psutil.Process] = []
    for line in proc.stderr:
        if "started-sleeping" in line and "RUN" not in line:
            children = psutil.Process(proc.pid).children(recursive=True)
            break
    assert children, "the build never reached its RUN step"
    assert any("docker" in " ".join(child.cmdline()) for child in children)
    # The RUN under dockerd, found by the nonce in its environment.
    steps = [psutil.Process(pid) for pid in step_processes_running(nonce, "sleep")]
    assert os.listdir(tmp_path / "TMPDIR"), "expected the build's temp dir while it runs"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"still running after Ctrl-C: {[c.cmdline() for c in alive]}"
    _gone, alive = psutil.wait_procs(steps, timeout=30)
    assert not alive, f"the RUN step outlived the build: {[c.cmdline() for c in alive]}"
    assert os.listdir(tmp_path / "TMPDIR") == []
    assert h.inspect(images.cli, images.tag()) is None


@pytest.mark.parametrize(
    ("dockerfile", "step", "text"),
    [
        ("FROM busybox:latest\nRUNN echo\n", "parse Dockerfile", "unknown instruction"),
        # A loopback registry that does not have it: the engine's lookup stays on 127.0.0.1.
        # (A registry that does not answer at all is a RegistryError: test_base_registry.py.)
        ("FROM {registry}/rtbuild-test-no-such-base:1\nRUN true\n", "rtbuild-test-no-such-base", "base image"),
    ],
    ids=["parse-error", "missing-base"],
)
def test_dockerfile_errors(
    images: h.Images, context: Path, registry: Any, dockerfile: str, step: str, text: str
) -> None:
    (context / "Dockerfile").write_text(dockerfile.format(registry=registry.host))
    with pytest.raises(BuildFailedError) as info:
        h.build(images, context)
    assert step in (info.value.step or "") and text in info.value.message
    assert info.value.hint and info.value.log_path


def test_image_size(images: h.Images, context: Path) -> None:
    from rtbuild_docker import DockerBuilder

    h.build(images, context)
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    builder = DockerBuilder()
    assert builder.image_size(images.tag()) == info["Size"] > 0
    assert builder.image_size(images.tag("absent")) is None
