"""The training log (one JSON record per line) and its loss plot.

A record is a flat mapping with a ``step`` key. A resumed run appends to the log of the run it continues and
re-logs the steps after its checkpoint, so readers keep the last record per step.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from egoforge.data.atomic import atomic_write_bytes


class LossLog:
    """Appends records to ``path`` from the main process only (other processes pass ``enabled=False``)."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def read_records(path: str | os.PathLike) -> list[dict]:
    """Every record of the log in file order (none when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_log(path: str | os.PathLike) -> list[dict]:
    """The log's records, the last one per step, by step."""
    records = {record["step"]: record for record in read_records(path)}
    return [records[k] for k in sorted(records)]


def loss_keys(records: Sequence[dict]) -> list[str]:
    """``loss`` then the per-part ``loss_*`` keys found in the records."""
    return ["loss"] + sorted({k for r in records for k in r if k.startswith("loss_")})


def series(records: Sequence[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of every record with a finite ``key``."""
    return [(r["step"], r[key]) for r in records
            if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


LINE_STYLES = ("-", "--", ":", "-.")


def log_scale_helps(values: Sequence[float], span: float = 30.0) -> bool:
    """True when every value is positive and the largest is ``span`` times the smallest: a linear axis would
    flatten everything after the first steps into one line."""
    values = [v for v in values if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= span


def loss_figure(curves: dict[str, list[tuple[float, float]]], title: str, xlabel: str = "optimizer step",
                ylabel: str = "loss", units: Mapping[str, str] | None = None, markers: Sequence[str] = (),
                grid: bool = True, log_scale: bool | None = None):
    """The matplotlib Figure of the named (x, y) curves; None when no curve has a point.

    ``units`` maps a curve to its y-axis label (quantity and unit); curves with different labels get separate axes
    stacked over one shared x axis (others use ``ylabel``), so cross-entropy and metres never share a scale. Within an
    axes each curve has its own colour and line style, drawn wider first, so a curve lying on another stays visible.
    The legend sits right of the axes, never over the data. ``log_scale`` None: a log y axis where
    :func:`log_scale_helps`. ``markers`` names the curves drawn with point markers (sparse ones, e.g. validation).
    """
    curves = {label: points for label, points in curves.items() if points}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = dict(units or {})
    groups: dict[str, list[str]] = {}
    for label in curves:
        groups.setdefault(units.get(label, ylabel), []).append(label)
    fig, axes = plt.subplots(len(groups), 1, sharex=True, squeeze=False, figsize=(7.5, 1.2 + 2.4 * len(groups)))
    for ax, (axis_label, labels) in zip(axes[:, 0], groups.items()):
        for index, label in enumerate(labels):
            points = curves[label]
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, color=f"C{index % 10}",
                    linestyle=LINE_STYLES[index % len(LINE_STYLES)], linewidth=max(1.0, 2.6 - 0.6 * index),
                    marker="o" if label in markers else None, markersize=3)
        values = [p[1] for label in labels for p in curves[label]]
        if log_scale if log_scale is not None else log_scale_helps(values):
            ax.set_yscale("log")
        ax.set_ylabel(axis_label)
        if grid:
            ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def save_figure(fig, out: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (bounding box grown to include the outside legends) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())


def plot_curves(out: str | os.PathLike, curves: dict[str, list[tuple[float, float]]], title: str,
                dpi: int = 120, **options) -> Path | None:
    """A PNG of :func:`loss_figure` (same options), written atomically; None (and no file) when no curve has a
    point."""
    fig = loss_figure(curves, title, **options)
    return None if fig is None else save_figure(fig, out, dpi)


def plot_loss_log(log_path: str | os.PathLike, out: str | os.PathLike, title: str, **options) -> Path | None:
    """``loss`` and every ``loss_*`` term of a log against the optimizer step (options: :func:`loss_figure`'s)."""
    records = read_log(log_path)
    return plot_curves(out, {key: series(records, key) for key in loss_keys(records)}, title, **options)
