"""EgoM2P's pictures and tables read at a glance: reconstructions large and labelled, previews titled with units and
ground truth / prediction paired by colour, results.md with units and rgb2cam's static-camera baseline."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from egoforge.egom2p.inference import preview_figure, results_table, static_camera_baseline
from egoforge.egom2p.train_tokenizers import _save_preview, reconstruction_figure
from egoforge.testing.egom2p_data import random_camera_clips, write_clip_folders

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.mark.parametrize("modality", ["rgb", "depth"])
def test_reconstruction_rows_are_labelled_and_frames_titled(modality):
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (5, 64, 96, 3), dtype=np.uint8) if modality == "rgb" else rng.random((5, 64, 96))
    fig = reconstruction_figure(modality, clip, clip, "synth/clip0")
    axes = np.array(fig.axes).reshape(2, 3)
    assert [axes[0, 0].get_ylabel(), axes[1, 0].get_ylabel()] == ["original", "reconstruction"]
    assert [ax.get_title() for ax in axes[0]] == ["frame 0", "frame 2", "frame 4"]
    assert "PSNR inf dB" in axes[1, 0].get_title()  # a perfect reconstruction
    assert "synth/clip0" in fig._suptitle.get_text() and modality in fig._suptitle.get_text()
    plt.close(fig)


def test_reconstruction_png_of_a_96x64_clip_is_large_enough_to_see(tmp_path):
    clip = np.random.default_rng(0).integers(0, 255, (5, 64, 96, 3), dtype=np.uint8)
    path = _save_preview(tmp_path / "reconstruction.png", "rgb", clip, clip[::-1], "synth/clip0")
    width, height = Image.open(path).size
    assert width >= 600 and height >= 400, (width, height)  # was 288x128 (the frames side by side, unscaled)


@pytest.mark.parametrize("task,ylabel", [("rgb2cam", "camera position (m, first-frame axes)"),
                                         ("rgb2gaze", "gaze position (crop coordinates, 0..1)")])
def test_trajectory_preview_pairs_ground_truth_and_prediction_by_colour(task, ylabel):
    if task == "rgb2cam":
        gt = random_camera_clips(1, seed=1)[0]
        pred = gt.copy()
    else:
        gt = np.random.default_rng(0).random((60, 3))
        pred = gt[:, :2] + 0.05
    fig = preview_figure(task, "synth/clip0", gt, pred)
    ax = fig.axes[0]
    assert ax.get_ylabel() == ylabel and ax.get_xlabel() == "sample (30 Hz)"
    assert fig._suptitle.get_text() == f"EgoM2P {task} on synth/clip0: ground truth vs prediction"
    lines = {line.get_label(): line for line in ax.get_lines()}
    for name in ("x", "y"):
        truth, guess = lines[f"{name} ground truth"], lines[f"{name} prediction"]
        assert truth.get_color() == guess.get_color()
        assert (truth.get_linestyle(), guess.get_linestyle()) == ("-", "--")
    assert lines["x ground truth"].get_color() != lines["y ground truth"].get_color()
    plt.close(fig)


def test_video_preview_labels_ground_truth_and_prediction_rows():
    video = np.random.default_rng(0).random((5, 32, 32))
    fig = preview_figure("rgb2depth", "synth/clip0", video, video)
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["ground truth", "prediction"]
    assert fig.axes[-1].get_ylabel() == "depth (normalised)"  # the colour bar says what the colours mean
    plt.close(fig)


def test_results_table_has_units_and_the_static_camera_baseline(tmp_path):
    folder = write_clip_folders(tmp_path / "clips", "synth", {"cam": random_camera_clips(2, seed=4)})
    clip = sorted(folder.iterdir())[0]
    baseline = static_camera_baseline(clip)
    assert baseline["ate"] > 0 and baseline["scale"] == 1.0  # a camera that never moves misses the real motion
    table = results_table("rgb2cam", 2, {"ate": 0.1, "rpe_rot_deg": 2.0}, baseline).splitlines()
    assert table[0] == "| row | task | clips | ate (m) | rpe_rot_deg (°) |"
    assert table[2].startswith("| model | rgb2cam | 2 | 0.1000 | 2.0000 |")
    assert table[3].startswith("| static camera (baseline) | rgb2cam | 2 |")
    assert len(results_table("rgb2gaze", 2, {"gaze_l2": 0.1}).splitlines()) == 3  # no baseline row


def test_tokenizer_header_says_max_steps_and_the_schedule_when_they_differ(tmp_path, capsys):
    from pathlib import Path

    from egoforge.tools.cli import main as cli

    write_clip_folders(tmp_path / "clips", "synth", {"cam": random_camera_clips(40, seed=3)})
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "egom2p_cam_tokenizer.yaml"
    args = ["train", str(recipe), f"data.clips=[{tmp_path / 'clips'}]", "batch_size=4", f"output_dir={tmp_path}/o"]
    assert cli([*args, "max_steps=3", "--dry-run"]) == 0
    header = capsys.readouterr().out
    assert "3 steps (max_steps) of a " in header and "-step learning-rate schedule" in header and "last lr" in header
    assert cli([*args, "--dry-run"]) == 0
    assert "max_steps" not in capsys.readouterr().out.splitlines()[0]
