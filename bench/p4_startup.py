"""P4: start-up of ``rtbuild --version`` and ``rtbuild plugins`` against ``python -c pass``,
with the repository's distributions, then with 50 extra fake plugin distributions on
PYTHONPATH (dist-info directories with entry points, and one small module each)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from common import PYTHON, RTBUILD, WORK, Row, alternate, bench_env, log, median, run, timed

FAKE_PLUGINS = 50
PLUGIN_SOURCE = '''"""Fake rtbuild plugin {index} for the start-up benchmark."""
from rtbuild import hookimpl


@hookimpl
def pre_build(request):
    request.data.setdefault("bench_fake_plugins", []).append({index})
'''


def fake_site(count: int = FAKE_PLUGINS) -> Path:
    """A directory of ``count`` installed fake plugin distributions (regenerated each run)."""
    root = WORK / f"fake-plugins-{count}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for index in range(count):
        module = f"rtbench_fake_plugin_{index:02d}"
        (root / f"{module}.py").write_text(PLUGIN_SOURCE.format(index=index))
        info = root / f"rtbench_fake_plugin_{index:02d}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: rtbench-fake-plugin-{index:02d}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[rtbuild.plugins]\nbench-fake-{index:02d} = {module}\n")
        (info / "RECORD").write_text("")
    return root


def _rows(samples: dict[str, list[float]], suffix: str, plugins_limit_ms: float, label: str) -> list[Row]:
    base = median(samples["python -c pass"])
    rows = []
    for row_id, arm, limit in (
        (f"P4a{suffix}", "rtbuild --version", 100.0),
        (f"P4b{suffix}", "rtbuild plugins", plugins_limit_ms),
    ):
        value = median(samples[arm]) * 1000
        rows.append(
            Row(
                row_id,
                f"P4 start-up{label}",
                arm,
                value,
                "ms",
                f"<= {limit:.0f} ms",
                value <= limit,
                medians_s={arm: median(samples[arm]), "python -c pass": base},
                samples_s={arm: samples[arm], "python -c pass": samples["python -c pass"]},
                reps=len(samples[arm]),
                note=f"python -c pass: {base * 1000:.0f} ms",
                ratio=value / (base * 1000),
                baseline="python -c pass",
            )
        )
    return rows


def _arms(env: dict[str, str]) -> dict[str, Callable[[], None]]:
    """The three commands P4 times, in one environment."""
    return {
        "python -c pass": timed([PYTHON, "-c", "pass"], env),
        "rtbuild --version": timed([RTBUILD, "--version"], env),
        "rtbuild plugins": timed([RTBUILD, "plugins"], env),
    }


def run_scenario(reps: int, quick: bool) -> list[Row]:
    reps = max(reps * 3, 15) if not quick else max(reps, 5)
    env = bench_env()
    log(f"P4: {reps} alternating rounds, repository distributions only")
    plain = alternate(_arms(env), reps)
    site = fake_site()
    env50 = bench_env(PYTHONPATH=str(site))
    listed = run([RTBUILD, "plugins"], env50).stdout
    seen = sum(1 for line in listed.splitlines() if line.startswith("bench-fake-"))
    if seen != FAKE_PLUGINS:
        raise RuntimeError(f"P4: rtbuild plugins listed {seen} of the {FAKE_PLUGINS} fake plugins:\n{listed[-2000:]}")
    log(f"P4: {reps} alternating rounds with {FAKE_PLUGINS} extra fake plugin distributions")
    extra = alternate(_arms(env50), reps)
    for name, values in plain.items():
        log(f"P4: median {name}: {median(values) * 1000:.1f} ms")
    for name, values in extra.items():
        log(f"P4: median {name} (+{FAKE_PLUGINS} plugins): {median(values) * 1000:.1f} ms")
    return _rows(plain, "", 150.0, "") + _rows(extra, "+50", 200.0, f" with {FAKE_PLUGINS} extra plugins")


def cleanup() -> None:
    shutil.rmtree(WORK / f"fake-plugins-{FAKE_PLUGINS}", ignore_errors=True)
