"""After a build labelled with its digest: did the context stay what the hash saw?

An ordinary rebuild hashes the context, then starts the engine with the digest as the
image's label. A file written between the hash and the engine's read (and perhaps written
back before the next build) would leave an image whose label names inputs it does not
hold, and the next build with those inputs would reuse it. :func:`confirm_label` asks the
hash's walk whether anything changed since (a stat walk, see
:meth:`rtbuild.context.ContextHash.changed_since_walk`) and, when something did, withdraws
the label's claim beside the image (:func:`rtbuild.enginekit.withdraw_digest`): the next
build builds again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rtbuild._framework.paths import cache_dir
from rtbuild._framework.progress import get_reporter
from rtbuild.enginekit._records import RECORD_DIR, repair_record, withdraw_digest
from rtbuild.errors import AgentRuntimeBuildError


def confirm_label(
    ctx: Any,
    image_id: str | None,
    digest: str,
    *,
    before_build: bool = False,
    untag: Callable[[], object] | None = None,
) -> str | None:
    """``None`` when the context ``ctx`` (the :class:`~rtbuild.context.ContextHash` the
    label ``digest`` was computed from) is unchanged since its walk; otherwise why not,
    after withdrawing the label's claim and reporting a ``digest_withdrawn`` event. Call it
    once the engine has read the context (after the build). A backend that sends a copy it
    made itself (a tar) asks once the copy is made, ``before_build=True``: then nothing is
    withdrawn, and it leaves the label off the image.

    When the withdrawal cannot be written (the cache directory is full or read-only), the
    label would go on claiming inputs the image does not hold, and the next build with
    them would reuse it. With ``untag`` (removes the build's tags from the engine) the
    claim goes with the tags: ``untag`` is called, then an :class:`AgentRuntimeBuildError`
    says so (the build fails). Without it, only a warning is reported."""
    changed = ctx.changed_since_walk()
    if changed is None:
        if image_id and not before_build:
            repair_record(image_id)  # the image holds what its label says: a damaged record is wrong
        return None
    reason = f"{changed} changed after the hash"
    if before_build:
        message = f"no digest label: {reason}, while the context was read; the next build builds again"
    elif image_id and withdraw_digest(image_id, digest):
        message = (
            f"the image's digest label is withdrawn: {reason}, while the engine read it; the next build builds again"
        )
    elif untag is not None:
        records = cache_dir(RECORD_DIR)
        try:
            untag()
            done = "so its tags were removed"
        except AgentRuntimeBuildError as exc:
            done = f"and its tags could not be removed either ({exc.message}): remove them before the next build"
        raise AgentRuntimeBuildError(
            f"{reason}, while the engine read it, and the image's digest label could not be withdrawn"
            f" ({records} cannot be written): the image may not hold the context as it is now, {done}",
            step="withdraw digest label",
            hint=f"make {records} writable (free space under $XDG_CACHE_HOME, default ~/.cache), keep the"
            " context unchanged while it builds, and build again",
        )
    else:
        message = (
            f"the image's digest label may not match its content ({reason}, while the engine read it) and the "
            "withdrawal could not be written: build it again with --no-cache"
        )
    get_reporter().event("digest_withdrawn", reason=reason, input_digest=digest, image_id=image_id, message=message)
    return reason


__all__ = ["confirm_label"]
