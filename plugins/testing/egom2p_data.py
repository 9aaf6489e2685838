"""Generated egocentric recordings for EgoM2P in the real raw formats, plus learnable synthetic token shards.

``write_recording`` renders a head-mounted camera walking in front of a textured wall with a pinhole model, so the
four modalities agree with each other like real data does: the RGB frames (H.264 ``rgb.mp4``), the per-pixel depth
of the same views (``depth.npz`` or a folder of 16-bit PNGs in millimetres), the camera-to-world trajectory (TUM
``camera.txt``, OpenCV axes) and the wearer's gaze following a moving target on the wall, projected into the image
(``gaze.csv`` in pixels, with short blinks marked invalid). ``random_camera_clips`` / ``random_gaze_clips`` give
smooth 60-sample clips for tokenizer tests, and ``write_token_shards`` writes token data whose modalities are
tied to one latent state per sample, so a model can learn to predict any modality from the others.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from egoforge.data.atomic import atomic_write_bytes, atomic_write_text
from egoforge.data.video import write_video
from egoforge.egom2p.geometry import make_pose, matrix_to_quat


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def camera_path(times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth walking-like camera-to-world poses (N, 4, 4): sway, forward drift, head yaw and pitch."""
    a, f, phase = rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.8), rng.uniform(0, 2 * np.pi)
    drift = rng.uniform(-0.15, 0.15, size=3) * [1, 0.2, 1]
    poses = []
    for t in times:
        position = np.array([a * np.sin(2 * np.pi * f * t + phase), 0.03 * np.sin(4 * np.pi * f * t), 0.0]) + drift * t
        yaw = 0.25 * np.sin(2 * np.pi * 0.5 * f * t + phase)
        pitch = 0.08 * np.sin(2 * np.pi * f * t)
        poses.append(make_pose(_rot_y(yaw) @ _rot_x(pitch), position))
    return np.stack(poses)


