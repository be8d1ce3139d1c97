"""Shared pieces of the benchmarks: paths, timing, deterministic contexts, result rows.

Every comparison is measured in the same run, alternating the arms round by round (the
order rotates each round) after one unrecorded warm-up, and summarised by medians: the
machine is shared and noisy, so ratios between arms are what the targets are about.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RTBUILD = str(BIN / "rtbuild")
PYTHON = sys.executable
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")
#: Generated contexts and scratch files live outside the repository, reused between runs.
WORK = Path(os.environ.get("RTBUILD_BENCH_DIR", "/var/tmp/rtbuild-bench"))
IMAGE_REPO = "rtbuild-bench"
#: Bump when the generator changes, so stale contexts are regenerated.
GENERATOR_VERSION = 1


class BenchError(RuntimeError):
    """A benchmark step failed (a command exited non-zero, a check did not hold)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- environment ------------------------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every rtbuild process: an isolated cache dir (stat cache, locks)
    so runs do not depend on the user's ~/.cache, and the docker builder selected."""
    env = dict(os.environ)
    env.setdefault("XDG_CACHE_HOME", str(WORK / "xdg-cache"))
    env["RTBUILD_BUILDER"] = "docker"
    env.pop("RTBUILD_TRACE_HOOKS", None)
    env.update(extra)
    return env


def run(
    argv: Sequence[str], env: Mapping[str, str] | None = None, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), env=dict(env) if env is not None else None, capture_output=True, text=True)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(argv[:6])} ... exited {proc.returncode}:\n{tail}")
    return proc


