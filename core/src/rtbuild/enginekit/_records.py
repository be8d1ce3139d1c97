"""Input digests recorded beside images, keyed by image ID (the label's second form).

An image built before its inputs' digest was known (a first build hashes its context
while the engine builds, see :mod:`rtbuild.enginekit._firstbuild`) carries no digest
label; its digest is written afterwards to ``rtbuild.cache_dir("image-digests")/<id>``,
once it is known to hold exactly what the engine was sent. The no-op check accepts a
digest from either place. An image ID names an image's content and configuration, so
a record stays true for as long as any image has that ID: a deleted image's record is
never read (the tag inspect finds no image), and a rebuilt identical image reuses it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from stat import S_ISREG
from typing import Any

from rtbuild._framework.atomic import try_atomic_write
from rtbuild._framework.paths import cache_dir, keep_newest

RECORD_DIR = "image-digests"
#: The input-digest label's value on an image built before its digest was known: "look
#: for the record". Never a digest (those are hex), and it keeps the image recognisable
#: as rtbuild's (``org.rtbuild.*`` labels: ``rtbuild prune``).
RECORDED = "recorded"
#: A record line ``!<digest>``: the image's label names ``digest``, but the image does not
#: hold those inputs (see :func:`withdraw_digest`). Digests never start with it.
WITHDRAWN = "!"
#: Digests kept per image ID (inputs that differ only in what the image does not keep,
#: such as an unused build arg, build the same image).
MAX_DIGESTS = 8
#: Records kept at most (one small file per image ID), the least recently written or read
#: going first: one lost for an image still in use costs a rebuild, never a wrong answer.
MAX_RECORDS = 4096
#: A record is at most MAX_DIGESTS + 1 short lines; anything longer is not one.
_MAX_RECORD_BYTES = 4096
_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
#: What a digest looks like ("k1:" + hex for the keyed digest): one word, no newline.
_DIGEST = re.compile(r"^[A-Za-z0-9:_-]{1,200}$")


def record_path(image_id: str) -> Path | None:
    """Where ``image_id``'s record lives; ``None`` for something that is not an image ID."""
    match = _ID.match(image_id)
    return cache_dir(RECORD_DIR, match.group(1)) if match else None


def recorded_digests(image_id: str) -> list[str]:
    """The digests recorded for ``image_id`` (newest last); none when its record is damaged."""
    path = record_path(image_id)
    return [] if path is None else _read(path)[0]


