"""Step profiles from the build's progress stream, and layer sizes from the image history.

BuildKit's plain progress names each vertex on its first line (``#5 [2/3] RUN make``),
then prints its output (``#5 0.42 ...``) and one closing line: ``#5 DONE 1.2s``,
``#5 CACHED``, ``#5 ERROR: ...`` or ``#5 CANCELED``. Vertices run in parallel and their
lines interleave, so each step is keyed by its number; a vertex's name line may be
repeated when the printer switches back to it, only the first one counts. Start and end
are the wall-clock times the lines arrived; the duration is the engine's own figure from
the DONE line when there is one. Sequential builders are read too: the legacy Docker
builder (``Step 2/3 : RUN make``, `` ---> Using cache``) and Buildah / ``podman build``
(``STEP 2/3: RUN make``, ``--> Using cache ...``, ``COMMIT``): a step ends where the next
one starts. Feed :class:`StepRecorder` from :func:`rtbuild.enginekit.run_build`'s ``on_line``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_VERTEX = re.compile(r"^#(\d+) (.+)$")
_DONE = re.compile(r"^(\d+(?:\.\d+)?)s$")
_POSITION = re.compile(r"^\[([^\]]+)\] (.+)$")
_LEGACY_STEP = re.compile(r"^Step (\d+)/(\d+) : (.+)$")
_BUILDAH_STEP = re.compile(r"^(?:\[(\d+)/(\d+)\] )?STEP (\d+)/(\d+): (.+)$")
_CACHE_MARKS = ("---> Using cache", "--> Using cache")
_SEQUENCE_END = ("Successfully built", "Successfully tagged", "COMMIT")


@dataclass
class Step:
    id: str
    name: str
    start: float
    end: float | None = None
    duration_s: float | None = None
    cached: bool = False
    status: str = "running"

    @property
    def instruction(self) -> str:
        """``RUN make`` from ``[stage-1 2/3] RUN make``; internal vertices keep their name."""
        match = _POSITION.match(self.name)
        return match.group(2) if match else self.name

    @property
    def internal(self) -> bool:
        """Not a Dockerfile instruction: ``[internal] load ...``, exporting, resolving."""
        match = _POSITION.match(self.name)
        return match is None or match.group(1) == "internal"

    def to_dict(self) -> dict[str, Any]:
        end = self.end if self.end is not None else self.start
        duration = self.duration_s if self.duration_s is not None else max(0.0, end - self.start)
        return {
            "name": self.name,
            "start": round(self.start, 3),
            "end": round(end, 3),
            "duration_s": round(duration, 3),
            "cached": self.cached,
            "status": self.status,
            "internal": self.internal,
        }


class StepRecorder:
    """Feed it every output line (``feed``); ``steps()`` gives the profile so far."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._steps: dict[str, Step] = {}
        self._legacy: Step | None = None

    def feed(self, line: str) -> None:
        now = float(self._clock())
        match = _VERTEX.match(line)
        if match:
            self._vertex(match.group(1), match.group(2), now)
            return
        self._sequential(line.strip(), now)

    def _sequential(self, line: str, now: float) -> None:
        legacy = _LEGACY_STEP.match(line)
        buildah = _BUILDAH_STEP.match(line) if legacy is None else None
        if legacy or buildah:
            self._close_legacy(now)
            if legacy:
                number, total, instruction, stage = legacy.group(1), legacy.group(2), legacy.group(3), ""
            else:
                assert buildah is not None
                number, total, instruction = buildah.group(3), buildah.group(4), buildah.group(5)
                stage = f"s{buildah.group(1)}/{buildah.group(2)} " if buildah.group(1) else ""
            key = f"seq-{len(self._steps)}"
            self._legacy = self._steps[key] = Step(key, f"[{stage}{number}/{total}] {instruction}", now)
        elif self._legacy is not None and line.startswith(_CACHE_MARKS):
            self._legacy.cached = True
        elif line.startswith(_SEQUENCE_END):
            self._close_legacy(now)
            if line.startswith("COMMIT"):  # Buildah's export: timed like BuildKit's "exporting to image"
                key = f"seq-{len(self._steps)}"
                self._legacy = self._steps[key] = Step(key, line, now)

    def _close_legacy(self, now: float) -> None:
        step = self._legacy
        if step is not None and step.end is None:
            step.end, step.status = now, "cached" if step.cached else "done"
        self._legacy = None

    def _vertex(self, key: str, rest: str, now: float) -> None:
        step = self._steps.get(key)
        if step is None:
            self._steps[key] = Step(key, rest, now)
            return
        if rest == "CACHED":
            step.cached, step.status, step.end, step.duration_s = True, "cached", now, 0.0
        elif rest.startswith("DONE "):
            done = _DONE.match(rest[5:])
            step.status, step.end = "done", now
            step.duration_s = float(done.group(1)) if done else None
            if step.duration_s is not None:
                # The client may print a vertex's first line late; the engine's duration is not.
                step.start = min(step.start, now - step.duration_s)
        elif rest.startswith("ERROR"):
            step.status, step.end = "error", now
        elif rest == "CANCELED":
            step.status, step.end = "canceled", now

    def steps(self) -> list[dict[str, Any]]:
        """Every step in the order it started."""
        self._close_legacy(float(self._clock()))
        return [step.to_dict() for step in sorted(self._steps.values(), key=lambda s: s.start)]


#: BuildKit's vertex for the main context (``--build-context`` ones are named otherwise).
_CONTEXT_VERTEX = "[internal] load build context"
_VERTEX_ENDS = ("DONE", "CACHED", "ERROR", "CANCELED")


