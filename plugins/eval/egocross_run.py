"""``egoforge evaluate egocross``: generate CloseQA predictions (resumable) and score them into tables."""

from __future__ import annotations

import os
from pathlib import Path

from egoforge.data.atomic import atomic_write_json
from egoforge.data.egocross import DOMAINS, load_answers, load_testbed, sampling_fps
from egoforge.data.paths import resolve_under
from egoforge.eval.backends import GenerationSettings, VisualRequest, make_backend
from egoforge.eval.egocross_protocol import build_closeqa_prompt, parse_response
from egoforge.eval.egocross_score import EgoCrossResults, score_egocross, submission
from egoforge.eval.predictions import PredictionWriter, read_predictions
from egoforge.eval.published import EGOCROSS_ROWS
from egoforge.eval.report import write_tables

PREDICTIONS_FILE = "predictions.jsonl"


def build_request(item: dict, media_dir: str | os.PathLike, default_fps: float) -> VisualRequest:
    """The CloseQA request of one testbed item; frame paths must stay under ``media_dir``."""
    frames = tuple(str(resolve_under(media_dir, p, allow_absolute=True)) for p in item["video_path"])
    fps = sampling_fps(item["dataset"], item["video_path"], default_fps)
    prompt = build_closeqa_prompt(item["question_text"], item["options"], item.get("original_video_fps", ""), fps)
    return VisualRequest(frames=frames, prompt=prompt, fps=fps)


def generate_predictions(
    model: str,
    testbed: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    media_dir: str | os.PathLike | None = None,
    backend: str = "transformers",
    settings: GenerationSettings = GenerationSettings(),
    default_fps: float = 0.5,
    allow_bare_letter: bool = True,
    limit: int | None = None,
    progress: bool = True,
    backend_kwargs: dict | None = None,
) -> Path:
    """Answer every testbed item not yet in ``out_dir/predictions.jsonl``; returns that file's path."""
    from tqdm.auto import tqdm

    items = load_testbed(testbed)[:limit] if limit else load_testbed(testbed)
    media_dir = Path(media_dir) if media_dir else Path(testbed).parent
    out = Path(out_dir) / PREDICTIONS_FILE
    with PredictionWriter(out) as writer:
        pending = [it for it in items if str(it["id"]) not in writer.done]
        # Check every path before loading a model: a bad row fails fast and names itself.
        requests = [build_request(it, media_dir, default_fps) for it in pending]
        missing = [(it["id"], f) for it, r in zip(pending, requests) for f in r.frames if not os.path.exists(f)]
        if missing:
            item_id, frame = missing[0]
            raise FileNotFoundError(f"{testbed}: item {item_id!r}: frame not found: {frame} ({len(missing)} missing)")
        if not pending:
            return out
        engine = make_backend(backend, model, settings, **(backend_kwargs or {}))
        bar = tqdm(total=len(pending), desc="EgoCross CloseQA", unit="q", disable=not progress)
        for start in range(0, len(pending), settings.batch_size):
            batch = pending[start: start + settings.batch_size]
            responses = engine.generate(requests[start: start + settings.batch_size])
            records = []
            for item, response in zip(batch, responses):
                parsed = parse_response(response, allow_bare_letter=allow_bare_letter)
                records.append({
                    "id": item["id"],
                    "question_id": item.get("question_id", item["id"]),
                    "dataset": item["dataset"],
                    "prediction": parsed.prediction,
                    "reason": parsed.reason,
                    "parse_status": parsed.status,
                    "raw_response": response,
                })
            writer.write(records)
            bar.update(len(batch))
        bar.close()
    return out


def result_row(results: EgoCrossResults) -> dict:
    row = {d: round(results.per_domain[d].accuracy, 2) for d in DOMAINS if results.per_domain[d].total}
    return row | {"micro": round(results.micro, 2), "macro": round(results.macro, 2)}


def score_and_report(
    testbed: str | os.PathLike,
    answers: str | os.PathLike,
    predictions: str | os.PathLike,
    out_dir: str | os.PathLike,
    label: str = "this run",
    extra_rows: dict[str, dict] | None = None,
    published: bool = True,
) -> EgoCrossResults:
    """Score predictions and write results.json, results.{md,csv,png} and submission.json into ``out_dir``."""
    items = load_testbed(testbed)
    preds = read_predictions(predictions)
    results = score_egocross(items, load_answers(answers), preds)
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "results.json", results.as_dict() | {"label": label})
    rows = dict(EGOCROSS_ROWS) if published else {}
    rows.update(extra_rows or {})
    rows[label] = result_row(results)
    columns = [*DOMAINS, "micro", "macro"]
    write_tables(rows, columns, out_dir, "results", "EgoCross CloseQA accuracy (%)")
    atomic_write_json(out_dir / "submission.json", submission(items, preds))
    return results
