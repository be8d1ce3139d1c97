"""Checks on runtime-plugin contributions: well-formed values, no two plugins writing one path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtbuild.errors import ConfigError, InvalidReferenceError, PluginError
from rtbuild.runtime._plugin import RuntimeRequirements, SourcePayload

#: The caller's own payloads (--source, payloads=): rtbuild.runtime._select.EXTRA_SOURCE_PLUGIN.
_CALLER = "extra-source"
_PLUGIN_HINT = (
    "a runtime plugin's requirements() returns rtbuild.RuntimeRequirements; report this to the plugin's author"
)


def check_base(base: str | None, *, given: bool) -> str:
    """The base image, refused before any engine call when missing or malformed: the
    engine's own 400 ('invalid reference format') came with the hint to check 'the argument
    the message names', not saying which setting named it."""
    where = "--base" if given else "[sandbox] base_container_image (RTBUILD_BASE_CONTAINER_IMAGE)"
    hint = "pass --base IMAGE or set [sandbox] base_container_image"
    if not base:
        raise ConfigError("no base image for the runtime image", step="compose runtime image", hint=hint)
    from rtbuild.oci import parse_reference

    try:
        parse_reference(base)
    except InvalidReferenceError as exc:
        raise ConfigError(
            f"the runtime image's base {base!r} (from {where}) is not an image reference: {exc}",
            step="compose runtime image",
            hint=exc.hint or hint,
        ) from None
    return base


def check_conflicts(contributions: Mapping[str, RuntimeRequirements]) -> None:
    """Raise naming both plugins when two write one image path or set one variable differently."""
    paths: dict[str, str] = {}
    roots: dict[str, str] = {}
    settings: dict[tuple[str, str], tuple[str, str]] = {}
    exposed: dict[str, str] = {}
    for plugin, req in contributions.items():
        for port in sorted(_exposed(req)):
            if exposed.get(port, plugin) != plugin:
                raise PluginError(
                    f"runtime plugins {exposed[port]!r} and {plugin!r} both EXPOSE {port}: their servers cannot"
                    " both listen on it",
                    step="compose runtime image",
                    hint=f"give one of them another port ([plugins.{exposed[port]}] port or [plugins.{plugin}] port,"
                    " where the plugin has that setting), or select only one of them",
                )
            exposed[port] = plugin
        for image_path in [*req.dependency_files, *req.files]:
            _clash(paths.get(image_path), plugin, f"both write {image_path} in the image", f"writes {image_path} twice")
            paths[image_path] = plugin
        for spec in req.payloads:
            _clash(
                roots.get(spec.dest),
                plugin,
                f"both place a payload in {spec.dest}",
                f"places two payloads in {spec.dest}",
            )
            roots[spec.dest] = plugin
        for kind, mapping in (("env var", req.env), ("build arg", req.build_args), ("label", req.labels)):
            for key, value in mapping.items():
                seen = settings.get((kind, key))
                if seen is not None and seen[1] != value:
                    raise PluginError(
                        f"runtime plugins {seen[0]!r} and {plugin!r} set {kind} {key} differently"
                        + _both_values(key, seen[1], value),
                        step="compose runtime image",
                        hint="select only one of them, or configure them to agree",
                    )
                settings[(kind, key)] = (plugin, value)
    # A payload owns its destination directory: nothing else may write below it.
    for root, owner in roots.items():
        inside = root.rstrip("/") + "/"
        for other_root, other in roots.items():
            if other_root != root and other_root.startswith(inside):
                where = f"in {root} and {other_root}, one inside the other"
                _clash(owner, other, f"place payloads {where}", f"places payloads {where}")
        for image_path, writer in paths.items():
            if image_path.startswith(inside):
                what = f"{image_path} inside the payload directory {root}"
                _clash(owner, writer, f"write {what}", f"writes {what}")


def _exposed(req: RuntimeRequirements) -> set[str]:
    """The ``PORT/PROTO`` of each ``EXPOSE`` in the plugin's instructions (a port given
    through a variable is not known here)."""
    ports: set[str] = set()
    for text in (req.dockerfile, req.source_dockerfile):
        for line in text.replace("\\\n", " ").splitlines():
            words = line.split()
            if words and words[0].upper() == "EXPOSE":
                for port, _, proto in (word.partition("/") for word in words[1:] if "$" not in word):
                    ports.add(f"{port}/{(proto or 'tcp').lower()}")
    return ports


def _both_values(key: str, first: str, second: str) -> str:
    """`` ('a' vs 'b')``, or nothing when either value may be a secret (a secret-looking
    name, a URL with a password): the error reaches stderr, --json and logs."""
    from rtbuild.enginekit import looks_secret, url_passwords

    if looks_secret(key) or url_passwords(first) or url_passwords(second):
        return " (values not shown: they may hold a secret)"
    return f" ({first!r} vs {second!r})"


