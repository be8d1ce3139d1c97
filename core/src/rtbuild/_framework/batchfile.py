"""The build-many file (``rtbuild build-many``): TOML or YAML, parsed into build requests.

Like a bake file: an optional ``defaults`` table and a list of ``build`` entries, each one
build request. Running them is :mod:`rtbuild._framework.batch`'s job.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtbuild._framework.config import BOOLEAN, STRING, STRING_LIST, STRING_MAP
from rtbuild._framework.settings import check_value, kind_of, mismatch, text_map
from rtbuild.builder import BuildRequest, BuildSecret
from rtbuild.errors import ConfigError, InvalidReferenceError

STEP = "read build-many file"
HINT = "see the build-many section of docs/cli.md for the file format"

#: Keys of one build entry (and of ``defaults``, except ``name``) and their types.
ENTRY_KEYS: dict[str, str] = {
    "name": STRING,
    "path": STRING,
    "tags": STRING_LIST,
    "platform": STRING,
    "build_args": STRING_MAP,
    "labels": STRING_MAP,
    "builder": STRING,
    "push": BOOLEAN,
    "target": STRING,
    "no_cache": BOOLEAN,
    "force": BOOLEAN,
    "dockerfile": STRING,
    "secrets": STRING_LIST,
    "cache_from": STRING_LIST,
    "cache_to": STRING_LIST,
    "extra_args": STRING_LIST,
}
TOP_KEYS = ("defaults", "build")


@dataclass
class BatchEntry:
    """One build of the file: its 1-based position, a unique name and the request."""

    index: int
    name: str
    request: BuildRequest


def _error(source: str, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {problem}", step=STEP, hint=HINT)


def _validate_table(table: Any, source: str, where: str, allow_name: bool = True) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _error(source, where, f"expected a table of build settings, got {type(table).__name__}")
    clean: dict[str, Any] = {}
    for key, value in table.items():
        kind = ENTRY_KEYS.get(key)
        if kind is None or (key == "name" and not allow_name):
            known = ", ".join(k for k in ENTRY_KEYS if allow_name or k != "name")
            raise _error(source, where, f"unknown key {key!r} (known: {known})")
        if key == "tags" and isinstance(value, str):
            value = [value]  # one tag may be written as a plain string
        if not check_value(value, kind):
            raise _error(source, where, f"{key!r} must be a {kind_of(kind)}: {mismatch(value, kind)}")
        clean[key] = value
    return clean


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad) is no TOML statement
    except OSError as exc:
        raise ConfigError(f"cannot read build-many file {path}: {exc.strerror}", step=STEP, hint=HINT) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"build-many file {path} is not UTF-8 text (byte {exc.start})",
            step=STEP,
            hint="save the file as UTF-8",
        ) from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        from rtbuild._framework.tomltext import parse_toml

        return parse_toml(text, str(path), step=STEP, hint="fix the TOML syntax")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(
                f"{path}: reading YAML needs PyYAML",
                step=STEP,
                hint="pip install 'rtbuild[yaml]' (PyYAML), or write the file as TOML",
            ) from exc
        try:
            return yaml.load(text, Loader=_yaml_loader(yaml))  # a SafeLoader
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{path}: malformed YAML: {_yaml_problem(exc)}", step=STEP, hint="fix the YAML syntax"
            ) from exc
    raise ConfigError(
        f"{path}: unknown build-many file type {suffix or '(none)'!r}",
        step=STEP,
        hint="name the file *.toml, *.yaml or *.yml",
    )


def parse_batch(document: Any, source: str = "<build-many>", base_dir: Path | None = None) -> list[BatchEntry]:
    """Validate a parsed document and turn it into entries; relative paths resolve against
    ``base_dir`` (the file's directory). Raises :class:`ConfigError` naming the entry."""
    from rtbuild._framework.pipeline import validate_platform
    from rtbuild.oci._references import parse_tag

    base_dir = base_dir or Path.cwd()
    if isinstance(document, list):  # YAML may be just the list of builds
        document = {"build": document}
    if not isinstance(document, dict):
        raise _error(source, "top level", "expected a table with a 'build' list (or, in YAML, a list of builds)")
    for key in document:
        if key not in TOP_KEYS:
            raise _error(source, "top level", f"unknown key {key!r} (known: {', '.join(TOP_KEYS)})")
    defaults = _validate_table(document.get("defaults", {}), source, "defaults", allow_name=False)
    builds = document.get("build")
    if not isinstance(builds, list) or not builds:
        raise _error(source, "top level", "'build' must be a non-empty list of builds ([[build]] tables in TOML)")

    entries: list[BatchEntry] = []
    labels: list[str] = []
    explicit_names: set[str] = set()
    for index, raw in enumerate(builds, start=1):
        label = _label(index, raw)
        table = _validate_table(raw, source, label)
        merged: dict[str, Any] = {**defaults, **table}
        for key in ("build_args", "labels"):
            merged[key] = {**defaults.get(key, {}), **table.get(key, {})}
        if "path" not in merged:
            raise _error(source, label, "'path' is required (the build context directory)")
        tags = merged.get("tags") or []
        if not tags:
            raise _error(source, label, "'tags' must name at least one tag")
        if label == f"build entry {index}":  # tags came from the defaults
            label += f" ({tags[0]})"
        for tag in tags:
            try:
                parse_tag(tag)
            except InvalidReferenceError as exc:
                raise _error(source, label, exc.message) from exc
        try:  # a typo here failed that entry only, after the entries before it had built (exit 1)
            validate_platform(merged.get("platform"), step=STEP)
        except ConfigError as exc:
            raise _error(source, label, exc.message) from exc
        context = Path(os.path.expanduser(merged["path"]))
        context = context if context.is_absolute() else base_dir / context
        if not context.is_dir():
            raise _error(source, label, f"build context {str(context)!r} is not a directory")
        name = table.get("name")
        if name is not None:
            if name in explicit_names:
                raise _error(source, label, f"name {name!r} is used by an earlier entry")
            explicit_names.add(name)
        try:
            secrets = BuildSecret.parse_all(merged.get("secrets", []))
        except ConfigError as exc:
            raise _error(source, label, exc.message) from exc
        request = BuildRequest(
            path=str(context),
            tags=list(tags),
            platform=merged.get("platform"),
            extra_build_args=list(merged.get("extra_args", [])),
            build_args=text_map(merged["build_args"]),
            labels=text_map(merged["labels"]),
            builder=merged.get("builder"),
            # None: the config decides; an explicit false wins over `push = true` there.
            push=merged.get("push"),
            target=merged.get("target") or None,
            no_cache=bool(merged.get("no_cache", False)),
            force=bool(merged.get("force", False)),
            dockerfile=merged.get("dockerfile"),
            secrets=secrets,
            cache_from=list(merged.get("cache_from", [])),
            cache_to=list(merged.get("cache_to", [])),
        )
        entries.append(BatchEntry(index, name or "", request))
        labels.append(label)
    _refuse_shared_tags(entries, labels, source)
    _name_unnamed(entries, explicit_names)
    return entries


def _refuse_shared_tags(entries: Sequence[BatchEntry], labels: Sequence[str], source: str) -> None:
    """A tag two entries give to different builds would name whichever finished last (a
    race under --jobs), and the other entry's result would name an image it no longer
    has. Entries that build the same thing may share tags: the build lock makes that one
    build."""
    from rtbuild._framework.locks import normalize_tag

    owners: dict[str, int] = {}
    for position, entry in enumerate(entries):
        for tag in entry.request.tags:
            # One tag however it is spelt (app, app:latest, docker.io/library/app:latest),
            # as the engine and the build lock read it.
            first = owners.setdefault(normalize_tag(tag), position)
            if first == position:
                continue
            other = entries[first].request
            differ = [
                f.name
                for f in dataclasses.fields(BuildRequest)
                if f.name != "tags" and getattr(other, f.name) != getattr(entry.request, f.name)
            ]
            if differ:
                raise ConfigError(
                    f"{source}: {labels[position]}: tag {tag!r} is also a tag of {labels[first]}, "
                    f"which builds something else (differing in: {', '.join(differ)}): "
                    "the tag would name whichever build finished last",
                    step=STEP,
                    hint="give each build its own tags (entries that build the same thing may share them)",
                )


def _label(index: int, raw: Any) -> str:
    """How errors name an entry: its position and its name, or else its first tag."""
    label = f"build entry {index}"
    if isinstance(raw, dict):
        tags = raw.get("tags")
        tag = tags if isinstance(tags, str) else tags[0] if isinstance(tags, list) and tags else None
        name = raw.get("name") if isinstance(raw.get("name"), str) else tag
        if isinstance(name, str):
            label += f" ({name})"
    return label


def _name_unnamed(entries: Sequence[BatchEntry], taken: set[str]) -> None:
    """Unnamed entries are called by their first tag, with ``#N`` when that is not unique."""
    from collections import Counter

    # Counted once: list.count per entry took 5.8 s of a 10,000-entry file's 14.5 s load.
    first_tags = Counter(e.request.tags[0] for e in entries if not e.name)
    for entry in entries:
        if entry.name:
            continue
        tag = entry.request.tags[0]
        unique = first_tags[tag] == 1 and tag not in taken
        entry.name = tag if unique else f"{tag}#{entry.index}"


def _yaml_problem(exc: Exception) -> str:
    """What is wrong and where (line, column), never the text there: PyYAML's pure-Python
    loader (no libyaml) quotes the line around the mark, which may be a build arg's value."""
    parts = []
    for what, mark in (("context", "context_mark"), ("problem", "problem_mark")):
        text, at = getattr(exc, what, None), getattr(exc, mark, None)
        if text:
            parts.append(f"{text} (line {at.line + 1}, column {at.column + 1})" if at is not None else str(text))
    return "; ".join(parts) or str(exc).replace('"<unicode string>"', "the file")  # a ReaderError: a character code


def _yaml_loader(yaml: Any) -> Any:
    """PyYAML's safe loader (libyaml's when built with it: 10,000 entries in 2.5 s, not 10.8 s)
    refusing a key given twice in one mapping, which TOML refuses too: the second ``path:``
    of an entry silently replaced the first. Keys merged in with ``<<`` may be overridden."""

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found key {key!r} twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def load_batch_file(path: str | os.PathLike[str]) -> list[BatchEntry]:
    """Read, validate and parse a ``build-many`` file (``.toml``, ``.yaml`` or ``.yml``)."""
    file_path = Path(path)
    if not file_path.is_file():
        raise ConfigError(f"build-many file {file_path} does not exist", step=STEP, hint=HINT)
    return parse_batch(_read_document(file_path), str(file_path), file_path.resolve().parent)


def requests_from(requests: Sequence[BuildRequest]) -> list[BatchEntry]:
    """Entries for :func:`run_batch` from requests built in code (named by first tag)."""
    entries = [BatchEntry(index, "", request) for index, request in enumerate(requests, start=1)]
    _name_unnamed(entries, set())
    return entries


__all__ = ["ENTRY_KEYS", "BatchEntry", "load_batch_file", "parse_batch", "requests_from"]
