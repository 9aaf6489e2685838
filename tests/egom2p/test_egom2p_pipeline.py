"""The whole offline pipeline through the `egoforge` command, on generated recordings: clips -> tokenizers ->
shards -> EgoM2P -> ROAR for the four tasks -> metrics; plus the recipes' headers and the CLI's error paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from egoforge.tools.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("egom2p_*.yaml"))
TINY_TRAJ = ["tokenizer.dim=32", "tokenizer.depth=1", "tokenizer.num_heads=2", "tokenizer.dead_code_threshold=0.5"]
TINY_VIDEO = ["tokenizer.size=32", "tokenizer.levels=[8,5,5]", "tokenizer.base_channels=8",
              "tokenizer.channel_mult=[1,1,2,2]", "mixed_precision=no"]


def test_recipes_open_with_command_requirements_and_paper_row():
    assert {p.stem for p in RECIPES} >= {"egom2p_base", "egom2p_tiny", "egom2p_cam_tokenizer",
                                         "egom2p_gaze_tokenizer", "egom2p_video_tokenizer"}
    for recipe in RECIPES:
        header = recipe.read_text().split("\ntrainer:")[0]
        assert re.search(r"(egoforge train|egoforge\.tools\.cli train) recipes/" + recipe.name, header), recipe.name
        assert "Must exist locally" in header and "Reproduces:" in header, recipe.name
        assert yaml.safe_load(recipe.read_text())["trainer"].startswith("egom2p")


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys, egom2p_raw_and_clips):
    clips = str(egom2p_raw_and_clips / "clips")
    assert cli(["egom2p"]) == 2
    assert cli(["egom2p", "tokenize", clips, "--out", str(tmp_path / "t"), "--modality", "cam",
                "--tokenizer", str(tmp_path / "none")]) == 2
    assert "no tokenizer here" in capsys.readouterr().err
    (tmp_path / "cosmos").mkdir()
    (tmp_path / "cosmos" / "encoder.jit").write_bytes(b"")
    assert cli(["egom2p", "tokenize", clips, "--out", str(tmp_path / "t"), "--modality", "rgb",
                "--tokenizer", str(tmp_path / "cosmos")]) == 2
    assert "huggingface.co/nvidia/Cosmos-0.1-Tokenizer-DV4x8x8" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["egom2p", "prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "c"), "--dataset", "x"]) == 2
    assert "no recording folders" in capsys.readouterr().err
    assert cli(["train", str(REPO / "recipes" / "egom2p_cam_tokenizer.yaml"), f"data.clips=[{tmp_path}]"]) == 1
    assert "no clips with cam" in capsys.readouterr().err
    assert cli(["train", str(REPO / "recipes" / "egom2p_tiny.yaml"), f"data.root={tmp_path}"]) == 1
    assert "no shards" in capsys.readouterr().err
    assert cli(["egom2p", "modalities"]) == 0 and "| cam | 60x4x4 | 30 fps x 60 |" in capsys.readouterr().out
    assert cli(["egom2p", "synth", str(tmp_path / "synth"), "--recordings", "1", "--seconds", "2.1"]) == 0
    assert sorted(p.name for p in (tmp_path / "synth" / "rec00.take").iterdir()) == [
        "camera.txt", "depth.npz", "gaze.csv", "rgb.mp4"]


@pytest.mark.slow
def test_offline_pipeline_end_to_end(tmp_path, egom2p_raw_and_clips, capsys):
    clips = egom2p_raw_and_clips / "clips"
    common = ["progress=false", "save_steps=1000", f"data.clips=[{clips}]"]
    toks = {}
    for name, steps, extra in (("cam", 20, TINY_TRAJ), ("gaze", 20, TINY_TRAJ), ("video", 8, TINY_VIDEO)):
        toks[name] = tmp_path / f"{name}_tok"
        recipe = str(REPO / "recipes" / f"egom2p_{name}_tokenizer.yaml")
        assert cli(["egom2p", "tokenizer", "train", recipe, f"output_dir={toks[name]}", f"max_steps={steps}",
                    "batch_size=4", *common, *extra]) == 0
        assert (toks[name] / "config.json").is_file() and (toks[name] / "metrics.json").is_file()

    # tokenizer encode / decode / eval commands
    assert cli(["egom2p", "tokenizer", "encode", "--tokenizer", str(toks["cam"]), "--modality", "cam",
                "--clips", str(clips), "--out", str(tmp_path / "cam_tokens.npz")]) == 0
    with np.load(tmp_path / "cam_tokens.npz") as data:
        assert len(data.files) == 6 and data[data.files[0]].shape == (30,)
    assert cli(["egom2p", "tokenizer", "decode", "--tokenizer", str(toks["cam"]), "--modality", "cam",
                "--tokens", str(tmp_path / "cam_tokens.npz"), "--out", str(tmp_path / "cam_decoded")]) == 0
    assert np.load(tmp_path / "cam_decoded" / "synth__rec00_take__0000" / "cam.npy").shape == (60, 4, 4)
    np.savez(tmp_path / "evil.npz", **{"../../escaped": np.zeros(30, np.int32)})
    assert cli(["egom2p", "tokenizer", "decode", "--tokenizer", str(toks["cam"]), "--modality", "cam",
                "--tokens", str(tmp_path / "evil.npz"), "--out", str(tmp_path / "sandbox" / "out")]) == 2
    assert "escapes" in capsys.readouterr().err and not (tmp_path / "escaped").exists()
    capsys.readouterr()
    assert cli(["egom2p", "tokenizer", "eval", "--tokenizer", str(toks["gaze"]), "--modality", "gaze",
                "--clips", str(clips), "--out", str(tmp_path / "gaze_eval.json")]) == 0
    report = json.loads((tmp_path / "gaze_eval.json").read_text())
    assert report["clips"] == 4 and report["vocab_size"] == 256 and 0 <= report["gaze_l2"] < 1

    # clips -> shards for the four modalities
    shards = tmp_path / "tokens"
    for modality, tok in (("rgb", "video"), ("depth", "video"), ("gaze", "gaze"), ("cam", "cam")):
        assert cli(["egom2p", "tokenize", str(clips), "--out", str(shards), "--modality", modality,
                    "--tokenizer", str(toks[tok]), "--samples-per-shard", "4", "--quiet"]) == 0
    info = json.loads((shards / "rgb" / "synth" / "info.json").read_text())
    assert info["samples"] == 6 and info["token_grid"] == [5, 4, 4] and info["vocab_size"] == 200
    assert json.loads((shards / "gaze" / "synth" / "info.json").read_text())["samples"] == 4
    stamp = (shards / "cam" / "synth" / "shard-000000.tar").stat().st_mtime_ns
    again = ["egom2p", "tokenize", str(clips), "--out", str(shards), "--modality", "cam", "--tokenizer",
             str(toks["cam"]), "--samples-per-shard", "4", "--quiet"]
    assert cli(again) == 0  # same clips, same tokenizer weights: left alone
    assert (shards / "cam" / "synth" / "shard-000000.tar").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (shards / "cam" / "synth").iterdir()) == [  # the marker: egoforge wrote it
        ".egoforge-output", "index.json", "info.json", "shard-000000.tar", "shard-000001.tar"]
    # every clip joins with exactly its modalities (rec02 has no gaze or depth), as the trainer reads them
    capsys.readouterr()
    assert cli(["egom2p", "stats", str(shards), "--clips", str(clips), "--json"]) == 0
    combinations = json.loads(capsys.readouterr().out)["synth"]["combinations"]
    assert combinations == {"rgb+depth+gaze+cam": 4, "rgb+cam": 2}

    # EgoM2P on those shards, then the four tasks
    model = tmp_path / "model"
    assert cli(["train", str(REPO / "recipes" / "egom2p_tiny.yaml"), f"data.root={shards}",
                "data.datasets={synth: {weight: 1.0}}", f"output_dir={model}", "max_steps=4", "batch_size=2",
                "progress=false"]) == 0
    tokenizer_args = ["--tokenizer", f"rgb={toks['video']}", "--tokenizer", f"depth={toks['video']}",
                      "--tokenizer", f"gaze={toks['gaze']}", "--tokenizer", f"cam={toks['cam']}"]
    expected = {"rgb2depth": {"abs_rel", "delta1"}, "rgb2cam": {"ate", "rpe_trans", "rpe_rot_deg"},
                "rgb2gaze": {"gaze_l2"}, "depth2rgb": {"psnr"}}
    for task, keys in expected.items():
        out = tmp_path / "gen" / task
        assert cli(["egom2p", "generate", "--model", str(model), "--task", task, "--clips", str(clips),
                    "--out", str(out), "--limit", "2", "--batch-size", "2", "--quiet", *tokenizer_args]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["clips"] == 2 and keys <= set(results["mean"])
        assert all(np.isfinite(v) for v in results["mean"].values())
        assert (out / "results.md").is_file() and (out / "preview.png").stat().st_size > 0
        table = (out / "results.md").read_text()
        assert ("static camera (baseline)" in table) == (task == "rgb2cam"), table
        assert {"rgb2cam": "ate (m)", "rgb2gaze": "gaze_l2 (crop", "depth2rgb": "psnr (dB)"}.get(task, "") in table
        target = task.split("2")[1]
        first = next(iter(results["per_clip"]))
        prediction = np.load(out / first / f"{target}.npy")
        assert prediction.shape == np.load(clips / first / f"{target}.npy").shape
        # generate ran with --limit 2: scoring every clip with the target is refused; --allow-partial says "2 of N"
        assert cli(["egom2p", "metrics", "--task", task, "--pred", str(out), "--clips", str(clips)]) == 2
        assert cli(["egom2p", "metrics", "--task", task, "--pred", str(out), "--clips", str(clips),
                    "--allow-partial"]) == 0
        rescored = json.loads((out / "metrics.json").read_text())
        assert rescored["mean"] == pytest.approx(results["mean"])
        assert rescored["coverage"]["scored"] == 2 < rescored["coverage"]["clips"]
