"""The no-op skip: one digest of every build input, stored as a label on the image.

Shared by every CLI engine backend (Docker, Podman): each hands in its own image inspector.

A build is skipped when every tag already names an image whose
``org.rtbuild.input-digest`` label equals the digest of this build's inputs: the context
after .dockerignore, the Dockerfile, build args, labels, platform, target, extra
arguments, and the image IDs of the external images the Dockerfile uses (``FROM``,
``COPY --from``). Inputs the digest cannot see disable the skip (see NO_SKIP_ARGS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DIGEST_LABEL = "org.rtbuild.input-digest"
DIGEST_VERSION = "1"
#: Extra arguments whose inputs live outside the digest (secrets, ssh agents, named
#: contexts) or that ask for a fresh build: with any of them the engine always builds.
NO_SKIP_ARGS = ("--secret", "--ssh", "--build-context", "--pull", "--no-cache", "--no-cache-filter")

_CONTINUATION = re.compile(r"\\\s*\n")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


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


def skip_blocked(extra_build_args: Sequence[str]) -> str | None:
    """The first extra argument that rules out the skip, if any."""
    for arg in extra_build_args:
        name = arg.split("=", 1)[0]
        if name in NO_SKIP_ARGS:
            return name
    return None


def platform_args(platform: str | None) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``,
    ``TARGETVARIANT``) for one ``os/arch[/variant]`` platform; ``{}`` for none.

    Docker 20.10's built-in frontend leaves them empty in ``FROM`` lines unless given as
    build args, so engines that need it pass them explicitly, and the digest's view of a
    ``FROM base:${TARGETARCH}`` resolves the way the engine will.
    """
    if not platform or "," in platform:
        return {}
    parts = platform.strip().split("/")
    if len(parts) < 2:
        return {}
    return {
        "TARGETPLATFORM": platform.strip(),
        "TARGETOS": parts[0],
        "TARGETARCH": parts[1],
        "TARGETVARIANT": parts[2] if len(parts) > 2 else "",
    }


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, "")

    return _VAR.sub(repl, text)


def external_images(dockerfile_text: str, build_args: Mapping[str, str], platform: str | None = None) -> list[str]:
    """Images the Dockerfile takes from outside: FROM bases and ``COPY --from=IMAGE``.

    Stage names, stage indexes and ``scratch`` are not external. ``ARG`` defaults before
    the first FROM apply, overridden by ``build_args``, as Docker resolves them; the
    platform's automatic ARGs (:func:`platform_args`) fill a declared ``ARG TARGETARCH``.
    """
    text = _CONTINUATION.sub(" ", dockerfile_text)
    automatic = {**platform_args(platform), **build_args}
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        instruction = words[0].upper()
        if instruction == "ARG" and not seen_from:
            for spec in words[1:]:
                key, _, default = spec.partition("=")
                global_args[key] = automatic.get(key, default.strip("\"'"))
        elif instruction == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            image = _substitute(rest[0], global_args)
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if image.lower() != "scratch" and image.lower() not in stages:
                images.append(image)
        elif instruction in ("COPY", "ADD") or (instruction == "RUN" and "from=" in line):
            for word in words[1:]:
                source = None
                if word.startswith("--from="):
                    source = word.split("=", 1)[1]
                elif word.startswith("--mount=") and "from=" in word:
                    options = dict(opt.partition("=")[::2] for opt in word[len("--mount=") :].split(","))
                    source = options.get("from")
                if source and not source.isdigit() and source.lower() not in stages:
                    images.append(_substitute(source, global_args))
    return list(dict.fromkeys(images))


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
) -> Inputs | None:
    """The input digest, or ``None`` when an external image is not local (must build)."""
    import xxhash

    ids: dict[str, str] = {}
    for image in external_images(dockerfile_text, build_args, platform):
        info = api.inspect_image(image)
        if info is None:
            return None
        ids[image] = str(info.get("Id", ""))
    document = {
        "version": DIGEST_VERSION,
        "context": context_digest,
        "build_args": dict(sorted(build_args.items())),
        "labels": {k: v for k, v in sorted(labels.items()) if k != DIGEST_LABEL},
        "platform": platform or "",
        "target": target or "",
        "extra_build_args": list(extra_build_args),
        "external_images": ids,
    }
    digest = xxhash.xxh3_128_hexdigest(json.dumps(document, sort_keys=True).encode())
    return Inputs(digest=digest, context_digest=context_digest, external_images=ids)


def all_tags_current(tags: Sequence[str], digest: str, api: ImageInspector) -> str | None:
    """The image ID when every tag is present and carries ``digest``; else ``None``."""
    image_id: str | None = None
    for tag in tags:
        info = api.inspect_image(tag)
        if info is None:
            return None
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(DIGEST_LABEL) != digest:
            return None
        image_id = image_id or str(info.get("Id", ""))
    return image_id


__all__ = [
    "DIGEST_LABEL",
    "NO_SKIP_ARGS",
    "ImageInspector",
    "Inputs",
    "all_tags_current",
    "compute_inputs",
    "external_images",
    "platform_args",
    "skip_blocked",
]
