"""EgoTextVQA as lmms-eval tasks (lmms-eval ships none): ``egotextvqa_outdoor``, ``egotextvqa_indoor``.

Local layout (``--data egotextvqa=DIR``), as the official repository and its ``video_process`` scripts leave it::

    DIR/egotextvqa_outdoor/total.json    [{dataset, split, task_setting, data: [{video_id, question_id, question,
    DIR/egotextvqa_indoor/total.json       question_type, correct_answer, timestamp}, ...]}]
    DIR/outdoor/<video_id>/frame_00001.jpg ...   frames of the 6 fps video (video2frame.py), or
    DIR/outdoor/<video_id>.mp4                   the video itself (likewise indoor/)

A question is asked at ``timestamp`` seconds and answered from the video up to that moment (the benchmark's
real-time setting); that window is sampled at the run's ``video_fps``, at most ``max_frames`` frames.
"""

from __future__ import annotations

from pathlib import Path

from egoforge.data.jsonio import DataFormatError
from egoforge.lmms import TASKS_DIR
from egoforge.lmms.media import sample_frame_folder, sample_video
from egoforge.lmms.scoring import answer_match, extract_short_answer, token_f1
from egoforge.lmms.sources import read_rows, require_fields, resolve_media, write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, FunctionRef, TaskOptions, TaskSpec, read_task_yaml

TEMPLATE = TASKS_DIR / "_egotextvqa.yaml"
SPLITS = ("outdoor", "indoor")
FRAME_FPS = 6.0  # the official pipeline re-encodes every video to 6 fps before extracting frames
# The benchmark's own prompt for GPT-4o / Gemini (mllm_prompt.json of the official repository).
PROMPT = ("Based on the following images from a video, please briefly answer the following question with a single "
          "word, a phrase, or a short sentence. Question: {question}.  Output the answer to the question in the "
          "following format: Answer: [Full answer]. If you cannot answer the question, please answer "
          "'Unanswerable' and briefly explain why you cannot answer.")


def annotation_file(source: Path, split: str) -> Path:
    return source / f"egotextvqa_{split}" / "total.json"


def _media(source: Path, split: str, video_id: str, path: Path, row: int) -> dict:
    folder, video = source / split / video_id, source / split / f"{video_id}.mp4"
    if folder.is_dir():
        return {"frames_dir": str(resolve_media(source, folder, path, row, "video_id", kind="dir")), "video": ""}
    return {"frames_dir": "", "video": str(resolve_media(source, video, path, row, "video_id"))}


def load_split(source: Path, split: str, options: TaskOptions) -> list[dict]:
    path = annotation_file(source, split)
    blocks = read_rows(path)
    docs = []
    for block_index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("data"), list):
            raise DataFormatError(path, block_index, "data", "expected {dataset, split, task_setting, data: [...]}")
        for row, item in enumerate(block["data"]):
            require_fields(item, ("video_id", "question_id", "question", "correct_answer", "timestamp"), path, row)
            try:
                timestamp = float(item["timestamp"])
            except (TypeError, ValueError):
                raise DataFormatError(path, row, "timestamp", f"not a number: {item['timestamp']!r}") from None
            if timestamp < 0:
                raise DataFormatError(path, row, "timestamp", f"negative: {timestamp}")
            video_id = str(item["video_id"])
            docs.append({"id": f"{split}/{video_id}/{item['question_id']}", "split": split, "video_id": video_id,
                         "question": item["question"], "question_type": str(item.get("question_type", "")),
                         "answer": str(item["correct_answer"]), "timestamp": timestamp,
                         **_media(source, split, video_id, path, row),
                         "video_fps": options.video_fps, "max_frames": options.max_frames})
    if not docs:
        raise DataFormatError(path, None, "data", "no questions")
    return docs


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    splits = [s for s in SPLITS if annotation_file(source, s).is_file()]
    if not splits:
        raise DataFormatError(source, None, None, "no egotextvqa_outdoor/total.json or egotextvqa_indoor/total.json")
    template = read_task_yaml(TEMPLATE)
    tasks = []
    for split in splits:
        docs = load_split(source, split, options)
        write_docs(work / "egotextvqa" / f"docs_{split}.jsonl", docs)
        config: dict = {"include": str(TEMPLATE), "dataset_kwargs": {"data_files": {"test": f"docs_{split}.jsonl"}}}
        if options.judge:
            config["process_results"] = FunctionRef(f"{__name__}.process_results_judged")
            config["metric_list"] = [*template["metric_list"],
                                     {"metric": "judge_accuracy", "aggregation": "mean", "higher_is_better": True},
                                     {"metric": "judge_score", "aggregation": "mean", "higher_is_better": True}]
        if options.max_new_tokens:
            config["generation_kwargs"] = {**template["generation_kwargs"], "max_new_tokens": options.max_new_tokens}
        tasks.append(TaskSpec(f"egotextvqa_{split}", config, len(docs)))
    metric = "judge_accuracy" if options.judge else "local_answer_match"
    note = ("LLM-judge accuracy (the benchmark's metric; the judge model is named in the row)" if options.judge else
            "local answer match (reference contained in the answer), a local stand-in in its own column; the "
            "paper's metric is a GPT-4o-mini judge: rerun with --judge-url URL (any OpenAI-compatible server) or "
            "--judge openai to compare with published numbers")
    return BenchmarkPlan("egotextvqa", tasks, metric=metric, combine="micro", group="egotextvqa",
                         extra_metrics=("token_f1", "judge_score") if options.judge else ("token_f1",), notes=[note])


# --- lmms-eval hooks ----------------------------------------------------------------------------------------------

def doc_to_visual(doc: dict) -> list:
    window = {"clip": doc["id"], "sample_fps": doc["video_fps"], "max_frames": doc["max_frames"],
              "end": doc["timestamp"]}
    if doc["frames_dir"]:
        return sample_frame_folder(doc["frames_dir"], FRAME_FPS, **window)
    return sample_video(doc["video"], **window)


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return kwargs.get("pre_prompt", "") + PROMPT.format(question=doc["question"]) + kwargs.get("post_prompt", "")


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def process_results(doc: dict, results: list[str]) -> dict:
    prediction = extract_short_answer(results[0])
    return {"local_answer_match": answer_match(prediction, doc["answer"]),
            "token_f1": token_f1(prediction, doc["answer"])}


def process_results_judged(doc: dict, results: list[str]) -> dict:
    from egoforge.lmms.judge import judge_answer

    prediction = extract_short_answer(results[0])
    verdict = judge_answer(doc["question"], doc["answer"].lower(), prediction.lower())
    return {**process_results(doc, results), "judge_accuracy": float(verdict.correct),
            "judge_score": float(verdict.score)}
