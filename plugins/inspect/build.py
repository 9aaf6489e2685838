"""Build the report folder: read the data, attach predictions and issues, make thumbnails, score, write HTML."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from egoforge.data.atomic import atomic_write_json, atomic_write_text
from egoforge.data.paths import MediaRoot
from egoforge.data.validate import Issue
from egoforge.inspect.formats import load_dataset
from egoforge.inspect.render import ReportInfo, render_page, sample_payload
from egoforge.inspect.samples import Sample, judge
from egoforge.inspect.summary import CHART_FILE, Summary, build_summary, score_samples, score_testbed
from egoforge.inspect.thumbnails import THUMBS_DIR, Thumbnailer

REPORT_FILE = "index.html"
SUMMARY_FILE = "summary.json"
MARKER_FILE = ".egoforge-inspect"
OUTPUT_NAMES = (REPORT_FILE, SUMMARY_FILE, CHART_FILE, THUMBS_DIR)

Progress = Callable[[Iterable, int, str], Iterable]


class ReportError(ValueError):
    """The report cannot be built as asked (bad arguments, unreadable inputs, an unsafe output folder)."""


@dataclass
class BuiltReport:
    path: Path  # index.html
    format: str
    samples: int
    rows_with_issues: int
    thumbnails: int
    summary: Summary | None


def check_output_dir(out: Path, inputs: list[Path]) -> None:
    """Refuse an output folder where the report would overwrite anything it did not write itself."""
    out = out.resolve()
    ours = {out / name for name in (*OUTPUT_NAMES, MARKER_FILE)}
    for path in inputs:
        real = path.resolve()
        if real in ours or any(parent in ours for parent in real.parents):
            raise ReportError(f"--out {out}: the report would overwrite the input {path}; choose another folder")
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and not (out / MARKER_FILE).exists():
        taken = [name for name in OUTPUT_NAMES if (out / name).exists()]
        if taken:
            raise ReportError(f"--out {out}: {', '.join(taken)} already exist(s) and were not written by "
                              "egoforge inspect; choose an empty or new folder")


def read_issues_file(path: str | os.PathLike) -> list[Issue]:
    """Issues saved by ``egoforge validate --json``: a list of {file, row, field, message, severity}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise ReportError(f"{path}: expected the JSON list written by `egoforge validate --json`")
    issues = []
    for row, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("message"), str):
            raise ReportError(f"{path}, row {row}, field 'message': every issue needs a message string")
        if item.get("row") is not None and not isinstance(item["row"], int):
            raise ReportError(f"{path}, row {row}, field 'row': must be an integer or null")
        issues.append(Issue(str(item.get("file", "")), item.get("row"), item.get("field"), item["message"],
                            str(item.get("severity", "error"))))
    return issues


def _same_file(issue_file: str, data: Path) -> bool:
    try:
        if Path(issue_file).resolve() == data.resolve():
            return True
    except OSError:
        pass
    return not Path(issue_file).exists() and Path(issue_file).name == data.name


def attach_issues(samples: list[Sample], issues: list[Issue], data: Path) -> list[Issue]:
    """Put each row issue on its sample (once); return the issues that belong to no row."""
    by_row = {s.row: s for s in samples}
    file_level = []
    for issue in issues:
        sample = by_row.get(issue.row) if issue.row is not None and _same_file(issue.file, data) else None
        if sample is None:
            file_level.append(issue)
        elif not any((i.field, i.message) == (issue.field, issue.message) for i in sample.issues):
            sample.issues.append(issue)
    return file_level


def attach_predictions(samples: list[Sample], predictions: dict[str, dict]) -> int:
    """Join predictions to samples by id and judge each sample; returns how many predictions matched none."""
    ids = {s.id for s in samples}
    for sample in samples:
        sample.prediction = predictions.get(sample.id)
        judge(sample)
    return sum(1 for key in predictions if key not in ids)


def _no_progress(iterable: Iterable, total: int, desc: str) -> Iterable:
    return iterable


