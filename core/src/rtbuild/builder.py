"""The builder contract (v2): :class:`RuntimeBuilder`, :class:`BuildRequest`, :class:`BuildResult`.

A v1 builder implements only the two abstract methods and keeps working: the default
:meth:`RuntimeBuilder.build_request` hands it every structured field as a Docker-style
flag. A v2 builder overrides :meth:`~RuntimeBuilder.build_request`, declares its
:class:`BuilderCapabilities`, and gets the typed request.
"""

from __future__ import annotations

import abc
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rtbuild._masking import SECRET_SPEC_KEYS as _SECRET_KEYS
from rtbuild._masking import masked_repr, shown_secret_spec
from rtbuild.errors import BuildFailedError, ConfigError, PushError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rtbuild._framework.config import Config
    from rtbuild._observe.prune import PruneItem, PrunePolicy


@dataclass(frozen=True)
class BuilderCapabilities:
    """What a builder can do; the core refuses a request for anything not declared (exit 2)."""

    #: ``builder.push(tag)`` works.
    push: bool = False
    #: Platforms it can build for; empty: not declared, so no single platform is refused
    #: (``request.platform`` reaches the builder, which refuses what its engine cannot build).
    platforms: tuple[str, ...] = ()
    #: One request may name several comma-separated platforms.
    multi_platform: bool = False
    #: Honours ``request.target`` (a multi-stage build's stage).
    target: bool = False
    #: Honours ``request.no_cache``.
    no_cache: bool = False
    #: Honours ``request.secrets`` (BuildKit-style ``--secret``).
    secrets: bool = False
    #: Honours ``request.cache_from`` / ``request.cache_to``.
    cache_export: bool = False
    #: A context without a Dockerfile is refused before the build.
    needs_dockerfile: bool = True
    #: :meth:`RuntimeBuilder.plan` describes the build without running it.
    dry_run: bool = True
    #: The builder can remove images it made (``rtbuild prune``).
    prune: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["platforms"] = list(self.platforms)
        return data


#: What a v1 builder gets: structured fields become flags, so target and no-cache reach
#: a Docker-like ``build()`` as ``--target``/``--no-cache`` (never dropped silently).
V1_CAPABILITIES = BuilderCapabilities(target=True, no_cache=True, cache_export=True)


#: A ``--secret`` spec as an error may show it: the known parts, every other one as ``***``.
_shown_spec = shown_secret_spec