def timed(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Callable[[], None]:
    """An arm that runs ``argv`` (wall time includes process start-up, as a user sees it)."""

    def arm() -> None:
        run(argv, env)

    return arm


def docker_rmi(*images: str) -> None:
    if images:
        run([DOCKER, "rmi", "-f", *images], check=False)


def flush_writeback() -> None:
    """Untimed, after a cold build's cleanup: write the dirty pages it left (hundreds of MB
    of layers) to disk now, so the next run, of either arm, does not pay for them. Without
    it cold-build samples climbed run after run (P7b: 30 s to 57 s in both arms)."""
    os.sync()


def bench_images() -> list[str]:
    proc = run([DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{IMAGE_REPO}/*"], check=False)
    return [line for line in proc.stdout.split() if line and not line.endswith(":<none>")]


def cleanup_images() -> None:
    """Remove every image the benchmarks tagged (``rtbuild-bench/*``)."""
    images = bench_images()
    docker_rmi(*images)
    run([DOCKER, "image", "prune", "-f", "--filter", f"label=org.rtbuild.bench={IMAGE_REPO}"], check=False)


# --- timing -----------------------------------------------------------------------------


def alternate(
    arms: Mapping[str, Callable[[], Any]],
    reps: int,
    *,
    warmup: bool = True,
    before: Callable[[str], Any] | None = None,
    after: Callable[[str], Any] | None = None,
) -> dict[str, list[float]]:
    """Run each arm ``reps`` times, round-robin with a rotating order; wall seconds per run.

    ``before(arm)`` / ``after(arm)`` run untimed around every run (fresh inputs, cleanup).
    """
    names = list(arms)

    def once(name: str) -> float:
        if before is not None:
            before(name)
        started = time.perf_counter()
        arms[name]()
        elapsed = time.perf_counter() - started
        if after is not None:
            after(name)
        return elapsed

    if warmup:
        for name in names:
            once(name)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(reps):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(once(name))
    return samples


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- result rows ------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a measured value next to its target."""

    id: str
    scenario: str
    compares: str
    value: float
    unit: str  # "x" (ratio), "ms", "MB", "builds", "%"
    target: str
    ok: bool
    medians_s: dict[str, float] = field(default_factory=dict)
    samples_s: dict[str, list[float]] = field(default_factory=dict)
    reps: int = 0
    note: str = ""
    #: An absolute value's ratio to its baseline, printed next to it (P4: vs python -c pass).
    ratio: float | None = None
    baseline: str = ""

    def shown(self) -> str:
        if self.ratio is not None:
            return f"{self.value:.0f} {self.unit} ({self.ratio:.2f}x {self.baseline})"
        if self.unit == "x":
            return f"{self.value:.3g}x"
        if self.unit == "%":
            return f"{self.value:+.1f}%"
        if self.unit == "builds":
            return f"{self.value:g} build{'s' if self.value != 1 else ''}"
        if self.unit == "ms" and abs(self.value) < 10:
            return f"{self.value:.2f} {self.unit}"
        return f"{self.value:.0f} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["medians_s"] = {k: round(v, 4) for k, v in self.medians_s.items()}
        data["samples_s"] = {k: [round(x, 4) for x in v] for k, v in self.samples_s.items()}
        data["value"] = round(self.value, 4)
        return data


def overhead_row(
    row_id: str, scenario: str, samples: Mapping[str, list[float]], ours: str, theirs: str, note: str
) -> Row:
    """A row for rtbuild's extra time over the engine's own CLI, in percent, against 5%."""
    medians = {k: median(v) for k, v in samples.items()}
    overhead = (medians[ours] / medians[theirs] - 1) * 100
    log(f"{row_id}: medians {', '.join(f'{k}: {v:.2f}s' for k, v in medians.items())}; {overhead:+.1f}%")
    return Row(
        row_id,
        scenario,
        f"{ours} vs {theirs}",
        overhead,
        "%",
        "overhead <= 5%",
        overhead <= 5.0,
        medians_s=medians,
        samples_s={k: list(v) for k, v in samples.items()},
        reps=len(samples[ours]),
        note=note,
    )


def ratio_row(
    row_id: str,
    scenario: str,
    samples: Mapping[str, list[float]],
    numerator: str,
    denominator: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    target: str,
    note: str = "",
) -> Row:
    """A row for median(numerator) / median(denominator) against a bound."""
    medians = {name: median(values) for name, values in samples.items()}
    value = medians[numerator] / medians[denominator]
    ok = (at_most is None or value <= at_most) and (at_least is None or value >= at_least)
    return Row(
        row_id,
        scenario,
        f"{numerator} / {denominator}",
        value,
        "x",
        target,
        ok,
        medians_s={k: medians[k] for k in (numerator, denominator)},
        samples_s={k: list(samples[k]) for k in (numerator, denominator)},
        reps=len(samples[numerator]),
        note=note,
    )


# --- deterministic contexts -------------------------------------------------------------


def _text_block(rng: random.Random, size: int) -> bytes:
    """Source-like, compressible text (a minority of the files)."""
    words = ["def", "return", "import", "self", "value", "config", "build", "image", "layer", "tag", "=", "(", ")"]
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n").encode()
    return bytes(out[:size])


def ensure_context(
    name: str, *, total_bytes: int, files: int, seed: int, dockerfile: str, files_per_dir: int = 100
) -> Path:
    """A generated build context under WORK/NAME, reused when already complete.

    File sizes follow a seeded log-normal spread scaled to ``total_bytes`` exactly; nine
    files in ten hold seeded random bytes (incompressible), one in ten source-like text.
    Same parameters, same bytes, on every machine.
    """
    target = WORK / name
    spec = {
        "generator": GENERATOR_VERSION,
        "total_bytes": total_bytes,
        "files": files,
        "seed": seed,
        "dockerfile": dockerfile,
    }
    marker = target / ".bench-context.json"
    try:
        if json.loads(marker.read_text()) == spec and (target / "Dockerfile").is_file():
            return target
    except (OSError, ValueError):
        pass
    log(f"generating {name}: {files} files, {total_bytes / 1e6:.0f} MB (seed {seed}) in {target}")
    started = time.perf_counter()
    tmp = WORK / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(files)]
    scale = total_bytes / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += total_bytes - sum(sizes)
    for index, size in enumerate(sizes):
        directory = tmp / f"d{index // (files_per_dir * 10):03d}" / f"s{(index // files_per_dir) % 10}"
        if index % files_per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        data = _text_block(rng, size) if index % 10 == 0 else rng.randbytes(size)
        (directory / f"f{index:05d}.{'txt' if index % 10 == 0 else 'bin'}").write_bytes(data)
    (tmp / "Dockerfile").write_text(dockerfile)
    (tmp / ".bench-context.json").write_text(json.dumps(spec))
    # Old mtimes keep every file out of the stat cache's "racy" window from the start.
    old = time.time() - 3600
    for dirpath, _dirs, names in os.walk(tmp):
        for file_name in names:
            os.utime(os.path.join(dirpath, file_name), (old, old))
    tmp.rename(target)
    log(f"generated {name} in {time.perf_counter() - started:.1f}s")
    return target


def stat_walk(root: str) -> int:
    """The floor: a bare Python walk that stats every file, as any change check must."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    count += 1
    return count


# --- the machine ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gb = round(pages / 1e9, 1)
    except (ValueError, OSError):
        pass
    engine = run([DOCKER, "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    client = run([DOCKER, "version", "--format", "{{.Client.Version}}"], check=False).stdout.strip()
    return {
        "hostname": platform.node(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker_engine": engine,
        "docker_client": f"{DOCKER} {client}",
    }


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) CPU time of all CPUs so far, in clock ticks, from ``/proc/stat``;
    ``None`` where there is none. Steal is time the hypervisor gave this machine's virtual
    CPUs to other guests: a scenario measured under steal ran on less machine."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal; guest time is already in user.
    ticks = [int(value) for value in fields[1:9]]
    return ticks[7], sum(ticks)


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen between two :func:`cpu_times` readings, in percent."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def git_commit() -> str:
    proc = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False)
    return proc.stdout.strip()


# --- BuildKit cache hygiene -------------------------------------------------------------

_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _size(text: str) -> int:
    for unit in ("kB", "MB", "GB", "TB", "B"):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * _UNITS[unit])
            except ValueError:
                return 0
    return 0


def build_cache() -> dict[str, int]:
    """BuildKit cache records (id -> bytes), from ``docker system df -v``."""
    proc = run([DOCKER, "system", "df", "-v"], check=False)
    records: dict[str, int] = {}
    in_cache = False
    for line in proc.stdout.splitlines():
        if line.startswith("CACHE ID"):
            in_cache = True
            continue
        parts = line.split()
        if in_cache and len(parts) >= 3:
            records[parts[0]] = _size(parts[2])
    return records


def reset_engine_cache() -> str:
    """Start from an engine without stale build cache or dangling images.

    BuildKit's cache grows with every build the tests and earlier runs made, and a full
    one slows the builds measured here: with 17,725 records (31 GB) on this machine, P8's
    one-file change took 1.16 s; after pruning, 0.68 s (and the CLI exact hit 201 -> 172 ms).
    Every run then starts from the same engine state. Only cache and untagged images go.
    """
    images = prune_dangling_images()
    cache = run([DOCKER, "builder", "prune", "-a", "-f"], check=False).stdout.strip().splitlines()
    return f"{images} and build cache ({cache[-1] if cache else 'none'})"


def prune_dangling_images() -> str:
    """Remove untagged images (a rebuilt tag's old image; the run's own arms make many)."""
    lines = run([DOCKER, "image", "prune", "-f"], check=False).stdout.strip().splitlines()
    return f"pruned dangling images ({lines[-1] if lines else 'none'})"


class CacheJanitor:
    """Removes the large BuildKit cache records made since the last snapshot.

    Cold builds without cache leave a record per run (470 MB for P2, 2 GB for P6): four
    full runs once filled this machine's disk. Records are pruned one by one by id, so
    the rest of the engine's cache (other users' builds) stays.
    """

    def __init__(self, min_bytes: int = 20_000_000) -> None:
        self.min_bytes = min_bytes
        self.known = build_cache()
        self.freed = 0

    def sweep(self) -> int:
        now = build_cache()
        fresh = [cid for cid, size in now.items() if cid not in self.known and size >= self.min_bytes]
        for cid in fresh:
            run([DOCKER, "builder", "prune", "-f", "--filter", f"id={cid}"], check=False)
            self.freed += now[cid]
        self.known = {cid: size for cid, size in now.items() if cid not in fresh}
        return len(fresh)
