"""build-many on the Kubernetes builder: entries sharing a tag push it once, and the others
read nothing. The build Job pushes (the core's push step only confirms), so the core's
push-once rule (149b6dd) never applied: each further entry read every tag's manifest and
config from the registry to find its image current ('no input changed'). Now the batch
keeps what its Jobs pushed, by input digest and platforms; another entry with the same
inputs reports push_skipped without a registry read. Never stale: a context changed during
the batch (other inputs) still reads the registry and builds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import Site, rtbuild, step_image_tag, write_config

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def _events(stderr: str, kind: str) -> list[dict[str, Any]]:
    found = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == kind:
            found.append(event)
    return found


def test_entries_sharing_a_tag_make_one_job(site: Site, cluster: Any) -> None:
    write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag())
    context = site.context("app", "FROM BASE\nCOPY a.txt /a.txt\n", {"a.txt": "a\n"})
    image = f"{site.registry}/team/shared:1"
    blocks = [f'[[build]]\npath = "{context}"\ntags = ["{image}"]\npush = true\n' for _ in range(3)]
    (site.root / "images.toml").write_text("\n".join(blocks))
    proc = rtbuild(
        "build-many",
        str(site.root / "images.toml"),
        "-j",
        "3",
        "--json",
        cwd=site.root,
        env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml"), RTBUILD_BUILDER="kubernetes"),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert [b["status"] for b in report["builds"]] == ["ok"] * 3
    assert len(cluster.requests_for(verb="create", resource="jobs")) == 1
    assert len(_events(proc.stderr, "k8s_pushed")) == 1
    assert len(_events(proc.stderr, "push_skipped")) == 2, proc.stderr[-3000:]
    assert _events(proc.stderr, "cached") == []  # not 'in the registry': not read
