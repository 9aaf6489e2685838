"""Ego-Exo4D / Project Aria MPS -> raw recording layout, on generated takes in the public layout: the RGB camera's
poses from the closed-loop trajectory, the gaze projected into the RGB image from both MPS gaze schemas, clear
errors, and `prepare` on the result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from egoforge.egom2p.aria_mps import AriaCamera, read_eye_gaze
from egoforge.egom2p.clips import ClipDataError, ClipSettings, prepare_clips, read_gaze_csv, read_tum
from egoforge.egom2p.geometry import interpolate_poses
from egoforge.testing.egom2p_data import write_egoexo4d_take
from egoforge.tools.cli import main as cli


def _convert(take, out, capsys=None, *extra):
    args = ["egom2p", "convert", "egoexo4d", str(take["take"]), "--out", str(out), "--calibration",
            str(take["calibration"]), "--video-start-us", str(take["video_start_us"]), *extra]
    return cli(args)


def _equidistant(point, f, c):
    """Aria's fisheye without distortion terms: radius f * theta (theta = angle from the optical axis)."""
    a, b = point[0] / point[2], point[1] / point[2]
    r = math.hypot(a, b)
    return np.array([c + f * math.atan(r) * a / r, c + f * math.atan(r) * b / r])


@pytest.mark.parametrize("schema", ["binocular", "mono"])
def test_egoexo4d_take_converts_camera_and_gaze(tmp_path, schema, capsys):
    take = write_egoexo4d_take(tmp_path / "egoexo", gaze_schema=schema, distortion=False)
    out = tmp_path / "raw" / "take"
    assert _convert(take, out) == 0
    counts = json.loads(capsys.readouterr().out)
    assert 4.9 * 100 < counts["poses"] <= 4.9 * 120 + 1 and counts["gaze"] == 135  # 1 kHz thinned to <= 120 Hz
    assert (out / "rgb.mp4").is_symlink() and (out / "rgb.mp4").resolve() == take["video"].resolve()

    # camera.txt: the RGB camera (not the device) on the video's clock
    times, poses = read_tum(out / "camera.txt")
    assert times[0] == pytest.approx(-0.2, abs=1e-6)
    truth = take["gaze_T_world_rgb"]
    assert np.allclose(interpolate_poses(times, poses, take["gaze_times"]), truth, atol=2e-4)

    # gaze.csv: the looked-at point projected by the RGB camera, in pixels
    gaze_t, xy, valid = read_gaze_csv(out / "gaze.csv")
    assert np.allclose(gaze_t, take["gaze_times"], atol=1e-6) and valid.all()
    for target, T, pixel in zip(take["gaze_targets"], truth, xy):
        local = np.linalg.inv(T) @ np.append(target, 1.0)
        assert np.allclose(pixel, _equidistant(local[:3], 20.0, 32.0), atol=2e-3)


def test_converted_take_prepares_into_clips_with_gaze_and_camera(tmp_path, capsys):
    take = write_egoexo4d_take(tmp_path / "egoexo", distortion=True)
    assert _convert(take, tmp_path / "raw" / "take") == 0
    counts = prepare_clips(tmp_path / "raw", tmp_path / "clips", "egoexo4d", ClipSettings(size=32), progress=False)
    assert counts["clips"] == 2 and counts["gaze"] == 2 and counts["cam"] == 2 and counts["depth"] == 0
    gaze = np.load(tmp_path / "clips" / "egoexo4d" / "take__0000" / "gaze.npy")
    assert (gaze[:, 2] == 1).all() and (np.abs(gaze[:, :2] - 0.5) < 0.5).all()


def test_fisheye624_projection_hand_computed():
    point = np.array([[0.3, -0.4, 1.0]])  # r = 0.5, theta = atan(0.5)
    theta = math.atan(0.5)
    k0 = AriaCamera(np.eye(4), np.array([10.0, 10.0, 5.0, 5.0, 0.1] + [0.0] * 11))
    radial = theta * (1 + 0.1 * theta**2)
    assert np.allclose(k0.project(point)[0], [[5 + 10 * radial * 0.6, 5 - 10 * radial * 0.8]])
    p0 = AriaCamera(np.eye(4), np.array([10.0, 10.0, 5.0, 5.0] + [0.0] * 6 + [0.01, 0.0] + [0.0] * 4))
    u, v = theta * 0.6, -theta * 0.8
    r2 = u * u + v * v
    expected = [u + 2 * 0.01 * u * u + 0.01 * r2, v + 2 * 0.01 * u * v]
    assert np.allclose(p0.project(point)[0], [[5 + 10 * expected[0], 5 + 10 * expected[1]]])
    pixels, valid = k0.project(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]))
    assert valid.tolist() == [False, True] and np.allclose(pixels[1], [5, 5])


