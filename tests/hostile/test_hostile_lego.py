"""Hostile inputs to ``egoforge lego``: each case's exit code and message, sources unchanged, no partial output.

Covers issue 17's lego findings: an empty LDM index (``metrics`` scored n=0 and exited 0), missing ``--model``
folders (``features``, ``sample``), missing metric weights, and input errors that exited 1 (``convert``,
``validate`` of an unreadable file).
"""

from __future__ import annotations

import json

import pytest
from case_runner import Case, check


@pytest.fixture(scope="module")
def lego(tmp_path_factory) -> dict:
    from PIL import Image

    work = tmp_path_factory.mktemp("hostile_lego")
    media, generated = work / "media", work / "generated"
    row = {"id": "c0_a0", "clip_id": "c0", "action_id": "a0", "source": "frames/c0/s.jpg",
           "target": "frames/c0/t.jpg", "prompt": "#C C cuts the onion", "feature_key": "frames/c0/s.jpg"}
    for path in (media / row["source"], media / row["target"], generated / "images" / "c0" / "a0" / "t.jpg"):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (120, 80, 40)).save(path)
    index = work / "index.jsonl"
    index.write_text(json.dumps(row) + "\n")
    empty = work / "empty.jsonl"
    empty.write_text("")
    blank = work / "blank.jsonl"
    blank.write_text("\n  \n\n")
    torn = work / "torn.json"
    torn.write_text('{"clip": {"0": {"image_0": ')
    (work / "model").mkdir()
    (work / "empty_root").mkdir()
    return {"work": work, "media": media, "generated": generated, "index": index, "empty": empty, "blank": blank,
            "torn": torn, "model": work / "model", "empty_root": work / "empty_root"}


def _metrics(index: str, out: str, *extra):
    return lambda f: ["lego", "metrics", "--generated", f["generated"], "--index", f[index], "--media-root",
                      f["media"], "--out", f["work"] / out, "--quiet", *extra]


CASES = [
    # --- an empty index is an error, not n=0 with exit 0
    Case("metrics with an empty index", _metrics("empty", "m1", "--metrics", "psnr"), 2, "the index has no rows",
         lambda f: [f["empty"], f["generated"]], lambda f: [f["work"] / "m1"]),
    Case("metrics with an index of blank lines", _metrics("blank", "m2", "--metrics", "psnr"), 2,
         "the index has no rows", lambda f: [f["blank"]], lambda f: [f["work"] / "m2"]),
    Case("sample with an empty index", lambda f: ["lego", "sample", "--model", f["model"], "--index", f["empty"],
                                                  "--media-root", f["media"], "--out", f["work"] / "s1"], 2,
         "the index has no rows", lambda f: [f["empty"]], lambda f: [f["work"] / "s1"]),
    Case("features with an empty index", lambda f: ["lego", "features", "--model", f["model"], "--index", f["empty"],
                                                    "--media-root", f["media"], "--out", f["work"] / "f1"], 2,
         "the index has no rows", lambda f: [f["empty"]], lambda f: [f["work"] / "f1"]),
    # --- models: a missing folder fails at once with "not found"
    Case("features --model missing", lambda f: ["lego", "features", "--model", f["work"] / "no_model", "--index",
                                                f["index"], "--media-root", f["media"], "--out", f["work"] / "f2"],
         2, "no_model: model folder not found", lambda f: [f["index"]], lambda f: [f["work"] / "f2"]),
    Case("features --model hub id offline", lambda f: ["lego", "features", "--model", "nobody/no-such-vllm", "--index",
                                                       f["index"], "--media-root", f["media"], "--out",
                                                       f["work"] / "f3"],
         2, "egoforge runs offline", lambda f: [f["index"]], lambda f: [f["work"] / "f3"]),
    Case("sample --model missing", lambda f: ["lego", "sample", "--model", f["work"] / "no_ldm", "--index",
                                              f["index"], "--media-root", f["media"], "--out", f["work"] / "s2"],
         2, "no_ldm: model folder not found", lambda f: [f["index"]], lambda f: [f["work"] / "s2"]),
    # --- a missing weights file is a missing input: exit 2, naming it
    Case("metrics --fid-weights missing", _metrics("index", "m3", "--metrics", "fid", "--fid-weights",
                                                   "/nonexistent/inception.pth"), 2, "inception.pth",
         lambda f: [f["index"], f["generated"]], lambda f: [f["work"] / "m3"]),
    # --- input errors that used to exit 1 from the command's own handler
    Case("convert --root with nothing to convert", lambda f: ["lego", "convert", "--root", f["empty_root"]], 2,
         "nothing found to convert", lambda f: [f["empty_root"]], lambda f: [f["empty_root"] / "egoforge"]),
    Case("validate a missing file", lambda f: ["lego", "validate", f["work"] / "missing.json"], 2,
         "missing.json: file not found"),
    Case("validate a torn JSON file", lambda f: ["lego", "validate", f["torn"]], 2, "not valid JSON",
         lambda f: [f["torn"]]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_lego(case, lego, capsys):
    check(case, lego, capsys)


def test_recipe_pretrained_folder_missing_is_not_found(tmp_path):
    """A lego_ldm recipe's ``model.pretrained`` goes through ``resolve_model_path``: a missing folder (or a hub id,
    even online: the UNet is widened in place from local files) is "not found" at once."""
    from egoforge.data.models import ModelNotFoundError
    from egoforge.lego.config import ModelConfig
    from egoforge.lego.model import LegoLDM

    with pytest.raises(ModelNotFoundError, match="model.pretrained .*no_sd: model folder not found"):
        LegoLDM.from_config(ModelConfig(pretrained=str(tmp_path / "no_sd")))
    with pytest.raises(ModelNotFoundError, match="egoforge runs offline"):
        LegoLDM.from_config(ModelConfig(pretrained="stable-diffusion-v1-5/stable-diffusion-v1-5"))
