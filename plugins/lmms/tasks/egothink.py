"""EgoThink through lmms-eval's stock ``egothink_*`` tasks, pointed at a local copy, scored locally.

Local layout (``--data egothink=DIR``), a snapshot of the HF dataset ``EgoLife-v1/Egothink`` (one folder per
capability)::

    DIR/Activity/test-00000-of-00001.parquet     id, image, question, answer
    DIR/Forecasting/...                          (any subset of the 12 capabilities)

or ``DIR/<Capability>.json`` / ``.jsonl`` rows with ``image`` as a path relative to ``DIR``.

The stock metric sends every answer to the OpenAI API (a GPT judge rating 0, 0.5 or 1; it also samples at
temperature 0.2). Here decoding is greedy and the score is local: ``match`` (the normalized reference answer
appears in the answer) and ``token_f1``; ``--judge openai`` asks an LLM judge for EgoThink's 0/0.5/1 rating
instead (:mod:`egoforge.lmms.judge`). The benchmark score is the unweighted mean over the capabilities run.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from egoforge.data.jsonio import DataFormatError
from egoforge.lmms.scoring import answer_match, token_f1
from egoforge.lmms.sources import find_tables, read_rows, require_fields, resolve_media, write_docs
from egoforge.lmms.taskgen import BenchmarkPlan, FunctionRef, TaskOptions, TaskSpec, read_task_yaml, stock_task_file

STOCK_DIR = "egothink"
GROUP = "egothink_local"
FIELDS = ("id", "image", "question", "answer")


# Column types of prepared json docs (``image`` paths become decoded images); referenced from the task YAML.
FEATURES = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                              "question": datasets.Value("string"), "answer": datasets.Value("string")})


def stock_subtasks() -> dict[str, Path]:
    """Capability (the HF config name, e.g. ``Activity``) -> lmms-eval's stock task file for it."""
    folder = stock_task_file(f"{STOCK_DIR}/egothink.yaml").parent
    subtasks = {}
    for path in sorted(folder.glob("egothink_*.yaml")):
        config = read_task_yaml(path)
        if "dataset_name" in config:
            subtasks[config["dataset_name"]] = path
    return subtasks


def _sources(source: Path, capability: str) -> list[Path]:
    folder = source / capability
    if folder.is_dir():
        return find_tables(folder)
    return [p for p in (source / f"{capability}.jsonl", source / f"{capability}.json") if p.is_file()]


def _json_docs(source: Path, path: Path) -> list[dict]:
    docs = []
    for row, item in enumerate(read_rows(path)):
        require_fields(item, FIELDS, path, row)
        image = resolve_media(source, item["image"], path, row, "image")
        docs.append({"id": str(item["id"]), "image": str(image), "question": str(item["question"]),
                     "answer": str(item["answer"])})
    return docs


def _capability_task(source: Path, work: Path, capability: str, stock: Path, options: TaskOptions) -> TaskSpec | None:
    tables = _sources(source, capability)
    if not tables:
        return None
    parquet = [p for p in tables if p.suffix == ".parquet"]
    if parquet:
        n_docs = 0
        for path in parquet:
            rows = read_rows(path, columns=("id", "question", "answer"))
            for row, item in enumerate(rows):
                require_fields(item, ("id", "question", "answer"), path, row)
            n_docs += len(rows)
        data = {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {"test": [str(p) for p in parquet]}}}
    else:
        docs = [doc for path in tables for doc in _json_docs(source, path)]
        write_docs(work / "egothink" / f"docs_{capability}.jsonl", docs)
        n_docs = len(docs)
        data = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": f"docs_{capability}.jsonl"},
                                                           "features": FunctionRef(f"{__name__}.FEATURES")}}
    stock_config = read_task_yaml(stock)
    generation = {**stock_config["generation_kwargs"], "temperature": 0, "do_sample": False}
    if options.max_new_tokens:
        generation["max_new_tokens"] = options.max_new_tokens
    local_metrics = [{"metric": "local_answer_match", "aggregation": "mean", "higher_is_better": True},
                     {"metric": "token_f1", "aggregation": "mean", "higher_is_better": True}]
    config: dict = {"include": str(stock), "dataset_name": None, **data, "generation_kwargs": generation,
                    "process_results": FunctionRef(f"{__name__}.process_results_judged" if options.judge
                                                   else f"{__name__}.process_results"),
                    "metric_list": [*local_metrics, {"metric": "judge_rating", "aggregation": "mean",
                                                     "higher_is_better": True}] if options.judge else local_metrics}
    return TaskSpec(f"{stock_config['task']}_local", config, n_docs)


def prepare(source: Path, work: Path, options: TaskOptions) -> BenchmarkPlan:
    subtasks = stock_subtasks()
    tasks = [t for cap, stock in subtasks.items() if (t := _capability_task(source, work, cap, stock, options))]
    if not tasks:
        raise DataFormatError(source, None, None, f"none of the EgoThink capabilities found ({', '.join(subtasks)})")
    metric = "judge_rating" if options.judge else "local_answer_match"
    note = ("EgoThink: LLM-judge rating (0/0.5/1) with lmms-eval's EgoThink judge prompt, mean over capabilities; "
            "the judge model is named in the row" if options.judge else
            "EgoThink: local answer match, mean over capabilities, a local stand-in in its own column; the paper's "
            "metric is a GPT judge: rerun with --judge-url URL (any OpenAI-compatible server) or --judge openai to "
            "compare with published numbers")
    return BenchmarkPlan("egothink", tasks, metric=metric, combine="mean", group=GROUP, extra_metrics=("token_f1",),
                         notes=[note])


# --- lmms-eval hooks (the stock doc_to_visual / doc_to_text / doc_to_target are kept) ------------------------------

def process_results(doc: dict, results: list[str]) -> dict:
    prediction = results[0].strip()
    return {"local_answer_match": answer_match(prediction, doc["answer"]),
            "token_f1": token_f1(prediction, doc["answer"])}


def process_results_judged(doc: dict, results: list[str]) -> dict:
    from egoforge.lmms.judge import judge_rating

    rating = judge_rating(doc["question"], doc["answer"], results[0].strip())
    return {**process_results(doc, results), "judge_rating": rating}