@dataclass(frozen=True)
class BuildSecret:
    """A build secret: ``--secret id=NAME,src=FILE`` or ``id=NAME,env=VAR``.

    Only the id and where to read it travel through rtbuild; the value is read by the
    builder at build time (:meth:`value`) and never logged, hashed or stored.
    """

    id: str
    src: str | None = None
    env: str | None = None

    @classmethod
    def parse(cls, text: str) -> BuildSecret:
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in _SECRET_KEYS:
                raise ConfigError(
                    f"invalid --secret {_shown_spec(text)!r}: expected id=NAME,src=FILE or id=NAME,env=VAR",
                    step="validate request",
                    hint="e.g. --secret id=npmrc,src=$HOME/.npmrc or --secret id=token,env=GH_TOKEN",
                )
            fields["src" if key.strip() == "source" else key.strip()] = value.strip()
        secret = cls(id=fields.get("id", ""), src=fields.get("src") or None, env=fields.get("env") or None)
        if not secret.id or (secret.src is None) == (secret.env is None):
            raise ConfigError(
                f"invalid --secret {_shown_spec(text)!r}: give an id and exactly one of src= or env=",
                step="validate request",
                hint="e.g. --secret id=npmrc,src=$HOME/.npmrc or --secret id=token,env=GH_TOKEN",
            )
        return secret

    @classmethod
    def parse_all(cls, texts: Iterable[str]) -> list[BuildSecret]:
        """:meth:`parse` each; an id given twice is refused: the engines read only the last
        one given (Docker 20.10's BuildKit: ``id=x,src=F`` then ``id=x,env=V`` mounted V's value)."""
        secrets = [cls.parse(text) for text in texts]
        ids = [secret.id for secret in secrets]
        twice = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
        if twice is not None:
            raise ConfigError(
                f"invalid --secret: the id {twice!r} is given twice (the engine would mount only the last)",
                step="validate request",
                hint="give each secret its own id, and each RUN --mount=type=secret the id it reads",
            )
        return secrets

    def value(self) -> bytes:
        """The secret's bytes, read now (a missing source is a clear error without the value)."""
        if self.env is not None:
            raw = os.environ.get(self.env)
            if raw is None:
                raise ConfigError(
                    f"secret {self.id!r}: environment variable {self.env} is not set",
                    step="read secret",
                    hint=f"export {self.env} in rtbuild's environment, or read the secret from a file with src=FILE",
                )
            return raw.encode()
        assert self.src is not None
        import stat

        try:
            # O_NONBLOCK: opening a FIFO with no writer would block here until one came.
            fd = os.open(self.src, os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, "rb") as fh:
                mode = os.fstat(fd).st_mode
                # A FIFO read here would leave the engine nothing to read (or hang both):
                # the source is read twice, here to mask it and by the engine.
                if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise ConfigError(
                        f"secret {self.id!r}: {self.src} is a pipe or socket, not a file",
                        step="read secret",
                        hint="write the secret to a file (a tmpfs one keeps it off disk), or pass it with env=",
                    )
                os.set_blocking(fd, True)
                data = fh.read(MAX_SECRET_BYTES + 1)  # bounded: /dev/zero must not fill memory
        except OSError as exc:
            raise ConfigError(
                f"secret {self.id!r}: cannot read {self.src}: {exc.strerror}",
                step="read secret",
                hint="src= is a path on this machine, read by the user running rtbuild",
            ) from None
        if len(data) > MAX_SECRET_BYTES:
            raise ConfigError(
                f"secret {self.id!r}: {self.src} is larger than {MAX_SECRET_BYTES // 1024} KiB",
                step="read secret",
                hint="BuildKit refuses secrets over 500 KiB; COPY or mount large files another way",
            )
        return data

    def flag(self) -> str:
        """The BuildKit flag value (names the source, never the secret itself)."""
        return f"id={self.id},env={self.env}" if self.env is not None else f"id={self.id},src={self.src}"


