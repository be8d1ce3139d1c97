"""The files ``rtbuild new builder|plugin NAME`` writes (``string.Template``: ``$name`` & co.).

Every generated distribution installs and passes its own tests at once: the builder runs
rtbuild's :class:`~rtbuild.testing.BuilderContract` (against the docker CLI it starts from),
the plugin tests its hooks with the kit's fixtures.
"""

from __future__ import annotations

COMMON_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "$description"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["rtbuild>=$rtbuild_version"]

[project.optional-dependencies]
test = ["pytest>=8.0"]

[project.entry-points."$group"]
$name = "$entry_point"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

BUILDER_MODULE = '''\
"""$cls: an rtbuild builder (written by `rtbuild new builder $name`).

It starts as a complete, working builder on top of the docker CLI, so that it installs and
passes rtbuild's conformance suite (tests/test_contract.py) at once. To target your engine,
replace the bodies of `_run`, `image_exists`, `push` and `inspect_image`, and declare in
`capabilities` exactly what it can do: the core refuses everything else before any work.
See https://rtbuild.example/writing-a-builder/ (docs/writing-a-builder.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import time
from typing import Any, ClassVar

import rtbuild
from rtbuild import (
    BuilderCapabilities,
    BuildRequest,
    BuildResult,
    EngineUnavailableError,
    ImageInfo,
    PushError,
    RuntimeBuilder,
)
from rtbuild.enginekit import build_error, redact_argv, run_build


class $cls(RuntimeBuilder):
    """Builds with `docker build` (BuildKit). Settings: the `[builders.$name]` table."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(
        push=True, target=True, no_cache=True, secrets=True, cache_export=True, dry_run=True
    )

    def __init__(self, cli: str = "docker") -> None:
        self.cli = cli
        self._command: tuple[list[str], dict[str, str]] | None = None

    @classmethod
    def from_config(cls, config: rtbuild.Config, name: str) -> $cls:
        settings = config.builder_config(name)  # the [builders.$name] table
        builder = cls(cli=str(settings.get("cli", "docker")))
        try:
            legacy = builder._client()[1].get("DOCKER_BUILDKIT") == "0"
        except OSError:  # no such CLI: the build says so
            legacy = False
        if legacy:
            # Without BuildKit there is no --secret: this instance declares what its client can
            # do, so the core refuses a build with secrets before any work (and the
            # conformance suite expects that refusal instead of a working secret).
            builder.capabilities = dataclasses.replace(cls.capabilities, secrets=False)  # type: ignore[misc]
        return builder

    # -- the contract ---------------------------------------------------------------------

    def build_request(self, request: BuildRequest) -> BuildResult:
        """The typed request: every field is here, nothing travels as a magic string."""
        started = time.perf_counter()
        self._run(self._argv(request), tag=request.tags[0])
        return BuildResult(
            image=request.tags[0],
            tags=list(request.tags),
            builder=self.name,
            duration_s=round(time.perf_counter() - started, 3),
            details={"engine": "$name"},
        )

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        """The v1 entry point, kept for callers of the two-method contract."""
        request = BuildRequest(path, tags=list(tags), platform=platform, extra_build_args=list(extra_build_args or []))
        return self.build_request(request).image

    def plan(self, request: BuildRequest) -> str:
        """`rtbuild build --dry-run`: the command a build would run (secret values masked)."""
        env = " ".join(f"{key}={value}" for key, value in self._client()[1].items())
        return (env + " " if env else "") + shlex.join(redact_argv(self._argv(request)))

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        if self._quiet("image", "inspect", image_name):
            return True
        return pull_from_repo and self._quiet("pull", "--quiet", image_name)

    def push(self, tag: str) -> None:
        proc = subprocess.run([self.cli, "push", tag], capture_output=True, text=True)
        if proc.returncode != 0:
            raise PushError(
                f"pushing {tag} failed",
                step="push",
                log_tail=proc.stderr.splitlines()[-10:],
                hint=f"check that the registry of {tag} is reachable and that `{self.cli} login` to it succeeded",
            )

    def inspect_image(self, name: str) -> ImageInfo | None:
        proc = subprocess.run([self.cli, "image", "inspect", name], capture_output=True, text=True)
        if proc.returncode != 0:
            return None
        info: dict[str, Any] = json.loads(proc.stdout)[0]
        return ImageInfo(
            id=info["Id"],
            size=info.get("Size"),
            labels=dict((info.get("Config") or {}).get("Labels") or {}),
            created=info.get("Created"),
        )

    def image_id(self, name: str) -> str | None:
        info = self.inspect_image(name)
        return info.id if info else None

    # -- the engine -----------------------------------------------------------------------

    def _client(self) -> tuple[list[str], dict[str, str]]:
        """How to call the engine: `buildx build --load` where buildx exists, else BuildKit
        through DOCKER_BUILDKIT=1 (clients before 23 only), else the legacy builder."""
        if self._command is None:
            if self._quiet("buildx", "version"):
                self._command = [self.cli, "buildx", "build", "--load", "--progress=plain"], {}
            else:
                version = subprocess.run(
                    [self.cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True
                ).stdout.strip()
                major = version.split(".")[0]
                if major.isdigit() and int(major) < 23:
                    self._command = [self.cli, "build", "--progress=plain"], {"DOCKER_BUILDKIT": "1"}
                else:
                    # --force-rm: the legacy builder keeps a failed step's container otherwise.
                    self._command = [self.cli, "build", "--force-rm"], {"DOCKER_BUILDKIT": "0"}
        return self._command

    def _argv(self, request: BuildRequest) -> list[str]:
        command, env = self._client()
        if request.secrets and env.get("DOCKER_BUILDKIT") == "0":
            raise rtbuild.CapabilityError(
                f"build secrets need BuildKit, and {self.cli} has no buildx",
                step="check builder capabilities",
                hint="install the docker buildx plugin, or set `cli` in [builders.$name] to a docker client"
                " that builds with BuildKit (one before 23.0 does, with DOCKER_BUILDKIT=1)",
            )
        argv = list(command)
        for tag in request.tags:
            argv += ["-t", tag]
        if request.platform:
            argv += ["--platform", request.platform]
        if request.dockerfile:  # relative to the context, as rtbuild validated it
            argv += ["-f", os.path.join(request.path, request.dockerfile)]
        for key, value in request.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in request.labels.items():
            argv += ["--label", f"{key}={value}"]
        if request.target:
            argv += ["--target", request.target]
        if request.no_cache:
            argv.append("--no-cache")
        for secret in request.secrets:
            argv += ["--secret", secret.flag()]  # names the source, never the value
        for ref in request.cache_from:
            argv += ["--cache-from", ref]
        for ref in request.cache_to:
            argv += ["--cache-to", ref]
        return [*argv, *request.extra_build_args, request.path]

    def _run(self, argv: list[str], tag: str) -> None:
        """Run the build through rtbuild.enginekit.run_build, which streams its lines and
        step events to rtbuild's progress display, runs it in a process group of its own
        (stopped on Ctrl-C, SIGTERM and --build-timeout: nothing outlives rtbuild) and puts
        secret-looking build-arg values in the client's environment, never on its command
        line (any local user can read /proc/PID/cmdline). build_error names the failing
        step with the log's tail and a hint. For an engine without a CLI, replace this."""
        try:
            run = run_build(argv, env=self._client()[1], log_path=None)
        except FileNotFoundError:
            raise EngineUnavailableError(
                f"cannot build {tag}: {argv[0]} is not installed", step="start build", hint=f"install {argv[0]}"
            ) from None
        if run.returncode != 0:
            raise build_error(run.lines, run.returncode, log_path=run.log_path, engine="$name")

    def _quiet(self, *args: str) -> bool:
        return subprocess.run([self.cli, *args], capture_output=True).returncode == 0
'''

