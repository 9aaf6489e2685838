"""EgoPlan-Bench2 through lmms-eval's stock ``egoplan2`` task, pointed at a local copy.

Local layout (``--data egoplan2=DIR``), either

- a snapshot of the HF dataset ``nv-njb/egoplan-bench2``: parquet files anywhere under ``DIR`` with the keyframes
  embedded (used as they are), or
- ``DIR/egoplan2.json`` / ``.jsonl`` rows with the stock task's fields and ``keyframes`` as image paths relative to
  ``DIR`` (resolved, checked and written as absolute paths into the run's docs).

The stock prompt (``formatted_question``), parser and ``egoplan2_mcq_accuracy`` metric are kept (all local).
"""

from __future__ import annotations

from pathlib import Path

from egoforge.data.jsonio import DataFormatError
from egoforge.lmms.sources import find_tables, read_rows, require_fields, resolve_media, write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, FunctionRef, TaskOptions, TaskSpec, read_task_yaml, stock_task_file

TASK = "egoplan2_local"
STOCK = "egoplan2/egoplan2.yaml"
FEATURES = FunctionRef("lmms_eval.tasks.egoplan2.utils.egoplan2_features")
TEXT_FIELDS = ("sample_id", "domain", "task_goal", "formatted_question", "choice_a", "choice_b", "choice_c",
               "choice_d", "ground_truth", "video_file")
INT_FIELDS = ("task_start_frame", "current_observation_frame")
CHECKED = ("sample_id", "formatted_question", "ground_truth")


def _check_answer(item: dict, path: Path, row: int) -> None:
    if str(item["ground_truth"]).strip() not in ("A", "B", "C", "D"):
        raise DataFormatError(path, row, "ground_truth", f"must be one of A-D, got {item['ground_truth']!r}")


def _check_parquet(path: Path) -> int:
    import pyarrow.parquet as pq

    if "keyframes" not in pq.read_schema(path).names:
        raise DataFormatError(path, None, "keyframes", "missing column")
    rows = read_rows(path, columns=CHECKED)
    for row, item in enumerate(rows):
        require_fields(item, CHECKED, path, row)
        _check_answer(item, path, row)
    return len(rows)


def _json_docs(source: Path, path: Path) -> list[dict]:
    docs = []
    for row, item in enumerate(read_rows(path)):
        require_fields(item, (*TEXT_FIELDS, *INT_FIELDS, "keyframes"), path, row)
        _check_answer(item, path, row)
        if not isinstance(item["keyframes"], list) or not item["keyframes"]:
            raise DataFormatError(path, row, "keyframes", "must be a non-empty list of image paths")
        keyframes = [str(resolve_media(source, k, path, row, "keyframes")) for k in item["keyframes"]]
        doc = {field: str(item[field]) for field in TEXT_FIELDS}
        doc.update({field: int(item[field]) for field in INT_FIELDS}, keyframes=keyframes)
        docs.append(doc)
    return docs


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    tables = find_tables(source)
    parquet = [p for p in tables if p.suffix == ".parquet"]
    stock = stock_task_file(STOCK)
    if parquet:
        n_docs = sum(_check_parquet(p) for p in parquet)
        data = {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {"train": [str(p) for p in parquet]},
                                                              "features": FEATURES}}
    else:
        json_tables = [p for p in tables if p.name in ("egoplan2.json", "egoplan2.jsonl")]
        if not json_tables:
            raise DataFormatError(source, None, None, "no parquet files and no egoplan2.json / egoplan2.jsonl")
        docs = [doc for path in json_tables for doc in _json_docs(source, path)]
        write_docs(work / "egoplan2" / "docs.jsonl", docs)
        n_docs = len(docs)
        data = {"dataset_path": "json",
                "dataset_kwargs": {"data_files": {"train": "docs.jsonl"}, "features": FEATURES}}
    config: dict = {"include": str(stock), **data}
    if options.max_new_tokens:
        config["generation_kwargs"] = {**read_task_yaml(stock)["generation_kwargs"],
                                       "max_new_tokens": options.max_new_tokens}
    return BenchmarkPlan("egoplan2", [TaskSpec(TASK, config, n_docs)], metric="egoplan2_mcq_accuracy",
                         notes=["EgoPlan-Bench2 multiple-choice accuracy (stock lmms-eval metric)"])
