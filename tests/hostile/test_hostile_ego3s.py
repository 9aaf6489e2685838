"""Hostile inputs to ``egoforge ego3s``: each case's exit code and message, sources unchanged, no partial output.

Covers issue 17's ego3s findings for this command family: bad input (missing, a folder, non-UTF-8, a wrong shape,
rows with problems, an output that is a link or a folder, a missing or broken recipe) used to be caught by the
command itself and exit 1; it now exits 2 through the CLI's one input-error discipline, in one line, nothing
written.
"""

from __future__ import annotations

import json
import os

import pytest
from case_runner import Case, check


@pytest.fixture(scope="module")
def e3(tmp_path_factory) -> dict:
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    work = tmp_path_factory.mktemp("hostile_ego3s")
    source = make_video_r1_dataset(work / "data", n=2, frames=(4, 4))
    latin1 = work / "latin1.json"
    latin1.write_bytes('[{"problem": "caf\xe9"}]'.encode("latin-1"))
    shape = work / "object.json"
    shape.write_text('{"problem": "q"}')
    bad_rows = work / "bad_rows.json"
    bad_rows.write_text(json.dumps([{"problem_id": 1, "problem": "q", "problem_type": "numerical",
                                     "solution": "<answer>x</answer>", "data_type": "video", "path": "nope.mp4"}]))
    (work / "target.parquet").write_text("precious\n")
    os.symlink(work / "target.parquet", work / "link.parquet")
    (work / "a_folder").mkdir()
    (work / "text_frames").mkdir()  # a frame folder whose .jpg files are text: validate used to pass it
    for i in range(4):
        (work / "text_frames" / f"{i:05d}.jpg").write_text("not an image\n")
    text_frames = work / "text_frames.json"
    text_frames.write_text(json.dumps([{"problem_id": 1, "problem": "q", "problem_type": "multiple choice",
                                        "options": ["A. x", "B. y"], "solution": "<answer>A</answer>",
                                        "data_type": "video", "path": "text_frames"}]))
    broken_recipe = work / "broken.sh"
    broken_recipe.write_text("#!/bin/bash\npython3 -m verl.trainer.main_ppo \\\n    no_such_key.really=1\n")
    return {"work": work, "source": source, "latin1": latin1, "object": shape, "bad_rows": bad_rows,
            "link": work / "link.parquet", "target": work / "target.parquet", "folder": work / "a_folder",
            "broken_recipe": broken_recipe, "text_frames": text_frames}


def _convert(source: str, out, *extra):
    return lambda f: ["ego3s", "convert", f[source], "--out", out(f), "--quiet", *extra]


CASES = [
    Case("validate a missing file", lambda f: ["ego3s", "validate", f["work"] / "missing.json"], 2,
         "missing.json: not found"),
    Case("validate a folder", lambda f: ["ego3s", "validate", f["folder"], "--no-decode"], 2,
         "is a folder, expected a file", lambda f: [f["folder"]]),
    Case("validate non-UTF-8", lambda f: ["ego3s", "validate", f["latin1"]], 2, "not UTF-8 text",
         lambda f: [f["latin1"]]),
    Case("validate an object instead of a list", lambda f: ["ego3s", "validate", f["object"]], 2,
         "expected a JSON list of samples", lambda f: [f["object"]]),
    Case("convert a missing file", lambda f: ["ego3s", "convert", f["work"] / "missing.json", "--out",
                                              f["work"] / "c0.parquet"], 2, "missing.json: not found",
         absent=lambda f: [f["work"] / "c0.parquet"]),
    Case("convert non-UTF-8", _convert("latin1", lambda f: f["work"] / "c1.parquet"), 2, "not UTF-8 text",
         lambda f: [f["latin1"]], lambda f: [f["work"] / "c1.parquet"]),
    Case("convert rows with problems", _convert("bad_rows", lambda f: f["work"] / "c2.parquet"), 2,
         "problem(s); nothing written", lambda f: [f["bad_rows"]], lambda f: [f["work"] / "c2.parquet"]),
    Case("convert --out through a symlink", _convert("source", lambda f: f["link"], "--no-decode"), 2,
         "is a symbolic link", lambda f: [f["source"], f["target"]]),
    Case("convert --out is a folder", _convert("source", lambda f: f["folder"], "--no-decode"), 2,
         "is a folder, expected a file path", lambda f: [f["source"], f["folder"]]),
    Case("sft-data a missing file", lambda f: ["ego3s", "sft-data", f["work"] / "missing.json", "--out",
                                               f["work"] / "sft.json"], 2, "not found",
         absent=lambda f: [f["work"] / "sft.json"]),
    Case("sft-data rows with problems", lambda f: ["ego3s", "sft-data", f["bad_rows"], "--out",
                                                   f["work"] / "sft2.json", "--no-decode"], 2, "nothing written",
         lambda f: [f["bad_rows"]], lambda f: [f["work"] / "sft2.json"]),
    Case("convert a frame folder of text .jpg files", _convert("text_frames", lambda f: f["work"] / "c3.parquet"), 2,
         "image does not decode", lambda f: [f["text_frames"], f["work"] / "text_frames"],
         lambda f: [f["work"] / "c3.parquet"]),
    Case("validate a frame folder of text .jpg files", lambda f: ["ego3s", "validate", f["text_frames"]], 1,
         "image does not decode", lambda f: [f["text_frames"]]),
    Case("plan a missing recipe", lambda f: ["ego3s", "plan", f["work"] / "missing.sh"], 2, "missing.sh"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_ego3s(case, e3, capsys):
    check(case, e3, capsys)
