"""Render runtime-plugin contributions into build contexts, deterministically, and hash them.

A runtime image is built as two contexts: the *dependency* context (``FROM base`` plus
each plugin's dependency group) tagged ``REPO:<version>_<lock>``, and the *source*
context (``FROM`` that lock image plus each plugin's source group and the labels). The
lock hash covers everything the dependency context holds (and the base image's ID); the
source hash covers everything the source context adds. Rendering the same inputs always
yields byte-identical contexts, so equal hashes mean equal images.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from rtbuild.errors import BuildContextError, ConfigError, PluginError
from rtbuild.runtime._plugin import FileContent, RuntimeRequirements

#: Short hashes: 16 hex chars of xxh3-64 (collisions are irrelevant at this scale).
HASH_LEN = 16
#: The ``FROM`` placeholder in the source Dockerfile, replaced by the lock tag.
LOCK_IMAGE_ARG = "RTBUILD_LOCK_IMAGE"


@dataclass
class ContextFile:
    """One file to place in a build context: context-relative name, content, mode."""

    name: str
    content: bytes
    mode: int


@dataclass
class RenderedContext:
    """A build context held in memory: the Dockerfile and the files it COPYs."""

    dockerfile: str
    files: list[ContextFile] = field(default_factory=list)

    def digest(self, *extra: str) -> str:
        """A short content hash of the Dockerfile, every file (name, mode, bytes) and ``extra``."""
        h = xxhash.xxh3_64()
        for part in (*extra, self.dockerfile):
            _feed(h, part.encode())
        for item in sorted(self.files, key=lambda f: f.name):
            _feed(h, item.name.encode())
            _feed(h, oct(item.mode).encode())
            _feed(h, item.content)
        return h.hexdigest()[:HASH_LEN]

    def write(self, directory: str | os.PathLike[str]) -> str:
        """Write the context to ``directory`` (created if needed); return its path."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        (root / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for item in self.files:
            target = root / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.content)
            os.chmod(target, item.mode)
        return str(root)


@dataclass
class RuntimeComposition:
    """The two rendered contexts of one runtime image and their hashes."""

    base_image: str
    plugins: list[str]
    deps: RenderedContext
    source: RenderedContext
    lock_hash: str
    source_hash: str

    def source_dockerfile(self, lock_image: str) -> str:
        """The source Dockerfile with its ``FROM`` pointing at ``lock_image``."""
        return self.source.dockerfile.replace(f"${{{LOCK_IMAGE_ARG}}}", lock_image, 1)


def _feed(h: xxhash.xxh3_64, data: bytes) -> None:
    # Length-prefix every part so ("ab", "c") and ("a", "bc") hash differently.
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


