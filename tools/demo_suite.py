"""``egoforge demo suite``: all six benchmarks through one real lmms-eval run, offline on CPU.

A tiny random Qwen3-VL (``egoforge make tiny-model qwen3_vl``) and generated copies of the six benchmarks in their
real local layouts (``egoforge make data suite``) -> ``egoforge evaluate suite`` (EgoSchema, EgoPlan-Bench2,
EgoThink, QAEgo4D, EgoTextVQA, EgoCross). A random model knows nothing: the point is the plumbing, so the table
shows each benchmark's metric, how many questions were scored, and chance where the benchmark has one.
"""

from __future__ import annotations

from egoforge.tools.demo_runner import Demo, StageFailed, read_json

BENCHMARKS = ("egoschema", "egoplan2", "egothink", "qaego4d", "egotextvqa", "egocross")
# chance accuracy (%) of the multiple-choice benchmarks; the open-answer ones have none
CHANCE = {"egoschema": 20.0, "egoplan2": 25.0, "qaego4d": 25.0, "egocross": 25.0}


def run(args) -> int:
    demo = Demo("suite", args.workdir, stages=3, quiet=args.quiet)
    w = demo.work
    model, data, out = w / "models" / "tiny-qwen3-vl", w / "data" / "benchmarks", w / "suite"
    demo.egoforge("tiny random Qwen3-VL", "make", "tiny-model", "qwen3_vl", "--out", model, expect=(model,))
    demo.egoforge("generated copies of the six benchmarks", "make", "data", "suite", "--out", data,
                  expect=tuple(data / b for b in BENCHMARKS), show=6)
    demo.egoforge("egoforge evaluate suite: one lmms-eval run over the six benchmarks", "evaluate", "suite",
                  "--model", model, "--data-root", data, "--out", out, "--benchmarks", ",".join(BENCHMARKS),
                  "--device", "cpu", "--batch-size", "2", "--max-new-tokens", "8", "--quiet",
                  expect=(out / "results.json",))
    results = read_json(out / "results.json", "evaluate suite")
    rows = {}
    for name in BENCHMARKS:
        bench = results.get("benchmarks", {}).get(name)
        if not bench or not isinstance(bench.get("score"), (int, float)):
            raise StageFailed(f"evaluate suite: {out / 'results.json'} has no score for {name}")
        rows[name] = {"metric": bench["metric"], "questions": bench.get("n"),
                      "tiny Qwen3-VL (%)": float(bench["score"]), "chance (%)": CHANCE.get(name, "n/a (open answer)")}
    picture = {"tiny Qwen3-VL (random weights)": {n: r["tiny Qwen3-VL (%)"] for n, r in rows.items()},
               "chance": {n: CHANCE[n] for n in rows if n in CHANCE}}
    demo.finish("The six egocentric benchmarks on generated data: tiny random Qwen3-VL (CPU)", rows,
                ["metric", "questions", "tiny Qwen3-VL (%)", "chance (%)"],
                extra={"suite results": out / "results.json", "suite table (with published rows)": out / "results.md",
                       "suite chart": out / "results.png", "EgoCross report": out / "egocross",
                       "lmms-eval log": out / "lmms_eval.log", "model": model, "benchmarks": data},
                picture_rows=picture, picture_columns=list(BENCHMARKS), ylabel="score (%)")
    return 0
