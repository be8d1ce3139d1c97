"""Draw P10's cost curves (docs/img/cost-*.png) and write the text under them.

Called by run.py after a full run (and by ``run.py --write-docs``) from the results
file, so the plots and the numbers under them always come from one run. matplotlib is
imported here only (Agg backend: no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p10_cost import FIRST_ARMS, NOOP_ARMS, fitted_growth

REPO = Path(__file__).resolve().parent.parent
IMG = REPO / "docs" / "img"
BEGIN, END = "<!-- bench:curves:begin -->", "<!-- bench:curves:end -->"
PLOTS = {
    "files": ("cost-noop-files.png", "files in the context", "10k files"),
    "size": ("cost-noop-size.png", "context size (GB, 4,000 files)", "GB"),
}
FIRST_PLOT = "cost-first-build.png"
STYLE = {
    "BuildKit cached rebuild": ("tab:red", "o"),
    "rtbuild CLI no-op": ("tab:blue", "s"),
    "rtbuild API no-op": ("tab:green", "^"),
    "BuildSession no-op": ("tab:purple", "D"),
    "stat walk": ("tab:gray", "x"),
}


def _points(document: dict[str, Any]) -> list[dict[str, Any]]:
    entry = document.get("scenarios", {}).get("P10") or {}
    points: list[dict[str, Any]] = (entry.get("data") or {}).get("points") or []
    return points


def _series(points: list[dict[str, Any]], series: str) -> list[dict[str, Any]]:
    return sorted((p for p in points if p["series"] == series), key=lambda p: (p["files"], p["bytes"]))


def draw(document: dict[str, Any], out: Path = IMG) -> list[Path]:
    """The PNGs for the P10 data in ``document`` (none when P10 has no data)."""
    points = _points(document)
    if not points:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    commit = document.get("commit", "?")
    for series, (file_name, xlabel, unit_name) in PLOTS.items():
        chosen = _series(points, series)
        if not chosen:
            continue
        xs = [p["files"] if series == "files" else p["bytes"] / 1e9 for p in chosen]
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
        for arm in NOOP_ARMS:
            ys = [p["noop_s"].get(arm) for p in chosen]
            if any(y is None for y in ys):
                continue
            color, marker = STYLE[arm]
            slope_ms = fitted_growth(points, series, arm) * 1000
            label = f"{arm} ({slope_ms:+.3g} ms/{unit_name})"
            ax.plot(xs, [y * 1000 for y in ys], marker=marker, color=color, label=label)
        ax.set_xlabel(xlabel + (" (log scale)" if series == "files" else ""))
        if series == "files":
            ax.set_xscale("log")
        ax.set_ylabel("no-op time, ms (median; log scale)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"No-op of an unchanged context, by {'file count' if series == 'files' else 'size'} ({commit})")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / file_name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), dpi=110)
    for ax, series in zip(axes, ("files", "size"), strict=True):
        chosen = _series(points, series)
        xs = [p["files"] if series == "files" else p["bytes"] / 1e9 for p in chosen]
        for arm, color in zip(FIRST_ARMS, ("tab:blue", "tab:red"), strict=True):
            ax.plot(xs, [p["first_s"][arm] for p in chosen], marker="o", color=color, label=arm)
        for x, p in zip(xs, chosen, strict=True):
            ax.annotate(f"{p['first_overhead_pct']:+.1f}%", (x, p["first_s"]["rtbuild first build"]), fontsize=7)
        ax.set_xlabel(PLOTS[series][1])
        ax.set_ylabel("first build, s (median)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"First build of new inputs: rtbuild (hash alongside) vs BuildKit ({commit})")
    fig.tight_layout()
    path = out / FIRST_PLOT
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def markdown(document: dict[str, Any]) -> str:
    """The plots and the fitted growth under each (the generated block of the docs)."""
    points = _points(document)
    if not points:
        return "No P10 data in `bench/results/latest.json` yet: run `make bench`."
    commit, date = document.get("commit", "?"), document.get("date", "?")
    lines = [f"Drawn by `make bench` from the run of commit `{commit}` ({date})."]
    for series, (file_name, _xlabel, unit_name) in PLOTS.items():
        chosen = [p for p in points if p["series"] == series]
        if not chosen:
            continue
        lines += ["", f"![no-op cost by {series}](img/{file_name})", ""]
        lines += [f"Fitted growth per {unit_name} (least squares):", ""]
        for arm in NOOP_ARMS:
            growth = fitted_growth(points, series, arm) * 1000
            at = ", ".join(f"{p['context'].removeprefix('ctx-')} {_ms(p['noop_s'][arm])}" for p in chosen)
            lines.append(f"- {arm}: **{growth:+.3g} ms per {unit_name}** ({at})")
    lines += ["", f"![first build overhead](img/{FIRST_PLOT})", ""]
    lines += ["First build of new inputs, rtbuild against BuildKit:", ""]
    for p in points:
        first, runs = p["first_s"], p["first_reps"]
        lines.append(
            f"- {p['context'].removeprefix('ctx-')}: {first['rtbuild first build']:.2f} s vs "
            f"{first['BuildKit first build']:.2f} s, **{p['first_overhead_pct']:+.1f}%**"
            f" ({runs} run{'s' if runs != 1 else ''} each)"
        )
    return "\n".join(lines)


def write_docs(document: dict[str, Any], path: Path) -> list[Path]:
    """Draw the plots and replace the curves block of ``path`` (docs/performance.md)."""
    written = draw(document)
    text = path.read_text()
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        path.write_text(text[:start] + "\n" + markdown(document) + "\n" + text[end:])
    return written


__all__ = ["draw", "markdown", "write_docs"]
