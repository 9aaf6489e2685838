"""Generated EgoAgent data in the real layouts, for tests, benchmarks and offline runs.

- **Walking tours** (``make_walking_tours``): mp4 videos of a first-person walk down a street, one "city" per video.
  Each city has its own palette and building style (Venetian palazzi, Amsterdam gables, Bangkok temples, Zurich
  blocks) and the view scrolls as the camera walks, with head bob and passers-by.
- **ImageFolder** (``make_city_imagefolder``): frames of those cities at random places along the street, one class
  per city, ``train/`` and ``val/``; the class is visible in every crop (palette, shapes), so kNN on good features
  beats chance by far.
- **Ego-Exo4D** (``make_egoexo``): ``metadata/takes.json``, ``annotations/ego_pose/<split>/body/{automatic,
  annotation}/<uid>.json``, ``.../camera_pose/<uid>.json`` and undistorted frames
  ``processed_data/<uid>/aria01_214-1/frame_<i>.jpg`` (every 5th frame, as the official preprocessing keeps).
  With ``videos=True`` it also writes the raw download's take folders, named by take *name* as in the real release
  (``takes/<take_name>/frame_aligned_videos/downscaled/448/aria01_214-1.mp4``, every frame at 30 fps, and a
  placeholder ``takes/<take_name>/aria01_noimagestreams.vrs``), so undistortion's take lookup and frame loop run
  on the real layout.
  The camera wearer walks down a street with a gait cycle: the 17 COCO joints swing with the phase, the Aria
  camera rides on the head, and each frame shows the street scrolling with the distance walked and the wearer's
  own forearms and shoes where the joints project. Future frames and poses therefore follow
  from the current frame, the pose history and the gait: stage 2 has something real to learn. A few frames lack
  joints (auto labels miss the face), some frames lack extrinsics, and the layout includes the takes the official
  script skips (a bouldering take, a take with no camera file, a take too short to train on).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from egoforge.data.atomic import atomic_write_json
from egoforge.data.video import write_video

# --- walking tours --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityStyle:
    sky: tuple[int, int, int]
    ground: tuple[int, int, int]
    walls: tuple[tuple[int, int, int], ...]
    roof: str  # flat | gable | dome | arch
    # A high-contrast texture on facades and pavement (stripes, bricks, dots, grid): it survives DINO's colour
    # jitter, grayscale and small crops, so every view of a city carries its identity.
    pattern: str = "stripes"


CITIES: dict[str, CityStyle] = {
    "Venice": CityStyle((150, 200, 235), (40, 110, 130), ((235, 170, 120), (220, 120, 110), (240, 210, 160)), "arch",
                        "stripes"),
    "Amsterdam": CityStyle((170, 180, 195), (70, 70, 80), ((130, 50, 40), (90, 40, 30), (160, 80, 50)), "gable",
                           "columns"),
    "Bangkok": CityStyle((250, 210, 140), (120, 100, 60), ((230, 180, 40), (200, 60, 50), (250, 230, 120)), "dome",
                         "dots"),
    "Zurich": CityStyle((200, 225, 245), (90, 140, 70), ((150, 150, 160), (200, 200, 205), (110, 115, 125)), "flat",
                        "grid"),
}


def _shade(color: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + amount)) for c in color)


def draw_pattern(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], pattern: str,
                 color: tuple[int, int, int], offset: float = 0.0) -> None:
    """Fill ``box`` with the city's texture in ``color`` (scrolling with ``offset`` pixels)."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    period = 5
    if pattern == "stripes":
        for y in range(int(y0), int(y1), period):
            draw.line([x0, y, x1, y], fill=color, width=2)
    elif pattern == "columns":
        start = x0 - ((x0 + offset) % period)
        for k in range(int((x1 - start) // period) + 1):
            x = start + k * period
            if x0 <= x <= x1:
                draw.line([x, y0, x, y1], fill=color, width=2)
    elif pattern == "dots":
        for y in range(int(y0) + 2, int(y1), period):
            for x in range(int(x0) + 2, int(x1), period):
                draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=color)
    else:  # grid
        for y in range(int(y0), int(y1), period + 1):
            draw.line([x0, y, x1, y], fill=color, width=1)
        for x in range(int(x0), int(x1), period + 1):
            draw.line([x, y0, x, y1], fill=color, width=1)


def render_street(style: CityStyle, position: float, size: tuple[int, int] = (96, 64), bob: float = 0.0,
                  rng: random.Random | None = None) -> Image.Image:
    """The street ``position`` metres along the walk: buildings scroll past, deterministic per building."""
    rng = rng or random.Random(0)
    width, height = size
    horizon = int(height * 0.55 + bob)
    image = Image.new("RGB", size, style.sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, horizon, width, height], fill=style.ground)
    draw_pattern(draw, (0, horizon, width, height), style.pattern, _shade(style.ground, 70), position * 8)
    spacing = width / 3.5
    first = int(position * 8 // spacing) - 1
    for i in range(first, first + 6):
        building = random.Random(i * 7919 + len(style.walls))
        x0 = i * spacing - position * 8
        w = spacing * building.uniform(0.7, 0.95)
        top = horizon - height * building.uniform(0.25, 0.45)
        wall = building.choice(style.walls)
        draw.rectangle([x0, top, x0 + w, horizon], fill=wall)
        draw_pattern(draw, (x0, top, x0 + w, horizon), style.pattern, _shade(wall, -70))
        if style.roof == "gable":
            draw.polygon([(x0, top), (x0 + w / 2, top - w * 0.45), (x0 + w, top)], fill=_shade(wall, -30))
        elif style.roof == "dome":
            draw.pieslice([x0 + w * 0.15, top - w * 0.5, x0 + w * 0.85, top + w * 0.2], 180, 360, fill=(240, 200, 40))
        elif style.roof == "arch":
            for k in range(3):
                ax = x0 + w * (0.1 + 0.3 * k)
                draw.pieslice([ax, horizon - height * 0.12, ax + w * 0.22, horizon - height * 0.02], 180, 360,
                              fill=_shade(wall, -60))
        for k in range(int(w // 7)):  # windows
            wx = x0 + 3 + k * 7
            draw.rectangle([wx, top + 4, wx + 3, top + 8], fill=_shade(wall, 50 if style.roof != "flat" else -50))
    for _ in range(rng.randint(0, 2)):  # passers-by
        px, ph = rng.uniform(0, width), rng.uniform(height * 0.15, height * 0.3)
        draw.ellipse([px, horizon - ph * 0.3, px + ph * 0.25, horizon + ph * 0.7], fill=(30, 30, 40))
    return image


def write_mp4(path: Path, frames, fps: int, size: tuple[int, int]) -> Path:
    """H.264 mp4 of PIL ``frames`` (all of ``size``), written atomically."""
    frames = list(frames)
    if any(frame.size != tuple(size) for frame in frames):
        raise ValueError(f"{path}: every frame must be {size[0]}x{size[1]}")
    return write_video(path, frames, fps)


def make_walking_tours(root: str | Path, cities: tuple[str, ...] | None = None, seconds: int = 6, fps: int = 10,
                       size: tuple[int, int] = (96, 64), seed: int = 0) -> list[Path]:
    """``root/Walking_Tour_<City>.mp4`` per city (H.264, ``fps`` frames per second, ``seconds`` long)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for c, name in enumerate(cities or tuple(CITIES)):
        rng = random.Random(seed * 100 + c)
        frames = (render_street(CITIES[name], 1.4 * (i / fps), size, bob=1.5 * math.sin(2 * math.pi * 1.8 * i / fps),
                                rng=rng) for i in range(seconds * fps))
        paths.append(write_mp4(root / f"Walking_Tour_{name}.mp4", frames, fps, size))
    return paths


def make_city_imagefolder(root: str | Path, per_class_train: int = 12, per_class_val: int = 6,
                          size: tuple[int, int] = (96, 64), seed: int = 1) -> tuple[Path, Path]:
    """``root/{train,val}/<city>/<n>.jpg``: views at random places of each city's street (torchvision ImageFolder)."""
    root = Path(root)
    rng = random.Random(seed)
    for split, count in (("train", per_class_train), ("val", per_class_val)):
        for name, style in CITIES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                image = render_street(style, rng.uniform(0, 500), size, bob=rng.uniform(-3, 3), rng=rng)
                image.save(folder / f"{n:04d}.jpg", quality=92)
    return root / "train", root / "val"


# --- Ego-Exo4D ------------------------------------------------------------------------------------------------

JOINTS_BODY = {  # canonical standing pose in the body frame (x right, y up, z forward), metres
    "nose": (0.0, 1.60, 0.10), "left-eye": (-0.03, 1.65, 0.08), "right-eye": (0.03, 1.65, 0.08),
    "left-ear": (-0.08, 1.62, 0.0), "right-ear": (0.08, 1.62, 0.0), "left-shoulder": (-0.18, 1.42, 0.0),
    "right-shoulder": (0.18, 1.42, 0.0), "left-elbow": (-0.22, 1.15, 0.0), "right-elbow": (0.22, 1.15, 0.0),
    "left-wrist": (-0.24, 0.90, 0.0), "right-wrist": (0.24, 0.90, 0.0), "left-hip": (-0.10, 0.95, 0.0),
    "right-hip": (0.10, 0.95, 0.0), "left-knee": (-0.10, 0.52, 0.0), "right-knee": (0.10, 0.52, 0.0),
    "left-ankle": (-0.10, 0.08, 0.0), "right-ankle": (0.10, 0.08, 0.0),
}
CAMERA_IN_BODY = np.array([0.0, 1.65, 0.12])
CAMERA_PITCH = math.radians(50)  # looking forward and down, so hands and shoes come into view
FPS = 30


@dataclass(frozen=True)
class Gait:
    speed: float  # m/s
    frequency: float  # strides per second
    heading: float  # radians
    turn: float  # radians per second
    phase: float


def body_joints(phase: float) -> dict[str, np.ndarray]:
    """Joint positions in the body frame at gait ``phase``: arms swing against the legs, the body bobs."""
    swing, lift = math.sin(phase), math.cos(phase)
    offsets = {
        "left-wrist": (0, 0.04 * swing, 0.28 * swing), "right-wrist": (0, -0.04 * swing, -0.28 * swing),
        "left-elbow": (0, 0, 0.12 * swing), "right-elbow": (0, 0, -0.12 * swing),
        "left-knee": (0, 0.05 * max(0.0, -lift), -0.18 * swing),
        "right-knee": (0, 0.05 * max(0.0, lift), 0.18 * swing),
        "left-ankle": (0, 0.10 * max(0.0, -lift), -0.32 * swing),
        "right-ankle": (0, 0.10 * max(0.0, lift), 0.32 * swing),
    }
    bob = 0.025 * math.cos(2 * phase)
    return {name: np.asarray(base) + np.asarray(offsets.get(name, (0, 0, 0))) + np.array([0, bob, 0])
            for name, base in JOINTS_BODY.items()}


def _yaw(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def body_pose(gait: Gait, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(rotation body->world, body origin in the world) at time ``t``."""
    heading = gait.heading + gait.turn * t
    if abs(gait.turn) > 1e-9:
        x = gait.speed / gait.turn * (math.cos(gait.heading) - math.cos(heading))
        z = gait.speed / gait.turn * (math.sin(heading) - math.sin(gait.heading))
    else:
        x, z = gait.speed * t * math.sin(gait.heading), gait.speed * t * math.cos(gait.heading)
    return _yaw(heading), np.array([x, 0.0, z])


def camera_extrinsics(gait: Gait, t: float) -> np.ndarray:
    """World -> camera 3x4 (camera x right, y down, z forward), the Aria on the wearer's head."""
    rotation, origin = body_pose(gait, t)
    bob = 0.025 * math.cos(2 * (2 * math.pi * gait.frequency * t + gait.phase))
    # Camera axes (columns) in the body frame: a proper rotation with z forward pitched down and y down the image.
    c, s = math.cos(CAMERA_PITCH), math.sin(CAMERA_PITCH)
    cam_in_body = np.column_stack([[-1, 0, 0], [0, -c, -s], [0, -s, c]])
    world_from_camera = rotation @ cam_in_body
    center = rotation @ (CAMERA_IN_BODY + np.array([0, bob, 0])) + origin
    extrinsics = np.zeros((3, 4))
    extrinsics[:, :3] = world_from_camera.T
    extrinsics[:, 3] = -world_from_camera.T @ center
    return extrinsics


def world_joints(gait: Gait, t: float) -> dict[str, np.ndarray]:
    rotation, origin = body_pose(gait, t)
    phase = 2 * math.pi * gait.frequency * t + gait.phase
    return {name: rotation @ point + origin for name, point in body_joints(phase).items()}


def render_egocentric(joints_cam: dict[str, np.ndarray], walked: float, size: int = 64,
                      style: CityStyle = CITIES["Venice"], bob: float = 0.0) -> Image.Image:
    """What the head camera sees: the street scrolling with the distance walked (as in the walking tours) and,
    where the joints project, the wearer's forearms, hands and shoes."""
    image = render_street(style, walked, (size, size), bob=bob, rng=random.Random(int(walked * 10)))
    draw = ImageDraw.Draw(image)
    focal, center = size * 0.35, size / 2

    def project(point: np.ndarray) -> tuple[float, float] | None:
        if point[2] <= 0.05:
            return None
        return center + focal * point[0] / point[2], center + focal * point[1] / point[2]

    for side, skin in (("left", (230, 180, 150)), ("right", (225, 170, 140))):
        elbow, wrist = project(joints_cam[f"{side}-elbow"]), project(joints_cam[f"{side}-wrist"])
        if elbow and wrist:
            draw.line([elbow, wrist], fill=(40, 60, 150), width=max(2, size // 12))
            r = max(2, size // 14)
            draw.ellipse([wrist[0] - r, wrist[1] - r, wrist[0] + r, wrist[1] + r], fill=skin)
        ankle = project(joints_cam[f"{side}-ankle"])
        if ankle:
            r = max(2, size // 12)
            draw.ellipse([ankle[0] - r, ankle[1] - r / 2, ankle[0] + r, ankle[1] + r / 2], fill=(20, 20, 20))
    return image


@dataclass(frozen=True)
class EgoExoLayout:
    root: Path
    frames_root: Path
    takes: dict[str, list[str]]  # split -> take uids meant to be used
    skipped: dict[str, str]  # take uid -> why the preprocessing must skip it


def _take(uid: str, name: str) -> dict:
    return {"take_uid": uid, "take_name": name, "root_dir": f"takes/{name}", "task_name": "walking"}


def make_egoexo(root: str | Path, train_takes: int = 4, val_takes: int = 2, frames: int = 60, image_every: int = 5,
                image_size: int = 64, seed: int = 2, videos: bool = False) -> EgoExoLayout:
    """An Ego-Exo4D download in miniature (see the module docstring); returns what was made."""
    root, rng = Path(root), random.Random(seed)
    frames_root = root / "processed_data"
    metadata, takes, skipped = [], {"train": [], "val": []}, {}
    plan = [("train", f"walk_train_{i}", frames) for i in range(train_takes)]
    plan += [("val", f"walk_val_{i}", frames) for i in range(val_takes)]
    plan += [("train", "bouldering_wall_0", frames), ("train", "walk_short", 6), ("train", "walk_nocamera", frames)]
    for n, (split, name, n_frames) in enumerate(plan):
        uid = f"{n:04d}{rng.getrandbits(48):012x}"
        metadata.append(_take(uid, name))
        gait = Gait(speed=rng.uniform(1.0, 1.6), frequency=rng.uniform(0.8, 1.2), heading=rng.uniform(-3, 3),
                    turn=rng.uniform(-0.2, 0.2), phase=rng.uniform(0, 2 * math.pi))
        automatic = n % 3 != 1  # most takes have automatic labels, some only manual ones
        style = list(CITIES.values())[n % len(CITIES)]
        body, cameras, video = {}, {}, []
        for f in range(n_frames):
            t = f / FPS
            joints = world_joints(gait, t)
            annotation = {j: {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])} for j, p in joints.items()}
            if automatic and f % 7 == 3:  # auto labels miss the face now and then
                for j in ("nose", "left-eye", "right-ear"):
                    annotation.pop(j)
            body[str(f)] = [{"annotation3D": annotation, "annotation2D": {}}]
            if f % 11 != 10:  # a few frames without extrinsics: the preprocessing drops them
                cameras[str(f)] = camera_extrinsics(gait, t).tolist()
            if f % image_every == 0 or videos:
                extrinsics = camera_extrinsics(gait, t)
                cam = {j: extrinsics[:, :3] @ p + extrinsics[:, 3] for j, p in joints.items()}
                bob = 2.0 * math.cos(2 * (2 * math.pi * gait.frequency * t + gait.phase))
                image = render_egocentric(cam, gait.speed * t, image_size, style, bob)
                video.append(image)
                if f % image_every == 0:
                    folder = frames_root / uid / "aria01_214-1"
                    folder.mkdir(parents=True, exist_ok=True)
                    image.save(folder / f"frame_{f}.jpg", quality=92)
        if videos:  # the raw download: take folders are named by take name, not uid
            take_dir = root / "takes" / name
            write_mp4(take_dir / "frame_aligned_videos" / "downscaled" / "448" / "aria01_214-1.mp4", video, FPS,
                      (image_size, image_size))
            (take_dir / "aria01_noimagestreams.vrs").write_bytes(b"placeholder: calibration is read by projectaria")
        kind = "automatic" if automatic else "annotation"
        pose_root = root / "annotations" / "ego_pose" / split
        atomic_write_json(pose_root / "body" / kind / f"{uid}.json", body, indent=None)
        if name != "walk_nocamera":
            # an exocentric camera first: the preprocessing must pick the Aria one
            camera_json = {"cam01": {"camera_extrinsics": {"0": np.eye(4)[:3].tolist()}},
                           "aria01": {"camera_extrinsics": cameras}}
            atomic_write_json(pose_root / "camera_pose" / f"{uid}.json", camera_json, indent=None)
        if name.startswith("bouldering"):
            skipped[uid] = "bouldering"
        elif name == "walk_short":
            skipped[uid] = "too short"
        elif name == "walk_nocamera":
            skipped[uid] = "no camera_pose file"
        else:
            takes[split].append(uid)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "metadata" / "takes.json").write_text(json.dumps(metadata, indent=1))
    return EgoExoLayout(root, frames_root, takes, skipped)