def test_missing_cpf_warns_and_bad_rows_are_named(tmp_path, capsys):
    take = write_egoexo4d_take(tmp_path / "egoexo", cpf_in_json=False, seconds=2.5)
    with pytest.warns(UserWarning, match="T_Device_CPF.*NOT converted"):
        assert _convert(take, tmp_path / "raw" / "a") == 0
    assert (tmp_path / "raw" / "a" / "camera.txt").is_file() and not (tmp_path / "raw" / "a" / "gaze.csv").exists()
    assert _convert(take, tmp_path / "raw" / "b", None, "--t-device-cpf", "0,0,0,0,0,0,1") == 0
    assert (tmp_path / "raw" / "b" / "gaze.csv").is_file()

    csv_path = take["take"] / "eye_gaze" / "general_eye_gaze.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[3], "oops", 1)
    bad = tmp_path / "bad_gaze.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ClipDataError, match=r"bad_gaze\.csv, row 4, field 'pitch_rads_cpf': not a number"):
        read_eye_gaze(bad)
    bad.write_text("tracking_timestamp_us,pitch_rads_cpf\n1,0\n")
    with pytest.raises(ClipDataError, match="needs yaw_rads_cpf or left_/right_yaw_rads_cpf"):
        read_eye_gaze(bad)
    traj = take["take"] / "trajectory" / "closed_loop_trajectory.csv"
    traj.write_text(traj.read_text().replace("tx_world_device", "tx_world_odometry", 1))
    assert _convert(take, tmp_path / "raw" / "c") == 2
    assert "closed_loop_trajectory.csv, row 1, field 'tx_world_device': missing column" in capsys.readouterr().err
    (take["take"] / "frame_aligned_videos" / "aria01_214-1.mp4").unlink()
    assert _convert(take, tmp_path / "raw" / "d") == 2
    assert "expected one Aria RGB video" in capsys.readouterr().err


def _write_timesync(take, *, start=5, frames=135, fps=30.0, gap_after=60, blank=(17,), column="aria01_214-1",
                    capture="georgiatech_cooking_01", stamps=None):
    """Ego-Exo4D's capture-level timesync.csv (rows before the take, other streams' columns) and takes.json.
    Frame i of the take is at device time video_start + i / fps, plus one dropped frame's time after
    ``gap_after`` (the device clock jumps by two frame periods there); ``blank`` frames have no stamp."""
    root = take["take"].parent.parent
    if stamps is None:
        stamps = [take["video_start_us"] * 1000 + round((i + (i >= gap_after)) / fps * 1e9) for i in range(frames)]
    lines = [f"{column}_capture_timestamp_ns,aria01_1201-1_capture_timestamp_ns,cam01_capture_timestamp_ns"]
    lines += [f"{1000 + r},{2000 + r},{3000 + r}" for r in range(start)]
    lines += [f"{'' if i in blank else s},{s + 7},{s + 9}" for i, s in enumerate(stamps)]
    lines += ["1,2,3"]  # the capture goes on after the take
    (root / "captures" / capture).mkdir(parents=True, exist_ok=True)
    (root / "captures" / capture / "timesync.csv").write_text("\n".join(lines) + "\n")
    (root / "takes.json").write_text(json.dumps([
        {"take_name": "other_take", "capture": {"capture_name": capture}, "timesync_start_idx": 0,
         "timesync_end_idx": start},
        {"take_name": take["take"].name, "capture": {"capture_name": capture}, "timesync_start_idx": start,
         "timesync_end_idx": start + len(stamps)}]))
    return stamps


