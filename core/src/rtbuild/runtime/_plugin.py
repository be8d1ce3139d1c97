"""The runtime plugin interface: what a plugin contributes to a runtime image.

A distribution offers runtime plugins through the ``runtime_plugins`` hook; a runtime
image is composed from a base image plus the plugins the user selects by name
(``rtbuild runtime --plugin NAME``). Light module: no heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rtbuild._framework.config import Config

#: Content of a file placed in the image: bytes, text (UTF-8), or a host path to read.
FileContent = bytes | str | Path


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


__all__ = ["FileContent", "RuntimePlugin", "RuntimeRequirements"]
