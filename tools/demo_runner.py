"""The machinery every ``egoforge demo PIPELINE`` shares: run the real ``egoforge`` sub-commands a user would type,
one stage at a time, with progress lines, per-stage logs and one clear line when a stage fails.

Stages run as subprocesses of the same Python (``python -m egoforge.tools.cli ...``): the CLI is the stable surface
of every pipeline, a stage cannot leak state into the next, and the output of the tools it starts (llamafactory-cli,
lmms-eval) lands in the stage's log with its own.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

# every demo picture has this size (inches x dpi), so a reader (and the tests) know what to expect
PICTURE_INCHES = (8.0, 4.5)
PICTURE_DPI = 100


class StageFailed(RuntimeError):
    """A demo stage exited non-zero or did not write what it promised; the message is one line for the user."""


def repo_file(relative: str) -> Path:
    """``relative`` under the current folder, else under the checkout this egoforge was installed from."""
    here = Path(relative)
    if here.exists():
        return here.resolve()
    checkout = Path(__file__).resolve().parents[1] / relative
    if checkout.exists():
        return checkout
    raise StageFailed(f"{relative} not found in {Path.cwd()} or in the egoforge checkout; run the demo from the "
                      "repository root")


class Demo:
    """One demo run: numbered stages under ``workdir``, each logged to ``workdir/logs/NN_<slug>.log``."""

    def __init__(self, name: str, workdir: str | os.PathLike, stages: int, quiet: bool = False):
        self.name, self.work, self.total, self.quiet = name, Path(workdir).resolve(), stages, quiet
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.done = 0
        self.started = time.time()
        self.env = dict(os.environ)
        # the demos are offline by definition; keep third-party caches inside the demo folder
        self.env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                        HF_DATASETS_CACHE=str(self.work / "cache" / "datasets"), TOKENIZERS_PARALLELISM="false",
                        PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
        # tiny models on a few cores: one intra-op thread avoids oversubscription (the user's setting wins)
        self.env.setdefault("OMP_NUM_THREADS", "1")
        # llamafactory-cli and torchrun of this environment, activated or not
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])

    def say(self, text: str) -> None:
        print(text, flush=True)

    def egoforge(self, title: str, *argv: object, expect: tuple[os.PathLike, ...] = (), show: int = 0) -> str:
        """Run ``egoforge ARGV`` as one stage; its output goes to the stage log, whose last ``show`` lines are echoed.
        Raises :class:`StageFailed` naming the stage and the log (or the missing file) on failure."""
        return self.command(title, [sys.executable, "-m", "egoforge.tools.cli", *map(str, argv)],
                            shown=["egoforge", *map(str, argv)], expect=expect, show=show)

    def command(self, title: str, argv: list[str], shown: list[str] | None = None,
                expect: tuple[os.PathLike, ...] = (), show: int = 0) -> str:
        self.done += 1
        slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")[:40]
        log = self.logs / f"{self.done:02d}_{slug}.log"
        self.say(f"[{self.done}/{self.total}] {title}")
        self.say("      $ " + shlex.join(self._short(a) for a in (shown or argv)))
        start = time.time()
        with open(log, "w") as handle:
            code = subprocess.call(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=self.work, env=self.env)
        text = log.read_text(errors="replace")
        if code != 0:
            last = _reason(text)
            raise StageFailed(f"stage {self.done} '{title}' failed (exit {code}): {last[:300]} -- full log: {log}")
        for path in expect:
            if not Path(path).exists():
                raise StageFailed(f"stage {self.done} '{title}' exited 0 but did not write {path} -- log: {log}")
        if show and not self.quiet:
            for line in [ln for ln in text.splitlines() if ln.strip()][-show:]:
                self.say(f"      {line[:150]}")
        self.say(f"      done in {time.time() - start:.1f}s (elapsed {time.time() - self.started:.0f}s, log {log})")
        return text

    def _short(self, arg: str) -> str:
        """Paths inside the demo folder are printed relative to it (the commands run there)."""
        return "python" if arg == sys.executable else arg.replace(str(self.work) + os.sep, "")

    def finish(self, title: str, rows: dict[str, dict[str, float | str]], columns: list[str],
               extra: dict[str, os.PathLike] | None = None, picture_rows: dict[str, dict] | None = None,
               picture_columns: list[str] | None = None, ylabel: str = "value") -> dict[str, Path]:
        """Write ``summary.md`` (the table), ``summary.png`` (the picture) and ``summary.json``, print the table
        and where everything is, then the one-line summary with the output folder."""
        table = markdown_table(rows, columns)
        md = self.work / "summary.md"
        _atomic_write(md, f"# {title}\n\n{table}\n")
        png = self.work / "summary.png"
        bar_chart(picture_rows or rows, picture_columns or columns, png, title, ylabel)
        paths = {"summary table": md, "summary picture": png, **(extra or {}), "stage logs": self.logs}
        _atomic_write(self.work / "summary.json", json.dumps(
            {"demo": self.name, "title": title, "columns": columns, "rows": rows,
             "paths": {k: str(v) for k, v in paths.items()}, "seconds": round(time.time() - self.started, 1)},
            indent=2))
        self.say(f"\n{title}\n\n{table}\n")
        for label, path in paths.items():
            self.say(f"{label + ':':<20} {path}")
        self.say(f"\ndemo {self.name} finished in {time.time() - self.started:.0f}s; everything is in {self.work}")
        return paths


def _reason(log_text: str) -> str:
    """The line of a failed stage's output that says why: the command's own one-line message (``egoforge ...:``),
    else the first ``error`` line of a list of problems (with how many there are), else the last line."""
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    own = [ln for ln in lines if ln.startswith("egoforge ") and ": " in ln]
    if own:
        return own[-1]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    if errors:
        return errors[0] + (f" (and {len(errors) - 1} more error lines)" if len(errors) > 1 else "")
    return lines[-1] if lines else "(no output)"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 1 else f"{value:.2f}"
    return "" if value is None else str(value)


def markdown_table(rows: dict[str, dict], columns: list[str], first: str = "") -> str:
    """A markdown table: one row per key of ``rows``, the given columns (missing cells empty)."""
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for name, row in rows.items()]
    return "\n".join(lines)


def bar_chart(rows: dict[str, dict], columns: list[str], out: Path, title: str, ylabel: str | None) -> Path:
    """One panel per column (its own y axis, so different units never share one), one coloured bar per row in every
    panel (the same colour for the same row), the legend below the panels: a titled picture of ``PICTURE_INCHES`` x
    ``PICTURE_DPI`` pixels. Non-numeric cells are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [c for c in columns if any(isinstance(r.get(c), (int, float)) for r in rows.values())]
    if not numeric:
        raise StageFailed(f"{out}: nothing numeric to draw (columns {columns})")
    fig, axes = plt.subplots(1, len(numeric), figsize=PICTURE_INCHES, dpi=PICTURE_DPI, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = {}
    for ax, column in zip(axes[0], numeric):
        drawn = [float(r[column]) for r in rows.values() if isinstance(r.get(column), (int, float))]
        if min(drawn) >= 0:  # non-negative numbers start at 0 (an all-zero panel shows 0 to 1, not -0.06 to 0.06)
            ax.set_ylim(0, max(drawn) * 1.2 or 1.0)
        for i, (name, row) in enumerate(rows.items()):
            value = row.get(column)
            if not isinstance(value, (int, float)):
                continue
            bar = ax.bar(i, float(value), 0.8, color=colours[i % len(colours)], label=name)
            ax.bar_label(bar, fmt="%.3g", fontsize=7)
            handles[name] = bar
        ax.set_title(column, fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
        if ylabel:
            ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(4, len(handles)), fontsize=7,
               frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=PICTURE_DPI)
    plt.close(fig)
    _fix_size(tmp)
    os.replace(tmp, out)
    return out


def _fix_size(png: Path) -> None:
    """tight_layout never changes the canvas, but guard the promised size anyway: a wrong size is an error."""
    width, height = png_size(png)
    expected = (int(PICTURE_INCHES[0] * PICTURE_DPI), int(PICTURE_INCHES[1] * PICTURE_DPI))
    if (width, height) != expected:
        raise StageFailed(f"{png}: picture is {width}x{height} px, expected {expected[0]}x{expected[1]}")


def png_size(path: os.PathLike) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; raises ValueError when the file is not a PNG."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def read_json(path: os.PathLike, stage: str) -> dict:
    """A stage's JSON output; a missing or unreadable file stops the demo naming the stage and the file."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise StageFailed(f"stage '{stage}': cannot read {path}: {exc}") from exc