#: BuildKit's own limit on one secret (``MaxSecretSize`` in its secrets provider).
MAX_SECRET_BYTES = 500 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What :meth:`RuntimeBuilder.inspect_image` reports about a local image."""

    id: str
    size: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    platforms: tuple[str, ...] = ()

    #: Logged or in a traceback: secret-looking values, URL passwords, --creds as *** (fields unchanged).
    __repr__ = masked_repr


@dataclass
class BuildRequest:
    """One build, as the hooks and the builder see it. ``pre_build`` hooks may change it."""

    path: str
    tags: list[str] = field(default_factory=list)
    #: One platform, or several separated by commas (``linux/amd64,linux/arm64``).
    platform: str | None = None
    extra_build_args: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    builder: str | None = None
    #: ``None``: from the configuration; an explicit ``False`` wins over ``push = true``.
    push: bool | None = None
    target: str | None = None
    no_cache: bool = False
    #: The Dockerfile, relative to the context (``None``: ``Dockerfile``, or ``-f`` in extra args).
    dockerfile: str | None = None
    secrets: list[BuildSecret] = field(default_factory=list)
    cache_from: list[str] = field(default_factory=list)
    cache_to: list[str] = field(default_factory=list)
    #: Rebuild even when an image with the same inputs exists (the no-op skip is off).
    force: bool = False
    #: Free-form data shared between plugins during one build; rtbuild itself reads none of it.
    data: dict[str, Any] = field(default_factory=dict)

    #: Logged or in a traceback: secret-looking values, URL passwords, --creds as *** (fields unchanged).
    __repr__ = masked_repr

    def platforms(self) -> list[str]:
        """The requested platforms, split on commas (empty: the engine's native one)."""
        return [p.strip() for p in (self.platform or "").split(",") if p.strip()]

    def structured_args(self) -> list[str]:
        """Every structured field as Docker-style flags, then ``extra_build_args``."""
        args: list[str] = []
        if self.dockerfile:
            args += ["-f", self.dockerfile]
        for key, value in self.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        if self.target:
            args += ["--target", self.target]
        if self.no_cache:
            args.append("--no-cache")
        for secret in self.secrets:
            args += ["--secret", secret.flag()]
        for ref in self.cache_from:
            args += ["--cache-from", ref]
        for ref in self.cache_to:
            args += ["--cache-to", ref]
        return args + list(self.extra_build_args)


@dataclass
class BuildResult:
    """What a build produced."""

    image: str
    tags: list[str]
    builder: str
    duration_s: float
    cached: bool = False
    #: Free-form details from the backend or plugins (``steps``, ``digest``, ``pushed``, ...).
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    #: Logged or in a traceback: secret-looking values, URL passwords, --creds as *** (fields unchanged).
    __repr__ = masked_repr


class RuntimeBuilder(abc.ABC):
    """Base class of every backend.

    Implement :meth:`build` and :meth:`image_exists` (v1); override :meth:`build_request`
    and declare :attr:`capabilities` for the typed request (v2). Every other method has a
    working default.
    """

    #: Set by the factory to the entry-point name the builder was selected by.
    name: str = ""
    #: What this builder can do. The default is what a v1 builder gets through flags.
    capabilities: ClassVar[BuilderCapabilities] = V1_CAPABILITIES

    @abc.abstractmethod
    def build(
        self,
        path: str,
        tags: list[str],
        platform: str | None = None,
        extra_build_args: list[str] | None = None,
    ) -> str:
        """Build the context at ``path``, apply every tag, return the final ``name:tag``."""

    @abc.abstractmethod
    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        """Whether ``image_name`` is available (locally, or pulled from its registry)."""

    def build_request(self, request: BuildRequest) -> BuildResult:
        """Run one structured build. The default adapts to :meth:`build` with flags."""
        started = time.perf_counter()
        image = self.build(
            request.path, list(request.tags), platform=request.platform, extra_build_args=request.structured_args()
        )
        if not isinstance(image, str) or not image:
            raise BuildFailedError(
                f"builder {self.name!r} returned {image!r} instead of an image name",
                step="build",
                hint="RuntimeBuilder.build must return the final name:tag",
                blame=getattr(self, "_rtbuild_origin", None) or f"builder {self.name or type(self).__name__}",
            )
        return BuildResult(
            image=image,
            tags=list(request.tags),
            builder=self.name or type(self).__name__,
            duration_s=round(time.perf_counter() - started, 3),
        )

    def plan(self, request: BuildRequest) -> str:
        """What :meth:`build_request` would do, as text (``rtbuild build --dry-run``)."""
        args = [request.path, *(f"-t {t}" for t in request.tags)]
        if request.platform:
            args.append(f"--platform {request.platform}")
        flags = shlex.join(request.structured_args())
        return f"{type(self).__name__}.build({' '.join(args)}{' ' + flags if flags else ''})"

    def push(self, tag: str) -> None:
        """Push ``tag`` to its registry. Declare ``capabilities.push`` when overriding."""
        raise PushError(
            f"builder {self.name!r} cannot push images",
            step="push",
            hint="choose a builder that supports --push (see `rtbuild builders`)",
        )

    def image_id(self, name: str) -> str | None:
        """The local image ID of ``name``, or ``None`` when unknown or unsupported."""
        return None

    def inspect_image(self, name: str) -> ImageInfo | None:
        """Size, labels and creation time of a local image, or ``None`` when unsupported."""
        return None

    def prune(self, policy: PrunePolicy) -> list[PruneItem]:
        """Remove the images rtbuild made that ``policy`` selects (``rtbuild prune``).

        Declare ``capabilities.prune`` when overriding; use
        :func:`rtbuild.enginekit.select_prunable` for the decision so every backend follows
        the same rules, and remove nothing when ``policy.dry_run``.
        """
        from rtbuild.errors import CapabilityError

        raise CapabilityError(
            f"builder {self.name!r} cannot prune images",
            step="prune",
            hint="choose a builder whose capabilities include prune (see `rtbuild builders`)",
        )

    @classmethod
    def from_config(cls, config: Config, name: str) -> RuntimeBuilder:
        """Create the builder; ``name`` is the entry-point name it was selected by."""
        return cls()


__all__ = [
    "V1_CAPABILITIES",
    "BuildRequest",
    "BuildResult",
    "BuildSecret",
    "BuilderCapabilities",
    "ImageInfo",
    "RuntimeBuilder",
]
