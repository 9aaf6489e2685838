"""``egoforge evaluate egocross``: generate CloseQA predictions (resumable) and score them into tables."""

from __future__ import annotations

import os
from pathlib import Path

from egoforge.data.atomic import atomic_write_json, atomic_write_text
from egoforge.data.egocross import DOMAINS, clip_rates, load_answers, load_testbed
from egoforge.data.paths import MediaRoot, UnsafePathError
from egoforge.data.predictions import PredictionWriter, read_predictions
from egoforge.eval.backends import GenerationSettings, VisualRequest, make_backend
from egoforge.eval.egocross_protocol import PROTOCOLS, build_prompt, parse_response
from egoforge.eval.egocross_score import EgoCrossResults, check_coverage, score_egocross, submission
from egoforge.eval.published import EGOCROSS_ROWS
from egoforge.eval.report import write_tables

PREDICTIONS_FILE = "predictions.jsonl"


def build_request(item: dict, media: MediaRoot, fps: float = 0.5, *, true_fps: bool = False,
                  protocol: str = "official") -> VisualRequest:
    """The CloseQA request of one testbed item; frame paths resolve through ``media`` (escapes refused)."""
    frames = tuple(str(media.resolve(p)) for p in item["video_path"])
    rates = clip_rates(item["dataset"], item["video_path"], fps, true_fps=true_fps)
    return VisualRequest(frames=frames, prompt=build_prompt(protocol, item, rates.prompt_fps), fps=rates.video_fps)


def check_requests(testbed: str | os.PathLike, items: list[dict], media: MediaRoot, build) -> list[VisualRequest]:
    """``build(item)`` for every item, after checking every frame: the first bad one is named with its row."""
    requests, missing = [], []
    for row, item in enumerate(items):
        try:
            request = build(item)
        except UnsafePathError as exc:
            raise UnsafePathError(f"{testbed}, row {row} (id {item['id']!r}), field 'video_path': {exc}") from None
        for path, frame in zip(item["video_path"], request.frames):
            if not os.path.exists(frame):
                missing.append((row, item["id"], media.missing(path, Path(frame))))
        requests.append(request)
    if missing:
        row, item_id, why = missing[0]
        raise FileNotFoundError(f"{testbed}, row {row} (id {item_id!r}), field 'video_path': {why} "
                                f"({len(missing)} frames missing)")
    return requests


def generate_predictions(
    model: str,
    testbed: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    media_dir: str | os.PathLike | None = None,
    backend: str = "transformers",
    settings: GenerationSettings = GenerationSettings(),
    fps: float = 0.5,
    true_fps: bool = False,
    protocol: str = "official",
    allow_bare_letter: bool = True,
    limit: int | None = None,
    progress: bool = True,
    backend_kwargs: dict | None = None,
) -> Path:
    """Answer every testbed item not yet in ``out_dir/predictions.jsonl``; returns that file's path.

    ``protocol`` picks the prompt ("official", "sft" or "openqa", see :mod:`egoforge.eval.egocross_protocol`);
    ``settings`` carries the matching frames-as / length / pixel budget. ``true_fps`` is the per-domain-rate
    deviation. Both are stored in every record, and a resumed run must use the same ones.
    """
    from tqdm.auto import tqdm

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown EgoCross protocol {protocol!r}: choose {', '.join(PROTOCOLS)}")
    items = load_testbed(testbed)[:limit] if limit else load_testbed(testbed)
    media = MediaRoot.for_file(testbed, media_dir)
    out = Path(out_dir) / PREDICTIONS_FILE
    if out.exists():
        # A resumed run must not mix protocols in one file (records before --protocol existed were "official").
        other = {_protocol_of(r) for r in read_predictions(out).values()} - {_protocol_name(protocol, true_fps)}
        if other:
            raise ValueError(f"{out} holds predictions made with protocol {sorted(other)}, not "
                             f"{_protocol_name(protocol, true_fps)!r}: use another --out folder")
    with PredictionWriter(out) as writer:
        pending = [it for it in items if str(it["id"]) not in writer.done]
        # Check every path before loading a model: a bad row fails fast and names itself.
        requests = check_requests(testbed, pending, media, lambda it: build_request(
            it, media, fps, true_fps=true_fps, protocol=protocol))
        if not pending:
            return out
        engine = make_backend(backend, model, settings, **(backend_kwargs or {}))
        bar = tqdm(total=len(pending), desc=f"EgoCross ({protocol})", unit="q", disable=not progress)
        for start in range(0, len(pending), settings.batch_size):
            batch = pending[start: start + settings.batch_size]
            responses = engine.generate(requests[start: start + settings.batch_size])
            records = []
            for item, response in zip(batch, responses):
                # OpenQA answers are free text: a bare letter means nothing there.
                parsed = parse_response(response, allow_bare_letter=allow_bare_letter and protocol != "openqa")
                records.append({
                    "id": item["id"],
                    # The published testbed has no question_id: never invent one (the template has them).
                    "question_id": item.get("question_id"),
                    "dataset": item["dataset"],
                    "protocol": protocol,
                    "true_fps": true_fps,
                    "prediction": parsed.prediction,
                    "reason": parsed.reason,
                    "parse_status": parsed.status,
                    "raw_response": response,
                })
            writer.write(records)
            bar.update(len(batch))
        bar.close()
    return out


