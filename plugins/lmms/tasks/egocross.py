"""EgoCross CloseQA in lmms-eval, with the protocol of ``egoforge evaluate egocross``.

The testbed is read by egoforge's loaders (``egocross_testbed_imgs.json`` + ``egocross_testbed_answers.json``);
frame paths resolve under the benchmark folder like ``--media-dir`` (the published absolute ``/egocross_testbed/...``
paths under ``<folder>/egocross_testbed``) and may not leave it. Each item's frames are fed as one clip with the
official rates (:func:`egoforge.data.egocross.clip_rates`: 0.5 fps, the prompt saying 1.0 for CholecTrack20
``.png``), or the true per-domain rates with ``TaskOptions.true_fps``. Prompt and parser are
:mod:`egoforge.eval.egocross_protocol`; micro and macro accuracy are computed like :mod:`egoforge.eval.egocross_score`.
"""

from __future__ import annotations

from pathlib import Path

from egoforge.data.egocross import (
    DOMAINS,
    answer_for,
    clip_rates,
    domain_of,
    load_answers,
    load_testbed,
)
from egoforge.data.jsonio import DataFormatError
from egoforge.data.paths import MediaRoot, UnsafePathError
from egoforge.eval.egocross_protocol import build_closeqa_prompt, is_correct, parse_response
from egoforge.lmms import TASKS_DIR
from egoforge.lmms.media import load_frame_files
from egoforge.lmms.scoring import macro_accuracy, mean
from egoforge.lmms.sources import write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, FunctionRef, TaskOptions, TaskSpec, read_task_yaml

TASK = "egocross_closeqa"
TEMPLATE = TASKS_DIR / "_egocross_closeqa.yaml"
TESTBED_FILE = "egocross_testbed_imgs.json"
ANSWERS_FILE = "egocross_testbed_answers.json"
MAX_PIXELS = 480 * 360  # the official per-video pixel cap (EgoCross eval_os_closedset.py; docs/egocross.md)


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    """Docs from ``source/egocross_testbed_imgs.json`` and its answers; frames resolved under ``source``."""
    testbed, answers_path = source / TESTBED_FILE, source / ANSWERS_FILE
    items = load_testbed(testbed)
    answers = load_answers(answers_path)
    media = MediaRoot(source, explicit=True)
    docs = []
    for row, item in enumerate(items):
        letter = answer_for(item, answers)
        if letter is None:
            raise DataFormatError(answers_path, None, "correct_option_letter",
                                  f"no answer for testbed item {item['id']!r} ({testbed}, row {row})")
        frames = [_frame(media, p, testbed, row, j) for j, p in enumerate(item["video_path"])]
        rates = clip_rates(item["dataset"], item["video_path"], true_fps=options.true_fps)
        docs.append({
            "id": str(item["id"]),
            # The published testbed has no question_id; never invent one from id.
            "question_id": item.get("question_id"),
            "dataset": item["dataset"],
            "domain": domain_of(item["dataset"]),
            "primary_category": item["primary_category"],
            "question_type": item["question_type"],
            "question_text": item["question_text"],
            "options": list(item["options"]),
            # Kept as text: the prompt prints the json value as written (30.0 stays "30.0").
            "original_video_fps": str(item.get("original_video_fps", "")),
            "prompt_fps": rates.prompt_fps,
            "fps": rates.video_fps,
            "frames": frames,
            "answer": letter,
        })
    write_docs(work / "egocross" / "docs.jsonl", docs)
    config: dict = {"include": str(TEMPLATE), "dataset_kwargs": {"data_files": {"test": "docs.jsonl"}}}
    if options.strict_json:
        config["process_results"] = FunctionRef(f"{__name__}.process_results_strict")
    if options.max_new_tokens:
        config["generation_kwargs"] = {**read_task_yaml(TEMPLATE)["generation_kwargs"],
                                       "max_new_tokens": options.max_new_tokens}
    notes = ["CloseQA accuracy: micro over questions and macro over the four domains."]
    if options.true_fps:
        notes.append("true per-domain frame rates (--true-fps), not the official 0.5 fps for every clip")
    if options.strict_json:
        notes.append("strict JSON parsing (no bare-letter fallback)")
    return BenchmarkPlan("egocross", [TaskSpec(TASK, config, len(docs))], metric="accuracy",
                         extra_metrics=("macro",), notes=notes)


def _frame(media: MediaRoot, path: str, testbed: Path, row: int, index: int) -> str:
    try:
        real = media.resolve(path)
    except UnsafePathError as exc:
        raise DataFormatError(testbed, row, f"video_path[{index}]", str(exc)) from None
    if not real.is_file():
        raise DataFormatError(testbed, row, f"video_path[{index}]", media.missing(path, real))
    return str(real)


# --- lmms-eval hooks ----------------------------------------------------------------------------------------------

def doc_to_visual(doc: dict) -> list:
    return load_frame_files(doc["frames"], clip=doc["id"], fps=doc["fps"], max_pixels=MAX_PIXELS)


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    return build_closeqa_prompt(doc["question_text"], doc["options"], doc["original_video_fps"],
                                doc.get("prompt_fps", doc["fps"]))


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def _score(doc: dict, response: str, allow_bare_letter: bool) -> dict:
    parsed = parse_response(response, allow_bare_letter=allow_bare_letter)
    record = {
        "id": doc["id"],
        "question_id": doc["question_id"],
        "dataset": doc["dataset"],
        "domain": doc["domain"],
        "prediction": parsed.prediction,
        "reason": parsed.reason,
        "parse_status": parsed.status,
        "raw_response": response,
        "correct": is_correct(parsed.prediction, doc["answer"]),
    }
    return {"accuracy": record, "macro": record}


def process_results(doc: dict, results: list[str]) -> dict:
    return _score(doc, results[0], allow_bare_letter=True)


def process_results_strict(doc: dict, results: list[str]) -> dict:
    return _score(doc, results[0], allow_bare_letter=False)


def aggregate_micro(records: list[dict]) -> float:
    return mean(float(r["correct"]) for r in records)


def aggregate_macro(records: list[dict]) -> float:
    """Mean of the per-domain accuracies (domains without questions in this run are left out)."""
    present = [r for r in records if r["domain"] in DOMAINS]
    return macro_accuracy(present, "domain")
