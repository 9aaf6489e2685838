"""QAEgo4D-Close as an lmms-eval task (lmms-eval ships no QAEgo4D).

Local layout (``--data qaego4d=DIR``)::

    DIR/annotations.QaEgo4D_test_close.json   GroundVQA's close-set test file: video_id, sample_id, question,
                                              answer, wrong_answers (3), moment_start_frame, moment_end_frame
    DIR/clips/<video_id>.mp4                  the Ego4D NLQ canonical clips (Ego4D ``v1/clips``)

The four options are the answer and its three distractors in an order fixed per ``sample_id`` (GroundVQA shuffles
anew on every read; a fixed order makes runs comparable). The whole clip is sampled at the run's ``video_fps``,
at most ``max_frames`` frames.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from egoforge.data.jsonio import DataFormatError
from egoforge.lmms import TASKS_DIR
from egoforge.lmms.media import sample_video
from egoforge.lmms.scoring import parse_option_letter
from egoforge.lmms.sources import read_rows, require_fields, resolve_media, write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, TaskOptions, TaskSpec, read_task_yaml

TASK = "qaego4d"
TEMPLATE = TASKS_DIR / "_qaego4d.yaml"
ANNOTATIONS = "annotations.QaEgo4D_test_close.json"
CLIPS_DIR = "clips"
LETTERS = "ABCD"


def option_order(sample_id: str, answer: str, wrong_answers: list[str]) -> tuple[list[str], str]:
    """The options of one question in their fixed order, and the correct letter."""
    options = [answer, *wrong_answers]
    seed = int(hashlib.sha1(sample_id.encode("utf-8")).hexdigest()[:16], 16)
    random.Random(seed).shuffle(options)
    return options, LETTERS[options.index(answer)]


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    path = source / ANNOTATIONS
    docs = []
    for row, item in enumerate(read_rows(path)):
        require_fields(item, ("video_id", "sample_id", "question", "answer", "wrong_answers"), path, row)
        wrong = item["wrong_answers"]
        if not isinstance(wrong, list) or len(wrong) != 3 or not all(isinstance(w, str) for w in wrong):
            raise DataFormatError(path, row, "wrong_answers", "must be a list of three strings")
        answer = str(item["answer"]).strip()
        if answer in [w.strip() for w in wrong]:
            raise DataFormatError(path, row, "wrong_answers", f"repeats the answer {answer!r}")
        video = resolve_media(source, f"{CLIPS_DIR}/{item['video_id']}.mp4", path, row, "video_id")
        choices, letter = option_order(str(item["sample_id"]), answer, [w.strip() for w in wrong])
        docs.append({"id": str(item["sample_id"]), "video_id": str(item["video_id"]), "question": item["question"],
                     "options": choices, "answer": letter, "answer_text": answer, "video": str(video),
                     "video_fps": options.video_fps, "max_frames": options.max_frames})
    write_docs(work / "qaego4d" / "docs.jsonl", docs)
    config: dict = {"include": str(TEMPLATE), "dataset_kwargs": {"data_files": {"test": "docs.jsonl"}}}
    if options.max_new_tokens:
        config["generation_kwargs"] = {**read_task_yaml(TEMPLATE)["generation_kwargs"],
                                       "max_new_tokens": options.max_new_tokens}
    return BenchmarkPlan("qaego4d", [TaskSpec(TASK, config, len(docs))], metric="accuracy",
                         notes=["QAEgo4D-Close accuracy (4 options)"])


# --- lmms-eval hooks ----------------------------------------------------------------------------------------------

def doc_to_visual(doc: dict) -> list:
    return sample_video(doc["video"], clip=doc["id"], sample_fps=doc["video_fps"], max_frames=doc["max_frames"])


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    lines = [doc["question"], *(f"({letter}) {text}" for letter, text in zip(LETTERS, doc["options"]))]
    return kwargs.get("pre_prompt", "") + "\n".join(lines) + kwargs.get("post_prompt", "")


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def process_results(doc: dict, results: list[str]) -> dict:
    prediction = parse_option_letter(results[0], doc["options"], LETTERS)
    return {"accuracy": float(prediction == doc["answer"])}
