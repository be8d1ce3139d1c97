"""FakeCluster: the protocol-level fake Kubernetes API server plus its kubelet stand-in,
served by aiohttp on https://127.0.0.1:<random port> from a background thread.

It is test support for rtbuild's Kubernetes builder, not a Kubernetes implementation: one node,
one pod per Job, pods run in the local dockerd (see docs/testing/fake-cluster.md)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .api import RequestRecord, make_middleware
from .controllers import JobController
from .engine import LABEL, PID_LABEL, Engine
from .faults import Faults
from .garbage import GarbageCollector
from .kubelet import Kubelet
from .nodes import HOST_ARCH, node_object
from .podio import ABRUPT
from .routes import routes
from .selectors import LabelSelector
from .store import Store, Watcher

T = TypeVar("T")
Obj = dict[str, Any]


def _make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt, ext = (
        directory / "server.key",
        directory / "server.csr",
        directory / "server.crt",
        directory / "ext.cnf",
    )
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", *curve, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "3",
        "-subj", "/CN=rtbuild-fake-cluster-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *curve, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=rtbuild-fake-cluster")
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "3", "-extfile", str(ext))  # fmt: skip
    return ca_crt, crt, key


class FakeCluster:
    def __init__(
        self,
        workdir: Path | None = None,
        namespace: str = "rtbuild-test",
        tls: bool = True,
        enforce_limits: bool = True,
        extra_archs: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="rtbuild-fake-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.namespace = namespace
        self.id = secrets.token_hex(4)
        self.token = "rtbuild-fake-" + secrets.token_urlsafe(24)
        self.tls = tls
        self.enforce_limits = enforce_limits
        # The host's node first; nodes for other architectures only when a test asks (nodes.py).
        self.archs = (HOST_ARCH, *[a for a in extra_archs if a != HOST_ARCH])
        self.port = 0
        self.records: list[RequestRecord] = []
        self.faults = Faults(self)
        self.open_watches: set[Watcher] = set()
        self.execs: set[asyncio.subprocess.Process] = set()
        self.kubeconfig_path = self.workdir / "kubeconfig"
        self.ca_path: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def kubeconfig(self) -> Path:
        """Alias of ``kubeconfig_path``."""
        return self.kubeconfig_path

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeCluster:
        ssl_context = None
        if self.tls:
            self.ca_path, crt, key = _make_certs(self.workdir)
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(crt, key)
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._setup(ssl_context))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="rtbuild-fake-cluster", daemon=True)
        self._thread.start()
        ready.wait(60)
        if failure:
            raise RuntimeError(f"the fake cluster did not start: {failure[0]!r}") from failure[0]
        self.write_kubeconfig(self.kubeconfig_path)
        return self

    async def _setup(self, ssl_context: ssl.SSLContext | None) -> None:
        self.store = Store()
        self.engine = Engine()
        await self._remove_stale_containers()
        self.kubelet = Kubelet(self.store, self.engine, self.workdir, self.id, self.enforce_limits, self.archs)
        for arch in self.archs:
            self.store.create("nodes", "", node_object(arch))
        self.jobs = JobController(self.store, self.kubelet)
        self.garbage = GarbageCollector(self.store, self.jobs)
        for name in ("default", "kube-system", self.namespace):
            self._add_namespace(name)
        app = web.Application(middlewares=[make_middleware(self)], client_max_size=64 * 1024 * 1024)
        app.router.add_routes(routes(self))
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def _add_namespace(self, name: str) -> None:
        if self.store.get("namespaces", "", name) is None:
            self.store.create(
                "namespaces",
                "",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )

    async def _remove_stale_containers(self) -> None:
        """Containers left by a fake cluster whose test process died (SIGKILL) go first."""
        for cid in await self.engine.containers(LABEL):
            info = await self.engine.inspect(cid) or {}
            pid = (info.get("Config", {}).get("Labels") or {}).get(PID_LABEL, "")
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                await self.engine.remove(cid)

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            self.call(self._shutdown(), timeout=120)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(30)
            self._loop = None
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _shutdown(self) -> None:
        self.jobs.cancel_all()
        tasks = list(self.kubelet.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.end_watches(abrupt=False)
        for proc in list(self.execs):
            if proc.returncode is None:
                proc.kill()
        ids = await self.engine.containers(f"{LABEL}={self.id}")
        await asyncio.gather(*(self.engine.remove(cid) for cid in ids), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.engine.close()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- calling into the loop ---------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        assert self._loop is not None, "the fake cluster is not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _sync(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.call(wrapper())

    async def end_watches(self, abrupt: bool) -> int:
        watchers = list(self.open_watches)
        for watcher in watchers:
            watcher.queue.put_nowait(ABRUPT if abrupt else None)  # type: ignore[arg-type]
        return len(watchers)

    # -- for tests ---------------------------------------------------------------------
    def write_kubeconfig(self, path: Path, token: str | None = None, namespace: str | None = None) -> Path:
        cluster: Obj = {"server": self.url}
        if self.ca_path is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_path.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "rtbuild-fake", "cluster": cluster}],
            "users": [{"name": "rtbuild-fake", "user": {"token": token if token is not None else self.token}}],
            "contexts": [
                {
                    "name": "rtbuild-fake",
                    "context": {
                        "cluster": "rtbuild-fake",
                        "user": "rtbuild-fake",
                        "namespace": namespace or self.namespace,
                    },
                }
            ],
            "current-context": "rtbuild-fake",
            "preferences": {},
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def create_namespace(self, name: str) -> None:
        self._sync(lambda: self._add_namespace(name))

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self.records)

    def requests_for(self, verb: str | None = None, resource: str | None = None) -> list[RequestRecord]:
        return [r for r in self.records if verb in (None, r.verb) and resource in (None, r.resource)]

    def created(self, resource: str) -> int:
        """How many objects of ``resource`` ("jobs", "pods", "secrets") were created through the
        API since the last reset (successful POSTs; the job controller's pods are not counted)."""
        return len([r for r in self.records if r.verb == "create" and r.resource == resource and r.status == 201])

    def clear_requests(self) -> None:
        self.records.clear()

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        ns = "" if resource in ("namespaces", "nodes") else (namespace or self.namespace)
        return self._sync(lambda: self.store.get(resource, ns, name))

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        ns = None if resource in ("namespaces", "nodes") else (namespace or self.namespace)
        return self._sync(lambda: self.store.list(resource, ns, LabelSelector(label_selector)))

    def wait_for(self, predicate: Callable[[], T], timeout: float = 60, interval: float = 0.05) -> T:
        """Poll ``predicate`` until it returns something truthy (and return that)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake cluster: condition not met within {timeout}s")
            time.sleep(interval)

    def containers(self) -> list[str]:
        """Docker ids of the containers this fake cluster has now (running or exited)."""
        return self.call(self.engine.containers(f"{LABEL}={self.id}"))

    def reset(self) -> None:
        """Back to an empty cluster: every job, pod (and its containers), secret and event goes;
        faults and the request record are cleared."""
        self.faults.clear()
        self.call(self._reset(), timeout=120)
        self.records.clear()

    async def _reset(self) -> None:
        self.jobs.cancel_all()
        for resource in ("jobs", "secrets", "configmaps", "events"):
            for obj in self.store.list(resource):
                self.store.remove(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])
        pods = self.store.list("pods")
        await asyncio.gather(
            *(self.kubelet.delete_pod(p["metadata"]["namespace"], p["metadata"]["name"], 0) for p in pods),
            return_exceptions=True,
        )
        for obj in self.store.list("events"):
            self.store.remove("events", obj["metadata"]["namespace"], obj["metadata"]["name"])
