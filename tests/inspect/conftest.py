"""Generated data for the report tests: an EgoCross testbed with predictions, ShareGPT sets (frames as images,
frame-list videos, an mp4), a verl RLHF parquet, each with hostile text and a few broken rows."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from inspect_hostile import HOSTILE, HOSTILE_OPTION, HOSTILE_RESPONSE
from PIL import Image


def _digest(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def snapshot():
    """Every file under a folder with its bytes, to prove the report never modifies its sources."""
    return _digest


def _write_predictions(path: Path, items: list[dict], answers: dict[str, str]) -> dict[str, str]:
    """Correct, wrong, unparsed and missing predictions in a fixed pattern; returns the verdict per id."""
    rng = random.Random(7)
    verdicts = {}
    with path.open("w", encoding="utf-8") as handle:
        for i, item in enumerate(items):
            truth = answers[item["id"]]
            if i % 6 == 5:
                verdicts[item["id"]] = "none"  # no prediction at all
                continue
            if i % 6 == 4:
                record = {"prediction": "", "reason": "", "parse_status": "unparsed", "raw_response": HOSTILE_RESPONSE}
                verdicts[item["id"]] = "wrong"
            elif i % 3 == 0:
                wrong = rng.choice([c for c in "ABCD" if c != truth])
                record = {"prediction": wrong, "reason": f"I saw {wrong}.", "parse_status": "json",
                          "raw_response": json.dumps({"prediction": wrong, "reason": f"I saw {wrong}."})}
                verdicts[item["id"]] = "wrong"
            else:
                record = {"prediction": truth, "reason": "clear", "parse_status": "json",
                          "raw_response": json.dumps({"prediction": truth, "reason": "clear"})}
                verdicts[item["id"]] = "correct"
            record = {"id": item["id"], "question_id": item["question_id"], "dataset": item["dataset"]} | record
            handle.write(json.dumps(record) + "\n")
    return verdicts


@pytest.fixture(scope="session")
def inspect_testbed(tmp_path_factory) -> dict:
    """12 testbed items (3 per domain) + answers + predictions; item 0 carries hostile text, item 1 a path that
    escapes the data root, item 2 a frame that does not decode."""
    from egoforge.testing.egocross_data import make_testbed

    root = tmp_path_factory.mktemp("inspect_testbed")
    testbed, answers_path = make_testbed(root, per_domain=3, frames=(2, 3), seed=3)
    items = json.loads(testbed.read_text())
    items[0]["question_text"] = HOSTILE
    items[0]["options"][0] = "A: " + HOSTILE_OPTION
    items[1]["video_path"][0] = "../../../etc/passwd"
    (root / "testbed" / "broken.jpg").write_bytes(b"this is not a JPEG")
    items[2]["video_path"][-1] = "testbed/broken.jpg"
    testbed.write_text(json.dumps(items, indent=1))
    answers = {a["id"]: a["correct_option_letter"] for a in json.loads(answers_path.read_text())}
    predictions = root / "run" / "predictions.jsonl"
    predictions.parent.mkdir()
    verdicts = _write_predictions(predictions, items, answers)
    return {"root": root, "testbed": testbed, "answers": answers_path, "predictions": predictions,
            "items": items, "answer_map": answers, "verdicts": verdicts}


def _mp4(path: Path, frames: int = 12, fps: int = 4, size: tuple[int, int] = (64, 48)) -> None:
    """A tiny H.264 clip whose frames brighten over time, so thumbnails at different times differ."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for t in range(frames):
            array = np.full((size[1], size[0], 3), 20 * t, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="session")
def inspect_sharegpt(tmp_path_factory) -> dict:
    """A support set as images (train.json) and the same rows as frame-list videos plus an mp4 (videos.json)."""
    from egoforge.testing.egocross_data import make_support_set

    root = tmp_path_factory.mktemp("inspect_sharegpt")
    make_support_set(root, per_domain=2, frames=(2, 3), seed=5)
    rows = json.loads((root / "train.json").read_text())
    first, tags = rows[0]["messages"][0], "<image>" * len(rows[0]["images"])
    first["content"] = tags + HOSTILE + "\n" + first["content"][len(tags):]
    rows.append("not a sample")  # row 8: not an object
    rows.append({"messages": [{"role": "assistant", "content": "A"}], "images": ["frames/none.jpg"]})  # row 9
    (root / "images.json").write_text(json.dumps(rows, indent=1))
    video_rows = []
    for row in rows[:8]:
        n = len(row["images"])
        user = row["messages"][0]["content"].replace("<image>" * n, "<video>")
        video_rows.append({"conversations": [{"from": "human", "value": user},
                                             {"from": "gpt", "value": row["messages"][1]["content"]}],
                           "videos": [row["images"]]})
    _mp4(root / "clips" / "clip.mp4")
    video_rows.append({"messages": [{"role": "user", "content": "<video>Which way does the light change?\n"
                                     "A) brighter\nB) darker"}, {"role": "assistant", "content": "A"}],
                       "videos": ["clips/clip.mp4"], "id": "mp4-clip"})
    (root / "videos.json").write_text(json.dumps(video_rows, indent=1))
    return {"root": root, "images": root / "images.json", "videos": root / "videos.json", "rows": rows}


def _png_bytes(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def inspect_parquet(inspect_testbed, tmp_path_factory) -> dict:
    """verl RLHF parquet rows from the testbed: frame-list ``videos`` dicts, path ``images``, embedded bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = inspect_testbed["root"]
    rows = []
    for i, item in enumerate(inspect_testbed["items"][:6]):
        question = item["question_text"] + "\n" + "\n".join(o.replace(":", ")", 1) for o in item["options"])
        if i % 3 == 0:
            content, images, videos = "<video>" + question, [], [{"video": item["video_path"], "sample_fps": 1.0}]
        elif i % 3 == 1:
            content = "<image>" * len(item["video_path"]) + question
            images, videos = [{"bytes": None, "path": p} for p in item["video_path"]], []
        else:
            content, images, videos = "<image>" + question, [{"bytes": _png_bytes((200, 30, 30)), "path": None}], []
        rows.append({
            "data_source": item["dataset"],
            "prompt": [{"role": "system", "content": "Answer with a letter."}, {"role": "user", "content": content}],
            "images": images,
            "videos": videos,
            "ability": "egocentric_vqa",
            "reward_model": {"ground_truth": inspect_testbed["answer_map"][item["id"]], "style": "rule"},
            "extra_info": {"index": i, "id": item["id"], "primary_category": item["primary_category"],
                           "question_type": item["question_type"]},
        })
    schema = pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("videos", pa.list_(pa.struct([("video", pa.list_(pa.string())), ("sample_fps", pa.float64())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([("index", pa.int64()), ("id", pa.string()), ("primary_category", pa.string()),
                                  ("question_type", pa.string())])),
    ])
    path = tmp_path_factory.mktemp("inspect_parquet") / "egocross_rl.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return {"path": path, "root": root, "rows": rows}
