"""`egoforge lego ...` end to end: convert a download-shaped folder, validate, extract features with the tuned
tiny VLLM, sample frames from the trained tiny LDM, and score them (clear errors for missing inputs and weights)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lego_helpers import read_jsonl

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
                 "--media-root", str(layout.egogen), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "row 0, field" in capsys.readouterr().err and not (tmp_path / "x.jsonl").exists()
    assert main(["lego", "convert", "--root", str(tmp_path / "empty")]) == 2


def test_features_sample_and_metrics_commands(lego_work, lego_vllm, lego_features, trained_ldm, tiny_clip,
                                              random_alexnet, tmp_path, capsys, one_thread):
    lego = lego_work / "data" / "lego"
    index = lego / "egoforge" / "ldm_ego4d_val.jsonl"
    media = lego / "EgoGen"
    assert main(["lego", "features", "--model", str(lego_vllm), "--index", str(index), "--media-root", str(media),
                 "--out", str(tmp_path / "feat"), "--limit", "1", "--max-new-tokens", "3", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["extracted"] == 1
    # with the stage-A recipe: its pixel budget and LLaMA-Factory's training prompt format
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "lego_vllm_qwen.yaml"
    assert main(["lego", "features", "--model", str(lego_vllm), "--index", str(index), "--media-root", str(media),
                 "--out", str(tmp_path / "feat_recipe"), "--limit", "2", "--max-new-tokens", "3",
                 "--recipe", str(recipe)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["extracted"] == 2
    from egoforge.lego.features import FeatureReader

    meta = FeatureReader(tmp_path / "feat_recipe").meta["settings"]
    assert (meta["template"], meta["min_pixels"], meta["max_pixels"]) == ("qwen3_vl_nothink", 50176, 262144)

    sample = ["lego", "sample", "--model", str(trained_ldm), "--index", str(index), "--media-root", str(media),
              "--out", str(tmp_path / "gen"), "--steps", "2", "--limit", "2", "--quiet"]
    assert main(sample) == 2  # a VLLM-conditioned model needs its features
    assert "--features" in capsys.readouterr().err
    # the train features lack the val rows: refused before sampling, in one line (the check was dead code)
    assert main([*sample, "--features", str(lego_features["train"])]) == 2
    assert "no features for 2 of 2 rows" in capsys.readouterr().err
    broken = tmp_path / "broken_media"
    shutil.copytree(media, broken)
    first = read_jsonl(index)[0]
    (broken / first["source"]).write_bytes(b"not a jpeg")
    assert main([*sample[:-1], "--media-root", str(broken), "--features", str(lego_features["val"]),
                 "--out", str(tmp_path / "gen_broken"), "--quiet"]) == 2  # no metadata beside this media root
    assert "no clip metadata" in capsys.readouterr().err.splitlines()[-1]
    assert main([*sample[:-1], "--media-root", str(broken), "--features", str(lego_features["val"]),
                 "--out", str(tmp_path / "gen_broken"), "--quiet",
                 "--metadata", str(lego / "ego4d_metadata.json")]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("egoforge lego sample: ") and "Traceback" not in err and "cannot identify" in last
    assert main([*sample, "--features", str(lego_features["val"]), "--metadata", str(tmp_path / "none.json")]) == 2
    assert "none.json: no clip metadata" in capsys.readouterr().err
    assert main([*sample, "--features", str(lego_features["val"])]) == 0  # metadata found beside EgoGen/
    assert (tmp_path / "gen" / "examples.png").read_bytes()[:4] == b"\x89PNG"
    settings = json.loads((tmp_path / "gen" / "sampling.json").read_text())
    assert (settings["steps"], settings["text_scale"], settings["image_scale"], settings["ema"]) == (2, 7.5, 1.5, True)
    assert len(list((tmp_path / "gen" / "images").rglob("*.jpg"))) == 2

    metrics = ["lego", "metrics", "--generated", str(tmp_path / "gen"), "--index", str(index), "--media-root",
               str(media), "--out", str(tmp_path / "scores"), "--limit", "2", "--clip-model", str(tiny_clip),
               "--lpips-nets", "alex", "--quiet"]
    capsys.readouterr()
    assert main(metrics) == 2  # FID's Inception weights are absent: say which file, where
    assert "weights-inception-2015-12-05-6726825d.pth" in capsys.readouterr().err
    assert main([*metrics, "--skip-missing"]) == 0
    assert "skipping (weights missing): fid" in capsys.readouterr().err
    results = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert set(results["metrics"]) == {"psnr", "clip", "lpips_alex"} and results["n"] == 2
    table = (tmp_path / "scores" / "results.md").read_text()
    assert "| Method | EgoVLP | EgoVLP+ | CLIP | FID | PSNR | LPIPS | BLIP-B | BLIP-L |" in table
    assert (tmp_path / "scores" / "results.csv").read_text().startswith("Method,EgoVLP")


def test_metrics_bad_inputs_are_one_line_messages(tmp_path, capsys):
    from PIL import Image

    from egoforge.lego.sampling import output_name

    make_lego_dataset(tmp_path / "lego", "ego4d", clips={"train": 1, "val": 1}, actions_per_clip=2)
    assert main(["lego", "convert", "--root", str(tmp_path / "lego")]) == 0
    index = tmp_path / "lego" / "egoforge" / "ldm_ego4d_val.jsonl"
    rows = read_jsonl(index)
    for row in rows:
        path = tmp_path / "gen" / output_name(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (90, 90, 90)).save(path)
    base = ["lego", "metrics", "--generated", str(tmp_path / "gen"), "--index", str(index), "--media-root",
            str(tmp_path / "lego" / "EgoGen"), "--out", str(tmp_path / "scores"), "--quiet"]
    capsys.readouterr()
    cases = [
        (["--metrics", "psnr"], None),
        (["--metrics", "psnr,ssim"], "unknown ['ssim']"),
        (["--lpips-nets", "resnet"], "--lpips-nets 'resnet'"),
        (["--index", str(tmp_path / "none.jsonl")], "none.jsonl: file not found"),
    ]
    for extra, message in cases:
        code = main([*base, *extra])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if message is None:
            assert code == 0, err
            assert "https://huggingface.co/bolinlai/LEGO-Metrics" in (tmp_path / "scores" / "results.md").read_text()
        else:
            assert code == 2 and err.startswith("egoforge lego metrics: ") and message in err, err
    (tmp_path / "gen" / output_name(rows[0])).write_bytes(b"not a jpeg")
    assert main([*base, "--metrics", "psnr"]) == 2
    assert "cannot identify image file" in capsys.readouterr().err
    (tmp_path / "lego" / "EgoGen" / rows[1]["target"]).unlink()
    assert main([*base, "--metrics", "psnr"]) == 2
    assert f"no ground-truth frame for {rows[1]['id']}" in capsys.readouterr().err
