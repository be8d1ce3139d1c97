"""rtbuild-jupyter-check [CODE]: run CODE in a new kernel through the kernel gateway.

Installed in the runtime image (with the venv's interpreter as its shebang) next to
``rtbuild-jupyter-gateway``. It starts a ``python3`` kernel over the gateway's REST API,
sends an ``execute_request`` over the kernel's websocket, prints the output, deletes the
kernel and exits 0 when the code ran without error. Needs only the venv's packages
(tornado comes with the gateway). Gateway address: ``RTBUILD_JUPYTER_URL`` (default
``http://127.0.0.1:$RTBUILD_JUPYTER_PORT``); token: ``RTBUILD_JUPYTER_TOKEN``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
import uuid
from typing import Any

DEFAULT_CODE = "import sys; print('kernel says', 6 * 7, 'from Python', sys.version.split()[0])"


def _request(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **headers}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the gateway is local: no proxy
    with opener.open(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _wait_ready(base: str, headers: dict[str, str], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            _request("GET", f"{base}/api/kernelspecs", headers)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _execute(ws_url: str, headers: dict[str, str], code: str) -> str:
    from tornado import httpclient, websocket

    ws = await websocket.websocket_connect(httpclient.HTTPRequest(ws_url, headers=headers))
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "rtbuild", "session": uuid.uuid4().hex}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
    message = {
        "header": {**header, "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
    }
    await ws.write_message(json.dumps(message))
    status, idle = "", False
    while not (status and idle):  # the reply (shell) and the last output (iopub) may come in any order
        raw = await ws.read_message()
        if raw is None:
            raise RuntimeError("the gateway closed the kernel's websocket")
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, body = msg.get("msg_type"), msg.get("content", {})
        if kind == "stream":
            sys.stdout.write(body.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            print(body.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            print("\n".join(body.get("traceback", [])), file=sys.stderr)
        elif kind == "execute_reply":
            status = str(body.get("status"))
        elif kind == "status" and body.get("execution_state") == "idle":
            idle = True
    ws.close()
    return status


def main(argv: list[str]) -> int:
    code = argv[0] if argv else DEFAULT_CODE
    port = os.environ.get("RTBUILD_JUPYTER_PORT", "8888")
    base = os.environ.get("RTBUILD_JUPYTER_URL", f"http://127.0.0.1:{port}").rstrip("/")
    token = os.environ.get("RTBUILD_JUPYTER_TOKEN")
    headers = {"Authorization": f"token {token}"} if token else {}
    _wait_ready(base, headers, float(os.environ.get("RTBUILD_JUPYTER_WAIT", "60")))
    kernel = _request("POST", f"{base}/api/kernels", headers, {"name": "python3"})
    try:
        ws_base = "ws" + base[len("http") :]
        status = asyncio.run(_execute(f"{ws_base}/api/kernels/{kernel['id']}/channels", headers, code))
    finally:
        _request("DELETE", f"{base}/api/kernels/{kernel['id']}", headers)
    print(f"rtbuild-jupyter-check: kernel {kernel['id']} status {status}", file=sys.stderr)
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
