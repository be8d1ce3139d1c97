"""The podman CLI: image inspect (batched), tag, pull and push with live progress.

Podman has no daemon: every call is a short-lived ``podman`` process (about 50 ms), so the
no-op check inspects every image it needs in one call. Registry credentials reach podman
in an ``--authfile`` that lives in memory only (a memfd podman reads as ``/proc/self/fd/N``),
never on its command line or on disk; pull and push die with rtbuild (kill -9 included).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import rtbuild
from rtbuild import ConfigError, EngineUnavailableError, PushError, RegistryAuthError, RegistryError
from rtbuild.oci import Reference, is_insecure, is_loopback, parse_reference

from .auth import auth_entry, find_credentials, in_memory, usable
from .leftovers import copy_tmpdir, tmp_base
from .streamed import INTERRUPTED, TAIL_LINES, run_streamed

_NOT_FOUND = ("image not known", "no such image", "not found in local storage", "unable to find")
_AUTH_MARKERS = ("unauthorized", "authentication required", "denied", "invalid username/password")
#: Podman's own disk ran out during a pull or push (its storage, or the TMPDIR it copies layers into).
_DISK_FULL = ("no space left on device", "disk quota exceeded")
_IMAGE_ID = re.compile(r"(sha256:)?([a-f0-9]{64})")
#: How long a ``podman pull`` may take (Docker's PULL_TIMEOUT_S): a registry that answers the
#: manifest and then stalls the blobs would otherwise hang ``rtbuild exists`` forever.
PULL_TIMEOUT_S = 1800.0
#: ...and how long it may make no progress (Docker's PULL_STALL_S): a stalled download ends in
#: two minutes, not at the overall bound.
PULL_STALL_S = 120.0
#: A push's bounds (``[builders.podman] push_timeout`` and ``push_stall_timeout``), as
#: Docker's: a registry that stops taking a blob would otherwise hang ``--push`` forever.
PUSH_TIMEOUT_S = 1800.0
PUSH_STALL_S = 120.0


def find_podman(configured: str | None = None) -> str:
    """The podman binary: ``[builders.podman] podman_cli``, else ``podman`` on PATH."""
    found = shutil.which(configured or "podman")
    if found:
        return found
    if configured:
        raise ConfigError(
            f"podman_cli {configured!r} is not an executable",
            step="find podman",
            hint="set [builders.podman] podman_cli to the path of the podman binary",
        )
    raise EngineUnavailableError(
        "podman is not installed (no `podman` on PATH)",
        step="find podman",
        hint="install it (Debian: `apt-get install podman`; in this repo: `make engine` / scripts/podman.sh)",
    )


def _disk_full_hint(tail: Sequence[str], action: str) -> str | None:
    """The hint for a podman call (a pull, a push) that stopped because this machine's disk is
    full, not the registry: podman's storage (the pulled layers) or its TMPDIR (each layer a
    push sends, a pull's blobs, even an inspect's temp file) ran out of space; ``None`` when
    the output says nothing of the kind."""
    line = next((text for text in reversed(tail) if any(m in text.lower() for m in _DISK_FULL)), None)
    if line is None:
        return None
    where = f"{tmp_base() or 'its TMPDIR'} (podman's temp copies; point TMPDIR elsewhere)"
    return (
        f"this machine's disk is full (podman's {action} could not write; the error names the path), not a fault"
        f" of the registry or image: free space in podman's storage (`podman system prune`, `rtbuild prune"
        f" --builder podman`) or in {where}, then try again"
    )


def normalize_id(value: str) -> str:
    match = _IMAGE_ID.fullmatch(value.strip())
    return f"sha256:{match.group(2)}" if match else value.strip()


def _candidates(name: str) -> set[str]:
    """The names podman may store ``name`` under: its full reference, and for a name
    without a registry also ``localhost/NAME`` (podman's default for ``build -t NAME``)."""
    ref = parse_reference(name)
    names = {str(ref)}
    first = name.split("/", 1)[0]
    has_registry = "/" in name and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        local = Reference("localhost", name.split("@")[0].split(":")[0], ref.tag, None)
        names.add(str(local))
    return names


class Podman:
    """Runs podman; one instance per builder (and so per CLI call)."""

    def __init__(
        self,
        cli: str | None = None,
        *,
        insecure_registries: Sequence[str] = (),
        pull_timeout: float = PULL_TIMEOUT_S,
        push_timeout: float = PUSH_TIMEOUT_S,
        push_stall_timeout: float = PUSH_STALL_S,
    ) -> None:
        self._configured = cli
        self.pull_timeout = pull_timeout
        self.pull_stall_timeout = PULL_STALL_S
        self.push_timeout, self.push_stall_timeout = push_timeout, push_stall_timeout
        self._cli: str | None = None
        self.insecure_registries = list(insecure_registries)
        self._inspected: dict[str, dict[str, Any] | None] = {}
        self._version: str | None = None

    @property
    def cli(self) -> str:
        if self._cli is None:
            self._cli = find_podman(self._configured)
        return self._cli

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.cli, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailableError(
                f"`podman {args[0]}` did not answer within {timeout:.0f}s",
                step=f"podman {args[0]}",
                hint="podman's storage may be locked by a stuck podman process: check `podman ps -a` and `ps`",
            ) from exc

    def version(self) -> str:
        """The podman client version ("4.3.1"; "" when it does not say), asked once."""
        if self._version is None:
            proc = self.run("--version", timeout=60)
            found = re.search(r"(\d+\.\d+[\w.+~-]*)", proc.stdout) if proc.returncode == 0 else None
            self._version = found.group(1) if found else ""
        return self._version

    def ignore_flavor(self) -> str | None:
        """The .dockerignore dialect (:class:`rtbuild.context.PatternMatcher`) of this podman's
        Buildah, ``None`` when it is not known.

        Podman 4 (Buildah 1.2x-1.3x) matches with containers/storage's ``pkg/fileutils``, a
        fork of docker 20.10's: ``**`` is ``(.*/)?``, regexp syntax passes through, parents
        count only at the pattern's depth -- the ``moby20`` dialect (tests/podman check it
        against the real engine). Other majors have not been checked: no skip on them.
        """
        major = self.version().split(".", 1)[0]
        return "moby20" if major == "4" else None

    def tls_verify(self, registry: str) -> bool:
        """False for loopback and configured insecure registries (podman's ``--tls-verify``)."""
        return not (is_loopback(registry) or is_insecure(registry, self.insecure_registries))

    # --- local images ---------------------------------------------------------------

    def forget(self) -> None:
        """Drop cached inspect answers (after a build or pull changed the store)."""
        self._inspected.clear()

    def prefetch(self, names: Sequence[str]) -> None:
        """Inspect ``names`` in one podman call and cache the answers."""
        wanted = [n for n in dict.fromkeys(names) if n not in self._inspected]
        if not wanted:
            return
        if len(wanted) == 1 or any(_IMAGE_ID.fullmatch(n) or "@" in n for n in wanted):
            for name in wanted:
                self._inspected[name] = self._inspect_one(name)
            return
        proc = self.run("image", "inspect", *wanted, timeout=60)
        if proc.returncode != 0 and not any(m in proc.stderr.lower() for m in _NOT_FOUND):
            raise self._failed("inspect image", proc)
        try:
            docs = json.loads(proc.stdout or "[]")
        except ValueError:
            docs = []
        by_name: dict[str, dict[str, Any]] = {}
        for doc in docs if isinstance(docs, list) else []:
            for tag in doc.get("RepoTags") or []:
                by_name[tag] = doc
        for name in wanted:
            self._inspected[name] = next((by_name[c] for c in _candidates(name) if c in by_name), None)

    def _inspect_one(self, name: str) -> dict[str, Any] | None:
        proc = self.run("image", "inspect", name, timeout=60)
        if proc.returncode != 0:
            if any(marker in proc.stderr.lower() for marker in _NOT_FOUND):
                return None
            raise self._failed("inspect image", proc)
        docs = json.loads(proc.stdout or "[]")
        return docs[0] if isinstance(docs, list) and docs else None

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        """Podman's inspect document of a local image (Docker-shaped), ``None`` when absent."""
        if name not in self._inspected:
            self._inspected[name] = self._inspect_one(name)
        doc = self._inspected[name]
        if doc is not None and "Id" in doc:
            doc = {**doc, "Id": normalize_id(str(doc["Id"]))}
        return doc

    def tag(self, source: str, *targets: str) -> None:
        proc = self.run("tag", source, *targets, timeout=60)
        if proc.returncode != 0:
            raise self._failed("tag image", proc)
        self.forget()

    def _failed(self, step: str, proc: subprocess.CompletedProcess[str]) -> EngineUnavailableError:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return EngineUnavailableError(
            f"podman failed to {step}: {lines[-1] if lines else f'exit {proc.returncode}'}",
            step=step,
            log_tail=lines[-TAIL_LINES:],
            hint=_disk_full_hint(lines, step) or "check `podman info` works (storage, /etc/containers/storage.conf)",
        )

    # --- registries -------------------------------------------------------------------

    @contextlib.contextmanager
    def authfile(self, ref: Reference) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """``(["--authfile", PATH], fds to pass)`` with the credentials for ``ref``'s
        registry, or ``([], ())``.

        The file is in memory only (:func:`.auth.in_memory`: a memfd podman reads as
        ``/proc/self/fd/N``), never on disk or podman's command line.
        """
        creds = find_credentials(ref.registry)
        if creds is None or not usable(creds):
            docker_config = os.environ.get("DOCKER_CONFIG")
            explicit = os.environ.get("REGISTRY_AUTH_FILE")
            if (not docker_config or os.path.exists(os.path.join(docker_config, "config.json"))) and (
                not explicit or os.path.exists(explicit)
            ):
                yield [], ()
                return
            # Podman 4's pull and push fail on a DOCKER_CONFIG without config.json, or a
            # REGISTRY_AUTH_FILE not written yet ("stat …: no such file"), where docker,
            # podman build and rtbuild find no credentials; an empty authfile means that.
            data = b'{"auths":{}}'
        else:
            data = json.dumps({"auths": {ref.registry: auth_entry(creds)}}).encode()
        with in_memory(data) as (path, fds):
            yield ["--authfile", path], fds

    def pull(self, name: str, *, platform: str | None = None) -> None:
        ref = parse_reference(name)
        reporter = rtbuild.get_reporter()
        reporter.event("pull_started", image=name, message=f"pulling {name}")
        argv = ["pull", f"--tls-verify={str(self.tls_verify(ref.registry)).lower()}"]
        if platform:
            argv += ["--platform", platform]
        with self.authfile(ref) as (auth, fds), copy_tmpdir(self) as tmpdir:
            run = run_streamed(
                [self.cli, *argv, *auth, str(ref)],
                "pull",
                pass_fds=fds,
                timeout=self.pull_timeout,
                stall=self.pull_stall_timeout,
                tmpdir=tmpdir,
            )
        self.forget()
        code, tail = run.code, run.tail
        if code is None:
            raise RegistryError(
                f"pulling {name} from {ref.registry} {run.why}",
                step="pull image",
                log_tail=tail,
                hint="the registry answered but stalled the download; check it (or the network to it),"
                " or raise [builders.podman] pull_timeout",
            )
        if code == 0:
            reporter.event("pulled", image=name, message=f"pulled {name}")
            return
        full = _disk_full_hint(tail, "pull")
        if full is None and any(m in "\n".join(tail).lower() for m in _AUTH_MARKERS):
            raise RegistryAuthError(
                f"registry {ref.registry} refused the pull of {name}",
                step="pull image",
                log_tail=tail,
                hint=f"log in with `podman login {ref.registry}` or `docker login {ref.registry}`",
            )
        raise RegistryError(
            f"pulling {name} from {ref.registry} failed: {tail[-1] if tail else f'exit {code}'}",
            step="pull image",
            log_tail=tail,
            hint=full or "the registry listed the image; check podman can reach it (and its TLS settings)",
        )

    def push(self, name: str) -> str | None:
        """Push ``name`` to its registry; return the pushed manifest digest."""
        ref = parse_reference(name)
        if ref.tag is None:
            raise PushError(
                f"cannot push {name}: a digest reference names no tag", step="push", hint="push a NAME:TAG reference"
            )
        reporter = rtbuild.get_reporter()
        reporter.event("push_started", image=name, message=f"pushing {name}")
        with copy_tmpdir(self) as tmp:
            digestfile = os.path.join(tmp, "digest")
            argv = ["push", f"--tls-verify={str(self.tls_verify(ref.registry)).lower()}", "--digestfile", digestfile]
            with self.authfile(ref) as (auth, fds):
                run = run_streamed(
                    [self.cli, *argv, *auth, name, f"docker://{ref}"],
                    "push",
                    pass_fds=fds,
                    timeout=self.push_timeout,
                    stall=self.push_stall_timeout,
                    tmpdir=tmp,
                )
            code, tail = run.code, run.tail
            digest = None
            if code == 0 and os.path.exists(digestfile):
                with open(digestfile, encoding="utf-8") as handle:
                    digest = handle.read().strip() or None
        if run.why is not None:
            raise PushError(
                f"pushing {name} to {ref.registry} {run.why}; podman was stopped",
                step="push",
                log_tail=tail,
                hint="run again: the image built is reused and pushed"
                if run.why == INTERRUPTED
                else f"check that the registry {ref.registry} is serving uploads, then run again; a slow link may"
                " need a larger [builders.podman] push_timeout or push_stall_timeout",
            )
        if code == 0:
            reporter.event("pushed", image=name, digest=digest, message=f"pushed {name}")
            return digest
        text = "\n".join(tail).lower()
        hint = "check the registry accepts pushes for this repository (its logs say why it refused)"
        full = _disk_full_hint(tail, "push")
        if full is None and any(m in text for m in _AUTH_MARKERS):
            creds = find_credentials(ref.registry)  # what rtbuild handed podman: where from, never what
            hint = f"log in with `podman login {ref.registry}` or put credentials for it in"
            hint += " $DOCKER_CONFIG/config.json (~/.docker/config.json)"
            if creds is not None:
                hint = f"the credentials for {ref.registry} from {creds.source or 'the docker config'} were sent"
                hint += f" and refused, or may not push there: check them with `docker login {ref.registry}`"
            raise RegistryAuthError(
                f"registry {ref.registry} refused the push of {name}", step="push", log_tail=tail, hint=hint
            )
        if full is not None:
            hint = full
        elif any(m in text for m in _NOT_FOUND):
            hint = f"build or tag {name} locally before pushing it"
        elif "connection refused" in text or "no such host" in text:
            hint = f"check that the registry {ref.registry} is running and reachable"
        raise PushError(
            f"pushing {name} to {ref.registry} failed: {tail[-1] if tail else f'exit {code}'}",
            step="push",
            log_tail=tail,
            hint=hint,
        )


def labels_of(doc: Mapping[str, Any]) -> dict[str, str]:
    labels = (doc.get("Config") or {}).get("Labels") or doc.get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


__all__ = ["PULL_TIMEOUT_S", "PUSH_STALL_S", "PUSH_TIMEOUT_S", "Podman", "find_podman", "labels_of", "normalize_id"]
