"""Image pulls as the kubelet does them, within what this machine has: the local dockerd's
images, and pulls from registries on loopback only (there is no other network)."""

from __future__ import annotations

import asyncio
from typing import Any

from .engine import Engine, EngineError
from .events import record_event
from .podstatus import set_container_status, waiting
from .store import Store

Obj = dict[str, Any]


def loopback_registry(ref: str) -> bool:
    host = ref.split("/", 1)[0] if "/" in ref else ""
    return host.startswith(("127.", "localhost", "[::1]"))


async def ensure_image(store: Store, engine: Engine, pod: Obj, container: Obj, group: str) -> str:
    """The local image id. While the image cannot be had, the container waits with
    ErrImagePull, then ImagePullBackOff (or ErrImageNeverPull), with the kubelet's Events."""
    ref, policy = container["image"], container.get("imagePullPolicy", "IfNotPresent")
    backoff = 1.0
    while True:
        info = await engine.image(ref)
        error = None
        if policy == "Never" and info is None:
            message = f'Container image "{ref}" is not present with pull policy of Never'
            record_event(store, pod, "ErrImageNeverPull", message, "Warning")
            set_container_status(store, pod, group, waiting(container, "ErrImageNeverPull", message))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        if policy != "Never" and loopback_registry(ref) and (info is None or policy == "Always"):
            record_event(store, pod, "Pulling", f'Pulling image "{ref}"')
            try:
                await engine.pull(ref)
                info = await engine.image(ref)
                record_event(store, pod, "Pulled", f'Successfully pulled image "{ref}"')
            except EngineError as exc:
                error = exc.message
        elif info is None:
            error = (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": the rtbuild fake '
                "cluster pulls only from 127.0.0.1 registries and this image is not in the local dockerd"
            )
        else:
            record_event(store, pod, "Pulled", f'Container image "{ref}" already present on machine')
        if info is not None and error is None:
            return str(info["Id"])
        record_event(store, pod, "Failed", f'Failed to pull image "{ref}": {error}', "Warning")
        record_event(store, pod, "Failed", "Error: ErrImagePull", "Warning")
        set_container_status(store, pod, group, waiting(container, "ErrImagePull", error))
        await asyncio.sleep(1.0)
        record_event(store, pod, "BackOff", f'Back-off pulling image "{ref}"', "Normal")
        set_container_status(
            store, pod, group, waiting(container, "ImagePullBackOff", f'Back-off pulling image "{ref}"')
        )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 10.0)