def _describe(name: str) -> str:
    protocol, _, deviation = name.partition(" + ")
    text = PROTOCOLS[protocol].summary if protocol in PROTOCOLS else protocol
    return text + ("; deviation: true per-domain fps (EgoSurgery, CholecTrack20 .png at 1.0)" if deviation else "")


def _protocol_name(protocol: str, true_fps: bool) -> str:
    return protocol + (" + true fps" if true_fps else "")


def _protocol_of(record: dict) -> str:
    return _protocol_name(str(record.get("protocol", "official")), bool(record.get("true_fps")))


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
    *,
    allow_partial: bool = False,
    limit: int | None = None,
) -> EgoCrossResults:
    """Score predictions and write results.json, results.{md,csv,png} and submission.json into ``out_dir``.

    The predictions are read strictly (a missing or empty file, a torn line, an id given twice are errors) and must
    cover the testbed (its first ``limit`` questions when given): a partial run is refused unless
    ``allow_partial``, and then scored over all N questions, the missing ones counted wrong, with the coverage
    "n of N" in every table. results.md ends with the protocol behind every row: the published rows are the SFT
    repository's, this run's is read from its prediction records (``protocol``; records from before that field
    existed are "official").
    """
    all_items = load_testbed(testbed)
    items = all_items[:limit] if limit else all_items
    preds = read_predictions(predictions, strict=True)
    check_coverage(items, preds, predictions, allow_partial=allow_partial)
    results = score_egocross(items, load_answers(answers), preds)
    protocols = sorted({_protocol_of(r) for r in preds.values()}) or ["official"]
    if any(p.startswith("openqa") for p in protocols):
        raise ValueError(f"{predictions} holds OpenQA answers: score them with `egoforge evaluate egocross openqa "
                         "--predictions ...` (the LLM judge), not the CloseQA scorer")
    out_dir = Path(out_dir)
    scope = f" (--limit: the first {len(items)} of the testbed's {len(all_items)} questions)" if (
        len(items) < len(all_items)) else ""
    coverage = f"{label}: predictions for {results.coverage} questions{scope}" + (
        "; the missing ones are counted wrong" if results.missing_predictions else "")
    atomic_write_json(out_dir / "results.json", results.as_dict() | {"label": label, "protocol": protocols,
                                                                     "testbed_questions": len(all_items)})
    rows = dict(EGOCROSS_ROWS) if published else {}
    rows.update(extra_rows or {})
    rows[label] = result_row(results) | {"coverage": results.coverage}
    columns = [*DOMAINS, "micro", "macro", "coverage"]
    tables = write_tables(rows, columns, out_dir, "results", "EgoCross CloseQA accuracy (%)", note=coverage)
    notes = [f"- {label}: " + "; ".join(_describe(p) for p in protocols)]
    if published:
        notes += [f"- {name}: published by the EgoCross SFT repository, with its own inference (protocol sft)"
                  for name in EGOCROSS_ROWS]
    md = Path(tables["markdown"])
    atomic_write_text(md, md.read_text(encoding="utf-8") + "\nProtocol of each row:\n\n" + "\n".join(notes) + "\n")
    atomic_write_json(out_dir / "submission.json", submission(items, preds))
    return results
