"""``rtbuild metrics --html FILE``: one self-contained page, plots drawn with matplotlib.

Every plot is a PNG embedded as a ``data:`` URI and the style sheet is inline, so the
file can be mailed, archived or opened offline; it loads nothing and runs no script.
matplotlib is the optional extra ``rtbuild[report]`` and is imported only here.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rtbuild._observe.report import group_cells
from rtbuild.errors import ConfigError

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem} td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0} img{max-width:100%;height:auto;border:1px solid #eee}
.muted{color:#777;font-size:.85rem}
"""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError(
            "`rtbuild metrics --html` needs matplotlib",
            step="draw metrics report",
            hint="pip install 'rtbuild[report]' (or pip install matplotlib)",
        ) from exc
    matplotlib.use("Agg")  # no display: draw to memory only
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Point:
    """What the plots draw of one record (the page keeps these, not the records)."""

    __slots__ = ("_t", "duration_s", "repository", "size_bytes", "success")

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._t = float(record["_t"])
        self.repository = str(record["repository"])
        self.success = bool(record.get("success"))
        duration, size = record.get("duration_s"), record.get("size_bytes")
        self.duration_s = float(duration) if isinstance(duration, int | float) else None
        self.size_bytes = size if isinstance(size, int) else None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, default)
        return default if value is None else value


def _when(record: Any) -> datetime:
    return datetime.fromtimestamp(float(record["_t"]), tz=UTC)


#: Repositories drawn each in its own colour; the others share one grey series, so that a
#: farm's hundreds of repositories keep the legend (and the picture) readable.
MAX_SERIES = 10


def _series(records: Sequence[Any]) -> list[tuple[str, list[Any], bool]]:
    """``(label, records, is_rest)``: the :data:`MAX_SERIES` repositories with the most
    records (by name), then one series of all the others."""
    by_repo: dict[str, list[Any]] = {}
    for record in records:
        by_repo.setdefault(str(record["repository"]), []).append(record)
    ranked = sorted(by_repo, key=lambda repo: (-len(by_repo[repo]), repo))
    shown = sorted(ranked[:MAX_SERIES])
    out = [(repo, by_repo[repo], False) for repo in shown]
    rest = ranked[MAX_SERIES:]
    if rest:
        merged = sorted((r for repo in rest for r in by_repo[repo]), key=lambda r: float(r["_t"]))
        out.append((f"{len(rest)} other repositories", merged, True))
    return out


def _durations_plot(plt: Any, records: Sequence[Any]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    by_repo = _series(records)
    for repo, items, rest in by_repo:
        ok = [r for r in items if r.get("success")]
        style: dict[str, Any] = {"color": "#999999", "alpha": 0.6, "zorder": 1} if rest else {"zorder": 3}
        line = ax.plot(
            [_when(r) for r in ok],
            [float(r.get("duration_s") or 0) for r in ok],
            "o" if rest else "o-",
            ms=3 if rest else 4,
            label=repo,
            **style,
        )
        failed = [r for r in items if not r.get("success")]
        if failed:
            color = line[0].get_color()
            when, took = [_when(r) for r in failed], [float(r.get("duration_s") or 0) for r in failed]
            ax.plot(when, took, "x", ms=8, color=color, zorder=style["zorder"])
    ax.set_ylabel("seconds")
    ax.set_xlabel("time (UTC)")  # times are placed in UTC; unsaid, they read as local ones
    ax.set_title("Build duration (x = failed)")
    ax.grid(alpha=0.3)
    if by_repo:
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no builds recorded", ha="center", va="center", transform=ax.transAxes)
    fig.autofmt_xdate()
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _sizes_plot(plt: Any, records: Sequence[Any]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    by_repo = _series([r for r in records if r.get("success") and isinstance(r.get("size_bytes"), int)])
    for repo, items, rest in by_repo:
        style: dict[str, Any] = {"color": "#999999", "alpha": 0.6, "zorder": 1} if rest else {"zorder": 3}
        sizes = [r["size_bytes"] / (1 << 20) for r in items]
        ax.plot([_when(r) for r in items], sizes, "o" if rest else "o-", ms=3 if rest else 4, label=repo, **style)
    if not by_repo:
        ax.text(0.5, 0.5, "no image sizes recorded", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_ylabel("MiB")
    ax.set_xlabel("time (UTC)")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_title("Image size")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _steps_plot(plt: Any, steps: Sequence[Mapping[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.45 * max(1, len(steps))))
    names = [_short(str(s["name"])) for s in steps][::-1]
    built = [float(s["total_s"]) for s in steps][::-1]
    if steps:
        ax.barh(names, built, color="#4c72b0")
        for index, step in enumerate(list(steps)[::-1]):
            ax.text(built[index], index, f"  {step['runs']} runs, {step['cached']} cached", va="center", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no step profiles recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("total seconds over the window")
    ax.set_title("Step time breakdown (slowest steps)")
    ax.tick_params(axis="y", labelsize=7)
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _drawn(plt: Any, draw: Any, data: Sequence[Any]) -> str:
    """``draw(plt, data)``, or a plot saying why it could not be drawn: values matplotlib
    cannot place (dates spanning its years 1 to 9999 with margins, durations near 1e308,
    from a hand-edited line) must not cost the table and the other plots."""
    try:
        return str(draw(plt, data))
    except (ValueError, OverflowError) as exc:
        plt.close("all")
        fig, ax = plt.subplots(figsize=(9, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, _short(f"cannot draw this plot: {exc}", 110), ha="center", va="center", fontsize=8)
        try:
            return _png(fig)
        finally:
            plt.close(fig)


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def render_html(report: Mapping[str, Any], records: Sequence[Any]) -> str:
    """The page: the summary table, then the three plots."""
    plt = _pyplot()
    figures = [
        ("Durations over time", "durations", _drawn(plt, _durations_plot, records)),
        ("Image size over time", "sizes", _drawn(plt, _sizes_plot, records)),
        ("Step time breakdown", "steps", _drawn(plt, _steps_plot, report["total"]["slowest_steps"])),
    ]
    esc = html.escape

    rows = []
    for g in report["groups"]:
        cells = [esc(cell) for cell in group_cells(g)]
        rows.append(
            "<tr>" + "".join(f"<td{'' if i < 2 else ' class=n'}>{c}</td>" for i, c in enumerate(cells)) + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Repository", "Builder", "Builds", "Success", "p50", "p95", "Reused", "Step cache hits", "Size")
    )
    total = report["total"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>rtbuild metrics</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>rtbuild metrics</h1>",
        f'<p class="muted">{esc(str(report["file"]))}: {total["builds"]} builds'
        f" ({total['failed']} failed) from {esc(str(total['first']))} to {esc(str(total['last']))}</p>",
        f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>',
    ]
    for title, key, data in figures:
        parts.append(
            f'<h2>{title}</h2><figure><img id="plot-{key}" class="plot" alt="{title}"'
            f' src="data:image/png;base64,{data}"></figure>'
        )
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["Point", "render_html"]
