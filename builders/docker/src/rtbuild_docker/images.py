"""Images in registries: exists (local, then the registry), pull on demand, push.

The local check goes over :class:`~rtbuild_docker.engine.EngineAPI` (no docker SDK import,
so ``rtbuild exists`` on a local image stays quick). The registry is asked with a
manifest ``HEAD`` (:mod:`rtbuild.registry`) before pulling, so a missing image answers
``False`` without an engine pull error. Pull and push stream their progress to the
reporter and carry the docker config's credentials (:mod:`rtbuild.credentials`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rtbuild import get_reporter
from rtbuild.errors import ConfigError, PushError, RegistryAuthError, RegistryError
from rtbuild.oci import Reference, parse_reference

from .engine import ContextTLS, EngineAPI, engine_target, resolve_host, sdk_client, unreachable

if TYPE_CHECKING:
    import docker

TAIL_LINES = 20
#: How the engine words a registry's refusal of our credentials (or of their absence).
_AUTH_MARKERS = (
    "unauthorized",
    "denied",
    "authentication required",
    "no basic auth credentials",
    "incorrect username or password",
)
#: How the engine words a registry it could not reach.
_UNREACHABLE_MARKERS = ("connection refused", "no such host", "i/o timeout", "connection reset", "no route to host")
#: A pull that reports nothing for this long has stalled (a registry that stopped sending
#: a blob): the engine itself never gives up on one.
PULL_STALL_S = 120.0
#: The longest a pull on demand may take in all, progress or not (as platforms.py's pull).
PULL_TIMEOUT_S = 1800.0
#: A push's bounds, the defaults of ``[builders.docker] push_stall_timeout`` and
#: ``push_timeout``: the engine waits for ever on a registry that stops taking a blob.
PUSH_STALL_S = 120.0
PUSH_TIMEOUT_S = 1800.0
_IMAGE_ID = re.compile(r"(sha256:)?[a-f0-9]{64}")
#: The engine's countdown before it retries a layer, one line a second: it filled the
#: error's log tail (a failed push showed 20 of them and nothing else) and stderr.
_COUNTDOWN = re.compile(r"Retrying in (\d+) seconds?$")
#: How the engine words a registry's 5xx answer to an upload (it gives no more of it).
_SERVER_ERROR = re.compile(r"unexpected HTTP status: 5\d\d")

_clients: dict[tuple[str, ContextTLS | None], docker.DockerClient] = {}


def docker_client(docker_host: str | None = None) -> docker.DockerClient:
    """A docker SDK client for ``docker_host`` (else ``$DOCKER_HOST``, else the docker
    context's engine, with the context's TLS settings), asked once for its API version.

    An engine that does not answer is :class:`~rtbuild.errors.EngineUnavailableError`
    naming the host and DOCKER_HOST, with a hint how to start one.
    """
    target = engine_target(docker_host)
    if docker_host and target.context is None:
        # EngineAPI passes the host it resolved: the context that chose it keeps its TLS.
        with contextlib.suppress(ConfigError):
            if (chosen := engine_target(None)).host == docker_host:
                target = chosen
    host, tls = target.host, target.tls
    client = _clients.get((host, tls))
    if client is not None:
        return client
    import docker.errors
    import requests.exceptions

    try:
        client = sdk_client(target)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        error = unreachable(host, _first_line(exc))
        if tls is not None:
            error.hint = (
                f"check docker context {target.context!r}'s TLS files in {tls.directory}: its ca.pem must have signed"
                " the engine's certificate and the engine must accept its cert.pem"
                f" (`docker --context {target.context} version` fails the same way); else {error.hint}"
            )
        raise error from exc
    _clients[(host, tls)] = client
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _is_auth_failure(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _AUTH_MARKERS)


def _auth_config(ref: Reference) -> dict[str, str]:
    """The credentials for ``ref``'s registry; ``{}`` is an explicit anonymous request
    (``None`` would let the SDK use the config it cached when the client was made)."""
    # imported here: only a pull or push reads credentials (base64, json, subprocess)
    from rtbuild.oci import get_credentials

    creds = get_credentials(ref.registry)
    return creds.auth_config(ref.registry) if creds else {}


class _Progress:
    """Turns the engine's JSON progress stream into reporter lines and events.

    Byte-level ticks (Downloading/Extracting/Pushing) are reported once per layer and
    status, not on every chunk, and so are they kept for the error's log tail.
    """

    def __init__(self, action: str, image: str) -> None:
        self.action, self.image = action, image
        self.reporter = get_reporter()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._last: dict[str, str] = {}
        self.digest: str | None = None

    def feed(self, item: Mapping[str, Any]) -> str | None:
        """Report one stream item; return the error message if the item is an error."""
        error = item.get("error") or (item.get("errorDetail") or {}).get("message")
        if error:
            self.tail.append(f"ERROR: {error}")
            return str(error)
        aux = item.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        status = item.get("status")
        if not status:
            return None
        layer = str(item.get("id") or "")
        now, before = _COUNTDOWN.match(str(status)), _COUNTDOWN.match(self._last.get(layer, ""))
        if now and before and int(now.group(1)) < int(before.group(1)):
            self._last[layer] = str(status)
            return None  # "Retrying in 4 seconds", 3, 2, 1: this retry was said once
        line = f"{layer}: {status}" if layer else str(status)
        if layer and self._last.get(layer) == status:
            return None  # another byte tick for this layer (20 of them made the whole log tail)
        self.tail.append(line)
        self._last[layer] = str(status)
        self.reporter.line(line, source=self.action)
        if not layer:
            return None  # a summary line ("Pulling from", "Digest: ...") is only a line
        detail = item.get("progressDetail") or {}
        self.reporter.event(
            f"{self.action}_progress",
            image=self.image,
            layer=layer,
            status=status,
            current=detail.get("current"),
            total=detail.get("total"),
        )
        return None


def _is_read_timeout(exc: BaseException) -> bool:
    """A socket read that waited the whole stall bound (requests wraps it two ways)."""
    import requests.exceptions
    import urllib3.exceptions

    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)


def _engine_post(client: docker.DockerClient, path: str, params: dict[str, str], auth: Reference, read_s: float) -> Any:
    """``POST path`` to the engine as a streamed response whose every read waits ``read_s`` at most.

    Not ``client.api.pull``/``push``: they read with no timeout at all, and the engine never
    gives up on a registry that stops answering, so one stalled blob hung rtbuild for good.
    No body, as the docker CLI: Go's server (dockerd) watches for a client that went away
    only once the request's body is read, and the push handler reads none.
    """
    from docker.auth import encode_header

    api = client.api
    return api.post(
        f"{api.base_url}/v{api.api_version}{path}",
        params=params,
        headers={"X-Registry-Auth": encode_header(_auth_config(auth)).decode()},
        stream=True,
        timeout=(min(read_s, 60.0), read_s),
    )


def _bounded(
    docker_host: str | None,
    path: str,
    params: dict[str, str],
    ref: Reference,
    progress: _Progress,
    host: str,
    bounds: tuple[float, float],
) -> tuple[str | None, str | None]:
    """Run an engine pull or push, feeding its stream to ``progress``, within ``bounds``
    (no progress for, in all): its error (``None``: it finished) and, when rtbuild gave up, why."""
    import requests.exceptions

    from .streamcancel import EngineCallStopped, StreamCancel, interrupted, on_cancel

    stall, overall = bounds
    # Clamped: a socket takes no timeout above about 292 years (1e10 s was an internal error).
    read_s = min(stall, overall, threading.TIMEOUT_MAX)
    deadline = time.monotonic() + overall
    response = None
    cancel = StreamCancel()  # Ctrl-C in build-many: a worker's stream is severed, not read to its end
    unregister = on_cancel(cancel.fire)
    try:
        response = _engine_post(docker_client(docker_host), path, params, ref, read_s)
        cancel.watch(response)
        if response.status_code != 200:
            return _answer_message(response), None
        for line in response.iter_lines():
            item = _decode(line)
            error = progress.feed(item) if item else None
            if error and not cancel.fired:
                return error, None
            if time.monotonic() > deadline:
                return None, f"did not finish within {overall:g} s"
        if cancel.fired:  # a severed stream may just end: not a finished push
            raise interrupted(progress.action, progress.image, list(progress.tail))
        return None, None
    except EngineCallStopped:  # the SDK's connection check (a hung engine) was stopped
        raise interrupted(progress.action, progress.image, list(progress.tail)) from None
    except requests.exceptions.RequestException as exc:
        if cancel.fired:
            raise interrupted(progress.action, progress.image, list(progress.tail)) from None
        if _is_read_timeout(exc):
            return None, f"stalled: no progress for {read_s:g} s"
        if response is None:
            raise unreachable(host, _first_line(exc)) from exc
        from .failures import stream_broke  # the engine answered, then its stream broke off

        raise stream_broke(host, progress.action, progress.image, list(progress.tail), _first_line(exc)) from exc
    finally:
        unregister()
        if response is not None:
            # Closing the connection is what makes the engine cancel an unfinished pull or push.
            response.close()


def _pull(ref: Reference, image_name: str, docker_host: str | None) -> None:
    progress = _Progress("pull", image_name)
    progress.reporter.event("pull_started", image=image_name, message=f"pulling {image_name}")
    # fromImage=REPO@DIGEST pins the digest; otherwise REPO and TAG.
    params = {"fromImage": f"{ref.name}@{ref.digest}"} if ref.digest else {"fromImage": ref.name, "tag": ref.tag or ""}
    bounds = (PULL_STALL_S, PULL_TIMEOUT_S)  # read now: tests set them small
    error, why = _bounded(docker_host, "/images/create", params, ref, progress, resolve_host(docker_host), bounds)
    if why is not None:
        raise RegistryError(
            f"pulling {image_name} from {ref.registry} {why}; the pull was stopped",
            step="pull image",
            log_tail=list(progress.tail),
            hint=f"check that the registry {ref.registry} (or the engine's proxy or mirror for it) is serving,"
            " then run again",
        )
    if error is None:
        progress.reporter.event("pulled", image=image_name, message=f"pulled {image_name}")
        return
    if _is_auth_failure(error):
        raise RegistryAuthError(
            f"registry {ref.registry} refused the pull of {image_name}: {error}",
            step="pull image",
            log_tail=list(progress.tail),
            hint=f"log in with `docker login {ref.registry}` (rtbuild reads the same docker config)",
        )
    raise RegistryError(
        f"pulling {image_name} from {ref.registry} failed: {error}",
        step="pull image",
        log_tail=list(progress.tail),
        hint="the registry listed the image; check the engine can reach the registry (dockerd's own network)",
    )


def _decode(line: bytes) -> Mapping[str, Any] | None:
    try:
        item = json.loads(line) if line.strip() else None
    except ValueError:
        return None
    return item if isinstance(item, Mapping) else None


def _answer_message(response: Any) -> str:
    """The engine's message in a non-200 answer (``{"message": ...}``), else its status."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message = data.get("message") if isinstance(data, dict) else None
    return str(message or f"HTTP {response.status_code}")