def _clash(other: str | None, plugin: str, both: str, alone: str) -> None:
    """Two plugins (``both``), or one plugin with itself (``alone``), want one image path."""
    if other is None:
        return
    if other != plugin and _CALLER in (other, plugin):  # the hint was to change a plugin's settings
        named = plugin if other == _CALLER else other
        message = f"the --source payloads (runtime plugin {_CALLER!r}) and runtime plugin {named!r} {both}"
        hint = f"give the --source (or payloads= entry) a destination where {named} writes nothing: PATH:/IMAGE/DIR"
    elif other != plugin:
        message, hint = f"runtime plugins {other!r} and {plugin!r} {both}", "select only one of them, or "
        hint += "change one plugin's settings so the paths differ"
    elif plugin == _CALLER:  # the caller's own --source payloads
        message = f"the --source payloads clash: runtime plugin {plugin!r} {alone}"
        hint = "give each --source (or payloads= entry) its own destination, none inside another: PATH:/IMAGE/DIR"
    else:
        message = f"runtime plugin {plugin!r} {alone}"
        hint = "each of a plugin's files and payloads needs its own image path: change its settings or report it"
    raise PluginError(message, step="compose runtime image", hint=hint)


def validate_requirements(plugin: str, req: object) -> RuntimeRequirements:
    if not isinstance(req, RuntimeRequirements):
        raise PluginError(
            f"runtime plugin {plugin!r}: requirements() returned {type(req).__name__}, not RuntimeRequirements",
            step="compose runtime image",
            hint=_PLUGIN_HINT,
        )
    for kind, mapping in (("env", req.env), ("build_args", req.build_args), ("labels", req.labels)):
        for key, value in mapping.items():
            if not isinstance(key, str) or not key or any(c.isspace() or c == "=" for c in key):
                raise PluginError(
                    f"runtime plugin {plugin!r}: invalid {kind} key {key!r}",
                    step="compose runtime image",
                    hint="keys are non-empty names without spaces or '='; " + _PLUGIN_HINT,
                )
            if not isinstance(value, str):
                raise PluginError(
                    f"runtime plugin {plugin!r}: {kind}[{key!r}] must be a string, not {type(value).__name__}",
                    step="compose runtime image",
                    hint=_PLUGIN_HINT,
                )
            if "\n" in value or "\r" in value:  # the value is not shown: it may be a secret
                raise PluginError(
                    f"runtime plugin {plugin!r}: {kind}[{key!r}] holds a line break, which a Dockerfile"
                    " cannot carry (the image would hold a backslash and an 'n' instead)",
                    step="compose runtime image",
                    hint="pass a single-line value (a file in the image for multi-line text); " + _PLUGIN_HINT,
                )
    for spec in req.payloads:
        if not isinstance(spec, SourcePayload):
            raise PluginError(
                f"runtime plugin {plugin!r}: payloads must be SourcePayload objects, not {type(spec).__name__}",
                step="compose runtime image",
                hint=_PLUGIN_HINT,
            )
        _check_dest(plugin, spec)
    return req


def _check_dest(plugin: str, spec: SourcePayload) -> None:
    """A payload's DEST is an absolute, normalised image directory. It was checked as a
    plugin's file path: '--source ./a:/opt/../etc' read 'image path ... (a file)' with the
    hint to fix 'the plugin's files(), or report it to its author'."""
    import posixpath

    dest = spec.dest
    if isinstance(dest, str) and dest.startswith("/") and posixpath.normpath(dest) == dest and "//" not in dest:
        return
    normal = posixpath.normpath(posixpath.join("/", dest)) if isinstance(dest, str) else "/opt/DIR"
    message = f"source payload {spec.source!r} goes to {dest!r}, which is no absolute, normalised image directory"
    if plugin == _CALLER:
        raise ConfigError(message, step="compose runtime image", hint=f"give it as {normal}: --source PATH:{normal}")
    raise PluginError(f"runtime plugin {plugin!r}: {message}", step="compose runtime image", hint=_PLUGIN_HINT)


#: build_runtime_image's arguments a configured runtime image leaves unused, as the CLI spells them.
_BUILD_INPUTS = {
    "base_image": "--base",
    "plugins": "--plugin",
    "payloads": "--source",
    "extra_files": "extra_files",
    "repo": "--repo",
    "build_args": "--build-arg",
    "force_rebuild": "--force-rebuild",
    "no_cache": "no_cache",
}


def ignored_inputs(given: Mapping[str, Any]) -> list[str]:
    """The build inputs of ``given`` (build_runtime_image's arguments) that were passed,
    which a configured ``[sandbox] runtime_container_image`` leaves unused; the message
    that says so names them only (a build arg's value may be a secret)."""
    ignored = [flag for name, flag in _BUILD_INPUTS.items() if given.get(name)]
    if ignored:
        from rtbuild._framework.progress import get_reporter

        get_reporter().event(
            "warning",
            message="[sandbox] runtime_container_image (RTBUILD_RUNTIME_CONTAINER_IMAGE) is set: that image is"
            f" used as is and nothing is built, so {', '.join(ignored)} did not change it; unset it to build",
        )
    return ignored


__all__ = ["check_conflicts", "ignored_inputs", "validate_requirements"]
