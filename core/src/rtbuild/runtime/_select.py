"""Composition entry: which runtime plugins, what they contribute, and the content-hash tags.

``compose_runtime`` selects the named plugins, asks each for its requirements, and
describes the two build contexts (:mod:`rtbuild.runtime._compose`); ``runtime_tags``
turns the hashes into ``REPO:<version>_<lock>_<source>`` and ``REPO:<version>_<lock>``.
Nothing here builds, probes an engine, or writes a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtbuild.errors import ConfigError, PluginError
from rtbuild.runtime._compose import RuntimeComposition, render
from rtbuild.runtime._plugin import FileContent, RuntimePlugin, RuntimeRequirements, SourcePayload

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild.builder import RuntimeBuilder

#: The pseudo-plugin of ``extra_files`` (source-layer files added by the caller).
EXTRA_FILES_PLUGIN = "extra-files"
#: The pseudo-plugin of ``payloads`` (``rtbuild runtime --source``).
EXTRA_SOURCE_PLUGIN = "extra-source"
#: Caller-added source groups change the most: they go after every plugin's.
CALLER_VOLATILITY = 100


@dataclass
class RuntimeTags:
    """The two content-hash tags of a runtime image."""

    exact: str  # REPO:<version>_<lock>_<source>
    lock: str  # REPO:<version>_<lock>


def version_tag_part(version: str | None = None) -> str:
    """rtbuild's version as a tag fragment: characters outside ``[A-Za-z0-9.-]`` become ``-``."""
    if version is None:
        from rtbuild._version import __version__

        version = __version__
    return re.sub(r"[^A-Za-z0-9.-]", "-", version).strip(".-") or "0"


def runtime_tags(composition: RuntimeComposition, repo: str) -> RuntimeTags:
    """``REPO:<version>_<lock>_<source>`` and ``REPO:<version>_<lock>``."""
    hint = "pass --repo REGISTRY/NAME (e.g. 127.0.0.1:5000/runtime) or set [runtime] repo or RTBUILD_RUNTIME_REPO"
    if not repo or ":" in repo.rsplit("/", 1)[-1] or "@" in repo:
        raise ConfigError(
            f"runtime repository {repo!r} must be a repository name without tag or digest",
            step="compose runtime image",
            hint=hint,
        )
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci._references import parse_reference

    try:  # the repository as given, not the tag made of it: 'Bad:0.1.0_65cb..._1524...' named no input
        parse_reference(repo)
    except InvalidReferenceError as exc:
        problem = exc.message.partition(": ")[2]
        raise InvalidReferenceError(
            f"runtime repository {repo!r} is not a repository name: {problem}", step="compose runtime image", hint=hint
        ) from None
    prefix = f"{repo}:{version_tag_part()}_{composition.lock_hash}"
    return RuntimeTags(exact=f"{prefix}_{composition.source_hash}", lock=prefix)


def available_runtime_plugins(config: Config, pm: RtbuildPluginManager) -> dict[str, RuntimePlugin]:
    """Every runtime plugin the installed distributions offer, by name."""
    found: dict[str, RuntimePlugin] = {}
    for offered in pm.hook.runtime_plugins(config=config):
        for plugin in offered or []:
            name = getattr(plugin, "name", None)
            if not isinstance(name, str) or not name or not callable(getattr(plugin, "requirements", None)):
                raise PluginError(
                    f"runtime plugin {plugin!r} has no name or no requirements(config) method",
                    step="discover runtime plugins",
                    hint="a runtime plugin needs `name: str`, `order: int` and `requirements(config)`",
                )
            if name in found and found[name] is not plugin:
                raise PluginError(
                    f"two runtime plugins are named {name!r}: {found[name]!r} and {plugin!r}",
                    step="discover runtime plugins",
                    hint="uninstall or disable one of the distributions offering it (RTBUILD_DISABLE_PLUGINS)",
                )
            found[name] = plugin
    return found


def select_plugins(
    available: Mapping[str, RuntimePlugin], names: Iterable[str], pm: RtbuildPluginManager | None = None
) -> list[RuntimePlugin]:
    """The named plugins in build order ``(order, name)``; an unknown name lists the available
    ones, or says that the plugin of that name is installed but not loaded (``pm``'s records)."""
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in available]
    if unknown:
        _not_loaded(unknown, pm)
        choices = ", ".join(sorted(available)) or "(none loaded)"
        raise ConfigError(
            f"runtime plugin {', '.join(map(repr, unknown))} not recognised, choose from: {choices}",
            step="select runtime plugins",
            hint="install the distribution that provides it (e.g. `pip install rtbuild-jupyter`)",
        )
    return sorted((available[name] for name in wanted), key=lambda p: (int(getattr(p, "order", 0)), p.name))