BUILDER_TEST = '''\
"""$cls against rtbuild's conformance suite (rtbuild.testing.BuilderContract)."""

from __future__ import annotations

import os
import subprocess

import pytest
from rtbuild import Config, RuntimeBuilder
from rtbuild.testing import BuilderContract
from $module.builder import $cls


def _engine() -> None:
    """The suite builds real images: fail under CI, skip elsewhere, when no engine answers."""
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and no docker engine answers")
        pytest.skip("no docker engine answers")


class Test${cls}Contract(BuilderContract):
    # Must exist on the engine and have /bin/sh.
    base_image = os.environ.get("RTBUILD_CONTRACT_BASE", "busybox:latest")
    reports_cached = False  # set True once an unchanged rebuild returns result.cached

    @pytest.fixture
    def builder(self) -> RuntimeBuilder:
        _engine()
        builder = $cls.from_config(Config(), "$name")
        builder.name = "$name"
        return builder

    def read_file(self, builder: RuntimeBuilder, image: str, path: str) -> bytes | None:
        proc = subprocess.run(["docker", "run", "--rm", "--network=none", image, "cat", path], capture_output=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def cleanup(self, builder: RuntimeBuilder, tags: list[str]) -> None:
        subprocess.run(["docker", "image", "rm", "-f", *tags], capture_output=True)
'''

