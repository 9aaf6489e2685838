"""Video-R1 json -> verl parquet: frame budget, schema, per-row validation errors, safety of the source data."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from egoforge.ego3s.convert import ConversionError, ConvertOptions, convert_file
from egoforge.ego3s.media import FrameBudget, load_clip, mask_region, sample_indices
from egoforge.ego3s.schema import load_video_r1, validate_rows


@pytest.mark.parametrize("total, fps, expected_n", [
    (80, 4.0, 16),  # 20 s at 2 fps = 40 frames, capped at 16
    (24, 4.0, 12),  # 6 s at 2 fps
    (8, 4.0, 4),  # 2 s at 2 fps
    (6, 4.0, 4),  # 1.5 s -> 3 frames, raised to the 4-frame minimum
    (3, 4.0, 2),  # shorter than the minimum: the frames it has, kept even
    (1, 4.0, 1),
    (1000, 30.0, 16),
])
def test_frame_budget_sampling(total, fps, expected_n):
    indices = sample_indices(total, fps, FrameBudget())
    assert len(indices) == expected_n
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] <= total - 1
    assert len(set(indices)) == len(indices)


def test_an_empty_pixel_budget_is_an_error(ego3s_data):
    with pytest.raises(ValueError, match="min_pixels 3136 > max_pixels 1536"):
        load_clip(ego3s_data / load_video_r1(ego3s_data / "train.json")[0]["path"], FrameBudget(max_pixels=48 * 32))


def test_clips_load_within_the_pixel_budget(ego3s_data):
    rows = load_video_r1(ego3s_data / "train.json")
    kinds = {}
    for row in rows:
        kind = "image" if row["data_type"] == "image" else ("folder" if "." not in row["path"] else "mp4")
        kinds[kind] = row
    assert set(kinds) == {"mp4", "folder", "image"}
    budget = FrameBudget(max_pixels=48 * 32, image_max_pixels=48 * 32, min_pixels=1024, image_min_pixels=1024)
    for row in kinds.values():
        frames, fps = load_clip(ego3s_data / row["path"], budget)
        assert all(f.width * f.height <= 48 * 32 * 1.05 for f in frames)
        if row["data_type"] == "video":
            assert 4 <= len(frames) <= 16 and len(frames) % 2 == 0 and fps > 0
    masked = mask_region(frames, [0.0, 0.5, 1.0, 1.0])
    bottom = masked[0].crop((0, masked[0].height // 2 + 1, masked[0].width, masked[0].height))
    assert bottom.getcolors(1) is not None  # a single flat colour: the region is painted over
    assert frames[0].tobytes() != masked[0].tobytes()


def test_convert_file_mode_schema(ego3s_parquet, ego3s_data):
    rows = pq.read_table(ego3s_parquet).to_pylist()
    source = json.loads((ego3s_data / "train.json").read_text())
    assert len(rows) == len(source)
    for row, src in zip(rows, source):
        assert row["data_source"] == "egoforge-generated"
        assert row["reward_model"] == {"style": "rule", "ground_truth": src["solution"]}
        info = row["extra_info"]
        assert info["problem_id"] == str(src["problem_id"]) and info["problem_type"] == src["problem_type"]
        assert info["options"] == src["options"] and info["index"] == source.index(src)
        assert info["roi_path"] == str((ego3s_data / src["roi_path"]).resolve())
        assert info["roi_box"] == [src["roi_box"]]
        (message,) = row["prompt"]
        assert message["role"] == "user" and "<object>" in message["content"]
        if src["data_type"] == "video":
            assert message["content"].startswith("<video>") and row["images"] is None
            (video,) = row["videos"]
            assert video["video"] == str((ego3s_data / src["path"]).resolve())
            assert (video["fps"], video["min_frames"], video["max_frames"], video["max_pixels"]) == (
                2.0, 4, 16, 128 * 28 * 28)
        else:
            assert message["content"].startswith("<image>") and row["videos"] is None
            assert row["images"][0]["max_pixels"] == 401408
        if src["problem_type"] == "multiple choice":
            assert "Options:\nA. " in message["content"]


def test_convert_frames_mode_extracts_the_sampled_frames(ego3s_data, tmp_path):
    out, skipped = convert_file(ego3s_data / "train.json", tmp_path / "frames.parquet",
                                ConvertOptions(video_mode="frames", irl=False))
    assert not skipped
    rows = pq.read_table(out).to_pylist()
    videos = [r["videos"][0] for r in rows if r["videos"]]
    assert videos and all(isinstance(v["video"], list) and 4 <= len(v["video"]) <= 16 for v in videos)
    assert all(str(tmp_path / "frames.frames") in v["video"][0] for v in videos)
    assert all("<object>" not in r["prompt"][0]["content"] for r in rows)


def _write(tmp_path, rows):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    return path


def test_validation_names_file_row_and_field(ego3s_data, tmp_path):
    shutil.copytree(ego3s_data, tmp_path / "d")
    rows = load_video_r1(tmp_path / "d" / "train.json")
    bad = [dict(r) for r in rows[:8]]
    bad[0]["problem_type"] = "essay"
    bad[1]["solution"] = "B"
    bad[2]["path"] = "../outside.mp4"
    bad[3]["roi_path"] = "roi/missing.jpg"
    bad[4]["options"] = ["red", "green"]
    bad[4]["problem_type"] = "multiple choice"
    bad[5]["problem_id"] = bad[6]["problem_id"]
    bad[6]["roi_box"] = [0.5, 0.5, 0.2, 0.9]
    bad[7]["solution"] = "<answer>about three</answer>"
    bad[7]["problem_type"] = "numerical"
    path = _write(tmp_path / "d", bad)
    issues = validate_rows(load_video_r1(path), str(path), tmp_path / "d")
    where = {(i.row, i.field) for i in issues}
    assert {(0, "problem_type"), (1, "solution"), (2, "path"), (3, "roi_path"), (4, "options"),
            (6, "problem_id"), (6, "roi_box"), (7, "solution")} <= where
    assert all(i.file == str(path) for i in issues)
    assert "escapes the data root" in next(str(i) for i in issues if i.field == "path")
    before = path.read_bytes()
    with pytest.raises(ConversionError) as err:
        convert_file(path, tmp_path / "out.parquet")
    assert "row 2, field 'path'" in str(err.value)
    assert not (tmp_path / "out.parquet").exists() and path.read_bytes() == before
    out, skipped = convert_file(path, tmp_path / "out.parquet", ConvertOptions(skip_invalid=True))
    assert len(pq.read_table(out)) == 8 - len({i.row for i in skipped})
    with pytest.raises(ValueError, match="overwrite the source"):
        convert_file(path, path)


def test_cli_convert_and_validate(ego3s_data, tmp_path, capsys):
    from egoforge.tools.cli import main

    assert main(["ego3s", "validate", str(ego3s_data / "train.json"), "--no-decode"]) == 0
    assert main(["ego3s", "convert", str(ego3s_data / "train.json"), "--out", str(tmp_path / "t.parquet"),
                 "--quiet", "--max-frames", "8"]) == 0
    videos = [r["videos"][0] for r in pq.read_table(tmp_path / "t.parquet").to_pylist() if r["videos"]]
    assert {v["max_frames"] for v in videos} == {8}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"problem_id": 1, "problem": "q", "problem_type": "numerical",
                                "solution": "<answer>x</answer>", "data_type": "video", "path": "nope.mp4"}]))
    capsys.readouterr()
    assert main(["ego3s", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}, row 0, field 'solution'" in err and f"{bad}, row 0, field 'path'" in err
    assert main(["ego3s", "convert", str(bad), "--out", str(tmp_path / "x.parquet")]) == 2
    assert not (tmp_path / "x.parquet").exists()