def _texture(x: np.ndarray, y: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Colour of the wall at world (x, y): coloured checkerboard plus soft stripes."""
    cell = (np.floor(x * 3).astype(int) + np.floor(y * 3).astype(int)) % len(palette)
    base = palette[cell].astype(np.float64)
    stripes = 0.5 + 0.5 * np.sin(7 * x + 3 * y)
    return np.clip(base * (0.7 + 0.3 * stripes[..., None]), 0, 255)


def render(pose: np.ndarray, K: np.ndarray, width: int, height: int, wall_z: float,
           palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the wall plane z = wall_z: (RGB uint8 (H, W, 3), depth along the optical axis (H, W))."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # z = 1 in camera
    world = rays @ pose[:3, :3].T
    s = (wall_z - pose[2, 3]) / world[..., 2]
    hit = pose[:3, 3] + s[..., None] * world
    return _texture(hit[..., 0], hit[..., 1], palette).astype(np.uint8), s.astype(np.float32)


def project(point: np.ndarray, pose: np.ndarray, K: np.ndarray) -> np.ndarray:
    cam = pose[:3, :3].T @ (point - pose[:3, 3])
    return (K @ (cam / cam[2]))[:2]


def _encode_mp4(frames: list[np.ndarray], fps: int, path: Path, gop: int | None = None) -> None:
    # gop: keyframe interval (libx264's default puts one keyframe in a short video)
    write_video(path, frames, fps, options={"crf": "18", "preset": "ultrafast"}, gop=gop)


def write_recording(folder: str | Path, seed: int = 0, seconds: float = 4.5, fps: int = 30, width: int = 80,
                    height: int = 60, modalities: tuple[str, ...] = ("rgb", "depth", "gaze", "cam"),
                    depth_format: str = "npz", gop: int | None = None) -> Path:
    """One recording folder in the layout ``egoforge egom2p prepare`` reads (see egoforge.egom2p.clips)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    times = np.arange(n) / fps
    poses = camera_path(times, rng)
    focal = 0.8 * width
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    palette = rng.integers(30, 230, size=(4, 3))
    wall_z = rng.uniform(1.5, 3.0)
    frames, depths = zip(*(render(p, K, width, height, wall_z, palette) for p in poses))
    _encode_mp4(list(frames), fps, folder / "rgb.mp4", gop)
    if "depth" in modalities:
        depth = np.stack(depths)
        if depth_format in ("npz", "npz_stored"):
            buffer = io.BytesIO()
            save = np.savez if depth_format == "npz_stored" else np.savez_compressed
            save(buffer, depth=depth, timestamps=times)
            atomic_write_bytes(folder / "depth.npz", buffer.getvalue())
        else:
            from PIL import Image

            (folder / "depth").mkdir(exist_ok=True)
            for i, d in enumerate(depth):
                png = io.BytesIO()
                Image.fromarray(np.round(d * 1000).astype(np.uint16)).save(png, format="PNG")
                atomic_write_bytes(folder / "depth" / f"{i:06d}.png", png.getvalue())
            atomic_write_text(folder / "depth" / "timestamps.txt", "\n".join(f"{t:.6f}" for t in times) + "\n")
            atomic_write_text(folder / "meta.json", json.dumps({"depth_scale": 0.001}) + "\n")
    if "cam" in modalities:
        quats = matrix_to_quat(poses[:, :3, :3])
        lines = ["# timestamp tx ty tz qx qy qz qw (camera-to-world, OpenCV axes)"]
        lines += [" ".join(f"{v:.9f}" for v in (t, *p[:3, 3], *q)) for t, p, q in zip(times, poses, quats)]
        atomic_write_text(folder / "camera.txt", "\n".join(lines) + "\n")
    if "gaze" in modalities:
        target = np.array([0.0, 0.0, wall_z])
        gaze_times = np.arange(int(round(seconds * 60))) / 60  # eye trackers run faster than the video
        gaze_poses = camera_path(gaze_times, np.random.default_rng(seed))  # the same head motion
        blink = rng.uniform(0.5, seconds - 0.5)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["timestamp_s", "x", "y", "valid"])
        for t, pose in zip(gaze_times, gaze_poses):
            point = target + np.array([0.4 * np.sin(1.3 * t), 0.25 * np.cos(0.9 * t), 0.0])
            x, y = project(point, pose, K)
            ok = abs(t - blink) > 0.05
            writer.writerow([f"{t:.6f}", f"{x:.3f}" if ok else "", f"{y:.3f}" if ok else "", int(ok)])
        atomic_write_text(folder / "gaze.csv", buffer.getvalue())
    return folder


def make_raw_dataset(root: str | Path, recordings: int = 2, seed: int = 0, **kwargs) -> Path:
    """``recordings`` recording folders under ``root`` (alternating npz and PNG depth)."""
    root = Path(root)
    depth_format = kwargs.pop("depth_format", None)
    for i in range(recordings):
        fmt = depth_format or ("npz" if i % 2 == 0 else "png")
        write_recording(root / f"rec{i:02d}.take", seed=seed * 1000 + i, depth_format=fmt, **kwargs)
    return root


def random_camera_clips(count: int, seed: int = 0, frames: int = 60, fps: float = 30.0) -> np.ndarray:
    """(count, frames, 4, 4) smooth camera-to-world clips starting anywhere in the world."""
    rng = np.random.default_rng(seed)
    times = np.arange(frames) / fps
    out = []
    for _ in range(count):
        start = make_pose(_rot_y(rng.uniform(-np.pi, np.pi)), rng.normal(0, 2, 3))
        out.append(start @ camera_path(times + rng.uniform(0, 10), rng))
    return np.stack(out).astype(np.float32)