def build_report(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    answers: str | os.PathLike | None = None,
    media_dir: str | os.PathLike | None = None,
    fmt: str = "auto",
    issues_file: str | os.PathLike | None = None,
    validate: bool = False,
    fps: float = 0.5,
    max_frames: int = 16,
    page_size: int = 50,
    title: str | None = None,
    label: str = "this run",
    published: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
) -> BuiltReport:
    """Write ``out/index.html`` (self-contained), ``out/thumbs/``, and with predictions ``summary.{png,json}``."""
    from egoforge.data.egocross import load_answers
    from egoforge.data.jsonio import DataFormatError
    from egoforge.data.predictions import read_predictions

    progress = progress or _no_progress
    data, out = Path(data), Path(out)
    inputs = [Path(p) for p in (data, predictions, answers, issues_file) if p is not None]
    for path in inputs:
        if not path.is_file():
            raise ReportError(f"{path}: file not found")
    if max_frames < 1 or page_size < 0 or fps < 0:
        raise ReportError("--max-frames must be >= 1, --page-size >= 0 (0: all on one page) and --fps >= 0 "
                          "(0: images are not frames of one clip, no timestamps)")
    media = MediaRoot.for_file(data, media_dir)
    if not media.base.is_dir():
        raise ReportError(f"--media-dir {media.base}: not a folder")
    check_output_dir(out, inputs)

    try:
        answer_map = load_answers(answers) if answers else None
        fmt, samples = load_dataset(data, fmt, fps=fps, answers=answer_map)
        preds = read_predictions(predictions, strict=True) if predictions else None
    except DataFormatError as exc:
        raise ReportError(str(exc)) from None
    except ValueError as exc:
        raise ReportError(str(exc)) from None

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER_FILE, "written by egoforge inspect; safe to delete with this folder\n")

    unmatched = attach_predictions(samples, preds) if preds is not None else 0
    issues: list[Issue] = read_issues_file(issues_file) if issues_file else []
    if validate:
        issues += _validate(data, media_dir, fmt, answers, progress)
    file_issues = attach_issues(samples, issues, data)

    thumbnailer = Thumbnailer(media, out)
    shown = {s.row: Thumbnailer.select(s.media, max_frames) for s in samples}
    made = thumbnailer.make_all((r for refs in shown.values() for r in refs), max_frames, workers=workers,
                                progress=lambda it, total: progress(it, total, "thumbnails"))
    payload = []
    for sample in samples:
        thumbs = [t for ref in shown[sample.row] for t in made[Thumbnailer.key(ref)]]
        for thumb in thumbs:
            if thumb.problem and not any(i.field == thumb.field for i in sample.issues):
                sample.issues.append(Issue(str(data), sample.row, thumb.field, thumb.problem))
        frames_total = sum(1 for m in sample.media if m.kind != "video")
        payload.append(sample_payload(sample, thumbs, frames_total))

    summary = None
    if preds is not None:
        summary = _summarize(fmt, data, samples, answer_map, preds, out, label, published)
        summary.unmatched_predictions = unmatched
        atomic_write_json(out / SUMMARY_FILE, summary.results.as_dict() | {"label": label, "scorer": summary.scorer,
                                                                           "unmatched_predictions": unmatched})
    rows_with_issues = sum(1 for s in samples if s.issues)
    info = ReportInfo(
        title=title or f"{data.name} · egoforge inspect", data_file=str(data), fmt=fmt, n_samples=len(samples),
        media_root=media.describe(), generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
        predictions_file=str(predictions) if predictions else None, answers_file=str(answers) if answers else None,
        summary=summary, file_issues=file_issues, rows_with_issues=rows_with_issues,
        row_issue_count=sum(len(s.issues) for s in samples))
    html = render_page(info, payload, page_size, has_predictions=preds is not None)
    report = atomic_write_text(out / REPORT_FILE, html)
    return BuiltReport(report, fmt, len(samples), rows_with_issues, sum(len(v) for v in made.values()), summary)


def _validate(data: Path, media_dir, fmt: str, answers, progress: Progress) -> list[Issue]:
    """``egoforge validate``'s checks, run now (ShareGPT and the testbed; parquet gets the report's own checks)."""
    from egoforge.data.validate import validate_file

    if fmt == "verl-parquet":
        return [Issue(str(data), None, None, "egoforge validate reads ShareGPT json/jsonl and the EgoCross testbed;"
                      " for parquet the report shows its own row checks and unreadable frames", "warning")]
    return validate_file(data, media_dir=media_dir, fmt=fmt, answers=answers,
                         progress=lambda rows: progress(rows, len(rows), "validating"))


def _summarize(fmt: str, data: Path, samples: list[Sample], answer_map: dict | None, preds: dict, out: Path,
               label: str, published: bool) -> Summary:
    if fmt == "egocross-testbed" and answer_map is not None:
        from egoforge.data.validate import load_rows
        from egoforge.eval.published import EGOCROSS_ROWS

        results = score_testbed(load_rows(data), answer_map, preds)
        return build_summary(results, "EgoCross CloseQA scorer", label, EGOCROSS_ROWS if published else None, out,
                             "EgoCross CloseQA accuracy (%)")
    results = score_samples(samples)
    return build_summary(results, "exact match per domain, the EgoCross scorer's rules", label, None, out,
                         "accuracy per domain (%)")
