"""``--secret id=X,env=VAR`` reaches podman as an in-memory file, never as ``env=``.

Buildah copies an ``env=`` secret's value to ``/dev/shm/buildahNNN`` for the ``RUN`` that
mounts it and removes that file only when podman finishes the step: podman stopped mid-``RUN``
(Ctrl-C, SIGTERM, ``build_timeout``, rtbuild killed) left the value there, in a file nothing
ever removes (reproduced on podman 4.3.1). A ``src=`` file is copied into Buildah's working
container instead, which the builder removes with the build's other leftovers. So each
``env=`` secret is handed over as ``src=/proc/self/fd/N``, a memfd holding its value that
podman inherits: never on disk, gone with the process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from rtbuild import AgentRuntimeBuildError, BuildSecret


def _spec_at(argv: Sequence[str], index: int) -> tuple[int, str] | None:
    """``(index of the spec, spec)`` when ``argv[index]`` is a ``--secret`` flag."""
    arg = argv[index]
    if arg.startswith("--secret="):
        return index, arg[len("--secret=") :]
    if arg == "--secret" and index + 1 < len(argv):
        return index + 1, argv[index + 1]
    return None


@contextlib.contextmanager
def env_secrets_in_memory(argv: Sequence[str]) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """``argv`` with each ``env=`` secret given as ``src=/proc/self/fd/N``, and the fds to pass
    to podman (closed on leaving). Without memfd (not Linux), or for a spec that does not parse
    or whose variable is unset (podman reports it), the argument is left as it is."""
    out, fds = list(argv), []
    try:
        index = 0
        while index < len(out):
            found = _spec_at(out, index)
            index += 1
            if found is None:
                continue
            at, spec = found
            try:
                secret = BuildSecret.parse(spec)
                value = secret.value() if secret.env is not None else None
            except AgentRuntimeBuildError:
                continue
            if value is None:
                continue
            try:
                fd = os.memfd_create(f"rtbuild-secret-{secret.id}", os.MFD_CLOEXEC)
            except (AttributeError, OSError):
                continue
            fds.append(fd)
            os.write(fd, value)
            replaced = f"id={secret.id},src=/proc/self/fd/{fd}"
            out[at] = f"--secret={replaced}" if at == index - 1 else replaced
            index = at + 1
        yield out, tuple(fds)
    finally:
        for fd in fds:
            os.close(fd)


__all__ = ["env_secrets_in_memory"]
