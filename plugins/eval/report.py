"""Result tables (markdown, CSV) and bar charts next to the seeds' published rows."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

from egoforge.data.atomic import atomic_write_bytes, atomic_write_text

# A cell is a score, None ("–": no value), or text such as a run's coverage "95 of 957".
Row = Mapping[str, float | str | None]


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else f"{value:.2f}"


def _numeric_columns(rows: Mapping[str, Row], columns: list[str]) -> list[str]:
    """The columns a chart can draw: those holding at least one number (not a text column such as coverage)."""
    return [c for c in columns if any(isinstance(row.get(c), (int, float)) for row in rows.values())]


def markdown_table(rows: Mapping[str, Row], columns: list[str], title_column: str = "Method") -> str:
    lines = [
        "| " + " | ".join([title_column, *columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for name, row in rows.items():
        lines.append("| " + " | ".join([name, *(_fmt(row.get(c)) for c in columns)]) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Mapping[str, Row], columns: list[str], title_column: str = "Method") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([title_column, *columns])
    for name, row in rows.items():
        writer.writerow([name, *("" if row.get(c) is None else _fmt(row[c]) for c in columns)])
    return buf.getvalue()


def bar_chart(
    rows: Mapping[str, Row], columns: list[str], path: str | os.PathLike, title: str, ylabel: str = "accuracy (%)"
) -> Path:
    """Grouped bars, one group per numeric column and one bar per row; written atomically as PNG."""
    import matplotlib

    columns = _numeric_columns(rows, columns)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(columns), 4.2))
    for i, name in enumerate(names):
        values = [v if isinstance(v := rows[name].get(c), (int, float)) else 0.0 for c in columns]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(columns))]
        bars = ax.bar(xs, values, width=width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def write_tables(
    rows: Mapping[str, Row], columns: list[str], out_dir: str | os.PathLike, stem: str, title: str,
    note: str | None = None,
) -> dict:
    """Write ``stem.md``, ``stem.csv`` and ``stem.png``; return their paths. ``note`` (e.g. a run's coverage) is
    printed under the markdown title and the chart's."""
    out_dir = Path(out_dir)
    head = f"# {title}\n\n" + (f"{note}\n\n" if note else "")
    md = atomic_write_text(out_dir / f"{stem}.md", head + markdown_table(rows, columns))
    csv_path = atomic_write_text(out_dir / f"{stem}.csv", csv_table(rows, columns))
    png = bar_chart(rows, columns, out_dir / f"{stem}.png", title + (f"\n{note}" if note else ""))
    return {"markdown": md, "csv": csv_path, "png": png}
