"""Build contexts: validation and the content digest of what the engine would receive.

.dockerignore matching lives in :mod:`rtbuild.dockerignore`, the walk and the stat cache
in :mod:`rtbuild.hashing`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rtbuild.errors import BuildContextError

if TYPE_CHECKING:
    from rtbuild.context._hashing import ContextHash


def dockerfile_arg(extra_build_args: Sequence[str]) -> str | None:
    """The ``-f``/``--file`` value among CLI-style build arguments, if any (the first;
    :func:`validate_context` refuses arguments that name two different files)."""
    named = dockerfile_args(extra_build_args)
    return named[0] if named else None


def dockerfile_args(extra_build_args: Sequence[str]) -> list[str]:
    """Every ``-f``/``--file`` value among CLI-style build arguments, in order."""
    args = list(extra_build_args)
    found: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in ("-f", "--file"):
            if index + 1 < len(args):
                found.append(args[index + 1])
                skip = True
        elif arg.startswith(("--file=", "-f=")):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-f") and not arg.startswith("--"):
            found.append(arg[2:])  # `-fPATH`, as the docker and podman clients read it
    return found


def resolved_inside(root: str, path: str) -> str | None:
    """Where ``path`` leads (symlinks resolved) when that is inside ``root`` (resolved
    too), else ``None``: a file read through a link out of the context is not the
    context's, and neither an inotify watch on it nor the engine's sync sees it."""
    resolved = os.path.realpath(path)
    return resolved if resolved.startswith(os.path.join(os.path.realpath(root), "")) else None


def engine_ignore_files(path: str, dockerfile: str | None = None) -> list[str]:
    """The ignore file each engine reads for a build of ``path`` with ``dockerfile`` (relative
    to ``path`` or absolute; ``None``: ``Dockerfile``); an empty string where an engine finds
    none. BuildKit prefers ``<Dockerfile>.dockerignore`` to ``.dockerignore``; Podman 4.3 reads
    the first of ``<Dockerfile>.dockerignore``, ``<Dockerfile>.containerignore``,
    ``.containerignore`` and ``.dockerignore`` (tried on this machine)."""
    name = dockerfile or "Dockerfile"
    full = name if os.path.isabs(name) else os.path.join(path, name)

    def first(*candidates: str) -> str:
        return next((candidate for candidate in candidates if os.path.isfile(candidate)), "")

    common = os.path.join(path, ".dockerignore")
    return [
        first(full + ".dockerignore", common),
        first(full + ".dockerignore", full + ".containerignore", os.path.join(path, ".containerignore"), common),
    ]


def sent_with_context(path: str, files: Sequence[str], dockerfile: str | None = None) -> list[str]:
    """Those of ``files`` that lie in the context ``path`` and that some engine's ignore file
    (:func:`engine_ignore_files`) does not exclude: that engine receives them with the context
    (a secret's ``src=`` file there ends up in the image with ``COPY . /app``). Each ignore
    file must exclude a file under either flavour of ``.dockerignore`` for it to count as
    left out."""
    from rtbuild.context._dockerignore import PatternMatcher

    root = os.path.realpath(path)
    inside = [
        (name, os.path.relpath(os.path.realpath(name), root).replace(os.sep, "/"))
        for name in files
        if resolved_inside(root, name)
    ]
    if not inside:
        return []
    matchers = []
    for ignore in dict.fromkeys(engine_ignore_files(path, dockerfile)):
        patterns = _ignore_patterns(ignore) if ignore else []
        matchers += [PatternMatcher(patterns, flavor=flavor) for flavor in ("moby20", "moby23")]
    return [name for name, relative in inside if not all(m.excluded(relative) for m in matchers)]


def _ignore_patterns(ignore: str) -> list[str]:
    from rtbuild.context._dockerignore import read_dockerignore, read_patterns

    if os.path.basename(ignore) == ".dockerignore":
        return read_dockerignore(os.path.dirname(ignore))  # its errors name the step and a hint
    try:
        with open(ignore, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            return read_patterns(handle.read())
    except OSError:
        return []  # unreadable: the engine fails on it itself; nothing excluded meanwhile


def validate_context_dir(path: str) -> None:
    """Check ``path`` is an existing directory (for builders that need no Dockerfile)."""
    if not os.path.exists(path):
        # `docker build -` and `docker build URL` read a tar from stdin or fetch a repository.
        remote = os.path.basename(path) == "-" or "://" in path or path.startswith("git@")
        hint = "rtbuild builds a local directory, not stdin (-) or a URL: clone or unpack it, then pass its directory"
        raise BuildContextError(
            f"build context {path!r} does not exist", step="validate context", hint=hint if remote else None
        )
    if not os.path.isdir(path):
        raise BuildContextError(f"build context {path!r} is not a directory", step="validate context")


def validate_context(path: str, extra_build_args: Sequence[str] = ()) -> str:
    """Check ``path`` is a directory with a Dockerfile; return the Dockerfile's path."""
    validate_context_dir(path)
    named = dockerfile_arg(extra_build_args)
    check_one_dockerfile(path, extra_build_args)
    dockerfile = named or "Dockerfile"
    full = dockerfile if os.path.isabs(dockerfile) else os.path.join(path, dockerfile)
    if dockerfile == "-":
        return dockerfile
    if not os.path.isfile(full):
        raise BuildContextError(
            f"no Dockerfile at {full!r}",
            step="validate context",
            hint=(
                f"`--file {named}` is read relative to the context {path!r} (or give an absolute path)"
                if named is not None and not os.path.isabs(named)
                else "add a Dockerfile to the context, or name one with `-f/--file`"
            ),
        )
    if not os.access(full, os.R_OK):
        raise BuildContextError(
            f"the Dockerfile {full!r} is not readable by this user",
            step="validate context",
            hint="make it readable (chmod a+r), or run rtbuild as a user that can read it",
        )
    if os.path.lexists(os.path.join(path, ".dockerignore")):
        from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore

        # Unusable (a directory, a FIFO the engine's client would wait on for ever, unreadable,
        # a malformed pattern): refused before the engine starts, as the hash would refuse it;
        # a first build, which hashes alongside the engine, went on with it.
        PatternMatcher(read_dockerignore(path))
    return full


def check_one_dockerfile(path: str, extra_build_args: Sequence[str]) -> None:
    """Refuse arguments naming two different Dockerfiles: rtbuild reads the first (its text
    is an input of the no-op skip), the docker and podman clients build the last, so an
    edit of that one went unseen and the skip reused the image of its old text."""
    named = dockerfile_args(extra_build_args)
    resolved = dict.fromkeys(name if name == "-" else os.path.normpath(os.path.join(path, name)) for name in named)
    if len(resolved) > 1:
        raise BuildContextError(
            "more than one Dockerfile named: " + ", ".join(repr(name) for name in dict.fromkeys(named)),
            step="validate context",
            hint="name one Dockerfile: with -f/--file (the request's dockerfile) or in --extra, not both",
        )


_FROM_LINE = re.compile(r"^[ \t]*from[ \t]", re.IGNORECASE | re.MULTILINE)
_FRONTEND = re.compile(r"^[ \t]*#[ \t]*syntax[ \t]*=", re.IGNORECASE | re.MULTILINE)


def check_has_from(dockerfile: str, build_args: Mapping[str, str]) -> None:
    """Refuse a Dockerfile without a ``FROM`` line before the engine starts: the engine fails
    on it ("the Dockerfile cannot be empty", "no build stage in current context") as a build
    error (exit 1) with the catch-all hint. One read and a search, no parse: a file another
    frontend reads (``# syntax=``, ``BUILDKIT_SYNTAX``) is left to the engine."""
    if dockerfile == "-" or "BUILDKIT_SYNTAX" in build_args:
        return
    try:
        with open(dockerfile, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read().removeprefix("\ufeff")  # a byte-order mark, which the engines drop
    except OSError:
        return  # the engine reads it and reports what is wrong
    if _FROM_LINE.search(text) or _FRONTEND.search(text):
        return
    raise BuildContextError(
        f"the Dockerfile {dockerfile!r} {'is empty' if not text.strip() else 'has no FROM instruction'}",
        step="validate context",
        hint="a Dockerfile starts its first stage with `FROM IMAGE` (`FROM scratch` for an empty base)",
    )


def check_target(dockerfile: str, target: str, build_args: Mapping[str, str]) -> None:
    """Refuse a ``--target`` that names no stage of the Dockerfile, before the engine starts.

    The stages are the Dockerfile analysis's (:func:`rtbuild.enginekit.analyse_cached`, the
    file read as the engines read it). Stage names compare case-insensitively: BuildKit
    takes them in any case (Buildah only as written: the Podman builder passes them spelt
    as the Dockerfile writes them). A Dockerfile read by another frontend (a ``# syntax=``
    directive, the ``BUILDKIT_SYNTAX`` build arg) or from stdin is left to the engine: its
    stages are not this parser's to know.
    """
    if dockerfile == "-":
        return
    from rtbuild.enginekit._inputs import FRONTEND_PREFIXES, analyse_cached

    try:
        with open(dockerfile, encoding="utf-8", errors="surrogateescape") as handle:
            analysis = analyse_cached(handle.read(), build_args)
    except (OSError, ValueError):
        return  # the engine reads it and reports what is wrong
    stages = analysis.stages
    if any(reason.startswith(FRONTEND_PREFIXES) for reason in analysis.remote):
        return
    if target.lower() in (stage.lower() for stage in stages):
        return
    raise BuildContextError(
        f"the Dockerfile has no stage {target!r} to stop at (--target)",
        step="check target stage",
        log_tail=[f"stages in {os.path.basename(dockerfile)}: {', '.join(stages) or '(none named)'}"],
        hint=(
            f"use one of: {', '.join(stages)}" if stages else "name a stage with `FROM IMAGE AS NAME`, or drop --target"
        ),
    )


def context_digest(
    path: str,
    extra_build_args: Sequence[str] = (),
    *,
    use_cache: bool = True,
    flavor: str | None = None,
    collect_paths: bool = False,
) -> ContextHash:
    """Digest of the context at ``path`` after .dockerignore, plus the Dockerfile.

    The Dockerfile and .dockerignore always count, as Docker always sends them, and a
    Dockerfile outside the context (``-f /elsewhere/Dockerfile``) counts too. Inside a
    :class:`rtbuild.BuildSession`, an unchanged context answers from its watch, unwalked.
    ``flavor`` is the .dockerignore dialect of the client that sends the context (see
    :class:`~rtbuild.context.PatternMatcher`); ``result.ignore_exact`` is false when a
    pattern's meaning for that client is not modelled (callers should not skip builds).
    """
    dockerfile = validate_context(path, extra_build_args)
    if dockerfile == "-":
        raise BuildContextError(
            "a Dockerfile from stdin cannot be hashed",
            step="hash context",
            hint="write the Dockerfile to a file and name it with -f/--file",
        )
    # Only a BuildSession imports the watch modules: without one, don't pay their import.
    watch = sys.modules.get("rtbuild.context._resident")
    memo = watch.current_resident() if watch is not None and use_cache and not collect_paths else None

    def walk() -> ContextHash:
        return _walk_digest(path, dockerfile, use_cache, flavor, collect_paths)

    if memo is not None:  # a BuildSession: answer from the watch when nothing changed
        return memo.digest(path, dockerfile, walk, flavor or "")  # type: ignore[no-any-return]
    return walk()


def _walk_digest(
    path: str, dockerfile: str, use_cache: bool, flavor: str | None = None, collect_paths: bool = False
) -> ContextHash:
    import xxhash

    from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore
    from rtbuild.context._hashing import hash_context, hash_file
    from rtbuild.context._snapshot import stat_snapshot_files

    matcher = PatternMatcher(read_dockerignore(path), **({"flavor": flavor} if flavor else {}))
    result = hash_context(path, matcher, use_cache=use_cache, collect_paths=collect_paths)
    result.ignore_exact = matcher.exact
    ignore = os.path.join(path, ".dockerignore")
    if result.walk is not None:  # their stat keys before their contents are read
        result.walk.files = stat_snapshot_files([dockerfile, ignore])
    _add_linked(result, (dockerfile, ignore))
    hasher = xxhash.xxh3_128(result.digest.encode())
    from rtbuild.context._stale import mark_stale_sync, rewritten_unseen

    for name, side in ((b"Dockerfile", dockerfile), (b".dockerignore", ignore)):
        if side is ignore and not os.path.isfile(ignore):
            continue
        digest = hash_file(side)
        hasher.update(b"\0" + name + b"\0" + digest.encode())
        if use_cache and rewritten_unseen(path, side, digest) and side not in result.stat_invisible:
            result.stat_invisible.append(side)
    if result.stat_invisible:
        # Seen once only (this walk stores the new stat keys), whoever asked: keep it for
        # the next engine build, which must send every file.
        mark_stale_sync(path, result.stat_invisible)
    result.digest = hasher.hexdigest()
    return result


def _add_linked(result: ContextHash, paths: Sequence[str]) -> None:
    """The Dockerfile and ``.dockerignore`` with another hard link join ``result.linked``
    (stat-ed again on every answer from a watch) even when ``.dockerignore`` left them out of
    the walk: a write through the other name, outside the context, raises no event in it."""
    import time
    from stat import S_ISREG

    from rtbuild.context._hashing import _RACY_NS

    racy_after = time.time_ns() - _RACY_NS
    for name in paths:
        real = os.path.realpath(name)
        try:
            st = os.lstat(real)
        except OSError:
            continue
        if st.st_nlink > 1 and S_ISREG(st.st_mode) and real not in result.linked:
            ino = st.st_ino if max(st.st_mtime_ns, st.st_ctime_ns) < racy_after else -1
            result.linked[real] = (st.st_mode, st.st_size, st.st_mtime_ns, ino, st.st_ctime_ns)


__all__ = ["check_target", "context_digest", "dockerfile_arg", "resolved_inside", "validate_context"]
