"""The Kubernetes builder without a cluster: settings, the dry run, startup cost, the
context tar, and the mapping of pod states onto errors."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rtbuild import BuildRequest, ConfigError, PushError, load_config
from rtbuild.enginekit import DISK_FULL_HINT, KILLED_HINT
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.client import auth_error
from rtbuild_kubernetes.context_tar import write_context_tar
from rtbuild_kubernetes.failures import (
    ContainerRuntimeError,
    OutOfMemoryError,
    RunStepFailedError,
    StepImagePullError,
    UploadError,
    terminated_error,
    waiting_error,
)
from rtbuild_kubernetes.settings import settings_from_table


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /app\n")
    (ctx / "sub" / "keep.txt").write_text("keep\n")
    (ctx / "skip.log").write_text("skip\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    return ctx


def test_settings_are_validated() -> None:
    assert settings_from_table({}).profile == "buildah"
    with pytest.raises(ConfigError, match="unknown key") as info:
        settings_from_table({"namespce": "x"})
    assert "did you mean 'namespace'" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="tolerations must be a list of tables"):
        settings_from_table({"tolerations": ["x"]})
    with pytest.raises(ConfigError, match=r"privilege.*'privileged', 'userns', 'rootless'"):
        settings_from_table({"privilege": "root"})
    with pytest.raises(ConfigError, match=r"active_deadline_seconds.*integer"):
        settings_from_table({"active_deadline_seconds": "10"})
    with pytest.raises(ConfigError, match="limits knows"):
        settings_from_table({"limits": {"gpu": "1"}})
    with pytest.raises(ConfigError, match="exclude each other"):
        settings_from_table({"in_cluster": True, "kubeconfig": "/k"})


def test_from_config_reads_the_builders_table(tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text(
        '[builders.kubernetes]\nnamespace = "ci"\nprofile = "buildkit-rootless"\nprivilege = "rootless"\n'
        'limits = { memory = "2Gi" }\n'
    )
    builder = KubernetesBuilder.from_config(load_config(tmp_path / "rtbuild.toml", env={}), "kubernetes")
    assert (builder.settings.namespace, builder.settings.profile, builder.settings.limits) == (
        "ci",
        "buildkit-rootless",
        {"memory": "2Gi"},
    )


def test_capabilities() -> None:
    caps = KubernetesBuilder.capabilities
    assert caps.push and caps.multi_platform and caps.dry_run and caps.cache_export and caps.target
    assert "linux/arm64" in caps.platforms


def test_plan_prints_valid_manifests_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import json

    import kubernetes_validate

    docker = tmp_path / "docker"
    docker.mkdir()
    secret = base64.b64encode(b"robot:s3cret-pass").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {"registry.example": {"auth": secret}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))
    request = BuildRequest(
        path=str(_context(tmp_path)),
        tags=["registry.example/team/app:1"],
        platform="linux/amd64,linux/arm64",
        build_args={"A": "1"},
    )
    text = builder.plan(request)
    assert secret not in text and "s3cret" not in text
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in documents] == ["Job", "Secret", "Job", "Secret"]
    for document in documents:
        kubernetes_validate.validate(document, "1.30.0", strict=True)
    assert documents[0]["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}


def test_version_and_help_do_not_import_lightkube() -> None:
    for args in (["--version"], ["--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "rtbuild", *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0
        assert "lightkube" not in proc.stderr and "rtbuild_kubernetes" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, rtbuild_kubernetes.builder; print('lightkube' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "False"


def test_context_tar_follows_dockerignore_and_is_reproducible(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    first = write_context_tar(str(ctx))
    second = write_context_tar(str(ctx))
    try:
        assert first.digest == second.digest and first.size == second.size
        with tarfile.open(first.path) as tar:
            names = sorted(tar.getnames())
            assert all(m.uid == 0 and m.uname == "" for m in tar.getmembers())
        assert names == [".dockerignore", "Dockerfile", "sub", "sub/keep.txt"]
    finally:
        first.remove()
        second.remove()


def test_dockerfile_outside_the_context_is_refused(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (tmp_path / "Other.Dockerfile").write_text("FROM busybox\n")
    request = BuildRequest(path=str(ctx), tags=["r.example/a:1"], dockerfile=str(tmp_path / "Other.Dockerfile"))
    with pytest.raises(ConfigError, match="outside the build context"):
        KubernetesBuilder().plan(request)


def test_pod_states_map_onto_errors() -> None:
    oom = terminated_error(
        {"exitCode": 137, "reason": "OOMKilled"}, ["STEP 2/3: RUN make"], container="build", pod="p", limits={}
    )
    assert isinstance(oom, OutOfMemoryError) and "limits.memory" in (oom.hint or "")
    run = terminated_error(
        {"exitCode": 7, "reason": "Error"}, ["STEP 2/2: RUN false", "boom"], container="build", pod="p", limits={}
    )
    assert isinstance(run, RunStepFailedError) and run.container_exit_code == 7
    assert run.step == "STEP 2/2: RUN false" and run.log_tail[-1] == "boom"
    # The host stopped it, not the Dockerfile: a SIGKILL without OOMKilled, a full disk.
    killed = terminated_error({"exitCode": 137, "reason": "Error"}, ["STEP 2/2: RUN make"], container="build",
                              pod="p", limits={})  # fmt: skip
    assert isinstance(killed, RunStepFailedError) and killed.hint == KILLED_HINT and killed.blame == "build resources"
    lines = ["STEP 2/2: RUN make", "cp: write error: No space left on device"]
    full = terminated_error({"exitCode": 1, "reason": "Error"}, lines, container="build", pod="p", limits={})
    assert isinstance(full, RunStepFailedError) and full.hint == DISK_FULL_HINT
    assert run.hint is not None and run.hint.startswith("fix the failing Dockerfile step") and run.blame == "Dockerfile"
    init = terminated_error({"exitCode": 3}, [], container="context", pod="p", limits={})
    assert isinstance(init, UploadError)
    pull = waiting_error({"reason": "ImagePullBackOff", "message": "not found"}, "p", "step:1")
    assert isinstance(pull, StepImagePullError) and "step_image" in (pull.hint or "")
    assert waiting_error({"reason": "ContainerCreating"}, "p", "step:1") is None


def test_forbidden_names_verb_resource_and_namespace() -> None:
    error = auth_error("create", "pods/exec", 403, 'pods "x" is forbidden', "builds")
    assert "'create'" in (error.hint or "") and "'pods/exec'" in (error.hint or "") and "'builds'" in (error.hint or "")
    jobs = auth_error("create", "jobs", 403, "", "builds")
    assert "apiGroup 'batch'" in (jobs.hint or "")
    assert "expired" in (auth_error("list", "pods", 401, "", "builds").hint or "")


def test_push_of_a_tag_not_in_the_registry_is_an_error(registry: object) -> None:
    host = registry.host  # type: ignore[attr-defined]
    with pytest.raises(PushError):
        KubernetesBuilder().push(f"{host}/never/built:1")


def test_every_shell_script_in_the_manifests_parses() -> None:
    # The scripts run only in pods (the buildkit profile's only here): `sh -n` catches quoting slips.
    from _manifest_variants import variants

    scripts = {str(Path(__file__).resolve().parents[2] / "builders/kubernetes/step-image/rtbuild-step")}
    for objects in variants().values():
        for job in (o for o in objects if o["kind"] == "Job"):
            pod = job["spec"]["template"]["spec"]
            for container in pod["initContainers"] + pod["containers"]:
                command = container["command"]
                if command[:2] == ["sh", "-c"]:
                    proc = subprocess.run(["sh", "-n", "-c", command[2]], capture_output=True, text=True)
                    assert proc.returncode == 0, (command[2], proc.stderr)
    for script in scripts:
        assert subprocess.run(["sh", "-n", script]).returncode == 0


def test_a_runtime_fault_in_the_pod_is_not_blamed_on_the_dockerfile() -> None:
    lines = [
        "STEP 3/3: RUN sha256sum /app/*",
        "error running container: from /usr/bin/runc creating container for [/bin/sh -c sha256sum /app/*]:"
        " Close_Fd sealing memfd copy: Device or resource busy",
        'Error: building at STEP "RUN sha256sum /app/*": while running runtime: exit status 1',
    ]
    error = terminated_error({"exitCode": 1, "reason": "Error"}, lines, container="build", pod="p", limits={})
    assert isinstance(error, ContainerRuntimeError) and not isinstance(error, RunStepFailedError)
    assert error.step == "STEP 3/3: RUN sha256sum /app/*" and error.container_exit_code == 1
    assert "again" in (error.hint or "") and error.blame == "the build pod's container runtime"
    assert "Device or resource busy" in error.message


@pytest.mark.parametrize(
    "dockerfile",
    ["# syntax=docker/dockerfile:1\nFROM busybox\n", "FROM busybox\nADD https://example.invalid/a.tgz /a.tgz\n"],
    ids=["frontend", "add-url"],
)
def test_what_the_digest_cannot_see_turns_the_skip_off(tmp_path: Path, dockerfile: str) -> None:
    from rtbuild_kubernetes.run import _inputs

    (tmp_path / "rtbuild.toml").write_text('[builders.kubernetes]\nnamespace = "ci"\n')
    builder = KubernetesBuilder.from_config(load_config(tmp_path / "rtbuild.toml", env={}), "kubernetes")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)

    class NoRegistry:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the registry was asked ({name}) although the skip is off")

    request = BuildRequest(path=str(ctx), tags=["registry.example:5000/app:1"])
    assert _inputs(builder, request, NoRegistry()) == (None, None)  # type: ignore[arg-type]


class _NoPodsYet:
    """A stand-in client for ``JobRun._wait``: the Job is there, no pod listed yet; subclasses
    say what the pod watch brings, and record that it was closed."""

    namespace = "builds"

    def __init__(self) -> None:
        self.closed = False

    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, object]], str]:
        return [], "7"

    def get(self, kind: str, name: str) -> dict[str, object]:
        return {"metadata": {"name": name}, "status": {}}


class _WatchThatIsInterruptedAsItCloses(_NoPodsYet):
    """The pod watch is closed at the moment Ctrl-C arrives (as when the test's trigger,
    the build container running, is the very event that ends the wait)."""

    def watch_pods(self, selector: dict[str, str], resource_version: str) -> Iterator[tuple[str, dict[str, object]]]:
        try:
            yield "MODIFIED", {"metadata": {"name": "p"}, "status": {}}
        finally:
            self.closed = True
            raise KeyboardInterrupt  # the Ctrl-C, raised inside the generator's close


def test_ctrl_c_while_the_pod_watch_closes_is_not_swallowed() -> None:
    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan

    client = _WatchThatIsInterruptedAsItCloses()
    run = JobRun(client, settings_from_table({}), JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"]))  # type: ignore[arg-type]
    # Left to the garbage collector, the close would print "Exception ignored" and `_wait`
    # would return the pod: the build ran on after Ctrl-C.
    with pytest.raises(KeyboardInterrupt):
        run._wait(lambda pod: True, "the pod")
    assert client.closed


class _PodDeletedWhileWaiting(_NoPodsYet):
    def watch_pods(self, selector: dict[str, str], resource_version: str) -> Iterator[tuple[str, dict[str, object]]]:
        try:
            yield "DELETED", {"metadata": {"name": "rtbuild-app-b1-x"}, "status": {}}
        finally:
            self.closed = True


def test_a_pod_deleted_while_waiting_is_an_error_that_says_so() -> None:
    from rtbuild_kubernetes.failures import KubernetesBuildError
    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan

    client = _PodDeletedWhileWaiting()
    run = JobRun(client, settings_from_table({}), JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"]))  # type: ignore[arg-type]
    with pytest.raises(KubernetesBuildError, match="rtbuild-app-b1-x was deleted while waiting for the pod") as raised:
        run._wait(lambda pod: False, "the pod")
    assert raised.value.blame == "cluster" and "run the build again" in (raised.value.hint or "")
    assert client.closed


class _SilentWatch(_NoPodsYet):
    """A pod that never changes: the watch only ever ticks."""

    def watch_pods(self, selector: dict[str, str], resource_version: str) -> Iterator[tuple[str, dict[str, object]]]:
        from rtbuild_kubernetes.client import TICK

        try:
            while True:
                yield TICK, {}
        finally:
            self.closed = True


def test_a_pod_that_never_changes_ends_at_rtbuilds_own_deadline() -> None:
    import time

    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan

    client = _SilentWatch()
    run = JobRun(client, settings_from_table({}), JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"]))  # type: ignore[arg-type]
    run.deadline = time.monotonic() + 0.5
    started = time.monotonic()
    with pytest.raises(Exception, match=r"deadline|did not finish") as raised:
        run._wait(lambda pod: False, "the pod")
    assert time.monotonic() - started < 5 and client.closed
    assert raised.value.step


@pytest.mark.parametrize(("timeout", "expected"), [(90.2, 91), (0.3, 1), (7200.0, 3600), (None, 3600)])
def test_build_timeout_bounds_the_job_deadline(timeout: float | None, expected: int, tmp_path: Path) -> None:
    """The core's build_timeout caps [builders.kubernetes] active_deadline_seconds (3600 by default)."""
    from rtbuild import Config

    config = Config(builder="kubernetes", build_timeout=timeout)
    builder = KubernetesBuilder.from_config(config)
    assert builder.settings.active_deadline_seconds == expected
    # ...and it is the deadline the Job gets.
    request = BuildRequest(path=str(_context(tmp_path)), tags=["127.0.0.1:5000/rtbuild-test/deadline:1"])
    job = next(doc for doc in yaml.safe_load_all(builder.plan(request)) if doc and doc["kind"] == "Job")
    assert job["spec"]["activeDeadlineSeconds"] == expected