def _quote(value: str) -> str:
    """A Dockerfile double-quoted word: escape backslash, quote and ``$`` (no expansion)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n") + '"'


def _read(plugin: str, image_path: str, content: FileContent) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, Path):
        try:
            return content.read_bytes()
        except OSError as exc:
            raise BuildContextError(
                f"runtime plugin {plugin!r}: cannot read {content} for {image_path}: {exc.strerror}",
                step="render runtime context",
                hint=f"check the file exists and is readable, or change the [plugins.{plugin}] settings",
            ) from exc
    raise PluginError(
        f"runtime plugin {plugin!r}: content for {image_path} is {type(content).__name__}, not bytes/str/Path",
        step="render runtime context",
    )


def _check_image_path(plugin: str, image_path: str) -> str:
    normal = posixpath.normpath(image_path)
    if not image_path.startswith("/") or image_path.endswith("/") or normal != image_path:
        raise PluginError(
            f"runtime plugin {plugin!r}: image path {image_path!r} must be absolute and normalised (a file)",
            step="render runtime context",
        )
    return image_path


def _file_mode(content: bytes) -> int:
    # Scripts stay executable without a chmod layer; everything else is world-readable.
    return 0o755 if content.startswith(b"#!") else 0o644


def _copy_lines(plugin: str, kind: str, files: Mapping[str, FileContent], out: list[ContextFile]) -> list[str]:
    lines: list[str] = []
    for index, image_path in enumerate(sorted(files)):
        content = _read(plugin, _check_image_path(plugin, image_path), files[image_path])
        name = f"{kind}/{plugin}/{index}_{posixpath.basename(image_path)}"
        out.append(ContextFile(name, content, _file_mode(content)))
        lines.append(f"COPY {json.dumps([name, image_path])}")
    return lines


def check_conflicts(contributions: Mapping[str, RuntimeRequirements]) -> None:
    """Raise naming both plugins when two write one image path or set one variable differently."""
    paths: dict[str, str] = {}
    settings: dict[tuple[str, str], tuple[str, str]] = {}
    for plugin, req in contributions.items():
        for image_path in [*req.dependency_files, *req.files]:
            other = paths.get(image_path)
            if other is not None:
                who = f"runtime plugins {other!r} and {plugin!r}" if other != plugin else f"runtime plugin {plugin!r}"
                raise PluginError(
                    f"{who} both write {image_path} in the image",
                    step="compose runtime image",
                    hint="select only one of them, or change one plugin's settings so the paths differ",
                )
            paths[image_path] = plugin
        for kind, mapping in (("env var", req.env), ("build arg", req.build_args), ("label", req.labels)):
            for key, value in mapping.items():
                seen = settings.get((kind, key))
                if seen is not None and seen[1] != value:
                    raise PluginError(
                        f"runtime plugins {seen[0]!r} and {plugin!r} set {kind} {key} differently "
                        f"({seen[1]!r} vs {value!r})",
                        step="compose runtime image",
                        hint="select only one of them, or configure them to agree",
                    )
                settings[(kind, key)] = (plugin, value)


def _validate_requirements(plugin: str, req: object) -> RuntimeRequirements:
    if not isinstance(req, RuntimeRequirements):
        raise PluginError(
            f"runtime plugin {plugin!r}: requirements() returned {type(req).__name__}, not RuntimeRequirements",
            step="compose runtime image",
        )
    for kind, mapping in (("env", req.env), ("build_args", req.build_args), ("labels", req.labels)):
        for key, value in mapping.items():
            if not isinstance(key, str) or not key or any(c.isspace() or c == "=" for c in key):
                raise PluginError(
                    f"runtime plugin {plugin!r}: invalid {kind} key {key!r}", step="compose runtime image"
                )
            if not isinstance(value, str):
                raise PluginError(
                    f"runtime plugin {plugin!r}: {kind}[{key!r}] must be a string, not {type(value).__name__}",
                    step="compose runtime image",
                )
    return req


def render(
    base_image: str,
    contributions: Iterable[tuple[str, RuntimeRequirements]],
    *,
    base_image_id: str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> RuntimeComposition:
    """Render the dependency and source contexts for ``contributions`` (already in build order).

    ``build_args`` (the caller's ``--build-arg`` values) and ``platform`` count towards the
    lock hash; ``labels`` are added to the image's own labels and the source hash.
    """
    if not base_image or any(c.isspace() for c in base_image):
        raise ConfigError(f"invalid base image {base_image!r}", step="compose runtime image", hint="pass --base IMAGE")
    ordered = [(name, _validate_requirements(name, req)) for name, req in contributions]
    check_conflicts(dict(ordered))

    deps_files: list[ContextFile] = []
    deps_lines = ["# Dockerfile rendered by rtbuild (dependency layers)", f"FROM {base_image}"]
    for name, req in ordered:
        group = [f"# -- {name}: dependencies"]
        group += [f"ENV {key}={_quote(req.env[key])}" for key in sorted(req.env)]
        group += [f"ARG {key}={_quote(req.build_args[key])}" for key in sorted(req.build_args)]
        group += _copy_lines(name, "deps", req.dependency_files, deps_files)
        if req.dockerfile.strip():
            group.append(req.dockerfile.strip())
        if len(group) > 1:
            deps_lines += group
    deps = RenderedContext("\n".join(deps_lines) + "\n", deps_files)

    source_files: list[ContextFile] = []
    source_lines = ["# Dockerfile rendered by rtbuild (source layers)", f"FROM ${{{LOCK_IMAGE_ARG}}}"]
    all_labels: dict[str, str] = {}
    for name, req in ordered:
        group = [f"# -- {name}: source"]
        group += _copy_lines(name, "src", req.files, source_files)
        if req.source_dockerfile.strip():
            group.append(req.source_dockerfile.strip())
        if len(group) > 1:
            source_lines += group
        all_labels.update(req.labels)
    all_labels.update(labels or {})
    all_labels["org.rtbuild.runtime.plugins"] = ",".join(name for name, _ in ordered)
    all_labels["org.rtbuild.runtime.base"] = base_image
    source_lines += [f"LABEL {json.dumps(key)}={_quote(all_labels[key])}" for key in sorted(all_labels)]
    source = RenderedContext("\n".join(source_lines) + "\n", source_files)

    args = build_args or {}
    lock_extra = [
        f"base={base_image}",
        f"base_id={base_image_id or ''}",
        f"platform={platform or ''}",
        *(f"build_arg {key}={args[key]}" for key in sorted(args)),
    ]
    return RuntimeComposition(
        base_image=base_image,
        plugins=[name for name, _ in ordered],
        deps=deps,
        source=source,
        lock_hash=deps.digest(*lock_extra),
        source_hash=source.digest(),
    )


__all__ = [
    "HASH_LEN",
    "ContextFile",
    "RenderedContext",
    "RuntimeComposition",
    "check_conflicts",
    "render",
]
