"""A build arg holding a secret given through the extra arguments stays out of the Job.

``--extra=--build-arg=PIP_INDEX_URL=https://__token__:PW@host/simple``: the build arg was
also carried in the per-build Secret, but its ``--build-arg NAME=VALUE`` stayed among the
extra arguments, which go into the Job's pod spec (``RTBUILD_BUILD_ARGS``, the buildah
arguments) as written: anyone who may read Jobs read the password. (``--dry-run`` masked it,
so only the real Job showed it.) Secret-looking names were already taken out; a URL with a
password in a build arg of any other name was not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild import BuildRequest, ConfigError
from rtbuild_kubernetes.buildargs import secret_names
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.manifests import job_manifest, secret_manifest
from rtbuild_kubernetes.settings import settings_from_table

PASSWORD = "Hq4-extra-url-password"
INDEX = f"https://__token__:{PASSWORD}@pypi.example/simple"


def _job_and_secret(context: Path, profile: str, extra: list[str]) -> tuple[str, dict[str, str]]:
    """The Job and Secret a real build creates (not the dry run's masked text)."""
    (context / "Dockerfile").write_text("FROM busybox\nARG PIP_INDEX_URL\nRUN true\n")
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds", "profile": profile}))
    request = builder._checked(BuildRequest(path=str(context), tags=["reg.example/a:1"], extra_build_args=extra))
    (plan,) = builder._plans(request, "b1", {})
    if secret_names(plan.build_args):  # as run.py does: the Secret carries the build args alone
        plan.secret_name = f"{plan.job_name}-push"
    secret = secret_manifest(plan, b'{"auths": {}}', job_uid="uid") if plan.secret_name else {"data": {}}
    return json.dumps(job_manifest(plan, builder.settings)), secret["data"]


@pytest.mark.parametrize("profile", ["buildah", "buildkit-rootless"])
@pytest.mark.parametrize(
    "extra",
    [["--build-arg", f"PIP_INDEX_URL={INDEX}"], [f"--build-arg=PIP_INDEX_URL={INDEX}"]],
    ids=["separate", "joined"],
)
def test_a_url_password_in_an_extra_build_arg_travels_in_the_secret(
    tmp_path: Path, profile: str, extra: list[str]
) -> None:
    job, data = _job_and_secret(tmp_path, profile, extra)
    assert PASSWORD not in job
    assert "build-arg.PIP_INDEX_URL" in data
    assert "PIP_INDEX_URL" in job  # the build still gets the arg, by name


def test_a_secret_name_that_cannot_travel_in_the_secret_is_refused(tmp_path: Path) -> None:
    """A secret-looking name that is not a shell identifier (``odd-name-password``) cannot be
    an environment variable of the build script, so it went inline into the pod spec
    (masked only in ``--dry-run``)."""
    for extra in (["--build-arg", f"odd-name-password={PASSWORD}"], ["--build-arg", f"odd.url={INDEX}"]):
        with pytest.raises(ConfigError) as info:
            _job_and_secret(tmp_path, "buildah", extra)
        assert PASSWORD not in str(info.value) and info.value.hint
        assert "pod spec" in str(info.value)
