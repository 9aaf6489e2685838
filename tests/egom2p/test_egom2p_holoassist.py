"""HoloAssist (Export_py layout) -> raw recording layout, on a generated recording: OpenCV camera poses from
Pose_sync.txt, gaze projected with K from Eyes_sync.txt, times from VideoMp4Timing.txt, errors by file and row,
and `prepare` on the result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egoforge.egom2p.clips import ClipSettings, prepare_clips, read_gaze_csv, read_tum
from egoforge.testing.egom2p_data import write_holoassist_recording
from egoforge.tools.cli import main as cli


def test_holoassist_recording_converts_camera_and_gaze(tmp_path, capsys):
    truth = write_holoassist_recording(tmp_path / "holoassist")
    out = tmp_path / "raw" / "R007"
    assert cli(["egom2p", "convert", "holoassist", str(truth["recording"]), "--out", str(out)]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"out": str(out), "poses": 135, "gaze": 135, "gaze_valid": 134}

    times, poses = read_tum(out / "camera.txt")
    assert np.allclose(times, truth["times"], atol=1e-6) and np.allclose(poses, truth["T_world_cv"], atol=1e-6)
    gaze_t, xy, valid = read_gaze_csv(out / "gaze.csv")
    assert np.allclose(gaze_t, truth["times"], atol=1e-6) and valid.sum() == 134 and not valid[10]
    K = truth["K"]
    for T, point, pixel, ok in zip(truth["T_world_cv"], truth["gaze_points"], xy, valid):
        if ok:  # independent pinhole projection of the looked-at point
            x, y, z = (np.linalg.inv(T) @ np.append(point, 1.0))[:3]
            assert np.allclose(pixel, [K[0, 0] * x / z + K[0, 2], K[1, 1] * y / z + K[1, 2]], atol=2e-3)

    counts = prepare_clips(tmp_path / "raw", tmp_path / "clips", "holoassist", ClipSettings(size=16), progress=False)
    assert counts["clips"] == 2 and counts["gaze"] == 2 and counts["cam"] == 2


def test_holoassist_errors_name_file_and_row(tmp_path, capsys):
    truth = write_holoassist_recording(tmp_path / "holoassist", seconds=2.2)
    rec = truth["recording"]
    eyes = rec / "Export_py" / "Eyes" / "Eyes_sync.txt"
    eyes.write_text("\n".join(eyes.read_text().splitlines()[:-1]) + "\n")
    assert cli(["egom2p", "convert", "holoassist", str(rec), "--out", str(tmp_path / "o1")]) == 2
    assert "65 gaze rows for 66 poses" in capsys.readouterr().err
    pose = rec / "Export_py" / "Video" / "Pose_sync.txt"
    lines = pose.read_text().splitlines()
    lines[4] = lines[4].replace("\t", "\tx", 1)
    pose.write_text("\n".join(lines) + "\n")
    assert cli(["egom2p", "convert", "holoassist", str(rec), "--out", str(tmp_path / "o2")]) == 2
    assert "Pose_sync.txt, row 5, field 'column 2': not a number" in capsys.readouterr().err
    (rec / "Export_py" / "Video_pitchshift.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="Video_pitchshift.mp4"):
        from egoforge.egom2p.holoassist import convert_holoassist_recording

        convert_holoassist_recording(rec, tmp_path / "o3")
