"""The no-op skip: one digest of every build input, stored as a label on the image.

Shared by every CLI engine backend (Docker, Podman): each hands in its own image inspector.

A build is skipped when every tag already names an image whose
``org.rtbuild.input-digest`` label equals the digest of this build's inputs: the context
after .dockerignore, the Dockerfile, build args, labels, platform, target, extra
arguments, and the image IDs of the external images the Dockerfile uses (``FROM``,
``COPY --from``). Inputs the digest cannot see disable the skip (see NO_SKIP_ARGS and
:func:`analyse`: ``ADD <url>``, ``ADD <git>``, a ``# syntax`` frontend). The label is keyed
with a per-host secret (:func:`digest_key`), so it reveals nothing checkable offline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtbuild.enginekit._argexpand import expand as _substitute
from rtbuild.enginekit._digestkey import digest_key
from rtbuild.enginekit._dockerfile_text import parser_text, without_bom
from rtbuild.enginekit._platformargs import AUTOMATIC_ARGS, platform_args

DIGEST_LABEL = "org.rtbuild.input-digest"
DIGEST_VERSION = "2"
#: Extra arguments whose inputs live outside the digest (secrets, ssh agents, named
#: contexts) or that ask for a fresh build: with any of them the engine always builds.

_DIRECTIVE = re.compile(r"[a-z][a-z0-9_-]*=")
#: A source BuildKit fetches itself (ADD <url>, ADD <git repo>): the digest cannot see it.
_REMOTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git@)")
#: How :attr:`Analysis.remote` names another frontend (the build arg, the directive): the
#: Dockerfile is then that frontend's to read, stages and all.
FRONTEND_PREFIXES = ("BUILDKIT_SYNTAX frontend ", "# syntax= frontend ")
#: Bump when the analysis below changes, so cached analyses are redone.
ANALYSIS_VERSION = "10"


class ImageInspector(Protocol):
    """Anything with a Docker-shaped image inspect: ``{"Id": ..., "Config": {"Labels": ...}}``
    for a local image, ``None`` when the engine has no such image (Podman's inspect has
    the same shape)."""

    def inspect_image(self, name: str) -> Mapping[str, Any] | None: ...


@dataclass
class Inputs:
    digest: str
    context_digest: str
    external_images: dict[str, str] = field(default_factory=dict)
    files: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    #: The context's files with more than one hard link, as the hash walk saw them
    #: (``ContextHash.linked``): a watch cannot vouch for them (see ConcurrentDigest).
    linked: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Analysis:
    """What a Dockerfile takes from outside the context."""

    #: FROM bases, ``COPY --from=IMAGE`` and ``RUN --mount=...,from=IMAGE`` (not stages).
    images: list[str] = field(default_factory=list)
    #: Why the digest cannot see everything the build fetches (``ADD <url>``, a ``# syntax``
    #: frontend, ...); non-empty turns the no-op skip off.
    remote: list[str] = field(default_factory=list)
    #: The stages' names as written (``FROM IMAGE AS NAME``), in order: what ``--target`` may name.
    stages: list[str] = field(default_factory=list)
    #: Automatic platform ARGs (``TARGETARCH``...) that :attr:`images` name and no build arg
    #: or default sets: the engine fills them (BuildKit), here they resolved empty.
    engine_filled: list[str] = field(default_factory=list)


#: An automatic platform ARG that nothing set, while the analysis runs (see ``engine_filled``).
_UNSET = re.compile("\x00([A-Z]+)\x00")


def _arg_defaults(
    value: str, build_args: Mapping[str, str], known: Mapping[str, str], unset: Mapping[str, str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in shlex.split(value, posix=True) if value else []:
        key, sep, default = spec.partition("=")
        out[key] = build_args.get(key, _substitute(default, {**known, **out}) if sep else unset.get(key, ""))
    return out


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value, posix=True)
    except ValueError:  # an unbalanced quote: Docker would refuse the file; be conservative
        return value.split()


def analyse(dockerfile_text: str, build_args: Mapping[str, str], platform: str | None = None) -> Analysis:
    """Parse the Dockerfile (``dockerfile-parse``) for what it takes from outside.

    Stage names, stage indexes and ``scratch`` are not external. ``ARG`` defaults before
    the first FROM apply (and a stage's own ARGs inside it), overridden by ``build_args``,
    as Docker resolves them; the platform's automatic ARGs (:func:`platform_args`) fill a
    declared ``ARG TARGETARCH``. A source whose value cannot be resolved counts as remote.
    """
    import io

    from dockerfile_parse import DockerfileParser

    dockerfile_text = parser_text(dockerfile_text)
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile_text.encode("utf-8", "surrogateescape")))
    build_args = {**platform_args(platform), **build_args}
    # In scope in FROM lines and global ARG defaults without an ARG line; unset, a marker.
    meta = {name: build_args.get(name, f"\x00{name}\x00") for name in sorted(AUTOMATIC_ARGS)}
    unset = {name: value for name, value in meta.items() if name not in build_args}
    result = Analysis()
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] = {}
    stages: set[str] = set()
    seen_from = False
    # Parser directives (`# syntax=`, `# escape=`, `# check=`) form the Dockerfile's first
    # comments, in any order; a frontend named by the build arg BUILDKIT_SYNTAX wins over them.
    directives = True
    if "BUILDKIT_SYNTAX" in build_args:
        result.remote.append(f"{FRONTEND_PREFIXES[0]}{build_args['BUILDKIT_SYNTAX']}")
    for item in parser.structure:
        instruction, value = str(item["instruction"]).upper(), str(item["value"])
        if instruction == "COMMENT":
            directive = value.strip().lower().replace(" ", "")
            directives = directives and _DIRECTIVE.match(directive) is not None
            if directives and directive.startswith("syntax="):
                result.remote.append(f"{FRONTEND_PREFIXES[1]}{value.split('=', 1)[1].strip()}")
            continue
        directives = False
        if instruction == "ARG":
            if seen_from:
                stage_args.update(_arg_defaults(value, build_args, {**global_args, **stage_args}, unset))
            else:
                global_args.update(_arg_defaults(value, build_args, {**meta, **global_args}, unset))
            continue
        if instruction == "FROM":
            seen_from = True
            stage_args = {}
            rest = [w for w in _words(value) if not w.startswith("--")]
            if not rest:
                continue
            image = _substitute(rest[0], {**meta, **global_args})
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
                result.stages.append(rest[2])
            if image.lower() != "scratch" and image.lower() not in stages:
                result.images.append(image)
            continue
        if instruction not in ("COPY", "ADD", "RUN"):
            continue
        values = {**global_args, **stage_args}
        words = _words(value)
        for word in words:
            source = None
            if word.startswith("--from=") and instruction != "RUN":
                source = word.split("=", 1)[1]
            elif word.startswith("--mount=") and "from=" in word:
                options = dict(opt.partition("=")[::2] for opt in word[len("--mount=") :].split(","))
                source = options.get("from")
            if source and not source.isdigit() and source.lower() not in stages:
                result.images.append(_substitute(source, values))
        if instruction == "ADD":
            plain = [w for w in words if not w.startswith("--")]
            for source in plain[:-1] if not value.lstrip().startswith("[") else _json_sources(value):
                resolved = _UNSET.sub("", _substitute(source, values))
                if _REMOTE.match(resolved) or "$" in resolved or (source != resolved and not resolved):
                    result.remote.append(f"ADD {source}")
    result.engine_filled = sorted({name for image in result.images for name in _UNSET.findall(image)})
    # An empty name (``FROM ${UNSET:+x}``) is the engine's to refuse, with its own message.
    result.images = list(dict.fromkeys(name for image in result.images if (name := _UNSET.sub("", image))))
    return result


def _json_sources(value: str) -> list[str]:
    try:
        items = json.loads(value)
    except ValueError:
        return [value]
    return [str(item) for item in items[:-1]] if isinstance(items, list) else [value]


#: Logical Dockerfile lines where :func:`analyse` substitutes build args: ARG defaults, FROM
#: images, ADD sources, and ``--from=`` / ``--mount=...,from=`` sources (ONBUILD for safety).
_ANALYSED_LINE = re.compile(r"^\s*(?:ARG|FROM|ADD|ONBUILD)\b|--from|--mount", re.IGNORECASE)
_ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=", re.IGNORECASE | re.MULTILINE)
#: Any reference, defaults included (``${A:-$B}`` names both A and B).
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
#: Dockerfile analyses kept in the cache (the newest by write time).
ANALYSIS_CACHE_FILES = 256


def analysed_args(dockerfile_text: str, build_args: Mapping[str, str]) -> dict[str, str]:
    """The build args that can change :func:`analyse`'s answer for this Dockerfile.

    Only those referenced (``$NAME``, ``${NAME...}``) on a line where the analysis
    substitutes them (see ``_ANALYSED_LINE``) count; a nonce or commit SHA that a RUN or
    LABEL uses does not, so a build arg that changes every build does not make every
    build parse the Dockerfile again and leave one more cache file. Over-inclusive by
    design: a heredoc line or a comment naming an arg only costs a cache miss. With an
    ``escape`` parser directive (another line-continuation character) every arg counts.
    """
    if not build_args:
        return {}
    dockerfile_text = without_bom(dockerfile_text)
    if _ESCAPE_DIRECTIVE.search(dockerfile_text):
        return dict(build_args)
    names: set[str] = {"BUILDKIT_SYNTAX"}  # names a frontend whatever the Dockerfile says
    logical = ""
    for line in dockerfile_text.splitlines():
        stripped = line.strip()
        if _ANALYSED_LINE.search(line):  # each physical line on its own, too
            names.update(_REFERENCE.findall(line))
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comments and blank lines, inside a continued instruction too
        logical += line + "\n"
        if stripped.endswith("\\"):
            continue  # a continued instruction: judged whole, by its first line
        if _ANALYSED_LINE.search(logical):
            names.update(_REFERENCE.findall(logical))
        logical = ""
    if _ANALYSED_LINE.search(logical):  # a file ending in a continuation
        names.update(_REFERENCE.findall(logical))
    return {name: value for name, value in build_args.items() if name in names}


def analyse_cached(dockerfile_text: str, build_args: Mapping[str, str], platform: str | None = None) -> Analysis:
    """:func:`analyse`, remembered by content: a no-op rebuild does not import the parser.

    Keyed by the Dockerfile, the platform and the build args the analysis uses
    (:func:`analysed_args`); at most :data:`ANALYSIS_CACHE_FILES` entries are kept.
    """
    import xxhash

    relevant = sorted(analysed_args(dockerfile_text, build_args).items())
    key = xxhash.xxh3_128_hexdigest(
        json.dumps([ANALYSIS_VERSION, dockerfile_text, relevant, platform or ""]).encode("utf-8", "surrogateescape")
    )
    from rtbuild._framework.atomic import read_file
    from rtbuild._framework.paths import cache_dir

    path = cache_dir("dockerfiles", key + ".json")
    try:
        data = json.loads(read_file(path))
        return Analysis(*(list(data[key]) for key in ("images", "remote", "stages", "engine_filled")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = analyse(dockerfile_text, build_args, platform)
    from rtbuild._framework.atomic import atomic_write
    from rtbuild._framework.paths import keep_newest

    with contextlib.suppress(OSError):  # a full or read-only cache only costs the parse
        atomic_write(path, json.dumps(dataclasses.asdict(result)))
        keep_newest(path.parent, keep=ANALYSIS_CACHE_FILES, select=lambda name: name.endswith(".json"))
    return result


def external_images(dockerfile_text: str, build_args: Mapping[str, str], platform: str | None = None) -> list[str]:
    """Images the Dockerfile takes from outside: FROM bases, ``COPY --from=IMAGE``, mounts
    (the cached analysis's: a build that also asks :func:`analyse_cached` parses once)."""
    return analyse_cached(dockerfile_text, build_args, platform).images


def _image_args(args: Sequence[str]) -> list[str]:
    """``args`` without ``--iidfile PATH``: where the ID is written does not change the image."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--iidfile":
            skip = True
        elif not arg.startswith("--iidfile="):
            out.append(arg)
    return out


def compute_inputs(
    *,
    context_digest: str,
    dockerfile_text: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    platform: str | None,
    target: str | None,
    extra_build_args: Sequence[str],
    api: ImageInspector,
    analysis: Analysis | None = None,
    key: bytes | None = None,
) -> Inputs | None:
    """The input digest, or ``None`` when an external image is not local (must build) or
    a base image's ``ONBUILD`` triggers fetch what the digest cannot see.

    The digest is ``k1:`` and a BLAKE2b-128 keyed with :func:`digest_key` over a JSON
    document of every input (build-arg values included), so the label reveals nothing
    that can be checked offline without this host's key.
    """
    try:
        # hashlib's own BLAKE2b, without hashlib itself, which loads OpenSSL (~10 ms of every
        # CLI build, no-ops included) for digests this one call never uses.
        from _blake2 import blake2b
    except ImportError:  # an interpreter without the private module
        from hashlib import blake2b

    analysis = analysis or analyse_cached(dockerfile_text, build_args, platform)
    ids: dict[str, str] = {}
    for image in analysis.images:
        info = api.inspect_image(image)
        if info is None:
            return None
        triggers = (info.get("Config") or {}).get("OnBuild")
        if triggers and _unseen_triggers(image, triggers, build_args, platform):
            return None
        ids[image] = str(info.get("Id", ""))
    document = {
        "version": DIGEST_VERSION,
        "context": context_digest,
        "build_args": dict(sorted(build_args.items())),
        "labels": {k: v for k, v in sorted(labels.items()) if k != DIGEST_LABEL},
        "platform": platform or "",
        "target": target or "",
        "extra_build_args": _image_args(extra_build_args),
        "external_images": ids,
    }
    mac = blake2b(json.dumps(document, sort_keys=True).encode(), key=key or digest_key(), digest_size=16)
    return Inputs(digest="k1:" + mac.hexdigest(), context_digest=context_digest, external_images=ids)


def _unseen_triggers(image: str, triggers: Sequence[str], build_args: Mapping[str, str], platform: str | None) -> bool:
    """Whether a base image's ``ONBUILD`` triggers (run in this build, not written in its
    Dockerfile) fetch what the digest cannot see, ``ADD <url>``, or use another image whose
    ID the digest does not hold (``COPY --from=``); reported as a ``skip_disabled`` event."""
    from rtbuild.enginekit._skip import report_skip_disabled

    # Cached like a Dockerfile's analysis: every no-op check of a child meets the same triggers.
    found = analyse_cached("FROM scratch\n" + "\n".join(map(str, triggers)), build_args, platform)
    unseen = [*found.remote, *(f"an image it uses ({name})" for name in found.images)]
    if unseen:
        report_skip_disabled([f"ONBUILD {reason} in the base image {image}" for reason in unseen])
    return bool(unseen)


def carries_digest(info: Mapping[str, Any], digest: str) -> bool:
    """Whether the inspected image ``info`` holds the inputs of ``digest``: its label (unless
    withdrawn), or the record written beside it after a first build
    (:mod:`rtbuild.enginekit._records`)."""
    from rtbuild.enginekit._records import digest_held

    labelled = ((info.get("Config") or {}).get("Labels") or {}).get(DIGEST_LABEL) == digest
    # A label's claim holds unless withdrawn (the context changed while the engine read it).
    return digest_held(str(info.get("Id", "")), digest, labelled=labelled)


def all_tags_current(tags: Sequence[str], digest: str, api: ImageInspector) -> str | None:
    """The image ID when every tag is present and carries ``digest``; else ``None``."""
    image_id: str | None = None
    for tag in tags:
        info = api.inspect_image(tag)
        if info is None or not carries_digest(info, digest):
            return None
        image_id = image_id or str(info.get("Id", ""))
    return image_id


__all__ = [
    "DIGEST_LABEL",
    "Analysis",
    "ImageInspector",
    "Inputs",
    "all_tags_current",
    "analyse",
    "analyse_cached",
    "carries_digest",
    "compute_inputs",
    "digest_key",
    "external_images",
    "platform_args",
]
