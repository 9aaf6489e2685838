"""`egoforge make`: the tiny models and generated data the docs walk through, made by a documented command (not by
importing test helpers), loadable by the real loaders, and never written over an existing folder."""

from __future__ import annotations

import json

import pytest

from egoforge.tools.cli import main


@pytest.mark.parametrize("kind", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "clip"])
def test_tiny_model_loads_with_transformers(kind, tmp_path, capsys):
    from transformers import AutoConfig, AutoModel, AutoProcessor

    out = tmp_path / kind
    assert main(["make", "tiny-model", kind, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    config = AutoConfig.from_pretrained(out)
    assert config.model_type == {"qwen2_5_vl": "qwen2_5_vl", "llava": "llava", "clip": "clip"}.get(kind, kind)
    AutoProcessor.from_pretrained(out)
    assert sum(p.numel() for p in AutoModel.from_pretrained(out).parameters()) > 0


def test_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["make", "data", "ego3s", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_egocross_data_validates(tmp_path, capsys):
    out = tmp_path / "egocross"
    assert main(["make", "data", "egocross", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    testbed = out / "testbed" / "egocross_testbed_imgs.json"
    assert str(testbed) in printed and len(json.loads(testbed.read_text())) == 48
    assert main(["validate", str(out / "support_set" / "train.json"), "--media-dir", str(out / "support_set")]) == 0


def test_ego3s_data_has_train_and_val(tmp_path):
    out = tmp_path / "ego3s"
    assert main(["make", "data", "ego3s", "--out", str(out)]) == 0
    train, val = (json.loads((out / name).read_text()) for name in ("train.json", "val.json"))
    assert len(train) == 20 and len(val) == 6
    assert not {row["problem_id"] for row in train} & {row["problem_id"] for row in val}