def random_gaze_clips(count: int, seed: int = 0, frames: int = 60, invalid_rate: float = 0.1) -> np.ndarray:
    """(count, frames, 3) smooth gaze in [0, 1] crop coordinates plus validity (short runs of invalid samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 30.0
    out = np.zeros((count, frames, 3), np.float32)
    for i in range(count):
        centre = rng.uniform(0.3, 0.7, 2)
        amp, freq, phase = rng.uniform(0.05, 0.25, 2), rng.uniform(0.2, 1.5, 2), rng.uniform(0, 2 * np.pi, 2)
        out[i, :, :2] = centre + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
        out[i, :, 2] = 1.0
        if rng.random() < invalid_rate * 5:
            start = rng.integers(0, frames - 5)
            out[i, start: start + rng.integers(1, 5), :] = [0.0, 0.0, 0.0]
    return out


def learnable_tokens(table: dict, state: int, rng: np.random.Generator, noise: float = 0.05) -> dict[str, np.ndarray]:
    """Tokens of every modality as a fixed function of one latent ``state`` (plus a little noise)."""
    out = {}
    for offset, (name, spec) in enumerate(table.items()):
        # One token per (state, modality), repeated along the sequence: any visible token of any modality reveals
        # the state, so every modality can be predicted from every other one.
        tokens = np.full(spec.num_tokens, (state * 13 + offset * 5) % spec.vocab_size)
        flip = rng.random(spec.num_tokens) < noise
        tokens[flip] = rng.integers(0, spec.vocab_size, flip.sum())
        out[name] = tokens.astype(np.int32).reshape(spec.token_grid)
    return out


def write_token_shards(root: str | Path, table: dict, datasets: dict[str, tuple[str, ...]], samples: int = 32,
                       states: int = 8, seed: int = 0, samples_per_shard: int = 16) -> Path:
    """Token shards in the real layout: ``datasets`` maps a dataset name to the modalities it has."""
    from egoforge.egom2p.shards import TokenShardWriter

    root = Path(root)
    for d, (name, modalities) in enumerate(datasets.items()):
        rng = np.random.default_rng([seed, d])
        rows = [(f"{name}_{i:05d}", learnable_tokens(table, int(rng.integers(states)), rng)) for i in range(samples)]
        for m in modalities:
            info = {"tokenizer": {"type": "synthetic"}, "vocab_size": table[m].vocab_size,
                    "token_grid": list(table[m].token_grid)}
            with TokenShardWriter(root, m, name, info, samples_per_shard) as writer:
                for key, tokens in rows:
                    writer.write(key, tokens[m])
    return root


def write_clip_folders(root: str | Path, dataset: str, arrays: dict[str, np.ndarray], prefix: str = "clip") -> Path:
    """Clip folders in the ``prepare`` layout from stacked arrays, e.g. {"cam": (N, 60, 4, 4), "gaze": (N, 60, 3)}."""
    count = len(next(iter(arrays.values())))
    folder = Path(root) / dataset
    for i in range(count):
        clip = folder / f"{prefix}{i:05d}"
        clip.mkdir(parents=True, exist_ok=True)
        for name, values in arrays.items():
            np.save(clip / f"{name}.npy", values[i])
        atomic_write_text(clip / "meta.json", json.dumps({"recording": prefix, "modalities": sorted(arrays)}) + "\n")
    return folder


class IdTrajectoryTokenizer:
    """Stands in for a trained tokenizer: every token of a clip is the clip's number, read back from its data."""

    fingerprint = "test-id-tokenizer"

    def __init__(self, modality):
        self.modality = modality

    def info(self):
        return {"type": f"id_{self.modality}", "vocab_size": 256}

    def encode(self, clips):
        ids = clips[:, 0, 0] * 10 if self.modality == "gaze" else clips[:, 0, 0, 3]
        return np.repeat(np.rint(ids).astype(np.int64)[:, None], 30, axis=1)


def write_clips_missing_camera(root, count=8, without_cam=(1,)):
    """``count`` clips of one dataset with gaze and camera, except the clips in ``without_cam`` (no camera)."""
    gaze = np.zeros((count, 60, 3), np.float32)
    gaze[:, :, 0] = np.arange(count)[:, None] / 10
    cam = np.tile(np.eye(4, dtype=np.float32), (count, 60, 1, 1))
    cam[:, :, 0, 3] = np.arange(count)[:, None]
    folder = write_clip_folders(root, "ds", {"gaze": gaze, "cam": cam})
    for i in without_cam:
        (folder / f"clip{i:05d}" / "cam.npy").unlink()
    return folder


