"""P6: peak RSS of the rtbuild process while building a 2 GB context.

rtbuild runs under a small wrapper that reports ``VmHWM`` from ``/proc/self/status`` at
exit (the process's own RSS high-water mark; the docker CLI it starts is a separate
process and not counted), cross-checked by polling ``VmHWM`` and RSS with psutil.
Three runs: a first build with an empty stat cache (every byte hashed, then the engine
build), the unchanged rebuild, and an engine build without cache (the whole context
sent and copied).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

from common import IMAGE_REPO, PYTHON, WORK, BenchError, Row, bench_env, docker_rmi, ensure_context, log

CONTEXT_2G = {
    "name": "ctx-2gb",
    "total_bytes": 2_000_000_000,
    "files": 4_000,
    "seed": 2000,
    "dockerfile": "FROM busybox:latest\nCOPY . /ctx\n",
}
TAG = f"{IMAGE_REPO}/p6:latest"
LIMIT_MB = 100.0
#: Runs the CLI and records the process's peak RSS: VmHWM, the high-water mark of this
#: process's own address space (ru_maxrss is not used: on Linux it also counts the
#: parent's pages the child had before exec).
WRAPPER = """
import json, sys
from rtbuild.cli._main import main
code = main(sys.argv[2:])
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
with open(sys.argv[1], "w") as out:
    json.dump({"exit": code, "vmhwm_kb": int(status["VmHWM"].split()[0])}, out)
sys.exit(code)
"""


def _measure(ctx: Path, env: dict[str, str], label: str, extra: list[str]) -> tuple[float, float, dict[str, object]]:
    import psutil

    report = WORK / "p6-rusage.json"
    argv = [PYTHON, "-c", WRAPPER, str(report), "build", str(ctx), "-t", TAG, "-q", "--json", *extra]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    polled = [0]

    def poll() -> None:
        try:
            handle = psutil.Process(proc.pid)
            while proc.poll() is None:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        polled[0] = max(polled[0], int(line.split()[1]))
                polled[0] = max(polled[0], handle.memory_info().rss // 1024)
                time.sleep(0.02)
        except (psutil.Error, OSError):
            pass

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    if proc.returncode != 0:
        raise BenchError(f"P6: {label} failed:\n{err[-2000:]}")
    usage = json.loads(report.read_text())
    result = json.loads(out)
    return usage["vmhwm_kb"] / 1024, polled[0] / 1024, result


def run_scenario(reps: int, quick: bool) -> list[Row]:
    ctx = ensure_context(**CONTEXT_2G)  # type: ignore[arg-type]
    cache = WORK / "p6-xdg-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = bench_env(XDG_CACHE_HOME=str(cache))
    docker_rmi(TAG)
    rows = []
    runs = [
        ("P6a", "first build (empty stat cache: hash 2 GB, then build)", []),
        ("P6b", "unchanged rebuild (no-op skip)", []),
        ("P6c", "engine build without cache (--extra=--no-cache: 2 GB sent and copied)", ["--extra=--no-cache"]),
    ]
    for row_id, label, extra in runs:
        started = time.perf_counter()
        peak, polled, result = _measure(ctx, env, label, extra)
        took = time.perf_counter() - started
        log(f"P6: {label}: peak RSS {peak:.1f} MB (polled {polled:.1f} MB), cached={result['cached']}, {took:.1f}s")
        rows.append(
            Row(
                row_id,
                "P6 2 GB context",
                f"peak RSS of rtbuild, {label}",
                peak,
                "MB",
                f"<= {LIMIT_MB:.0f} MB",
                peak <= LIMIT_MB,
                medians_s={"build": took},
                reps=1,
                note=f"VmHWM at exit; polled VmHWM/RSS {polled:.1f} MB; cached={result['cached']}",
            )
        )
    return rows


def cleanup() -> None:
    docker_rmi(TAG)
    shutil.rmtree(WORK / "p6-xdg-cache", ignore_errors=True)
