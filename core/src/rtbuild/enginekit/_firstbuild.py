"""First builds at engine speed: hash the inputs while the engine builds.

When no tag of a request exists yet, no image can carry its digest, so a no-op is
impossible and hashing the context before the build only delays the engine. The digest
is still wanted, to answer the next request without building: :class:`ConcurrentDigest`
computes it in a thread (niced, see :data:`HASH_NICE`) while the engine builds, and
:meth:`ConcurrentDigest.finish` records it beside the image
(:func:`rtbuild.enginekit.record_digest`) only when the image is known to hold exactly
those inputs. Correctness first, so three conditions, checked after the build:

- nothing was written, created, deleted, renamed or chmod-ed while the engine or the
  hash read the context. With an inotify watch on the context (set up before the engine
  starts) that is "the watch saw no event", plus equal stat keys before and after for a
  Dockerfile outside the context, and the Dockerfile and ``.dockerignore`` still leading
  where they led (a link on the way may lie outside the context): the engine and the hash
  both read after the watch began, so no stat walk is needed before the engine starts. Where inotify cannot vouch
  for the filesystem, a stat snapshot is taken before the engine starts and a second one
  after the build must equal it, and the stat keys the hash walk used (the stat cache it
  left) must equal the first snapshot's;
- no file compared by its stat keys was "racy" at the first snapshot (written within 2 s
  of it: a second write in the same timestamp tick would not show in its stat key). A
  watched file is not compared by stat keys, so a context written just before the build
  still gets its digest when inotify watches it;
- the external images (``FROM``, ``COPY --from``) had the same IDs before the build,
  during the hash and after the build.

When any of them fails the image stays without a digest: the next request hashes first
(the ordinary path) and builds once more, a cost, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Mapping
from stat import S_ISREG
from typing import Any

from rtbuild.context._snapshot import Snapshot, files_snapshot, stat_snapshot, stat_snapshot_files
from rtbuild.context._validate import resolved_inside
from rtbuild.enginekit._inputs import Inputs
from rtbuild.enginekit._records import record_digest
from rtbuild.errors import BuildContextError

#: The hashing thread's nice value while the engine builds. It orders the thread only
#: against rtbuild's own threads: where the kernel groups tasks by session (autogroups),
#: the engine's daemon is another group, and groups share the CPUs whatever their
#: threads' nice. Measured on 2 vCPUs, the engine's build runs 0.25-0.4 s slower while
#: the hash runs; the same hash in a process in a session of its own at autogroup nice 19
#: still cost it 0.13 s (0.22 s in the caller's session), see docs/performance.md.
HASH_NICE = 5

#: How long a hash told to wait for the engine's context transfer (``start(until_context_sent=
#: True)``) waits after the engine started when no end of the transfer is seen: a build
#: that reads no context, or output this reader does not know. It then hashes alongside.
CONTEXT_WAIT_S = 3.0


def _set_priority(tid: int, nice: int) -> None:
    # On Linux a thread is a task: setpriority on its TID renices this thread only.
    # Raising it back needs CAP_SYS_NICE; without it the thread simply stays niced.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, tid, nice)


class ConcurrentDigest:
    """Compute a build's input digest while its engine build runs (see the module doc).

    ``compute`` returns the inputs (``None``: no digest possible, e.g. a base image is
    not local); ``images`` returns the current IDs of the external images (``{}`` when
    there are none). Call :meth:`start` just before starting the engine, then
    :meth:`finish` with the built image's ID (or :meth:`abandon` when the build failed).
    """

    def __init__(
        self,
        root: str,
        dockerfile: str,
        compute: Callable[[], Inputs | None],
        images: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self.files = [os.path.abspath(dockerfile), os.path.join(self.root, ".dockerignore")]
        #: The files a watch on the context does not cover: a Dockerfile elsewhere, or one
        #: reached through a symlink (the client reads the target, the watch sees the link).
        self.outside = [path for path in self.files if resolved_inside(self.root, path) is None]
        self._compute = compute
        self._images = images or (lambda: {})
        self._thread: threading.Thread | None = None
        self._inputs: Inputs | None = None
        self._error: BaseException | None = None
        self._before: Snapshot | None = None
        self._images_before: dict[str, str] = {}
        self._watch: Any = None
        self._watch_started_ns = 0
        #: Where the Dockerfile and .dockerignore led at the first snapshot (links resolved).
        self._led_to: list[str] = []
        self._tid: int | None = None
        #: Set when the hash may begin (see :meth:`start`).
        self._go = threading.Event()
        self._finishing = False
        self._nice = 0
        #: Held while the thread lowers its priority and while finish() raises it again,
        #: so a lowering can never land after the raise (the caller would wait on a niced hash).
        self._priority = threading.Lock()
        self._generation = 0
        self._wait_for_context = False
        self._timer: threading.Timer | None = None
        #: When the hash began: "at once", "engine started", "context sent", "no end of the
        #: context transfer seen" or "engine finished" (empty until it began).
        self.began = ""
        #: Why no digest was recorded (``None`` when one was).
        self.reason: str | None = None

    def settled(self) -> bool:
        """Take the first snapshot; ``False`` when a file in it is racy (then a recorded
        digest could not be trusted, so the caller should hash before building)."""
        if self._before is None:
            self._snapshot_before()
        assert self._before is not None
        return not self._before.racy

    def _snapshot_before(self) -> None:
        # An inotify watch set up before the engine starts answers "did anything change
        # since?" after the build (any event at all counts as a change), and everything
        # the engine and the hash read, they read after it began: no stat walk of the
        # context is needed, only stat keys of the files outside it. Where the watch
        # cannot be trusted (not a local filesystem, too many directories, no inotify)
        # a stat snapshot of everything is compared with a second one after the build.
        from rtbuild.context._watch import try_watch

        self._led_to = [os.path.realpath(path) for path in self.files]
        self._watch_started_ns = time.time_ns()
        watch, _why = try_watch(self.root)
        if watch is not None:
            watch.rewatch()
            self._generation = watch.generation
            if watch.broken:
                watch.close()
                watch = None
        self._watch = watch
        if watch is not None:
            self._before = files_snapshot(self.outside)
        else:
            self._before = stat_snapshot(self.root, self.files)

    def start(self, *, until_engine_started: bool = False, until_context_sent: bool = False) -> None:
        """Snapshot the inputs (unless :meth:`settled` did), then start hashing in a
        thread; returns at once. Call it just before the engine starts reading.

        With ``until_engine_started`` the thread waits for :meth:`engine_started` before
        it hashes (pass that as ``run_build``'s ``on_started``): the hash holds the GIL
        for most of its run, and each of the caller's own system calls before the engine
        starts (its log, its temp dir, the fork) would wait for it (measured: up to
        0.16 s before ``docker build`` began). With ``until_context_sent`` it waits
        longer, for :meth:`context_sent` (feed the engine's output to a
        :class:`~rtbuild.enginekit.ContextTransferWatch` calling it), or
        :data:`CONTEXT_WAIT_S` after the engine started when that never comes: while
        the engine's client sends the context, client and engine use both CPUs of a small
        host, and a hash then slows the build (measured on 2 vCPUs: the whole hash, 0.5 s
        of CPU, fell inside the transfer; after it the engine used 1.2 of 2 CPUs for 5 s).
        What the snapshot or watch taken here covers is unchanged: it still starts
        before the engine."""
        self._wait_for_context = until_context_sent
        if not (until_engine_started or until_context_sent):
            self._began("at once")
        if self._before is None:
            self._snapshot_before()
        with contextlib.suppress(AttributeError, OSError):
            self._nice = os.getpriority(os.PRIO_PROCESS, 0)
        self._images_before = dict(self._images())
        # The thread sees the caller's context variables (a BuildSession's resident digests).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="rtbuild-hash", daemon=True)
        self._thread.start()

    def _began(self, why: str) -> None:
        # Two callers racing here (the timer and the engine's output) differ only in the label.
        if not self._go.is_set():
            self.began = why
            self._go.set()

    def engine_started(self) -> None:
        """The engine runs: the hash may begin (see :meth:`start`), or, when it waits for
        the context, begins :data:`CONTEXT_WAIT_S` from now at the latest."""
        if not self._wait_for_context:
            self._began("engine started")
            return
        timer = threading.Timer(CONTEXT_WAIT_S, self._began, args=("no end of the context transfer seen",))
        timer.daemon = True
        timer.name = "rtbuild-hash-wait"
        self._timer = timer
        timer.start()

    def context_sent(self) -> None:
        """The engine has received the context (see :meth:`start`): the hash may begin."""
        self._began("context sent")

    def _run(self) -> None:
        self._go.wait()
        if self.reason is not None:
            return  # abandoned before the engine started: nothing to hash for
        with self._priority:
            self._tid = threading.get_native_id()
            if not self._finishing:  # else the caller already waits for the hash
                _set_priority(self._tid, self._nice + HASH_NICE)
        try:
            self._inputs = self._compute()
        except BaseException as exc:  # reported by finish(); the build goes on
            self._error = exc

    def abandon(self) -> None:
        """The build failed or was interrupted: record nothing (the thread may run on)."""
        self.reason = "the build did not finish"
        self._stop_timer()
        self._go.set()
        self._close_watch()

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            # cancel() only wakes the thread; wait the microseconds until it has gone, so no
            # rtbuild thread outlives the build. Its callback (_began) only sets an event and
            # never comes here, so this cannot join itself or wait on the caller's lock.
            timer.join(1.0)

    def _close_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            # Closing an inotify descriptor waits for a kernel grace period (0.2-20 ms,
            # whatever the number of watches) and nothing after the build needs it closed:
            # let it run alongside recording the digest and reporting the result.
            threading.Thread(target=watch.close, name="rtbuild-unwatch", daemon=True).start()

    def finish(self, image_id: str | None) -> Inputs | None:
        """Wait for the hash; record and return the inputs when they are the image's."""
        assert self._thread is not None and self._before is not None, "start() first"
        with self._priority:
            self._finishing = True
            if self._tid is not None and self._thread.is_alive():
                # The engine is done: now the hash is what the caller waits for.
                _set_priority(self._tid, self._nice)
        self._stop_timer()
        self._began("engine finished")  # an engine that never said so (the hash then runs now)
        self._thread.join()
        inputs = self._inputs
        try:
            self.reason = self._check(inputs, image_id)
        finally:
            self._close_watch()
        if self.reason is None and inputs is not None and image_id and not record_digest(image_id, inputs.digest):
            self.reason = "the digest record could not be written"
        return inputs if self.reason is None else None

    def unreadable(self) -> BuildContextError | None:
        """After :meth:`finish`: the hash's error when it could not read an entry of the
        context (a file or directory this user may not read, a path over the system's
        limit), else ``None``. The engine's client met the same entry, and may have built
        anyway: BuildKit's sends a file it cannot open as an empty one. Such an image does
        not hold the context, and the next request of it fails at the hash: remove its
        tags and raise this error instead of reporting it built."""
        error = self._error
        if isinstance(error, BuildContextError) and isinstance(error.__cause__, OSError):
            return error
        return None

    def _check(self, inputs: Inputs | None, image_id: str | None) -> str | None:
        before = self._before
        assert before is not None
        if self._error is not None:
            return f"hashing failed: {type(self._error).__name__}: {self._error}"
        if inputs is None:
            return "no input digest for this build (an external image is not local)"
        if not image_id:
            return "the engine reported no image ID"
        if before.racy:
            return f"{before.racy[0]} was written less than 2 s before the build"
        changed = self._changed_since(before)
        if changed:
            return f"{changed} changed during the build"
        if self._watch is not None and inputs.linked:
            # A write through a hard link's other name raises no event in the context: its
            # stat keys must show it untouched since before the watch began (the engine and
            # the hash both read after that) and since the hash read it.
            from rtbuild.context._snapshot import linked_changed

            linked = linked_changed(inputs.linked, self._watch_started_ns)
            if linked:
                return f"{linked} (with another hard link, unwatched) changed around the build"
        stale = self._hashed_other_keys(before)
        if stale:
            return f"{stale} changed while it was hashed"
        images_after = dict(self._images())
        if not (self._images_before == inputs.external_images == images_after):
            return "an external image was re-tagged during the build"
        return None

    def _changed_since(self, before: Snapshot) -> str | None:
        """What changed since the first snapshot: from the watch when there is one (plus
        a stat of a Dockerfile outside the context), else from a second stat walk."""
        # A link on the way to the Dockerfile or .dockerignore may lie outside the context
        # (no event when it is re-pointed), and the stat keys below follow links.
        for path, led_to in zip(self.files, self._led_to, strict=True):
            if os.path.realpath(path) != led_to:
                return path
        watch = self._watch
        if watch is not None:
            generation = watch.generation
            if watch.broken or generation != self._generation:
                return "the context (inotify reported a change)"
            outside = stat_snapshot_files(self.outside)
            for path in self.outside:
                if outside.get(path) != before.keys.get(path):
                    return path
            return None
        changed = before.changed(stat_snapshot(self.root, self.files))
        return changed[0] if changed else None

    def _hashed_other_keys(self, before: Snapshot) -> str | None:
        """The first file whose key in the hash walk's stat cache differs from the snapshot."""
        from rtbuild.context._hashing import StatCache

        files = [(path, key) for path, key in before.keys.items() if path not in self.files and S_ISREG(key[0])]
        if not files:  # a watched context: its snapshot holds only the files outside it
            return None
        entries = StatCache(self.root).file_entries()
        for path, key in files:
            cached = entries.get(path)
            if cached is None or tuple(cached[0][1:]) != key:
                return path
        return None


__all__ = ["CONTEXT_WAIT_S", "HASH_NICE", "ConcurrentDigest"]
