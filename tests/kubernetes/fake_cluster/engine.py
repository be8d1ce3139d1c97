"""A small async client of the Docker Engine API over its unix socket, for the container
lifecycle (create, start, wait, inspect, stop, remove, pull). Exec and logs go through the
docker CLI (`docker exec -i`, `docker logs -f`), see podio.py."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any
from urllib.parse import quote

import aiohttp

SOCKET = "/var/run/docker.sock"
API = "http://docker/v1.41"
LABEL = "rtbuild-fake-cluster"  # every container the fake starts carries it (value: the cluster id)
PID_LABEL = "rtbuild-fake-cluster.pid"  # the test process; its containers go when it died
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


class EngineError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Engine:
    def __init__(self, socket_path: str = SOCKET) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._socket = socket_path

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self._socket, limit=32),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        async with self.session.request(method, API + path, json=body, params=params) as resp:
            data = await resp.read()
            if resp.status >= 400:
                try:
                    message = json.loads(data).get("message", "")
                except ValueError:
                    message = data.decode(errors="replace")
                raise EngineError(resp.status, message)
            if not data:
                return None
            try:
                return json.loads(data)
            except ValueError:
                return data.decode(errors="replace")

    async def image(self, ref: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call("GET", f"/images/{quote(ref, safe='')}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def pull(self, ref: str) -> None:
        """Pull ``ref`` (the fake only pulls from loopback registries); raises EngineError."""
        name, tag = ref, "latest"
        if "@" in ref:
            name, tag = ref.split("@", 1)
        elif ":" in ref.rsplit("/", 1)[-1]:
            name, tag = ref.rsplit(":", 1)
        async with self.session.post(API + "/images/create", params={"fromImage": name, "tag": tag}) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise EngineError(resp.status, text.strip())
        # Errors during the pull come as JSON lines with "error" in a 200 answer.
        for line in text.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("error"):
                raise EngineError(500, message["error"])

    async def create(self, name: str, config: dict[str, Any]) -> str:
        result = await self._call("POST", "/containers/create", config, params={"name": name})
        return str(result["Id"])

    async def start(self, cid: str) -> None:
        await self._call("POST", f"/containers/{cid}/start")

    async def wait(self, cid: str) -> int:
        result = await self._call("POST", f"/containers/{cid}/wait", params={"condition": "not-running"})
        return int(result.get("StatusCode", -1))

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call("GET", f"/containers/{cid}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def stop(self, cid: str, grace: int) -> None:
        try:
            await self._call("POST", f"/containers/{cid}/stop", params={"t": str(max(grace, 0))})
        except EngineError as exc:
            if exc.status not in (304, 404):
                raise

    async def kill(self, cid: str) -> None:
        try:
            await self._call("POST", f"/containers/{cid}/kill")
        except EngineError as exc:
            if exc.status not in (404, 409):
                raise

    async def remove(self, cid: str) -> None:
        try:
            await self._call("DELETE", f"/containers/{cid}", params={"force": "true", "v": "true"})
        except EngineError as exc:
            if exc.status not in (404, 409):
                raise

    async def containers(self, *labels: str) -> list[str]:
        """Ids of the containers (running or not) carrying every ``key=value`` label."""
        result = await self._call(
            "GET", "/containers/json", params={"all": "true", "filters": json.dumps({"label": list(labels)})}
        )
        return [str(c["Id"]) for c in result]