def _read(path: Path) -> tuple[list[str], str | None]:
    """A record's lines, and why it cannot be trusted (``None``: it is whole, or there is none).

    A record is never empty and holds only digest lines; one that cannot be read (another
    user's, mode 0600), is no regular file (a directory; a FIFO is not waited on) or holds
    anything else (emptied or cut short by a crash, a bad block) may have held a withdrawal."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        return [], exc.strerror or type(exc).__name__
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            return [], "not a regular file"
        data = os.read(fd, _MAX_RECORD_BYTES + 1)
    except OSError as exc:
        return [], exc.strerror or type(exc).__name__
    finally:
        os.close(fd)
    lines = data.decode("ascii", "replace").split()
    whole = data.endswith(b"\n") and len(data) <= _MAX_RECORD_BYTES  # each line ends with one (_write)
    if not (whole and lines and all(_DIGEST.match(line.removeprefix(WITHDRAWN)) for line in lines)):
        return [], "not a record: emptied, cut short or overwritten"
    return lines, None


def digest_held(image_id: str, digest: str, *, labelled: bool) -> bool:
    """Whether ``image_id`` holds the inputs of ``digest``: its label names ``digest``
    (``labelled``) and no record withdraws it, or its record lists ``digest``.

    A damaged record (see :func:`_read`) answers no, with a warning naming it: a label it
    may have withdrawn is not trusted (the image is built again, never reused stale)."""
    path = record_path(image_id)
    if path is None:
        return labelled
    recorded, damaged = _read(path)
    if damaged is not None:
        from rtbuild._framework.progress import get_reporter

        get_reporter().event(
            "warning",
            message=f"the input-digest record {path} is damaged ({damaged}): the image it describes is built"
            " again, not reused; remove the file if this warning comes back",
        )
        return False
    return WITHDRAWN + digest not in recorded if labelled else digest in recorded


def repair_record(image_id: str) -> bool:
    """Remove ``image_id``'s record when it is damaged; ``True`` if one was removed. For a
    build that has just proven ``image_id`` holds the inputs its label names (an identical
    rebuild gets the same ID, and would find the damaged record again on every build)."""
    path = record_path(image_id)
    return path is not None and _read(path)[1] is not None and forget_digests(image_id)


def record_digest(image_id: str, digest: str) -> bool:
    """Record ``digest`` for ``image_id`` (atomically); ``False`` when it cannot be written.

    It also lifts a :func:`withdraw_digest` of the same digest: the image was since
    proven to hold those inputs."""
    return _write(image_id, digest, digest)


def withdraw_digest(image_id: str, digest: str) -> bool:
    """Say that ``image_id`` does **not** hold the inputs of ``digest``, whatever its label
    says: the image was labelled with ``digest`` before its build, and the context changed
    while the engine read it. ``False`` when the record cannot be written."""
    return _write(image_id, digest, WITHDRAWN + digest)


def _write(image_id: str, digest: str, line: str) -> bool:
    path = record_path(image_id)
    if path is None or not _DIGEST.match(digest):
        return False
    known = [d for d in recorded_digests(image_id) if d not in (digest, WITHDRAWN + digest)]
    # A withdrawal is never trimmed (an image has one label, so one withdrawal at most).
    withdrawn = [d for d in known if d.startswith(WITHDRAWN)]
    recorded = [d for d in known if not d.startswith(WITHDRAWN)][-(MAX_DIGESTS - 1) :]
    written = try_atomic_write(path, "\n".join([*withdrawn, *recorded, line]) + "\n")
    if written and path.name.startswith("0"):
        # About one write in 16 (image IDs are uniform hex) checks the bound: scanning
        # thousands of records costs milliseconds, too much for every first build.
        keep_newest(path.parent, keep=MAX_RECORDS, select=_is_record, last_use=True)
    return written


def forget_digests(image_id: str) -> bool:
    """Remove ``image_id``'s record (an engine deleted that image); ``True`` if there was one.

    Any other ID (a layer's, an image without a record) is a no-op, so a backend can pass
    every ID its engine reports deleted.
    """
    path = record_path(image_id)
    if path is None:
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _is_record(name: str) -> bool:
    # Only finished records: an atomic write's temporary file is someone's write under way.
    return len(name) == 64 and _ID.match(name) is not None


def inherited_labels(infos: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """IDs (keys of ``infos``, the engine's inspect documents) of images whose
    ``org.rtbuild.*`` labels are only inherited: built ``FROM`` an rtbuild image by
    something else (a plain ``docker build`` or ``podman build``), so not rtbuild's to prune.

    Such an image has the very labels of a local image whose layers are a proper prefix of
    its own. rtbuild labels its own builds anew (a keyed input digest, or ``recorded`` with
    a record beside the image ID), so an rtbuild build on an rtbuild base differs in label
    or has its record. A base no longer present cannot be compared with: its derived
    images count as rtbuild's, as their labels say.
    """
    from rtbuild._observe.prune import is_rtbuild_image

    def owned(info: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
        labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
        return frozenset((k, str(v)) for k, v in labels.items() if is_rtbuild_image({k: v}))

    def layers(info: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(layer) for layer in (info.get("RootFS") or {}).get("Layers") or ())

    known: dict[frozenset[tuple[str, str]], set[tuple[str, ...]]] = {}
    for info in infos.values():
        known.setdefault(owned(info), set()).add(layers(info))
    out: set[str] = set()
    for image_id, info in infos.items():
        mine, chain = owned(info), layers(info)
        if any(chain[:n] in known[mine] for n in range(1, len(chain))) and not recorded_digests(image_id):
            out.add(image_id)
    return out


__all__ = [
    "MAX_DIGESTS",
    "MAX_RECORDS",
    "RECORDED",
    "RECORD_DIR",
    "WITHDRAWN",
    "digest_held",
    "forget_digests",
    "inherited_labels",
    "record_digest",
    "record_path",
    "recorded_digests",
    "repair_record",
    "withdraw_digest",
]
