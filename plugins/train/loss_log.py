"""The training log (one JSON record per line) and its loss plot.

A record is a flat mapping with a ``step`` key. A resumed run appends to the log of the run it continues and
re-logs the steps after its checkpoint, so readers keep the last record per step.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
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


def plot_curves(out: str | os.PathLike, curves: dict[str, list[tuple[float, float]]], title: str,
                xlabel: str = "optimizer step", ylabel: str = "loss", markers: Sequence[str] = (),
                dpi: int = 120, grid: bool = False) -> Path | None:
    """A PNG of the named (x, y) curves, written atomically; None (and no file) when no curve has a point.

    ``markers`` names the curves drawn with point markers (sparse ones, e.g. validation losses).
    """
    curves = {label: points for label, points in curves.items() if points}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label,
                marker="o" if label in markers else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if grid:
        ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())


def plot_loss_log(log_path: str | os.PathLike, out: str | os.PathLike, title: str, **options) -> Path | None:
    """``loss`` and every ``loss_*`` term of a log against the optimizer step."""
    records = read_log(log_path)
    return plot_curves(out, {key: series(records, key) for key in loss_keys(records)}, title, **options)