class ContextTransferWatch:
    """Feed it every output line of a build (``feed``); it calls ``on_sent`` once, when the
    engine has the build context: BuildKit's ``[internal] load build context`` vertex ends
    (``transferring context: ... done``, ``DONE``, ``ERROR``), or a sequential builder
    (the legacy Docker builder, Buildah) starts its first step, as those read or receive
    the whole context before it. Used to start a first build's hash after the transfer
    (:meth:`rtbuild.enginekit.ConcurrentDigest.context_sent`)."""

    def __init__(self, on_sent: Callable[[], None]) -> None:
        self._on_sent = on_sent
        self._vertex: str | None = None
        self.sent = False

    def feed(self, line: str) -> None:
        if self.sent:
            return
        match = _VERTEX.match(line)
        if match:
            key, rest = match.group(1), match.group(2)
            if self._vertex is None:
                if rest == _CONTEXT_VERTEX:
                    self._vertex = key
                return
            if key == self._vertex and (rest.startswith(_VERTEX_ENDS) or _transfer_done(rest)):
                self._fire()
            return
        text = line.strip()
        if _LEGACY_STEP.match(text) or _BUILDAH_STEP.match(text):
            self._fire()

    def _fire(self) -> None:
        self.sent = True
        self._on_sent()


def _transfer_done(rest: str) -> bool:
    return rest.startswith("transferring context:") and rest.endswith(" done")


def _normalise(created_by: str) -> str:
    text = created_by.removesuffix("# buildkit").strip()
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", text)
    if text.startswith("/bin/sh -c "):
        text = "RUN " + text[len("/bin/sh -c ") :]
    return re.sub(r"^RUN /bin/sh -c ", "RUN ", text).strip()


def layers_from_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``GET /images/ID/history`` (newest first) as layers, oldest first: created_by, size."""
    layers = []
    for entry in reversed(history):
        size = entry.get("Size")
        created_by = _normalise(str(entry.get("CreatedBy") or ""))
        layers.append({"created_by": created_by, "size": size if isinstance(size, int) else 0})
    return layers


def attach_layer_sizes(steps: list[dict[str, Any]], layers: list[dict[str, Any]]) -> None:
    """Give each instruction step the size of the history entry its text matches."""
    pool: dict[str, list[int]] = {}
    for layer in layers:
        pool.setdefault(layer["created_by"], []).append(int(layer["size"]))
    for step in steps:
        if step["internal"]:
            continue
        match = _POSITION.match(step["name"])
        instruction = match.group(2) if match else step["name"]
        sizes = pool.get(instruction)
        if sizes:
            step["layer_bytes"] = sizes.pop()


#: A variable reference an engine expands in a step's name: ``$X``, ``${X}``, ``${X:-d}``.
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def _templates(dockerfile_text: str) -> list[tuple[str, re.Pattern[str]]]:
    """Each instruction that names a variable, as written, and a pattern its expanded text
    matches (each reference any text, each run of blanks any run)."""
    from dockerfile_parse import DockerfileParser

    from rtbuild.enginekit._dockerfile_text import parser_text

    parser = DockerfileParser(fileobj=io.BytesIO(), env_replace=False)
    parser.content = parser_text(dockerfile_text)
    out = []
    for item in parser.structure:
        value = " ".join(str(item.get("value") or "").split())
        if not _VARIABLE.search(value):
            continue
        text = f"{str(item.get('instruction') or '').upper()} {value}"
        parts = _VARIABLE.split(text)
        literal = [r"\s*".join(re.escape(word) for word in part.split(" ")) for part in parts]
        out.append((text, re.compile(".*?".join(literal), re.DOTALL)))
    return out


def attach_sources(steps: list[dict[str, Any]], dockerfile_text: str) -> None:
    """Give each instruction step whose name an engine expanded (BuildKit names
    ``RUN echo $X`` by ``RUN echo 1``) its text as written, ``source``, when exactly one
    instruction of the Dockerfile reads so: ``rtbuild metrics`` groups its slowest steps by
    it, one row whatever the values were. Best effort: a Dockerfile it cannot read adds none."""
    try:
        templates = _templates(dockerfile_text)
    except Exception:
        return
    for step in steps if templates else ():
        match = _POSITION.match(str(step.get("name", "")))
        if step.get("internal") or match is None:
            continue
        shown = " ".join(match.group(2).split())
        found = {text for text, pattern in templates if pattern.fullmatch(shown)}
        # Of several that read so (RUN echo $X > /n and RUN echo $X $Y), the one written
        # with the most literal text: the other matched by its wildcards alone.
        best = max((len(_VARIABLE.sub("", text)) for text in found), default=0)
        found = {text for text in found if len(_VARIABLE.sub("", text)) == best}
        if len(found) == 1 and (source := found.pop()) != shown:
            step["source"] = source


def profile_steps(
    recorder: StepRecorder, api: Any, image_id: str | None, dockerfile_text: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The step profile, with layer sizes from ``api.image_history(image_id)`` (Docker's
    ``GET /images/ID/history`` shape, newest first; best effort), and with
    ``dockerfile_text`` each expanded step's text as written (:func:`attach_sources`)."""
    from rtbuild.errors import AgentRuntimeBuildError

    steps = recorder.steps()
    if dockerfile_text is not None:
        attach_sources(steps, dockerfile_text)
    layers: list[dict[str, Any]] = []
    if image_id:
        try:
            layers = layers_from_history(api.image_history(image_id))
        except (AgentRuntimeBuildError, OSError):
            layers = []  # sizes are a bonus: the image is built either way
        attach_layer_sizes(steps, layers)
    return steps, layers


__all__ = ["Step", "StepRecorder", "attach_layer_sizes", "attach_sources", "layers_from_history", "profile_steps"]
