"""The runtime plugin interface: what a plugin contributes to a runtime image.

A distribution offers runtime plugins through the ``runtime_plugins`` hook; a runtime
image is composed from a base image plus the plugins the user selects by name
(``rtbuild runtime --plugin NAME``). Light module: no heavy imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from rtbuild._masking import masked_repr

if TYPE_CHECKING:
    from rtbuild._framework.config import Config

#: Content of a file placed in the image: bytes, text (UTF-8), or a host path to read.
FileContent = bytes | str | Path

#: Where a payload without an explicit destination lands: ``<this>/<name>``.
DEFAULT_PAYLOAD_ROOT = "/opt/rtbuild/payload"
#: Excluded from every distribution payload: bytecode is interpreter-specific and rebuilt on import.
DISTRIBUTION_EXCLUDES = ("**/__pycache__", "**/*.pyc")


def _dir(dest: str | None) -> str | None:
    """A payload's DEST with trailing slashes dropped: ``/opt/agent/`` names ``/opt/agent``."""
    return (dest.rstrip("/") or "/") if isinstance(dest, str) and dest.startswith("/") else dest


@dataclass(frozen=True)
class SourcePayload:
    """A tree of files added to a plugin's source group as one ``COPY`` layer.

    ``kind="directory"``: the files under ``source`` (a host directory), after its own
    ``.dockerignore`` and ``exclude``; ``kind="distribution"``: the files of the installed
    Python distribution named ``source``, as installed (``importlib.metadata`` ``files()``,
    relative to its install root, e.g. ``pkg/__init__.py`` and ``pkg-1.0.dist-info/``),
    without :data:`DISTRIBUTION_EXCLUDES` and ``exclude``. ``dest`` is the absolute image
    directory the tree lands in. Files are hashed in place (stat cache) and keep their
    permission bits.
    """

    source: str
    dest: str
    kind: Literal["directory", "distribution"] = "directory"
    #: ``.dockerignore``-style patterns, relative to the payload's root.
    exclude: tuple[str, ...] = ()

    @classmethod
    def directory(
        cls, path: str | os.PathLike[str], dest: str | None = None, exclude: tuple[str, ...] = ()
    ) -> SourcePayload:
        """A host directory; ``dest`` defaults to ``/opt/rtbuild/payload/<directory name>``."""
        full = os.path.abspath(os.fspath(path))
        return cls(
            full,
            _dir(dest) or f"{DEFAULT_PAYLOAD_ROOT}/{os.path.basename(full) or 'root'}",
            "directory",
            tuple(exclude),
        )

    @classmethod
    def distribution(cls, name: str, dest: str | None = None, exclude: tuple[str, ...] = ()) -> SourcePayload:
        """An installed distribution; ``dest`` defaults to ``/opt/rtbuild/payload/<name>``."""
        return cls(name, _dir(dest) or f"{DEFAULT_PAYLOAD_ROOT}/{name}", "distribution", tuple(exclude))

    @classmethod
    def parse(cls, spec: str, exclude: tuple[str, ...] = ()) -> SourcePayload:
        """``PATH_OR_DISTRIBUTION[:DEST]`` (the ``--source`` syntax): an existing directory
        is a directory payload, a bare name an installed distribution."""
        where, dest = spec, ""
        if not os.path.isdir(spec) and ":" in spec:
            head, tail = spec.rsplit(":", 1)
            if tail.startswith("/") or not tail:
                where, dest = head, tail
            elif os.path.isdir(head) or not ("/" in head or head.startswith(".")):
                from rtbuild.errors import ConfigError

                raise ConfigError(
                    f"source payload {spec!r}: the destination {tail!r} is not an absolute path in the image",
                    step="compose runtime image",
                    hint=f"write it as {head}:/{tail.lstrip('./')}",
                )
        if os.path.isdir(where):
            return cls.directory(where, dest or None, exclude)
        if not where or "/" in where or os.sep in where or where.startswith("."):
            from rtbuild.errors import ConfigError

            raise ConfigError(
                f"source payload {spec!r}: {where!r} is not a directory",
                step="compose runtime image",
                hint="pass an existing directory or the name of an installed distribution, optionally :/IMAGE/DIR",
            )
        return cls.distribution(where, dest or None, exclude)


@dataclass
class RuntimeRequirements:
    """One runtime plugin's contribution to a runtime image.

    The dependency ("lock") part -- ``dockerfile``, ``dependency_files``, ``build_args``
    and ``env`` -- goes into the plugin's dependency layer group and the lock hash; the
    source part -- ``files`` and ``source_dockerfile`` -- goes into the source layer
    group (built after every plugin's dependencies) and the source hash. Labels are
    applied last and count towards the source hash.
    """

    #: Dockerfile instructions for the dependency layer group, e.g. ``RUN apt-get ...``.
    dockerfile: str = ""
    #: image path -> content, COPYed before ``dockerfile`` runs (lock hash).
    dependency_files: dict[str, FileContent] = field(default_factory=dict)
    #: image path -> content, COPYed in the source layer group (source hash).
    files: dict[str, FileContent] = field(default_factory=dict)
    #: Dockerfile instructions run in the source group, after ``files`` are copied.
    source_dockerfile: str = ""
    #: ``ARG`` declared in this plugin's group with these values (lock hash).
    build_args: dict[str, str] = field(default_factory=dict)
    #: ``ENV`` set at the start of this plugin's dependency group (lock hash).
    env: dict[str, str] = field(default_factory=dict)
    #: ``LABEL`` applied at the end of the image (source hash).
    labels: dict[str, str] = field(default_factory=dict)
    #: Trees of files (a directory, an installed distribution) for the source group (source hash).
    payloads: list[SourcePayload] = field(default_factory=list)
    #: How often this source group changes, relative to other plugins': source groups are
    #: built in ``(volatility, order, name)`` order, so the most volatile come last and a
    #: change rebuilds the fewest layers. ``None``: 0, or 10 when there are ``payloads``.
    volatility: int | None = None

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr

    def source_rank(self) -> int:
        """The effective ``volatility``: payload-carrying groups go after the others by default."""
        if self.volatility is not None:
            return self.volatility
        return 10 if self.payloads else 0


@runtime_checkable
class RuntimePlugin(Protocol):
    """A runtime plugin object, as returned by the ``runtime_plugins`` hook."""

    #: The name users select it by (``--plugin NAME``, ``[runtime] plugins``).
    name: str
    #: Lower first; ties broken by name. ``cacerts`` uses -100 so its CA/env precede others.
    order: int

    def requirements(self, config: Config) -> RuntimeRequirements:
        """This plugin's contribution; called only when the plugin is selected."""
        ...


__all__ = [
    "DEFAULT_PAYLOAD_ROOT",
    "DISTRIBUTION_EXCLUDES",
    "FileContent",
    "RuntimePlugin",
    "RuntimeRequirements",
    "SourcePayload",
]
