"""The context upload's hand-off to the init container, in a real container.

The init container (``manifests._WAIT_SCRIPT``) waits for the upload's ready marker. If it
exited as soon as the marker appeared, the kernel would kill the upload's shell with the
container whenever that shell had not exited yet, and an upload that worked would report
exit code 137 (seen once in a full suite run under load). Here the upload's shell lingers
on purpose after writing the marker, so the race is certain, not a matter of timing.
"""

from __future__ import annotations

import subprocess
import uuid

from rtbuild_kubernetes.manifests import _WAIT_SCRIPT, READY_MARKER, UPLOAD_DONE

IMAGE = "busybox:latest"


def test_the_init_container_outlives_the_upload_that_readied_it(docker_engine: str) -> None:
    name = f"rtbuild-handoff-{uuid.uuid4().hex[:12]}"
    wait = _WAIT_SCRIPT.format(ready=READY_MARKER, ticks=150, timeout=30)
    marker_dir = READY_MARKER.rsplit("/", 1)[0]
    start = [docker_engine, "run", "-d", "--name", name, IMAGE, "sh", "-c", f"mkdir -p {marker_dir} && {wait}"]
    subprocess.run(start, check=True, capture_output=True, timeout=60)
    try:
        # The upload's own ending (jobrun._upload), then one more second of life.
        upload = f"{UPLOAD_DONE} && sleep 1"
        proc = subprocess.run(
            [docker_engine, "exec", name, "sh", "-c", upload], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, (proc.returncode, proc.stderr)
        waited = subprocess.run([docker_engine, "wait", name], capture_output=True, text=True, timeout=60)
        assert waited.stdout.strip() == "0"  # the init container ended cleanly, after the upload
    finally:
        subprocess.run([docker_engine, "rm", "-f", name], capture_output=True, timeout=60)