def image_exists(
    image_name: str,
    pull_from_repo: bool = True,
    *,
    docker_host: str | None = None,
    insecure_registries: Iterable[str] = (),
) -> bool:
    """Whether ``image_name`` is local; with ``pull_from_repo``, pull it when only its
    registry has it. A missing image is ``False``; registry trouble raises."""
    api = EngineAPI(docker_host)
    if _IMAGE_ID.fullmatch(image_name):  # an image ID exists only locally
        return api.inspect_image(image_name) is not None
    ref = parse_reference(image_name)
    if api.inspect_image(image_name) is not None:
        return True
    if not pull_from_repo:
        return False
    from rtbuild.oci import manifest_exists

    if not manifest_exists(ref, insecure_registries=insecure_registries):
        get_reporter().event("not_found", image=image_name, registry=ref.registry)
        return False
    _pull(ref, image_name, docker_host)
    return api.inspect_image(image_name) is not None


def push_image(
    image: str,
    *,
    docker_host: str | None = None,
    timeout: float = PUSH_TIMEOUT_S,
    stall_timeout: float = PUSH_STALL_S,
) -> str | None:
    """Push ``image`` (``REGISTRY/NAME:TAG``) with progress; return the pushed digest.

    A push that reports no progress for ``stall_timeout`` seconds, or runs ``timeout`` in
    all, is stopped (a :class:`~rtbuild.errors.PushError`).
    """
    ref = parse_reference(image)
    if ref.tag is None:
        raise PushError(
            f"cannot push {image}: a digest reference names no tag to push",
            step="push",
            hint="push a NAME:TAG reference",
        )
    progress = _Progress("push", image)
    progress.reporter.event("push_started", image=image, message=f"pushing {image}")
    host = resolve_host(docker_host)
    path = f"/images/{ref.name}/push"
    error, why = _bounded(docker_host, path, {"tag": ref.tag}, ref, progress, host, (stall_timeout, timeout))
    if why is not None:
        raise PushError(
            f"pushing {image} to {ref.registry} {why}; the push was stopped",
            step="push",
            log_tail=list(progress.tail),
            hint=f"check that the registry {ref.registry} is serving uploads, then run again; a slow link may"
            " need a larger [builders.docker] push_timeout or push_stall_timeout",
        )
    if error is None:
        progress.reporter.event("pushed", image=image, digest=progress.digest, message=f"pushed {image}")
        return progress.digest
    if _is_auth_failure(error):
        from rtbuild.oci import get_credentials

        creds = get_credentials(ref.registry)
        hint = f"log in with `docker login {ref.registry}` or put credentials for it in"
        hint += " $DOCKER_CONFIG/config.json (~/.docker/config.json)"
        if creds is not None:  # where they came from, never what they are
            hint = f"the credentials for {ref.registry} from {creds.source or 'the docker config'} were sent"
            hint += f" and refused, or may not push there: check them with `docker login {ref.registry}`"
        raise RegistryAuthError(
            f"registry {ref.registry} refused the push of {image}: {error}",
            step="push",
            log_tail=list(progress.tail),
            hint=hint,
        )
    message = f"pushing {image} to {ref.registry} failed: {error}"
    hint = "check the registry accepts pushes for this repository (its logs say why it refused)"
    if "does not exist locally" in error or "No such image" in error:
        hint = f"build or tag {image} locally before pushing it"
    elif any(marker in error for marker in _UNREACHABLE_MARKERS):
        message = f"registry {ref.registry} is unreachable, pushing {image} failed: {error}"
        hint = f"check that the registry {ref.registry} is running and reachable from the Docker engine"
    elif _SERVER_ERROR.search(error):  # the engine tried each layer 5 times; the registry's answer is its own
        hint = f"the registry {ref.registry} failed each time the engine tried: its log says why (often a full disk"
        hint += " or a storage backend that is down); push again once it is fixed"
    raise PushError(message, step="push", log_tail=list(progress.tail), hint=hint)


__all__ = [
    "PULL_STALL_S",
    "PULL_TIMEOUT_S",
    "PUSH_STALL_S",
    "PUSH_TIMEOUT_S",
    "docker_client",
    "image_exists",
    "push_image",
]