def export_cosmos_style_jit(autoencoder, folder: str | Path, frames: int, size: int) -> Path:
    """TorchScript ``encoder.jit`` / ``decoder.jit`` with Cosmos DV's call interface, from an egoforge FSQ video
    autoencoder: the encoder maps (B, 3, T, H, W) in [-1, 1] to (indices, codes), the decoder indices to frames.
    Lets the Cosmos adapter's real loading and calling code run offline; it is not Cosmos."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, ae):
            super().__init__()
            self.ae = ae

        def forward(self, x):
            codes, indices = self.ae.encode_latent(x.float())
            return indices, codes

    class Decoder(torch.nn.Module):
        def __init__(self, ae):
            super().__init__()
            self.ae = ae

        def forward(self, indices):
            return self.ae.decode(indices)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    autoencoder = autoencoder.eval().float()
    padded = 1 + -(-(frames - 1) // 8) * 8
    with torch.no_grad():
        example = torch.zeros(1, 3, padded, size, size)
        encoder = torch.jit.trace(Encoder(autoencoder), example, check_trace=False)
        indices = encoder(example)[0]
        decoder = torch.jit.trace(Decoder(autoencoder), indices, check_trace=False)
    torch.jit.save(encoder, str(folder / "encoder.jit"))
    torch.jit.save(decoder, str(folder / "decoder.jit"))
    return folder


def _pose_json(T: np.ndarray) -> dict:
    q = matrix_to_quat(T[:3, :3])
    return {"Translation": [float(v) for v in T[:3, 3]], "UnitQuaternion": [float(q[3]), [float(v) for v in q[:3]]]}


def write_egoexo4d_take(root: str | Path, take_name: str = "georgiatech_cooking_01_1", seed: int = 0,
                        seconds: float = 4.5, video_start_us: int = 1_234_567_000, gaze_schema: str = "binocular",
                        distortion: bool = True, cpf_in_json: bool = True) -> dict:
    """One Ego-Exo4D take in the public layout, ``root/takes/<take_name>/``: ``frame_aligned_videos/aria01_214-1.mp4``,
    ``trajectory/closed_loop_trajectory.csv`` (MPS columns, 1 kHz) and ``eye_gaze/general_eye_gaze.csv`` (the
    ``binocular`` left/right-yaw schema or the ``mono`` yaw schema), plus ``aria_calibration.json`` (device
    calibration JSON with ``camera-rgb``). The wearer looks at a point 1.5 m in front of the RGB camera that moves
    around the image centre. Returns the ground truth: folders, transforms, camera parameters and the gaze targets."""
    import shutil

    take = Path(root) / "takes" / take_name
    tmp = write_recording(take / ".video_tmp", seed=seed, seconds=seconds, width=64, height=64, modalities=("rgb",))
    (take / "frame_aligned_videos").mkdir(parents=True, exist_ok=True)
    video = take / "frame_aligned_videos" / "aria01_214-1.mp4"
    (tmp / "rgb.mp4").replace(video)
    shutil.rmtree(tmp)

    T_device_rgb = make_pose(_rot_y(0.1) @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]), [0.005, -0.011, -0.004])
    T_device_cpf = make_pose(_rot_x(-0.2), [-0.04, 0.01, -0.015])
    f = 20.0
    params = [f, 32.0, 32.0] + ([0.02, -0.01, 0.003, 0, 0, 0, 1e-4, -2e-4, 1e-4, 0, -1e-4, 0] if distortion
                                 else [0.0] * 12)

    def target(t: float, T_world_rgb: np.ndarray) -> np.ndarray:
        local = np.array([0.2 * np.sin(1.3 * t), 0.15 * np.cos(0.9 * t), 1.5, 1.0])
        return (T_world_rgb @ local)[:3]

    # 1 kHz trajectory from 0.2 s before the video's first frame to 0.2 s after its end
    traj_t = np.arange(-0.2, seconds + 0.2, 0.001)
    walk = np.random.default_rng(seed)
    T_world_rgb = camera_path(traj_t + 0.2, walk)
    T_world_device = T_world_rgb @ np.linalg.inv(T_device_rgb)
    quats = matrix_to_quat(T_world_device[:, :3, :3])
    header = ["graph_uid", "tracking_timestamp_us", "utc_timestamp_ns",
              *[f"{c}_world_device" for c in ("tx", "ty", "tz", "qx", "qy", "qz", "qw")],
              *[f"device_linear_velocity_{a}_device" for a in "xyz"], *[f"angular_velocity_{a}_device" for a in "xyz"],
              *[f"gravity_{a}_world" for a in "xyz"], "quality_score"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for t, T, q in zip(traj_t, T_world_device, quats):
        writer.writerow(["0b9c1f6e", video_start_us + int(round(t * 1e6)), -1, *(f"{v:.9f}" for v in T[:3, 3]),
                         *(f"{v:.9f}" for v in q), 0, 0, 0, 0, 0, 0, 0, 0, -9.81, 1.0])
    (take / "trajectory").mkdir(exist_ok=True)
    atomic_write_text(take / "trajectory" / "closed_loop_trajectory.csv", buffer.getvalue())

    gaze_t = np.arange(round(seconds * 30)) / 30  # MPS eye gaze comes at the eye-tracking cameras' rate
    gaze_rgb = camera_path(gaze_t + 0.2, np.random.default_rng(seed))
    targets = np.stack([target(t, T) for t, T in zip(gaze_t, gaze_rgb)])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if gaze_schema == "binocular":
        writer.writerow(["tracking_timestamp_us", "left_yaw_rads_cpf", "right_yaw_rads_cpf", "pitch_rads_cpf",
                         "depth_m", "left_yaw_low_rads_cpf", "right_yaw_low_rads_cpf", "pitch_low_rads_cpf",
                         "left_yaw_high_rads_cpf", "right_yaw_high_rads_cpf", "pitch_high_rads_cpf",
                         "tx_left_eye_cpf", "ty_left_eye_cpf", "tz_left_eye_cpf", "tx_right_eye_cpf",
                         "ty_right_eye_cpf", "tz_right_eye_cpf", "session_uid"])
    else:
        writer.writerow(["tracking_timestamp_us", "yaw_rads_cpf", "pitch_rads_cpf", "depth_m", "yaw_low_rads_cpf",
                         "pitch_low_rads_cpf", "yaw_high_rads_cpf", "pitch_high_rads_cpf"])
    for t, T_rgb, point in zip(gaze_t, gaze_rgb, targets):
        T_world_cpf = T_rgb @ np.linalg.inv(T_device_rgb) @ T_device_cpf
        x, y, z = (np.linalg.inv(T_world_cpf) @ np.append(point, 1.0))[:3]
        stamp, depth = video_start_us + int(round(t * 1e6)), float(np.linalg.norm([x, y, z]))
        if gaze_schema == "binocular":
            left, right = np.arctan((x - 0.0315) / z), np.arctan((x + 0.0315) / z)
            pitch = np.arctan(y / z)
            writer.writerow([stamp, left, right, pitch, depth, left - 0.05, right - 0.05, pitch - 0.05, left + 0.05,
                             right + 0.05, pitch + 0.05, 0.0315, 0, 0, -0.0315, 0, 0, "s0"])
        else:
            yaw, pitch = np.arctan(x / z), np.arctan(y / z)
            writer.writerow([stamp, yaw, pitch, depth, yaw - 0.05, pitch - 0.05, yaw + 0.05, pitch + 0.05])
    (take / "eye_gaze").mkdir(exist_ok=True)
    atomic_write_text(take / "eye_gaze" / "general_eye_gaze.csv", buffer.getvalue())

    calibration = {"CameraCalibrations": [
        {"Label": "camera-slam-left", "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": [150.0] + [0.0] * 14},
         "T_Device_Camera": _pose_json(np.eye(4))},
        {"Label": "camera-rgb", "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": params},
         "T_Device_Camera": _pose_json(T_device_rgb)}]}
    if cpf_in_json:
        calibration["T_Device_CPF"] = _pose_json(T_device_cpf)
    atomic_write_text(take / "aria_calibration.json", json.dumps(calibration, indent=1))
    return {"take": take, "video": video, "calibration": take / "aria_calibration.json",
            "video_start_us": video_start_us, "T_device_rgb": T_device_rgb, "T_device_cpf": T_device_cpf,
            "params": params, "gaze_times": gaze_t, "gaze_targets": targets, "gaze_T_world_rgb": gaze_rgb,
            "seed": seed}


def write_holoassist_recording(root: str | Path, name: str = "R007-7July-DSLR", seed: int = 0, seconds: float = 4.5,
                               start_ticks: int = 133_000_000_000_000_000, eye_distance: float = 0.5) -> dict:
    """One HoloAssist recording in the public ``Export_py`` layout (PV video, VideoMp4Timing.txt, Pose_sync.txt in
    HoloLens camera axes and 100 ns ticks, Intrinsics.txt, Eyes_sync.txt with world gaze rays). The wearer looks at a
    point ``eye_distance`` m along each ray; returns the ground truth (OpenCV camera-to-world poses, K, the gaze
    points in world) for checking a converter."""
    import shutil

    export = Path(root) / name / "Export_py"
    width, height, fps = 96, 54, 30
    tmp = write_recording(export / ".video_tmp", seed=seed, seconds=seconds, width=width, height=height,
                          modalities=("rgb",))
    (tmp / "rgb.mp4").replace(export / "Video_pitchshift.mp4")
    shutil.rmtree(tmp)
    n = int(round(seconds * fps))
    times = np.arange(n) / fps
    T_world_cv = camera_path(times, np.random.default_rng(seed))
    holo_to_cv = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    T_world_holo = T_world_cv @ np.linalg.inv(holo_to_cv)
    K = np.array([[80.0, 0, width / 2], [0, 80.0, height / 2], [0, 0, 1]])
    ticks = start_ticks + np.round(times * 10_000_000).astype(np.int64)
    (export / "Video").mkdir(parents=True, exist_ok=True)
    (export / "Eyes").mkdir(parents=True, exist_ok=True)
    atomic_write_text(export / "Video" / "VideoMp4Timing.txt", f"{ticks[0]}\n{ticks[-1]}\n")
    atomic_write_text(export / "Video" / "Intrinsics.txt",
                      "\t".join(f"{v:g}" for v in (*K.reshape(-1), width, height)) + "\n")
    pose_lines, eye_lines, points = [], [], []
    for i, (t, tick, T_cv, T_holo) in enumerate(zip(times, ticks, T_world_cv, T_world_holo)):
        pose_lines.append("\t".join([str(tick - 1000), str(tick), *(f"{v:.9f}" for v in T_holo.reshape(-1))]))
        origin = (T_cv @ np.array([0.0, 0.03, -0.02, 1.0]))[:3]  # the eyes sit a little behind the PV camera
        local = np.array([0.08 * np.sin(1.3 * t), 0.05 * np.cos(0.9 * t), 1.0])
        direction = T_cv[:3, :3] @ (local / np.linalg.norm(local))
        point = origin + eye_distance * direction
        if i == 10:  # tracking lost for one sample
            eye_lines.append("\t".join([str(tick - 1000), str(tick), *["NaN"] * 6, "1"]))
            points.append(np.full(3, np.nan))
            continue
        eye_lines.append("\t".join([str(tick - 1000), str(tick), *(f"{v:.9f}" for v in (*origin, *direction)), "1"]))
        points.append(point)
    atomic_write_text(export / "Video" / "Pose_sync.txt", "\n".join(pose_lines) + "\n")
    atomic_write_text(export / "Eyes" / "Eyes_sync.txt", "\n".join(eye_lines) + "\n")
    return {"recording": export.parent, "times": times, "T_world_cv": T_world_cv, "K": K, "width": width,
            "height": height, "gaze_points": np.stack(points)}
