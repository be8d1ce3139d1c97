"""A build context larger than the build pod's workspace (``limits.ephemeral-storage``, the
``emptyDir``'s ``sizeLimit``) fails before any Job is created, as the user's error: it was
uploaded whole and the kubelet then evicted the pod. The cluster is never reached here (a
build that goes on stops at ``client()``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildContextError, BuildRequest
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.context_tar import quantity_bytes
from rtbuild_kubernetes.run import run_build
from rtbuild_kubernetes.settings import settings_from_table


class Reached(Exception):
    """The build went on to the cluster."""


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str) -> Any:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY big /big\n")
    (tmp_path / "big").write_bytes(b"x" * 64 * 1024)
    table = {"namespace": "builds", "limits": {"memory": "4Gi", "ephemeral-storage": limit}}
    builder = KubernetesBuilder(settings_from_table(table))

    def reached() -> Any:
        raise Reached

    monkeypatch.setattr(builder, "client", reached)
    request = BuildRequest(path=str(tmp_path), tags=["127.0.0.1:9/team/app:1"], no_cache=True)
    return run_build(builder, request, "b1")


def test_a_context_over_the_workspace_limit_creates_no_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BuildContextError) as caught:
        _run(tmp_path, monkeypatch, "32Ki")
    assert caught.value.exit_code == 2
    assert caught.value.step == "upload context"
    assert "limits.ephemeral-storage = 32Ki" in str(caught.value)
    assert ".dockerignore" in (caught.value.hint or "")
    assert not list((tmp_path / "tmp").iterdir())  # the context's tar is removed


def test_a_context_within_the_limit_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Reached):
        _run(tmp_path, monkeypatch, "1Mi")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20Gi", 20 * 2**30), ("5G", 5e9), ("1e9", 1e9), ("1E", 1e18), ("1.5Mi", 1.5 * 2**20), ("x", None)],
)
def test_quantities(text: str, expected: float | None) -> None:
    assert quantity_bytes(text) == expected
