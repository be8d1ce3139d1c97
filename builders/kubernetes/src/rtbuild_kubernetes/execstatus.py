"""A ``pods/exec`` call over the websocket channel protocol: stdin on channel 0 (v5 closes it
explicitly), stderr lines on channel 2, then the Status on channel 3 (``NonZeroExitCode`` with
the exit code as a cause)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from rtbuild import AgentRuntimeBuildError

from .clusterauth import auth_error
from .failures import UploadError

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
_CHUNK = 256 * 1024


def send_stdin(connect: Callable[[], Any], stream: IO[bytes], size: int) -> int:
    """Send ``size`` bytes of ``stream`` over the exec websocket ``connect()`` opens; the
    command's exit code. A refused upgrade is raised as it is (the caller may ask again); a
    connection that breaks is an :class:`UploadError`."""
    from httpx2.websockets import HTTPXWSException, WebSocketUpgradeError

    try:
        with connect() as ws:
            sent = 0
            while sent < size:
                chunk = stream.read(min(_CHUNK, size - sent))
                if not chunk:
                    break
                ws.send_bytes(b"\x00" + chunk)
                sent += len(chunk)
            if ws.subprotocol == V5:
                ws.send_bytes(b"\xff\x00")
            return exit_status(ws, sent, size)
    except HTTPXWSException as exc:
        if isinstance(exc, WebSocketUpgradeError):
            raise
        raise UploadError(
            f"the context upload connection broke: {type(exc).__name__} {exc}".strip(),
            step="upload context",
            hint="the API server or a proxy closed the exec stream; retry, or use transport = 'registry'",
            blame="cluster",
        ) from exc


def exit_status(ws: Any, sent: int, size: int) -> int:
    stderr: list[str] = []
    while True:
        try:
            message = ws.receive_bytes(timeout=600)
        except Exception as exc:
            raise UploadError(
                f"the upload connection closed before the command finished ({sent} of {size} bytes sent): {exc!r}",
                step="upload context",
                log_tail=stderr[-10:],
            ) from exc
        channel, body = message[0], message[1:]
        if channel == 2:
            stderr += body.decode("utf-8", "replace").splitlines()
        elif channel == 3:
            status = json.loads(body or b"{}")
            if status.get("status") == "Success":
                return 0
            for cause in (status.get("details") or {}).get("causes", []):
                if cause.get("reason") == "ExitCode":
                    code = int(cause.get("message", "1"))
                    if code:
                        raise UploadError(
                            f"unpacking the context in the pod failed (exit code {code}, {sent} of {size} bytes sent)",
                            step="upload context",
                            log_tail=stderr[-10:],
                            hint="the init container needs sh, head and tar, and room in its emptyDir",
                        )
                    return 0
            raise UploadError(f"the upload command failed: {status.get('message', status)}", step="upload context")


def upgrade_error(exc: Any, namespace: str) -> AgentRuntimeBuildError:
    """A refused pods/exec websocket upgrade: RBAC's error for 401/403, else an UploadError."""
    code = exc.response.status_code
    try:
        message = json.loads(exc.response.read()).get("message", "")
    except Exception:  # the body of a refused upgrade is optional
        message = ""
    if code in (401, 403):
        return auth_error("create", "pods/exec", code, message, namespace)
    return UploadError(f"the context upload was refused: HTTP {code} {message}".strip(), step="upload context")


__all__ = ["V4", "V5", "exit_status", "send_stdin", "upgrade_error"]
