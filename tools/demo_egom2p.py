"""``egoforge demo egom2p``: the docs walkthrough of EgoM2P, offline on CPU (tiny sizes, generated recordings).

Generated recordings (``egoforge make data egom2p``) -> aligned 2 s clips -> camera, gaze and video tokenizers
trained briefly -> WebDataset token shards per modality -> a tiny EgoM2P -> ROAR generation of ``rgb2cam`` and
``rgb2gaze`` scored against the clips (the demo scores on its training clips: it exercises the pipeline, it does not
measure generalisation).
"""

from __future__ import annotations

from egoforge.tools.demo_runner import Demo, StageFailed, read_json, repo_file

TOKENIZER_STEPS = 100
MODEL_STEPS = 100
TINY_TRAJECTORY = ["tokenizer.dim=64", "tokenizer.depth=2", "tokenizer.num_heads=4",
                   "tokenizer.dead_code_threshold=0.5"]
TASKS = ("rgb2cam", "rgb2gaze")


def run(args) -> int:
    demo = Demo("egom2p", args.workdir, stages=13, quiet=args.quiet)
    w = demo.work
    raw, clips, tokens = w / "data" / "raw", w / "clips", w / "tokens"
    demo.egoforge("generate raw recordings (H.264, depth, gaze CSV, TUM camera)", "make", "data", "egom2p", "--out",
                  w / "data", expect=(raw,))
    demo.egoforge("raw recordings -> aligned 2 s clips (32 px)", "egom2p", "prepare", raw, "--out", clips,
                  "--dataset", "synth", "--size", "32", expect=(clips / "synth",), show=1)
    common = [f"data.clips=[{clips}]", f"max_steps={TOKENIZER_STEPS}"]
    for modality in ("cam", "gaze"):
        demo.egoforge(f"{modality} tokenizer, {TOKENIZER_STEPS} steps", "train",
                      repo_file(f"recipes/egom2p_{modality}_tokenizer.yaml"), f"output_dir={w / f'{modality}_tok'}",
                      *common, "batch_size=8", "optim.blr=4e-3", "warmup_epochs=0.5", *TINY_TRAJECTORY, show=1)
    demo.egoforge(f"video tokenizer (rgb and depth), {TOKENIZER_STEPS} steps", "train",
                  repo_file("recipes/egom2p_video_tokenizer.yaml"), f"output_dir={w / 'video_tok'}", *common,
                  "batch_size=4", "optim.blr=0.05", "mixed_precision=no", "tokenizer.size=32",
                  "tokenizer.levels=[8,5,5]", "tokenizer.base_channels=8", "tokenizer.channel_mult=[1,1,2,2]", show=1)
    tokenizer_of = {"rgb": w / "video_tok", "depth": w / "video_tok", "gaze": w / "gaze_tok", "cam": w / "cam_tok"}
    for modality, tokenizer in tokenizer_of.items():
        demo.egoforge(f"tokenize {modality} clips into WebDataset shards", "egom2p", "tokenize", clips, "--out",
                      tokens, "--modality", modality, "--tokenizer", tokenizer)
    demo.egoforge("what the trainer will read (checked clip by clip)", "egom2p", "stats", tokens, "--clips", clips,
                  show=8)
    model = w / "egom2p_tiny"
    demo.egoforge(f"tiny EgoM2P, {MODEL_STEPS} steps", "train", repo_file("recipes/egom2p_tiny.yaml"),
                  f"data.root={tokens}", "data.datasets={synth: {weight: 1.0}}", f"output_dir={model}",
                  f"max_steps={MODEL_STEPS}", show=1)
    rows, previews = {}, {}
    for task in TASKS:
        target = task.split("2")[1]
        out = w / "generate" / task
        demo.egoforge(f"ROAR generation: {task}, scored against the clips", "egom2p", "generate", "--model", model,
                      "--task", task, "--clips", clips, "--out", out, "--tokenizer", f"rgb={tokenizer_of['rgb']}",
                      "--tokenizer", f"{target}={tokenizer_of[target]}", expect=(out / "results.json",))
        results = read_json(out / "results.json", f"generate {task}")
        if not results.get("mean"):
            raise StageFailed(f"generate {task}: {out / 'results.json'} holds no scored clip")
        rows[task] = {"clips": results["clips"], **results["mean"]}
        previews[f"{task} preview (ground truth above prediction)"] = out / "preview.png"
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    metrics = [c for c in columns if c != "clips"]
    demo.finish("EgoM2P on generated recordings (tiny, CPU): ROAR generation scored against the clips", rows, columns,
                extra={"clips": clips, "token shards": tokens, "model": model, **previews},
                picture_columns=metrics, ylabel=None)
    return 0
