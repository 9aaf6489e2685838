"""``egoforge demo egoagent``: the docs walkthrough of EgoAgent, offline on CPU (tiny size, generated data).

Generated walking tours, Ego-Exo4D layout and a city ImageFolder (``egoforge make data egoagent``) -> 1 fps frames
-> stage-1 DINO pre-training (``recipes/egoagent_stage1_tiny.yaml``) -> kNN classification -> body poses -> stage-2
world model (``recipes/egoagent_stage2_tiny.yaml``) -> future-state retrieval and 3D motion prediction.
"""

from __future__ import annotations

from egoforge.tools.demo_runner import Demo, StageFailed, read_json, repo_file

# fewer than the walkthrough's 300 / 200 steps, so the demo stays at a few minutes on a shared 2-core CPU
STAGE1_STEPS, STAGE2_STEPS = 150, 100


def run(args) -> int:
    demo = Demo("egoagent", args.workdir, stages=7, quiet=args.quiet)
    w = demo.work
    data = w / "data"
    demo.egoforge("generate walking tours, Ego-Exo4D layout and city ImageFolder", "make", "data", "egoagent",
                  "--out", data, expect=(data / "wtour", data / "egoexo4d", data / "cities"))
    videos = sorted((data / "wtour").glob("*.mp4"))
    if not videos:
        raise StageFailed(f"stage 1 wrote no walking-tour videos into {data / 'wtour'}")
    demo.egoforge("walking tours -> frames (1 per second)", "egoagent", "frames", *videos, "--out", w / "wtour_frames")
    stage1 = w / "stage1"
    demo.egoforge(f"stage 1: DINO pre-training, {STAGE1_STEPS} steps", "train",
                  repo_file("recipes/egoagent_stage1_tiny.yaml"), f"output_dir={stage1}",
                  f"data.frame_roots=[{w / 'wtour_frames'}]", f"max_steps={STAGE1_STEPS}",
                  f"save_steps={STAGE1_STEPS}",
                  expect=(stage1 / f"checkpoint-{STAGE1_STEPS}",), show=2)
    demo.egoforge("kNN classification of the generated cities", "egoagent", "knn", "--model",
                  stage1 / f"checkpoint-{STAGE1_STEPS}", "--train", data / "cities" / "train", "--val",
                  data / "cities" / "val", "--out", w / "knn", expect=(w / "knn" / "results.json",), show=4)
    demo.egoforge("Ego-Exo4D body poses -> pose fragments", "egoagent", "poses", "--root", data / "egoexo4d",
                  "--out", w / "body_pose", expect=(w / "body_pose" / "train",))
    stage2 = w / "stage2"
    demo.egoforge(f"stage 2: world model, {STAGE2_STEPS} steps", "train",
                  repo_file("recipes/egoagent_stage2_tiny.yaml"),
                  f"output_dir={stage2}", f"stage2.init_from={stage1 / f'checkpoint-{STAGE1_STEPS}'}",
                  f"data.pose_dir={w / 'body_pose' / 'train'}",
                  f"data.frames_root={data / 'egoexo4d' / 'processed_data'}", f"max_steps={STAGE2_STEPS}",
                  f"save_steps={STAGE2_STEPS}",
                  expect=(stage2 / f"checkpoint-{STAGE2_STEPS}",), show=2)
    demo.egoforge("future-state retrieval and 3D motion prediction on the held-out takes", "egoagent", "world",
                  "--checkpoint", stage2 / f"checkpoint-{STAGE2_STEPS}", "--pose-dir", w / "body_pose" / "val",
                  "--frames-root", data / "egoexo4d" / "processed_data", "--out", w / "world",
                  expect=(w / "world" / "results.json",), show=5)
    knn = read_json(w / "knn" / "results.json", "kNN")
    world = read_json(w / "world" / "results.json", "world")
    rows = {
        "kNN top-1 (%)": {"tiny EgoAgent": _num(knn, "top1"), "chance": _num(knn, "chance_top1")},
        "retrieval top-1 (%)": {"tiny EgoAgent": _num(world["retrieval"], "top1"),
                                "chance": _num(world["retrieval"], "chance_top1")},
        "retrieval top-5 (%)": {"tiny EgoAgent": _num(world["retrieval"], "top5"),
                                "chance": min(100.0, 5 * _num(world["retrieval"], "chance_top1"))},
    }
    columns = ["tiny EgoAgent", "chance"]  # chance: or the baseline named in the row
    # accuracies only in the picture: millimetres do not share an axis with percentages
    picture = {name: {label: row[name] for label, row in rows.items()} for name in columns}
    rows["future-joint MPJPE, steps 1+ (mm; baseline: zero velocity)"] = {
        "tiny EgoAgent": _num(world["motion"], "mpjpe_mm_steps_1plus"),
        "chance": _num(world["motion"], "zero_velocity_mpjpe_mm")}
    demo.finish("EgoAgent on generated data (tiny, CPU): kNN and future-state retrieval", rows, columns,
                extra={"stage-1 checkpoint": stage1 / f"checkpoint-{STAGE1_STEPS}",
                       "stage-2 checkpoint": stage2 / f"checkpoint-{STAGE2_STEPS}",
                       "kNN results": w / "knn" / "results.md", "world results": w / "world" / "results.md"},
                picture_rows=picture, picture_columns=list(rows), ylabel="accuracy (%)")
    return 0


def _num(results: dict, key: str) -> float:
    if not isinstance(results.get(key), (int, float)):
        raise StageFailed(f"results have no number {key!r} (keys: {sorted(results)})")
    return float(results[key])

