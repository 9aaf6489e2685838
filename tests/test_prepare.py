"""`egoforge prepare`: frames pre-resized exactly as LLaMA-Factory would, into a cache; source untouched."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from PIL import Image

from egoforge.data.prepare import budget_size, prepare_frames
from egoforge.tools.cli import main as cli


@pytest.fixture()
def data(tmp_path):
    root = tmp_path / "data"
    (root / "frames").mkdir(parents=True)
    rows = []
    for i, size in enumerate([(640, 480), (96, 64), (1000, 50)]):
        Image.new("RGB", size, (i * 50, 10, 10)).save(root / "frames" / f"f{i}.jpg")
        rows.append({"messages": [{"role": "user", "content": "<image>Q"}, {"role": "assistant", "content": "A"}],
                     "images": [f"frames/f{i}.jpg"]})
    (root / "train.json").write_text(json.dumps(rows))
    return root


def test_sizes_match_llamafactory_preprocessing(data, tmp_path):
    from llamafactory.data.mm_plugin import Qwen2VLPlugin

    plugin = Qwen2VLPlugin("<|image_pad|>", "<|video_pad|>", None)
    cache = tmp_path / "cache"
    stats = prepare_frames(data / "train.json", cache, max_pixels=16384, min_pixels=4096)
    assert stats.written == 3
    for name in ("f0.jpg", "f1.jpg", "f2.jpg"):
        with Image.open(data / "frames" / name) as raw:
            expected = plugin._preprocess_image(raw, image_max_pixels=16384, image_min_pixels=4096).size
        with Image.open(cache / "frames" / name) as cached:
            assert cached.size == expected
            # LLaMA-Factory leaves a prepared frame as it is.
            assert plugin._preprocess_image(cached, image_max_pixels=16384, image_min_pixels=4096).size == cached.size


def test_source_untouched_resume_and_guards(data, tmp_path):
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    cache = tmp_path / "cache"
    prepare_frames(data / "train.json", cache, max_pixels=16384)
    again = prepare_frames(data / "train.json", cache, max_pixels=16384)
    assert again.skipped == 3 and again.written == 0
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match="prepared for"):
        prepare_frames(data / "train.json", cache, max_pixels=999)
    with pytest.raises(ValueError, match="must differ"):
        prepare_frames(data / "train.json", data, max_pixels=16384)
    assert not [p for p in cache.rglob("*.tmp")]


def test_budget_size_arithmetic():
    assert budget_size(640, 480, 16384, 0) == (147, 110)
    assert budget_size(10, 10, 16384, 400) == (20, 20)
    assert budget_size(96, 64, 16384, 1024) == (96, 64)


def test_cli_reads_the_budget_from_a_recipe(data, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image_max_pixels: 4096\nimage_min_pixels: 0\n")
    cache = tmp_path / "cache"
    assert cli(["prepare", str(data / "train.json"), "--out", str(cache), "--recipe", str(recipe), "--quiet"]) == 0
    with Image.open(cache / "frames" / "f0.jpg") as img:
        assert img.width * img.height <= 4096
    assert "media_dir" in capsys.readouterr().out
    assert cli(["prepare", str(data / "train.json"), "--out", str(tmp_path / "c2")]) == 2


def test_escaping_paths_are_refused(data, tmp_path):
    rows = json.loads((data / "train.json").read_text())
    outside = tmp_path / "outside.jpg"
    shutil.copy(data / "frames" / "f0.jpg", outside)
    rows[0]["images"] = [os.path.relpath(outside, data)]
    (data / "evil.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="escapes the data root"):
        prepare_frames(data / "evil.json", tmp_path / "cache", max_pixels=16384)
