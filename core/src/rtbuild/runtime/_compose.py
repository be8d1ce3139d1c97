"""Describe runtime-plugin contributions as two build contexts, deterministically, and hash them.

A runtime image is built as two contexts: the *dependency* context (``FROM base`` plus
each plugin's dependency group) tagged ``REPO:<version>_<lock>``, and the *source*
context (``FROM`` that lock image plus each plugin's source group and the labels). The
lock hash covers everything the dependency context holds (and the base image's ID); the
source hash covers everything the source context adds. The same inputs always describe
byte-identical contexts, so equal hashes mean equal images.

Layers are bounded: a plugin's files become one ``COPY`` per image directory they go
to, and each payload tree one ``COPY``, whatever the file count. Contexts are held in
memory (payload trees hashed where they are) and written to disk only to be built.
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
from rtbuild.runtime._checks import check_conflicts, validate_requirements
from rtbuild.runtime._imagesecrets import refuse_credentials
from rtbuild.runtime._payload import ResolvedPayload, resolve
from rtbuild.runtime._plugin import FileContent, RuntimeRequirements, SourcePayload
from rtbuild.runtime._tree import remove_extra, remove_tree
from rtbuild.runtime._words import copy_into, is_utf8, quote

#: Short hashes: 16 hex chars of xxh3-64 (collisions are irrelevant at this scale).
HASH_LEN = 16
#: The ``FROM`` placeholder in the source Dockerfile, replaced by the lock tag.
LOCK_IMAGE_ARG = "RTBUILD_LOCK_IMAGE"
#: Docker's layer store refuses an image deeper than this ("max depth exceeded"): overlay2
#: mounts at most 127 lower directories, minus the 2 a container's writable layer needs.
ENGINE_LAYER_LIMIT = 125
#: The most layers a runtime image may add to its base (both stages); the rest of the
#: engine's limit is left to the base image.
MAX_RUNTIME_LAYERS = 64
_LAYER_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})


@dataclass
class ContextFile:
    """One in-memory file to place in a build context: context-relative name, content, mode."""

    name: str
    content: bytes
    mode: int


@dataclass
class ContextTree:
    """A payload placed in a build context as the directory ``name`` (one ``COPY``)."""

    name: str
    payload: ResolvedPayload


@dataclass
class RenderedContext:
    """A build context described in memory: the Dockerfile, small files, payload trees.

    Nothing is on disk until :meth:`write`; :meth:`digest` hashes it without writing.
    """

    dockerfile: str
    files: list[ContextFile] = field(default_factory=list)
    trees: list[ContextTree] = field(default_factory=list)

    def digest(self, *extra: str) -> str:
        """A short content hash of the Dockerfile, every file (name, mode, bytes), every tree and ``extra``."""
        h = xxhash.xxh3_64()
        for part in (*extra, self.dockerfile):
            _feed(h, part.encode())
        for item in sorted(self.files, key=lambda f: f.name):
            _feed(h, item.name.encode())
            _feed(h, oct(item.mode).encode())
            _feed(h, item.content)
        for tree in sorted(self.trees, key=lambda t: t.name):
            _feed(h, tree.name.encode())
            _feed(h, tree.payload.digest.encode())
        return h.hexdigest()[:HASH_LEN]

    def layers(self) -> int:
        """How many image layers the Dockerfile makes (RUN, COPY, ADD, WORKDIR)."""
        return count_layers(self.dockerfile)

    def write(self, directory: str | os.PathLike[str], dockerfile: str | None = None) -> str:
        """Make ``directory`` hold exactly this context; return its path.

        The directory may hold an earlier build's context (a staging directory reused
        per composition): only what differs is written, and what is no longer part of
        the context is removed, so an unchanged 1,000-file payload costs no copy.
        """
        root = str(directory)
        os.makedirs(root, exist_ok=True)
        expected = {"Dockerfile"}
        text = self.dockerfile if dockerfile is None else dockerfile
        for item in self.files:
            expected.update(_with_parents(item.name))
            target = os.path.join(root, item.name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _write_if_changed(target, item.content, item.mode)
        for tree in self.trees:
            expected.update(_with_parents(tree.name))
            # The record of which files the copies came from lives beside the context, not in it.
            record = os.path.join(os.path.abspath(root) + ".sources", tree.name.replace("/", "%2F"))
            staged = _staged_tree(root, tree.name)
            inside, dir_modes, invisible = tree.payload.sync(staged, record)
            if invisible:  # the engine's incremental sync would not see them: send all next time
                from rtbuild.context import mark_stale_sync

                mark_stale_sync(root, [f"{tree.name}/{rel}" for rel in invisible])
            # Named by its directories' modes (see Synced): a mode-only change is a new path.
            name = f"{tree.name}.m{dir_modes}" if dir_modes else tree.name
            if staged != os.path.join(root, name):
                remove_tree(os.path.join(root, name))
                os.rename(staged, os.path.join(root, name))
            if name != tree.name:
                text = text.replace(f"COPY [{json.dumps(tree.name + '/')}, ", f"COPY [{json.dumps(name + '/')}, ", 1)
            expected.update([name, *(f"{name}/{rel}" for rel in inside)])
        _write_if_changed(os.path.join(root, "Dockerfile"), text.encode(), 0o644)
        remove_extra(root, expected)
        return root


def _staged_tree(root: str, name: str) -> str:
    """Where ``name`` was staged by an earlier build (under any directory-modes key), else its plain path."""
    parent, base = os.path.split(os.path.join(root, name))
    try:
        with os.scandir(parent) as entries:
            found = sorted(e.path for e in entries if e.name == base or e.name.startswith(base + ".m"))
    except FileNotFoundError:
        found = []
    return found[0] if found else os.path.join(root, name)


def _with_parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def _write_if_changed(path: str, content: bytes, mode: int) -> None:
    try:
        with open(path, "rb") as handle:
            same = handle.read() == content
    except FileNotFoundError:
        same = False
    if not same:
        with open(path, "wb") as handle:
            handle.write(content)
    os.chmod(path, mode)


@dataclass
class RuntimeComposition:
    """The two contexts of one runtime image (in memory) and their hashes."""

    base_image: str
    plugins: list[str]
    deps: RenderedContext
    source: RenderedContext
    lock_hash: str
    source_hash: str
    #: Layers per plugin (both stages), for the layer budget and ``details``.
    layers: dict[str, int] = field(default_factory=dict)
    #: Who each plugin is, for errors: ``runtime plugin NAME (module)``.
    origins: dict[str, str] = field(default_factory=dict)

    def source_dockerfile(self, lock_image: str) -> str:
        """The source Dockerfile with its ``FROM`` pointing at ``lock_image``."""
        return self.source.dockerfile.replace(f"${{{LOCK_IMAGE_ARG}}}", lock_image, 1)


def _feed(h: xxhash.xxh3_64, data: bytes) -> None:
    # Length-prefix every part so ("ab", "c") and ("a", "bc") hash differently.
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


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
        hint="a plugin's files() maps image paths to bytes, str or a pathlib.Path; report this to the plugin's author",
    )


def _check_image_path(plugin: str, image_path: str) -> str:
    normal = posixpath.normpath(image_path)
    if not image_path.startswith("/") or image_path.endswith("/") or normal != image_path:
        raise PluginError(
            f"runtime plugin {plugin!r}: image path {image_path!r} must be absolute and normalised (a file)",
            step="render runtime context",
            hint=f"write it as {posixpath.join('/', normal)!r} in the plugin's files(), or report it to its author",
        )
    return image_path


def _file_mode(content: bytes) -> int:
    # Scripts stay executable without a chmod layer; everything else is world-readable.
    return 0o755 if content.startswith(b"#!") else 0o644


def _copy_groups(plugin: str, kind: str, files: Mapping[str, FileContent], out: list[ContextFile]) -> list[str]:
    """One ``COPY`` per image directory the files go to, whatever their number.

    A group's context directory holds exactly the files of one image directory, copied
    *into* it: the engine keeps an existing directory's owner and mode (``/tmp``,
    ``/root``), which copying a whole tree onto ``/`` would overwrite.
    """
    by_dir: dict[str, list[str]] = {}
    for image_path in sorted(files):
        by_dir.setdefault(posixpath.dirname(_check_image_path(plugin, image_path)), []).append(image_path)
    lines: list[str] = []
    for index, directory in enumerate(sorted(by_dir)):
        group = f"{kind}/{plugin}/{index}"
        for image_path in by_dir[directory]:
            content = _read(plugin, image_path, files[image_path])
            out.append(ContextFile(f"{group}/{posixpath.basename(image_path)}", content, _file_mode(content)))
        lines.append(copy_into(group, directory))
    return lines


def _payload_lines(plugin: str, payloads: Iterable[SourcePayload], out: list[ContextTree]) -> list[str]:
    """One ``COPY`` per payload tree, whatever its file count; hashed in place, not copied."""
    lines: list[str] = []
    for index, spec in enumerate(sorted(payloads, key=lambda p: p.dest)):
        dest = _check_image_path(plugin, spec.dest) if spec.dest != "/" else "/"
        if not is_utf8(dest):
            # A Dockerfile is UTF-8: the engine would create another name (U+FFFD) than asked.
            raise ConfigError(
                f"runtime plugin {plugin!r}: source payload {spec.source!r} goes to {dest!r}, which is not UTF-8 text",
                step="compose runtime image",
                hint="give it a destination in UTF-8: --source PATH:/IMAGE/DIR",
            )
        name = f"src/{plugin}/payload-{index}"
        out.append(ContextTree(name, resolve(plugin, spec)))
        lines.append(copy_into(name, dest))
    return lines


def count_layers(dockerfile: str) -> int:
    """Filesystem layers a Dockerfile adds: its RUN, COPY, ADD and WORKDIR instructions.

    ENV, ARG, LABEL, EXPOSE... change only the configuration. Continuation lines are
    joined first; WORKDIR is counted although it adds a layer only for a new directory.
    """
    count, continued = 0, False
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not continued and line and not line.startswith("#"):
            count += line.split(None, 1)[0].upper() in _LAYER_INSTRUCTIONS
        continued = line.endswith("\\") or (continued and (not line or line.startswith("#")))
    return count


def check_layer_budget(layers: Mapping[str, int], limit: int = MAX_RUNTIME_LAYERS) -> None:
    """A clear error, before any build, when a composition would add more than ``limit`` layers."""
    total = sum(layers.values())
    if total <= limit:
        return
    worst = ", ".join(f"{name} {count}" for name, count in sorted(layers.items(), key=lambda kv: -kv[1])[:5])
    raise ConfigError(
        f"this runtime image would add {total} layers (at most {limit}; the engine stops at "
        f"{ENGINE_LAYER_LIMIT} including the base image's): {worst}",
        step="compose runtime image",
        hint="select fewer runtime plugins, join RUN lines with &&, or move many small files into one "
        "payload directory (one layer)",
    )


def _render_deps(
    base_image: str, ordered: list[tuple[str, RuntimeRequirements]], layers: dict[str, int]
) -> RenderedContext:
    files: list[ContextFile] = []
    lines = ["# Dockerfile rendered by rtbuild (dependency layers)", f"FROM {base_image}"]
    for name, req in ordered:
        group = [f"# -- {name}: dependencies"]
        group += [f"ENV {key}={quote(req.env[key])}" for key in sorted(req.env)]
        group += [f"ARG {key}={quote(req.build_args[key])}" for key in sorted(req.build_args)]
        group += _copy_groups(name, "deps", req.dependency_files, files)
        if req.dockerfile.strip():
            group.append(req.dockerfile.strip())
        if len(group) > 1:
            lines += group
        layers[name] = layers.get(name, 0) + count_layers("\n".join(group))
    return RenderedContext("\n".join(lines) + "\n", files)


def _render_source(
    base_image: str,
    ordered: list[tuple[str, RuntimeRequirements]],
    labels: Mapping[str, str],
    layers: dict[str, int],
) -> RenderedContext:
    files: list[ContextFile] = []
    trees: list[ContextTree] = []
    lines = ["# Dockerfile rendered by rtbuild (source layers)", f"FROM ${{{LOCK_IMAGE_ARG}}}"]
    # The most often changing groups last: a change rebuilds its group and those after it.
    position = {name: index for index, (name, _) in enumerate(ordered)}
    for name, req in sorted(ordered, key=lambda item: (item[1].source_rank(), position[item[0]])):
        group = [f"# -- {name}: source"]
        group += _copy_groups(name, "src", req.files, files)
        group += _payload_lines(name, req.payloads, trees)
        if req.source_dockerfile.strip():
            group.append(req.source_dockerfile.strip())
        if len(group) > 1:
            lines += group
        layers[name] = layers.get(name, 0) + count_layers("\n".join(group))
    all_labels: dict[str, str] = {}
    for _, req in ordered:
        all_labels.update(req.labels)
    all_labels.update(labels)
    all_labels["org.rtbuild.runtime.plugins"] = ",".join(name for name, _ in ordered)
    all_labels["org.rtbuild.runtime.base"] = base_image
    lines += [f"LABEL {json.dumps(key)}={quote(all_labels[key])}" for key in sorted(all_labels)]
    return RenderedContext("\n".join(lines) + "\n", files, trees)


def render(
    base_image: str,
    contributions: Iterable[tuple[str, RuntimeRequirements]],
    *,
    base_image_id: str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> RuntimeComposition:
    """Describe the dependency and source contexts for ``contributions`` (in build order).

    Nothing is written: payload trees are hashed in place. ``build_args`` (the caller's
    ``--build-arg`` values) and ``platform`` count towards the lock hash; ``labels`` are
    added to the image's own labels and the source hash. A composition that would add
    more than :data:`MAX_RUNTIME_LAYERS` layers is refused here, before any build.
    """
    if not base_image or any(c.isspace() for c in base_image):
        raise ConfigError(f"invalid base image {base_image!r}", step="compose runtime image", hint="pass --base IMAGE")
    ordered = [(name, validate_requirements(name, req)) for name, req in contributions]
    for name, req in ordered:
        refuse_credentials(name, req)
    check_conflicts(dict(ordered))
    layers: dict[str, int] = {}
    deps = _render_deps(base_image, ordered, layers)
    source = _render_source(base_image, ordered, labels or {}, layers)
    check_layer_budget(layers)
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
        layers=layers,
    )


__all__ = [
    "ENGINE_LAYER_LIMIT",
    "HASH_LEN",
    "MAX_RUNTIME_LAYERS",
    "ContextFile",
    "ContextTree",
    "RenderedContext",
    "RuntimeComposition",
    "check_conflicts",
    "check_layer_budget",
    "count_layers",
    "render",
]
