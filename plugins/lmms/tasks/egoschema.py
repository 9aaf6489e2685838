"""EgoSchema through lmms-eval's stock ``egoschema_subset`` task, pointed at a local copy.

Local layout (``--data egoschema=DIR``), a snapshot of the HF dataset ``lmms-lab/egoschema`` with its video
archives unzipped::

    DIR/Subset/test-00000-of-00001.parquet   (or .json / .jsonl) video_idx, question, option (5), answer
    DIR/videos/<video_idx>.mp4

Only the public 500-question subset has answers. The full 5,031-question set's answers are hidden: lmms-eval's
stock ``egoschema`` task posts predictions to the authors' validation server, which egoforge never calls. The stock
prompt, answer parser and ``score`` metric are kept; only the data and the video reading (PyAV instead of a
``$HF_HOME`` path and decord) change.
"""

from __future__ import annotations

from pathlib import Path

from egoforge.data.jsonio import DataFormatError
from egoforge.lmms.media import sample_video
from egoforge.lmms.sources import find_tables, read_rows, require_fields, resolve_media, write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, FunctionRef, TaskOptions, TaskSpec, read_task_yaml, stock_task_file

TASK = "egoschema_subset_local"
STOCK = "egoschema/egoschema_subset.yaml"
HIDDEN_NOTE = ("EgoSchema: scored on the public 500-question subset; the full set's answers are hidden (lmms-eval "
               "scores it by posting to the authors' server, which egoforge does not do)")


def _video(source: Path, video_idx: str, path: Path, row: int) -> Path:
    upper = source / "videos" / f"{video_idx}.MP4"
    name = f"videos/{video_idx}.MP4" if upper.is_file() else f"videos/{video_idx}.mp4"
    return resolve_media(source, name, path, row, "video_idx")


def load_subset(source: Path, options: TaskOptions) -> list[dict]:
    tables = find_tables(source / "Subset")
    if not tables:
        raise DataFormatError(source / "Subset", None, None, "no annotation table (.parquet, .json, .jsonl)")
    docs = []
    for path in tables:
        for row, item in enumerate(read_rows(path)):
            require_fields(item, ("video_idx", "question", "option", "answer"), path, row)
            option = item["option"]
            if not isinstance(option, list) or len(option) != 5 or not all(isinstance(o, str) for o in option):
                raise DataFormatError(path, row, "option", "must be a list of five option strings")
            try:
                answer = int(str(item["answer"]).strip())
            except ValueError:
                answer = -1
            if not 0 <= answer <= 4:
                raise DataFormatError(path, row, "answer", f"must be an option index 0-4, got {item['answer']!r}")
            video_idx = str(item["video_idx"])
            docs.append({"question_idx": str(item.get("question_idx", video_idx)), "video_idx": video_idx,
                         "question": item["question"], "option": option, "answer": str(answer),
                         "video": str(_video(source, video_idx, path, row)),
                         "video_fps": options.video_fps, "max_frames": options.max_frames})
    return docs


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    docs = load_subset(source, options)
    write_docs(work / "egoschema" / "docs.jsonl", docs)
    stock = stock_task_file(STOCK)
    config: dict = {
        "include": str(stock),
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": "docs.jsonl"}},
        "doc_to_visual": FunctionRef(f"{__name__}.doc_to_visual"),
    }
    if options.max_new_tokens:
        config["generation_kwargs"] = {**read_task_yaml(stock)["generation_kwargs"],
                                       "max_new_tokens": options.max_new_tokens}
    return BenchmarkPlan("egoschema", [TaskSpec(TASK, config, len(docs))], metric="score", notes=[HIDDEN_NOTE])


def doc_to_visual(doc: dict) -> list:
    return sample_video(doc["video"], clip=doc["video_idx"], sample_fps=doc["video_fps"], max_frames=doc["max_frames"])
