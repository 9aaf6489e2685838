"""`egoforge lego ...` end to end: convert a download-shaped folder, validate, extract features with the tuned
tiny VLLM, sample frames from the trained tiny LDM, and score them (clear errors for missing inputs and weights)."""

from __future__ import annotations

import json

from egoforge.testing.lego_data import make_lego_dataset
from egoforge.tools.cli import main


def test_convert_root_writes_every_output_and_validate_reports_rows(tmp_path, capsys):
    layout = make_lego_dataset(tmp_path / "lego", "epickitchen", clips={"train": 2, "val": 1})
    before = layout.json("train").read_bytes()
    assert main(["lego", "convert", "--root", str(tmp_path / "lego")]) == 0
    done = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(p.split("/")[-1] for p in (d["out"] for d in done)) == [
        "ldm_epickitchen_train.jsonl", "ldm_epickitchen_val.jsonl", "lego_epickitchen_sft.json"]
    assert layout.json("train").read_bytes() == before  # sources untouched
    sft = json.loads((tmp_path / "lego" / "egoforge" / "lego_epickitchen_sft.json").read_text())
    assert sft[0]["images"][0].startswith("epickitchen/train/")
    assert main(["lego", "validate", str(layout.curation), "--frames-dir", str(layout.frames_dir("train"))]) == 0
    data = json.loads(layout.json("val").read_text())
    clip = next(iter(data))
    data[clip]["0"]["image_1"] = "nowhere.jpg"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["lego", "validate", str(broken), "--frames-dir", str(layout.frames_dir("val"))]) == 1
    assert f"row 0, field '[{clip}][0].image_1': file not found" in capsys.readouterr().out
    assert main(["lego", "convert", str(broken), "--to", "ldm", "--frames-dir", str(layout.frames_dir("val")),
                 "--media-root", str(layout.egogen), "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "row 0, field" in capsys.readouterr().err and not (tmp_path / "x.jsonl").exists()
    assert main(["lego", "convert", "--root", str(tmp_path / "empty")]) == 1


def test_features_sample_and_metrics_commands(lego_work, lego_vllm, lego_features, trained_ldm, tiny_clip,
                                              random_alexnet, tmp_path, capsys, one_thread):
    lego = lego_work / "data" / "lego"
    index = lego / "egoforge" / "ldm_ego4d_val.jsonl"
    media = lego / "EgoGen"
    assert main(["lego", "features", "--model", str(lego_vllm), "--index", str(index), "--media-root", str(media),
                 "--out", str(tmp_path / "feat"), "--limit", "1", "--max-new-tokens", "3", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["extracted"] == 1

    sample = ["lego", "sample", "--model", str(trained_ldm), "--index", str(index), "--media-root", str(media),
              "--out", str(tmp_path / "gen"), "--steps", "2", "--limit", "2", "--quiet"]
    assert main(sample) == 2  # a VLLM-conditioned model needs its features
    assert "--features" in capsys.readouterr().err
    assert main([*sample, "--features", str(lego_features["val"])]) == 0
    assert (tmp_path / "gen" / "examples.png").read_bytes()[:4] == b"\x89PNG"
    settings = json.loads((tmp_path / "gen" / "sampling.json").read_text())
    assert (settings["steps"], settings["text_scale"], settings["image_scale"], settings["ema"]) == (2, 7.5, 1.5, True)
    assert len(list((tmp_path / "gen" / "images").rglob("*.jpg"))) == 2

    metrics = ["lego", "metrics", "--generated", str(tmp_path / "gen"), "--index", str(index), "--media-root",
               str(media), "--out", str(tmp_path / "scores"), "--limit", "2", "--clip-model", str(tiny_clip),
               "--lpips-nets", "alex", "--quiet"]
    capsys.readouterr()
    assert main(metrics) == 1  # FID's Inception weights are absent: say which file, where
    assert "weights-inception-2015-12-05-6726825d.pth" in capsys.readouterr().err
    assert main([*metrics, "--skip-missing"]) == 0
    assert "skipping (weights missing): fid" in capsys.readouterr().err
    results = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert set(results["metrics"]) == {"psnr", "clip", "lpips_alex"} and results["n"] == 2
    table = (tmp_path / "scores" / "results.md").read_text()
    assert "| Method | EgoVLP | EgoVLP+ | CLIP | FID | PSNR | LPIPS | BLIP-B | BLIP-L |" in table
    assert (tmp_path / "scores" / "results.csv").read_text().startswith("Method,EgoVLP")
