"""Where a CLI no-op's time goes: interpreter start, imports, config, discovery, walk, engine.

Each sample is a fresh process that does what ``rtbuild build CTX -t TAG -q`` does on an
unchanged context, one phase at a time, and reports each phase's wall time:

- ``interpreter``: ``python -c pass`` (measured as its own process);
- ``imports``: the CLI's own modules (click, the pipeline, the core);
- ``config``: ``load_config()``;
- ``discovery + plugins``: ``get_plugin_manager(config)``, the entry-point scan (cached)
  and the import and registration of every enabled plugin;
- ``builder``: importing and creating the Docker builder;
- ``walk``: ``context_digest`` of the context through the stat cache;
- ``engine query``: the tag and base-image inspects, one concurrent round trip;
- ``rest``: the remaining pipeline of a whole warm ``run_build`` (hooks, build lock,
  digest of the inputs, post-build hooks) = its time minus a warm walk and engine query.

``python bench/noop_profile.py [CTX TAG]`` prints the table (the tag must exist and be
current); P1 adds the medians as ``P1p-*`` rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, Row, bench_env, median, run

PHASES = ("interpreter", "imports", "config", "discovery + plugins", "builder", "walk", "engine query", "rest")

_CHILD = r"""
import json, sys, time
t = time.perf_counter
out = {}
s = t(); import rtbuild.cli._main, rtbuild._framework.pipeline; out["imports"] = t() - s
from rtbuild._framework.config import load_config
from rtbuild._framework.plugins import get_plugin_manager
s = t(); config = load_config(); out["config"] = t() - s
s = t(); pm = get_plugin_manager(config); out["discovery + plugins"] = t() - s
s = t(); builder = pm.create_builder("docker", config); out["builder"] = t() - s
from rtbuild.context import context_digest
s = t(); context_digest(sys.argv[1]); out["walk"] = t() - s
from rtbuild_docker.engine import EngineAPI
s = t(); EngineAPI().prefetch([sys.argv[2], "busybox:latest"]); out["engine query"] = t() - s
import rtbuild
request = rtbuild.BuildRequest(path=sys.argv[1], tags=[sys.argv[2]])
s = t(); result = rtbuild.run_build(request, config=config, pm=pm, builder=builder)
whole = t() - s
s = t(); context_digest(sys.argv[1]); warm_walk = t() - s
s = t(); EngineAPI().prefetch([sys.argv[2], "busybox:latest"]); warm_engine = t() - s
out["rest"] = max(0.0, whole - warm_walk - warm_engine)
out["cached"] = result.cached
print(json.dumps(out))
"""


def profile(ctx: Path, tag: str, reps: int) -> dict[str, list[float]]:
    """Samples (seconds) per phase over ``reps`` fresh processes."""
    env = bench_env()
    samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], env=env, check=True)
        samples["interpreter"].append(time.perf_counter() - started)
        child = json.loads(run([PYTHON, "-c", _CHILD, str(ctx), tag], env).stdout)
        if not child.pop("cached"):
            raise RuntimeError(f"no-op profile: {tag} was rebuilt; build it first")
        for phase, value in child.items():
            samples[phase].append(value)
    return samples


def rows(ctx: Path, tag: str, reps: int) -> list[Row]:
    samples = profile(ctx, tag, reps)
    total = sum(median(values) for values in samples.values())
    out = []
    for phase, values in samples.items():
        value = median(values) * 1000
        out.append(
            Row(
                f"P1p-{phase.split()[0]}",
                "P1 no-op breakdown",
                f"CLI no-op phase: {phase}",
                value,
                "ms",
                "(info)",
                True,
                medians_s={phase: median(values)},
                samples_s={phase: values},
                reps=len(values),
                note=f"{value / (total * 1000):.0%} of the phases' sum ({total * 1000:.0f} ms); bench/noop_profile.py",
            )
        )
    return out


def markdown(samples: dict[str, Any]) -> str:
    total = sum(median(v) for v in samples.values())
    lines = ["| phase | median | share |", "|---|---|---|"]
    for phase, values in samples.items():
        lines.append(f"| {phase} | {median(values) * 1000:.1f} ms | {median(values) / total:.0%} |")
    lines.append(f"| sum | {total * 1000:.1f} ms | |")
    return "\n".join(lines)


if __name__ == "__main__":
    from p1_rebuild import TAGS, context_470

    context = Path(sys.argv[1]) if len(sys.argv) > 1 else context_470()
    image = sys.argv[2] if len(sys.argv) > 2 else TAGS["rtbuild"]
    print(markdown(profile(context, image, 7)))
