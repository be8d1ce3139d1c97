"""The builder contract: :class:`RuntimeBuilder`, :class:`BuildRequest`, :class:`BuildResult`."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config


class RuntimeBuilder(abc.ABC):
    """Base class of every backend. Implement :meth:`build` and :meth:`image_exists`.

    Structured request fields (build args, labels) reach a builder that implements only
    these two methods as ``--build-arg K=V`` and ``--label K=V`` entries in
    ``extra_build_args``.
    """

    #: Set by the factory to the entry-point name the builder was selected by.
    name: str = ""

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

    @classmethod
    def from_config(cls, config: Config) -> RuntimeBuilder:
        """Create the builder from configuration. The default ignores it."""
        return cls()


@dataclass
class BuildRequest:
    """One build, as the hooks see it. Mutable: ``pre_build`` hooks may change it."""

    path: str
    tags: list[str] = field(default_factory=list)
    platform: str | None = None
    extra_build_args: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    builder: str | None = None
    push: bool = False
    #: Free-form data shared between plugins during one build.
    data: dict[str, Any] = field(default_factory=dict)

    def structured_args(self) -> list[str]:
        """``build_args`` and ``labels`` as CLI-style entries, then ``extra_build_args``."""
        args: list[str] = []
        for key, value in self.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        return args + list(self.extra_build_args)


@dataclass
class BuildResult:
    """What a build produced."""

    image: str
    tags: list[str]
    builder: str
    duration_s: float
    cached: bool = False
    #: Free-form details from the backend or plugins (digest, log path, pushed, ...).
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["BuildRequest", "BuildResult", "RuntimeBuilder"]