def _not_loaded(unknown: list[str], pm: RtbuildPluginManager | None) -> None:
    """An installed plugin named like a requested runtime plugin that was filtered out or
    failed to load: 'not recognised ... pip install rtbuild-jupyter' sent the user to install
    what they had (RTBUILD_DISABLE_PLUGINS=jupyter, RTBUILD_LOAD_PLUGINS= ...)."""
    records = getattr(pm, "records", {})
    for name in unknown:
        record = records.get(name) or next(
            (r for r in records.values() if r.distribution in (name, f"rtbuild-{name}")), None
        )
        if record is None or record.status not in ("disabled", "failed"):
            continue
        where = f"plugin {record.name} of {record.distribution} {record.version or ''}".rstrip()
        if record.status == "disabled":
            raise ConfigError(
                f"runtime plugin {name!r} is installed ({where}) but not loaded: plugin filtering leaves it out",
                step="select runtime plugins",
                hint=f"allow {record.name}: RTBUILD_LOAD_PLUGINS / load_plugins must name it (when set) and"
                " RTBUILD_DISABLE_PLUGINS / disable_plugins must not; `rtbuild plugins` shows each one's status",
            )
        raise ConfigError(
            f"runtime plugin {name!r} is installed ({where}) but failed to load: {record.error}",
            step="select runtime plugins",
            hint="fix or reinstall that distribution; `rtbuild plugins` shows the error",
        )


def compose_runtime(
    config: Config,
    base_image: str,
    plugins: Sequence[str],
    *,
    pm: RtbuildPluginManager,
    base_id: str | None = None,
    build_args: Mapping[str, str] | None = None,
    extra_files: Mapping[str, FileContent] | None = None,
    payloads: Sequence[SourcePayload] | None = None,
    available: Mapping[str, RuntimePlugin] | None = None,
    builder: RuntimeBuilder | None = None,
) -> RuntimeComposition:
    """Describe (without building or writing) the contexts and hashes for ``base_image`` + ``plugins``.

    ``extra_files`` and ``payloads`` are the caller's own source groups, placed after
    every plugin's (they change the most). Payloads leave out what this request writes
    (``builder``'s log directory, the metrics file: ``_payload_match.output_paths``).
    """
    selected = select_plugins(available_runtime_plugins(config, pm) if available is None else available, plugins, pm)
    contributions: list[tuple[str, RuntimeRequirements]] = []
    for plugin in selected:
        try:
            contributions.append((plugin.name, plugin.requirements(config)))
        except Exception as exc:  # its settings or downloads: the error names the plugin
            from rtbuild._framework.plugins._trace import blame

            blame(exc, f"runtime plugin {plugin.name} ({type(plugin).__module__})")
            raise
    if payloads:
        contributions.append(
            (EXTRA_SOURCE_PLUGIN, RuntimeRequirements(payloads=list(payloads), volatility=CALLER_VOLATILITY))
        )
    if extra_files:
        extra = RuntimeRequirements(files=dict(extra_files), volatility=CALLER_VOLATILITY + 1)
        contributions.append((EXTRA_FILES_PLUGIN, extra))
    from rtbuild._framework.pipeline import validate_platform
    from rtbuild.runtime._payload_match import output_paths, writing_to

    merged_args = {**config.sandbox.build_args, **config.build_args, **(build_args or {})}
    with writing_to(output_paths(config, pm, builder)):
        composition = render(
            base_image,
            contributions,
            base_image_id=base_id,
            build_args=merged_args,
            # One spelling per platform: Linux/ARM64/v8 and linux/arm64 build the same image.
            platform=validate_platform(config.platform, step="compose runtime"),
        )
    composition.origins = {
        plugin.name: f"runtime plugin {plugin.name} ({type(plugin).__module__})" for plugin in selected
    }
    return composition


__all__ = [
    "EXTRA_FILES_PLUGIN",
    "EXTRA_SOURCE_PLUGIN",
    "RuntimeTags",
    "available_runtime_plugins",
    "compose_runtime",
    "runtime_tags",
    "select_plugins",
    "version_tag_part",
]
