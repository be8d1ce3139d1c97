"""A kubeconfig exec plugin runs once for threads asking at once (a multi-platform build's
Jobs, build-many's workers), as client-go serialises it: each thread ran it, which for a
plugin that logs in interactively meant one login per thread. The builder also connects
once for all its threads. No cluster: the auth flow is driven by hand."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.kubeauth import ExecAuth
from rtbuild_kubernetes.settings import settings_from_table

THREADS = 4


def _plugin(root: Path) -> Path:
    script = root / "plugin.sh"
    status = '{"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "status": {"token": "T"}}'
    # Slow on purpose: every thread has asked before the first run ends.
    script.write_text(f"#!/bin/sh\necho run >> {root}/runs\nsleep 0.5\nprintf '%s' '{status}'\n")
    script.chmod(0o755)
    return script


def _at_once(work: Any) -> None:
    barrier = threading.Barrier(THREADS)

    def run() -> None:
        barrier.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_threads_share_one_plugin_run(tmp_path: Path) -> None:
    spec = SimpleNamespace(
        apiVersion="client.authentication.k8s.io/v1", command=str(_plugin(tmp_path)), args=[], env=[], installHint=None
    )
    auth = ExecAuth(spec, "kubeconfig")
    sent: list[str] = []

    def ask() -> None:
        flow = auth.sync_auth_flow(httpx2.Request("GET", "https://cluster.invalid/api"))
        sent.append(next(flow).headers["Authorization"])

    _at_once(ask)
    assert sent == ["Bearer T"] * THREADS
    assert (tmp_path / "runs").read_text().splitlines() == ["run"]


def test_threads_share_one_client(monkeypatch: Any) -> None:
    made: list[object] = []

    def connect(settings: Any) -> object:
        threading.Event().wait(0.3)  # a slow connect: the others ask meanwhile
        made.append(object())
        return made[-1]

    import rtbuild_kubernetes.client as client_module

    monkeypatch.setattr(client_module, "connect", connect)
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))
    got: list[object] = []
    _at_once(lambda: got.append(builder.client()))
    assert len(made) == 1 and got == made * THREADS
