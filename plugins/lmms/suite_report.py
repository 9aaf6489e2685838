"""The suite's report files: ``results.md`` (table + how each number was measured), ``results.csv``, ``results.png``.

The table mixes rows that report different benchmarks (Ego3S's five, EgoCross's own), so the chart draws a bar
only where a row has a value instead of drawing missing values as zeros.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

from egoforge.data.atomic import atomic_write_bytes, atomic_write_text
from egoforge.eval.report import csv_table, markdown_table

TITLE = "Egocentric benchmark suite: accuracy (%)"


def notes_markdown(collected: Mapping[str, Mapping], label: str) -> str:
    lines = [f"\nHow `{label}` was measured (lmms-eval, local data; docs evaluated per benchmark):\n"]
    for benchmark, result in collected.items():
        tasks = ", ".join(f"`{t}` ({r['n']})" for t, r in result["tasks"].items())
        extra = "".join(f"; {m} {v:.2f}" for m, v in result["extra"].items())
        kind = result.get("metric_kind", "exact")
        lines.append(f"- **{benchmark}**: {result['metric']} ({result['combine']}; {kind}) over {tasks}{extra}. "
                     + " ".join(result["notes"]))
    lines.append("- Published rows are copied from the papers (Ego3S: Qwen2.5-VL-7B, its results figure; "
                 "EgoCross: Qwen3-VL-4B, the SFT repository's table); they were measured on the full benchmarks "
                 "with the papers' own tooling.")
    return "\n".join(lines) + "\n"


def grouped_bars(rows: Mapping[str, Mapping[str, float | None]], columns: list[str], path: str | os.PathLike,
                 title: str = TITLE) -> Path:
    """One group per column, one bar per row that has a value there; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    colors = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(columns), 4.6))
    width = 0.8 / max(1, len(names))
    labelled: set[str] = set()
    for j, column in enumerate(columns):
        present = [n for n in names if rows[n].get(column) is not None]
        for k, name in enumerate(present):
            x = j + (k - (len(present) - 1) / 2) * width
            bar = ax.bar(x, rows[name][column], width=width, color=colors[name],
                         label=None if name in labelled else name)
            labelled.add(name)
            ax.bar_label(bar, fmt="%.1f", fontsize=6, padding=1)
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def write_report(rows: Mapping[str, Mapping[str, float]], columns: list[str], collected: Mapping[str, Mapping],
                 label: str, out_dir: str | os.PathLike) -> dict[str, Path]:
    out_dir = Path(out_dir)
    md = f"# {TITLE}\n\n" + markdown_table(rows, columns) + notes_markdown(collected, label)
    return {"markdown": atomic_write_text(out_dir / "results.md", md),
            "csv": atomic_write_text(out_dir / "results.csv", csv_table(rows, columns)),
            "png": grouped_bars(rows, columns, out_dir / "results.png")}
