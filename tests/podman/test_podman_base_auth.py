"""`podman build` pulls a private base with the credentials rtbuild finds, as exists/pull do.

The base lives in a real htpasswd-protected registry; its credentials are only where rtbuild
looks and Podman does not: a docker credential helper named by ``credsStore`` (containers/
image runs ``credHelpers`` but ignores ``credsStore``), with Podman's own auth file empty or
absent. Before the fix the build failed in the engine with "unauthorized: authentication
required" (a ``BuildFailedError``, "base image could not be resolved") while ``rtbuild
exists`` for the same image worked.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names, isolated_env, podman, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
#: Multi-stage, the base named through a build arg in FROM: both stages pull it.
DOCKERFILE = """\
ARG BASE=rt-podman-test/unset-base:1
FROM ${BASE} AS tools
RUN echo built-from-private-base > /built
FROM ${BASE}
COPY --from=tools /built /built
RUN cat /built
"""


def _helper(bindir: Path, name: str, user: str, secret: str) -> None:
    """``docker-credential-NAME``: answers ``get`` for any server with ``user``/``secret``,
    and notes each call in ``bindir/NAME.calls``."""
    bindir.mkdir(exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    answer = json.dumps({"Username": user, "Secret": secret})
    calls = bindir / f"{name}.calls"
    script.write_text(
        f'#!/bin/sh\n[ "$1" = get ] || exit 1\nread server\necho "$server" >> {calls}\necho \'{answer}\'\n'
    )
    script.chmod(0o700)


class _ArgvWatch:
    """Samples every process's command line while a build runs: ``leaks`` are those that
    hold the secret, ``builds`` those of ``podman build`` naming ``token``."""

    def __init__(self, secret: str, token: str) -> None:
        self.secret, self.token = secret.encode(), token.encode()
        self.leaks: list[bytes] = []
        self.builds: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for entry in Path("/proc").iterdir():
                try:
                    argv = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
                except OSError:
                    continue
                if self.secret in argv:
                    self.leaks.append(argv)
                if self.token in argv and b"\0build\0" in argv and b"podman" in argv.split(b"\0")[0]:
                    self.builds.append(argv.replace(b"\0", b" ").decode(errors="replace"))
            self.stop.wait(0.02)


def _rtbuild(env: dict[str, str], watch: _ArgvWatch, *args: str) -> subprocess.CompletedProcess[str]:
    watch.thread.start()
    try:
        return subprocess.run([RTBUILD, *args], env=env, capture_output=True, text=True, timeout=300)
    finally:
        watch.stop.set()
        watch.thread.join()


def test_build_pulls_a_private_base_with_rtbuilds_credentials(names: Names, auth_registry: Any, tmp_path: Path) -> None:
    host, user, password = auth_registry.host, auth_registry.username, auth_registry.password
    wrong = "not-the-registry-password-7f3a"
    base = auth_registry.ref(names.new("rt-podman-test/private-base"))
    names.made.append(base)
    # The base goes up with a throw-away auth file of the test's own, then leaves the store.
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    (tmp_path / "push-auth.json").write_text(json.dumps({"auths": {host: {"auth": pair}}}))
    podman(
        "push",
        "--tls-verify=false",
        "--authfile",
        str(tmp_path / "push-auth.json"),
        "docker.io/rtbuild/busybox:amd64",
        base,
    )
    (tmp_path / "push-auth.json").unlink()

    # Podman's own lookup finds nothing: its auth file empty (refused case) or absent (the
    # build that works), a HOME of the test's own, and a docker config whose only
    # credentials come from a credsStore helper.
    bindir = tmp_path / "bin"
    _helper(bindir, "rtbgood", user, password)
    _helper(bindir, "rtbwrong", user, wrong)
    for store in ("rtbgood", "rtbwrong"):
        (tmp_path / store).mkdir()
        (tmp_path / store / "config.json").write_text(json.dumps({"credsStore": store}))
    env = isolated_env(tmp_path, PATH=f"{bindir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
    ctx = write_context(tmp_path / "ctx", DOCKERFILE)
    common = ["--builder", "podman", "--build-arg", f"BASE={base}", "--platform", "linux/amd64"]

    # Wrong credentials: the registry refuses them; a typed error naming the registry.
    podman("rmi", "-f", base, check=False)
    refused_tag = names.new()
    watch = _ArgvWatch(wrong, refused_tag)
    refused = _rtbuild(
        {**env, "DOCKER_CONFIG": str(tmp_path / "rtbwrong"), "REGISTRY_AUTH_FILE": str(tmp_path / "podman-auth.json")},
        watch,
        "build",
        str(ctx),
        "-t",
        refused_tag,
        *common,
        "--json",
    )
    assert refused.returncode == 1, refused.stderr
    error = json.loads(refused.stdout)
    assert error["error"] == "RegistryAuthError", error
    assert host in error["message"] and base in error["message"]
    assert error["step"] == "pull image"
    assert error["blame"] and "podman" in error["blame"]
    assert f"podman login {host}" in error["hint"]
    assert error["log_path"] and Path(error["log_path"]).is_file()
    assert wrong not in refused.stdout + refused.stderr and not watch.leaks

    # The right credentials, from the helper only: the build pulls the base and runs.
    podman("rmi", "-f", base, check=False)
    image = names.new()
    watch = _ArgvWatch(password, image)
    built = _rtbuild(
        {**env, "DOCKER_CONFIG": str(tmp_path / "rtbgood"), "REGISTRY_AUTH_FILE": str(tmp_path / "absent.json")},
        watch,
        "build",
        str(ctx),
        "-t",
        image,
        *common,
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == image
    assert "built-from-private-base" in built.stderr  # the RUN of the final stage
    # The secret was handed over in memory: never on a command line, in output or a log.
    assert watch.builds and all("--authfile /proc/self/fd/" in argv for argv in watch.builds), watch.builds
    assert not watch.leaks
    assert password not in built.stdout + built.stderr
    logs = list((tmp_path / "state").rglob("*.log"))
    assert logs and not any(password in log.read_text(errors="replace") for log in logs)
    assert podman("image", "exists", base, check=False).returncode == 0
    assert (bindir / "rtbgood.calls").read_text().split() == [host]  # one lookup for both stages

    # The first build could not hash a base it did not have: the next one labels the image
    # (an engine build: one more lookup), the one after is a no-op that looks nothing up.
    def again() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RTBUILD, "build", str(ctx), "-t", image, *common],
            env={
                **env,
                "DOCKER_CONFIG": str(tmp_path / "rtbgood"),
                "REGISTRY_AUTH_FILE": str(tmp_path / "absent.json"),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )

    labelled = again()
    assert labelled.returncode == 0 and "podman build skipped" not in labelled.stderr, labelled.stderr
    assert (bindir / "rtbgood.calls").read_text().split() == [host, host]
    skipped = again()
    assert skipped.returncode == 0 and "podman build skipped" in skipped.stderr, skipped.stderr
    assert (bindir / "rtbgood.calls").read_text().split() == [host, host]


def test_an_auth_file_podman_cannot_read_is_a_configuration_error(names: Names, registry: Any, tmp_path: Path) -> None:
    """A REGISTRY_AUTH_FILE that is not JSON: ``rtbuild exists`` reading it says so (exit 2,
    step 'read registry credentials'); the build warned, then podman stopped on the file while
    looking up the base's credentials, and the error was 'podman build failed (exit 125)' with
    the catch-all hint (exit 1). Now it names the file, with the same step and exit code."""
    broken = tmp_path / "broken-auth.json"
    broken.write_text("{not json")
    env = isolated_env(tmp_path, REGISTRY_AUTH_FILE=str(broken))
    base = registry.ref("rt-podman-test/any-base:1")
    ctx = write_context(tmp_path / "ctx", f"FROM {base}\nRUN true\n")
    built = subprocess.run(
        [RTBUILD, "build", str(ctx), "-t", names.new(), "--builder", "podman", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 2, built.stderr
    error = json.loads(built.stdout)
    assert error["error"] == "ConfigError" and error["step"] == "read registry credentials", error
    assert str(broken) in error["message"] and "fix or remove the file" in error["hint"]
    assert error["log_path"] and error["log_tail"]
