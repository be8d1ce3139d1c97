"""This host's key for the input-digest label."""

from __future__ import annotations

import contextlib
import os

#: A key's length: what rtbuild writes (32 bytes) up to what BLAKE2b takes.
_KEY_MIN, _KEY_MAX = 32, 64


def _replaced(path: object) -> None:
    from rtbuild._framework.progress import get_reporter

    get_reporter().event(
        "warning",
        message=f"the digest key {path} was damaged (not 32 to 64 bytes) and is replaced: images labelled"
        " with the old key are built once more",
    )


def digest_key() -> bytes:
    """This host's key for the input-digest label (created on first use, mode 0600).

    The label is a keyed BLAKE2b of the inputs, so someone holding only the image cannot
    test guesses of build-arg values offline. Without a writable state directory the key
    is random per process: labels then never match, and every build runs (never stale).
    """
    from rtbuild._framework.atomic import read_file
    from rtbuild._framework.paths import state_dir

    path = state_dir("digest.key")
    damaged = False
    with contextlib.suppress(OSError):
        key = read_file(path, _KEY_MAX + 1)  # a FIFO in its place is not waited on
        if _KEY_MIN <= len(key) <= _KEY_MAX:
            return key
        # Truncated, emptied or overwritten: a short one kept every label from matching (every
        # build ran, silently), a long one failed every build (BLAKE2b takes 64 bytes at most).
        damaged = True
    # os.urandom is what secrets.token_bytes calls; importing secrets (base64, hmac,
    # random) cost about 6 ms of every build's start-up, key or no key.
    fresh = os.urandom(32)
    tmp = path.with_name(f".digest.key-{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if os.write(fd, fresh) != len(fresh):
                    raise OSError("short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            if damaged:
                os.replace(tmp, path)
                _replaced(path)
            else:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's key
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # never left behind, even on a full disk
        key = read_file(path, _KEY_MAX + 1)
        return key if _KEY_MIN <= len(key) <= _KEY_MAX else fresh
    except OSError:
        from rtbuild._framework.progress import get_reporter

        get_reporter().event(
            "warning",
            message=f"cannot keep the digest key in {path.parent}: the no-op skip is off for this run",
        )
        return fresh


__all__ = ["digest_key"]