PLUGIN_MODULE = '''\
"""The $name plugin for rtbuild (written by `rtbuild new plugin $name`).

Hooks are functions marked @rtbuild.hookimpl and named after rtbuild's hooks (see
docs/hooks.md; an unmarked one is never called); each takes any subset of the hook's
arguments, by name. Settings come from the `[plugins.$name]` table.
Never print to stdout (it is the build's result): report through rtbuild.get_reporter().
"""

from __future__ import annotations

import rtbuild


@rtbuild.hookimpl
def pre_build(request: rtbuild.BuildRequest, config: rtbuild.Config) -> None:
    """Label every image; refuse a build by raising rtbuild.PolicyError (exit 2)."""
    settings = config.plugin_config("$name")
    request.labels[settings.get("label", "org.example.$name")] = "yes"


@rtbuild.hookimpl
def post_build(result: rtbuild.BuildResult) -> None:
    rtbuild.get_reporter().line(f"$name: saw {result.image}", source="$name")
'''

PLUGIN_TEST = '''\
"""The $name plugin, tested with rtbuild's kit (fixtures rtbuild_pm and fake_builder)."""

from __future__ import annotations

from pathlib import Path

import $module.plugin
from rtbuild import BuildRequest, Config, RtbuildPluginManager, run_build
from rtbuild.testing import FakeBuilder


def test_the_plugin_labels_every_image(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\\n")
    rtbuild_pm.register($module.plugin, name="$name")
    request = BuildRequest(str(tmp_path), tags=["$name-test:1"])
    result = run_build(request, config=Config(), pm=rtbuild_pm, builder=fake_builder)
    info = fake_builder.inspect_image(result.image)
    assert info is not None and info.labels["org.example.$name"] == "yes"


def test_the_label_name_comes_from_the_settings(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\\n")
    rtbuild_pm.register($module.plugin, name="$name")
    config = Config(plugins={"$name": {"label": "org.example.custom"}})
    request = BuildRequest(str(tmp_path), tags=["$name-test:2"])
    result = run_build(request, config=config, pm=rtbuild_pm, builder=fake_builder)
    info = fake_builder.inspect_image(result.image)
    assert info is not None and "org.example.custom" in info.labels
'''

README = """\
# $dist

$description, written by `rtbuild new $kind $name`.

```sh
pip install ./$dist            # or: pip install -e './$dist[test]'
pytest $dist                   # the tests pass at once
rtbuild $listing               # lists `$name`
```

$usage

Read docs/writing-a-$kind.md of rtbuild for the contract, and docs/testing.md for the kit.
"""

BUILDER_USAGE = (
    "Build with it: `rtbuild build CTX -t app:1 --builder $name`; see what it declares with "
    "`rtbuild builders`. It starts on the docker CLI; replace the engine calls in "
    "`src/$module/builder.py` and keep tests/test_contract.py passing."
)
PLUGIN_USAGE = (
    "Every build runs it once installed; configure it in `rtbuild.toml`:\n\n"
    '```toml\n[plugins.$name]\nlabel = "org.example.$name"\n```'
)
