"""FakeBuilder: a builder that runs no engine but keeps the promises of the contract.

It reads the Dockerfile just enough to be checked by :class:`~rtbuild.testing.BuilderContract`
like a real builder: stages and ``--target``, ``ARG`` defaults and ``--build-arg``,
``LABEL`` (with ``$VAR`` substitution) and ``--label``, ``RUN false`` / ``RUN ... exit N``
as a failing step, and an unchanged rebuild reported ``cached``. It is a v1 builder at
heart (``build()`` receives every structured field as a flag, the way a third-party v1
builder does), so tests of the flag adapter use it too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rtbuild.builder import BuilderCapabilities, BuildRequest, BuildResult, ImageInfo, RuntimeBuilder
from rtbuild.errors import BuildFailedError


@dataclass
class FakeFlags:
    """The structured fields a v1 builder finds in ``extra_build_args``."""

    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    dockerfile: str | None = None
    other: list[str] = field(default_factory=list)


def parse_flags(args: Sequence[str]) -> FakeFlags:
    """Read Docker-style flags (``--build-arg K=V``, ``--label``, ``--target``, ``-f``, ...)."""
    flags = FakeFlags()
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        takes_value = name in ("--build-arg", "--label", "--target", "-f", "--file", "--secret")
        takes_value = takes_value or name in ("--cache-from", "--cache-to")
        value: str | None = None
        if takes_value:
            if eq:
                value = inline
            elif index + 1 < len(items):
                index += 1
                value = items[index]
        if name == "--build-arg" and value is not None:
            key, _, val = value.partition("=")
            flags.build_args[key] = val if _ else os.environ.get(key, "")
        elif name == "--label" and value is not None:
            key, _, val = value.partition("=")
            flags.labels[key] = val
        elif name == "--target":
            flags.target = value
        elif name in ("-f", "--file"):
            flags.dockerfile = value
        elif name == "--no-cache":
            flags.no_cache = True
        elif not takes_value:
            flags.other.append(arg)
        index += 1
    return flags


_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_EXIT = re.compile(r"(?:^|[;&|\s])(?:exit\s+([1-9]\d*)|false)\s*$")


def _substitute(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _label_pairs(text: str, env: dict[str, str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for word in shlex.split(text):
        key, _, value = word.partition("=")
        pairs[_substitute(key, env)] = _substitute(value, env)
    return pairs


def simulate(dockerfile_text: str, flags: FakeFlags) -> dict[str, str]:
    """The labels the image would carry; a failing ``RUN`` raises :class:`BuildFailedError`."""
    lines = [line.strip() for line in dockerfile_text.replace("\\\n", " ").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages = [line.split()[-1] for line in instructions if line.upper().startswith("FROM ") and " AS " in line.upper()]
    if flags.target is not None and flags.target not in stages:
        raise BuildFailedError(
            f"target stage {flags.target!r} could not be found",
            step="fake build",
            log_tail=[f"stages: {', '.join(stages) or '(none named)'}"],
            hint="name one of the Dockerfile's stages",
        )
    global_env: dict[str, str] = {}  # ARGs before the first FROM
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    stage: str | None = None
    seen_from = False
    for number, line in enumerate(instructions, 1):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            if seen_from and stage is not None and stage == flags.target:
                break
            words = rest.split()
            stage = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
            env, labels, seen_from = {}, {}, True
        elif keyword == "ARG":
            name, eq, default = rest.strip().partition("=")
            fallback = default if eq else global_env.get(name, "")
            (env if seen_from else global_env)[name] = flags.build_args.get(name, fallback)
        elif keyword == "LABEL":
            labels.update(_label_pairs(rest, env))
        elif keyword == "RUN":
            match = _EXIT.search(rest.strip())
            if match:
                code = match.group(1) or "1"
                raise BuildFailedError(
                    f"step {number}/{len(instructions)} RUN {rest.strip()} failed with exit code {code}",
                    step=f"RUN {rest.strip()}",
                    log_tail=[f"#{number} RUN {rest.strip()}", f"exit code: {code}"],
                    hint="fix the failing RUN step in the Dockerfile",
                )
    return {**labels, **flags.labels}


class FakeBuilder(RuntimeBuilder):
    """A builder that runs no engine: it records calls and remembers the images it "built".

    ``images`` holds every tag built (or given), ``calls`` every ``build``/``image_exists``
    call, ``pushed`` every pushed tag, ``metadata`` an :class:`ImageInfo` per built tag.
    ``fail_with`` makes every build fail with that message.
    """

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(
        push=True, target=True, no_cache=True, cache_export=True, secrets=True
    )
    fail_with: str | None = None

    def __init__(self, images: set[str] | None = None, fail_with: str | None = None) -> None:
        self.images: set[str] = set(images or ())
        self.calls: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.pushed: list[str] = []
        self.metadata: dict[str, ImageInfo] = {}

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        self.calls.append(
            {
                "method": "build",
                "path": path,
                "tags": list(tags),
                "platform": platform,
                "extra_build_args": list(extra_build_args or []),
            }
        )
        if self.fail_with:
            raise BuildFailedError(
                self.fail_with,
                step="fake build",
                log_tail=["fake log line"],
                hint="the test asked this builder to fail",
            )
        flags = parse_flags(extra_build_args or [])
        dockerfile = os.path.join(path, flags.dockerfile or "Dockerfile")
        try:  # utf-8-sig: a byte-order mark is dropped, as the engines drop it
            with open(dockerfile, encoding="utf-8-sig", errors="replace") as fh:
                text = fh.read()
        except OSError:
            text = ""  # a builder that needs no Dockerfile (or a test without a context)
        labels = simulate(text, flags)
        key = hashlib.sha256(
            repr((text, sorted(flags.build_args.items()), sorted(labels.items()), flags.target, platform)).encode()
        ).hexdigest()
        image_id = f"sha256:{key}"
        self._cached = not flags.no_cache and all(
            tag in self.images and self.metadata.get(tag, ImageInfo("")).id == image_id for tag in tags
        )
        info = ImageInfo(id=image_id, size=0, labels=labels, platforms=(platform,) if platform else ())
        for tag in tags:
            self.metadata[tag] = info
        self.images.update(tags)
        return tags[0]

    def build_request(self, request: BuildRequest) -> BuildResult:
        # The flag adapter of the base class, plus what a v2 builder reports.
        self._cached = False
        result = super().build_request(request)
        result.cached = self._cached
        return result

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        self.calls.append({"method": "image_exists", "image_name": image_name, "pull_from_repo": pull_from_repo})
        return image_name in self.images

    def push(self, tag: str) -> None:
        self.pushed.append(tag)

    def image_id(self, name: str) -> str | None:
        info = self.inspect_image(name)
        return info.id if info else None

    def inspect_image(self, name: str) -> ImageInfo | None:
        if name not in self.images:
            return None
        return self.metadata.get(name, ImageInfo(id=f"sha256:{hashlib.sha256(name.encode()).hexdigest()}"))

    def remove(self, name: str) -> None:
        """Forget ``name`` (what ``docker image rm`` would do)."""
        self.images.discard(name)
        self.metadata.pop(name, None)


#: Source of the builder :meth:`FakeSite.add_builder` installs by default: a
#: :class:`FakeBuilder` whose state lives on the class, because the factory creates a new
#: instance for every build (read it as ``module.SiteBuilder.calls``). Like a plain v1
#: builder it declares the flag adapter's abilities and cannot push.
SITE_BUILDER_SOURCE = """
from rtbuild import RuntimeBuilder
from rtbuild.builder import V1_CAPABILITIES
from rtbuild.testing import FakeBuilder


class SiteBuilder(FakeBuilder):
    # What a plain v1 builder gets: the flag adapter's abilities and no push().
    capabilities = V1_CAPABILITIES
    push = RuntimeBuilder.push
    calls = []
    images = set()
    pushed = []
    metadata = {}

    def __init__(self):
        pass  # keep the class-level state above
"""


__all__ = ["SITE_BUILDER_SOURCE", "FakeBuilder", "FakeFlags", "parse_flags", "simulate"]
