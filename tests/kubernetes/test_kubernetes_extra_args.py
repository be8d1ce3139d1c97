"""Extra arguments of a Kubernetes build that rtbuild could not honour are refused; the
ones it must see (``--build-arg K=V``) count as the request's; ``--iidfile`` stays here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rtbuild import BuildContextError, BuildRequest, ConfigError
from rtbuild_kubernetes.builder import KubernetesBuilder


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE=busybox\nFROM $BASE\n")
    (ctx / "Other").write_text("FROM busybox\n")
    return ctx


def _build_args_env(text: str) -> list[str]:
    """The buildah arguments the Job's build container gets (``RTBUILD_BUILD_ARGS``, one a line)."""
    job = next(doc for doc in yaml.safe_load_all(text) if doc and doc["kind"] == "Job")
    for container in job["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", []):
            if env["name"] == "RTBUILD_BUILD_ARGS":
                return str(env["value"]).split("\n")
    raise AssertionError("no RTBUILD_BUILD_ARGS in the Job")


@pytest.mark.parametrize("extra", [["-t", "r.example/b:1"], ["--tag=r.example/b:1"], ["--output=type=local,dest=/x"]])
def test_a_tag_or_an_output_in_the_extra_arguments_is_refused(tmp_path: Path, extra: list[str]) -> None:
    request = BuildRequest(path=str(_ctx(tmp_path)), tags=["r.example/a:1"], extra_build_args=extra)
    with pytest.raises(ConfigError):
        KubernetesBuilder().plan(request)


def test_a_second_dockerfile_in_the_extra_arguments_is_refused(tmp_path: Path) -> None:
    """The request's ``dockerfile`` won and the extra ``-f`` was dropped without a word."""
    request = BuildRequest(
        path=str(_ctx(tmp_path)), tags=["r.example/a:1"], dockerfile="Dockerfile", extra_build_args=["-f", "Other"]
    )
    with pytest.raises(BuildContextError, match="more than one Dockerfile"):
        KubernetesBuilder().plan(request)


def test_extra_build_args_count_and_the_iidfile_stays_on_this_machine(tmp_path: Path) -> None:
    """``FROM $BASE`` resolved with BASE's default for the skip's inputs while buildah
    built on the extra argument's base; ``--iidfile`` named a path of this machine in the pod."""
    extra = ["--build-arg=BASE=r.example/base:2", "--iidfile", str(tmp_path / "iid")]
    request = BuildRequest(path=str(_ctx(tmp_path)), tags=["r.example/a:1"], extra_build_args=extra)
    assert KubernetesBuilder._checked(request).build_args == {"BASE": "r.example/base:2"}
    args = _build_args_env(KubernetesBuilder().plan(request))
    assert "--build-arg=BASE=r.example/base:2" in args
    assert not [arg for arg in args if "iidfile" in arg or str(tmp_path) in arg]


def test_a_password_or_a_local_path_in_the_extra_arguments_is_refused(tmp_path: Path) -> None:
    """``--creds USER:PW`` went inline into the Job's pod spec (and the dry run printed it);
    ``--secret src=/etc/hostname`` made buildah read the pod's own file of that name."""
    ctx = _ctx(tmp_path)
    for extra in (["--creds=robot:S3CRETPW"], ["--creds", "robot:S3CRETPW"], ["--secret", "id=x,src=/etc/hostname"]):
        request = BuildRequest(path=str(ctx), tags=["r.example/a:1"], extra_build_args=extra)
        with pytest.raises(ConfigError) as info:
            KubernetesBuilder().plan(request)
        assert "S3CRETPW" not in info.value.message and info.value.hint
    fine = BuildRequest(path=str(ctx), tags=["r.example/a:1"], extra_build_args=["--network=host"])
    assert "--network=host" in _build_args_env(KubernetesBuilder().plan(fine))


@pytest.mark.parametrize("spelling", ["-f{}", "-f={}", "--file={}"])
def test_a_dockerfile_spelt_fX_reaches_buildah_once(tmp_path: Path, spelling: str) -> None:
    """``--extra=-fOther`` (or ``-f=Other``): rtbuild hashed CONTEXT/Other and gave the Job
    ``-f Other``, but left ``-fOther`` among buildah's arguments too, so the pod's buildah got
    a second Dockerfile (read from its own working directory) rtbuild never hashed. The
    Podman backend had the same fault (2886bf1)."""
    request = BuildRequest(
        path=str(_ctx(tmp_path)), tags=["r.example/a:1"], extra_build_args=[spelling.format("Other")]
    )
    args = _build_args_env(KubernetesBuilder().plan(request))
    named = [arg for arg in args if arg.startswith(("-f", "--file"))]
    assert named == ["-f"] and args[args.index("-f") + 1] == "Other", args