def test_egoexo4d_timesync_maps_device_time_frame_by_frame(tmp_path, capsys):
    take = write_egoexo4d_take(tmp_path / "egoexo", distortion=False)
    stamps = _write_timesync(take)
    out = tmp_path / "raw" / "take"
    args = ["egom2p", "convert", "egoexo4d", str(take["take"]), "--out", str(out), "--calibration",
            str(take["calibration"])]
    assert cli(args) == 0  # no --video-start-us: the clock comes from timesync.csv
    start_us = take["video_start_us"]

    def expected_seconds(device_us):  # frame k at k / 30 s; between stamped frames linear; frame 17 has no stamp
        frames = [(i / 30.0, s / 1000.0) for i, s in enumerate(stamps) if i != 17]
        if device_us <= frames[0][1]:
            return (device_us - frames[0][1]) / 1e6
        for (v0, d0), (v1, d1) in zip(frames, frames[1:]):
            if device_us <= d1:
                return v0 + (device_us - d0) / (d1 - d0) * (v1 - v0)
        return frames[-1][0] + (device_us - frames[-1][1]) / 1e6

    gaze_t, _, _ = read_gaze_csv(out / "gaze.csv")
    device = [start_us + round(t * 1e6) for t in take["gaze_times"]]
    assert np.allclose(gaze_t, [expected_seconds(d) for d in device], atol=2e-6)
    after_gap = np.asarray(take["gaze_times"]) > 61 / 30
    assert np.allclose(gaze_t[after_gap], np.asarray(take["gaze_times"])[after_gap] - 1 / 30, atol=2e-6)
    times, _ = read_tum(out / "camera.txt")
    assert times[0] == pytest.approx(-0.2, abs=1e-6)  # before the first frame: device time's own rate

    # a column of another rate (or the wrong rows) is refused, not silently mis-timed
    _write_timesync(take, stamps=[start_us * 1000 + round(i / 10 * 1e9) for i in range(135)], blank=())
    assert cli([*args[:5], str(tmp_path / "raw" / "b"), *args[6:]]) == 2
    assert "stamps advance 3.000 s per second of aria01_214-1.mp4 at 30 fps" in capsys.readouterr().err
    bad = list(stamps)
    bad[40] = bad[38]
    _write_timesync(take, stamps=bad, blank=())
    assert cli([*args[:5], str(tmp_path / "raw" / "c"), *args[6:]]) == 2
    assert "timesync.csv, row 47, field 'aria01_214-1_capture_timestamp_ns': device time does not increase" in \
        capsys.readouterr().err
    _write_timesync(take, column="aria02_214-1")
    assert cli([*args[:5], str(tmp_path / "raw" / "d"), *args[6:]]) == 2
    assert "field 'aria01_214-1_capture_timestamp_ns': missing column" in capsys.readouterr().err
    (take["take"].parent.parent / "takes.json").unlink()
    assert cli([*args[:5], str(tmp_path / "raw" / "e"), *args[6:]]) == 2
    assert "takes.json not found" in capsys.readouterr().err
    assert cli(["egom2p", "convert", "aria", "--video", str(take["video"]), "--out", str(tmp_path / "raw" / "f"),
                "--calibration", str(take["calibration"])]) == 2
    assert "--video-start-us is required" in capsys.readouterr().err


def test_calibration_must_be_fisheye624_of_the_video_size(tmp_path, capsys):
    take = write_egoexo4d_take(tmp_path / "egoexo", distortion=False)
    calibration = json.loads(take["calibration"].read_text())
    rgb = calibration["CameraCalibrations"][1]

    def convert_with(**changes):
        rgb_changed = dict(rgb, **changes)
        data = dict(calibration, CameraCalibrations=[calibration["CameraCalibrations"][0], rgb_changed])
        path = tmp_path / "calib.json"
        path.write_text(json.dumps(data))
        code = cli(["egom2p", "convert", "egoexo4d", str(take["take"]), "--out", str(tmp_path / "raw" / "x"),
                    "--calibration", str(path), "--video-start-us", str(take["video_start_us"])])
        return code, capsys.readouterr().err

    code, err = convert_with(Projection={"Name": "KannalaBrandtK3", "Params": rgb["Projection"]["Params"]})
    assert code == 2 and "CameraCalibrations[camera-rgb].Projection.Name" in err and "KannalaBrandtK3" in err
    code, err = convert_with(Projection={"Name": "FisheyeRadTanThinPrism", "Params": [20.0, 32.0, 32.0] + [0.0] * 11})
    assert code == 2 and "Fisheye624 has 15 parameters (f, cx, cy, k0..k5, p0, p1, s0..s3) or 16" in err
    assert "got 14" in err
    code, err = convert_with(ImageSize={"Width": 2880, "Height": 2880})
    assert code == 2 and "2880x2880, but aria01_214-1.mp4 is 64x64" in err
    code, err = convert_with(ImageSize={"Width": 64, "Height": 64},
                             Projection={"Name": "Fisheye624", "Params": rgb["Projection"]["Params"]})
    assert code == 0, err
