"""Video-R1 json -> verl parquet (the schema ``RLHFDataset`` reads), with the paper's frame budget.

Each row gets ``prompt`` (one user turn: ``<video>``/``<image>`` + question + reasoning/answer instructions),
``data_source``, ``ability``, ``reward_model`` (``ground_truth`` = the ``<answer>X</answer>`` solution, style
rule), ``extra_info`` (index, problem_id, problem_type, options, data_type, roi_path, roi_box) and a
``videos`` or ``images`` column. Media paths are resolved under the data root (never outside it) and written
absolute, so rollout workers on any node read the same files.

Two video modes:

* ``file`` (default): ``{"video": <file or frame folder>, "fps": 2, "min_frames": 4, "max_frames": 16,
  "max_pixels": 128*28*28, ...}``; frames are sampled at rollout time by egoforge's dataset class
  (``data.custom_cls``, PyAV decoding).
* ``frames``: the sampled frames are extracted once into ``<out>.frames/`` and listed per row, so verl's stock
  ``RLHFDataset`` and qwen-vl-utils read them without any video decoder.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from egoforge.data.atomic import atomic_dir, atomic_write_bytes
from egoforge.data.paths import resolve_under
from egoforge.data.validate import Issue
from egoforge.ego3s.media import FrameBudget, load_clip
from egoforge.ego3s.prompts import build_prompt
from egoforge.ego3s.schema import validate_rows

VIDEO_MODES = ("file", "frames")


class ConversionError(ValueError):
    """The source has problems; ``issues`` lists each one with its file, row and field."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        head = "\n".join(str(i) for i in issues[:20])
        more = f"\n... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} problem(s) in the source data:\n{head}{more}")


@dataclass
class ConvertOptions:
    media_root: str | os.PathLike | None = None  # data root the media paths are relative to (default: json's folder)
    video_mode: str = "file"
    irl: bool = True  # ask for the <object> list (Ego3S IRL); False gives the plain Video-R1 prompt
    budget: FrameBudget = field(default_factory=FrameBudget)
    default_source: str = "ego3s"
    skip_invalid: bool = False  # drop rows with problems (reported) instead of refusing the whole file
    decode: bool = True  # open every media file while validating


def _media_entry(row: dict, root: Path, opts: ConvertOptions, frames_dir: Path | None) -> tuple[str, dict]:
    budget = opts.budget
    path = resolve_under(root, row["path"], allow_absolute=True)
    if row["data_type"] == "image":
        return "images", {"image": str(path), "max_pixels": budget.image_max_pixels,
                          "min_pixels": budget.image_min_pixels}
    if opts.video_mode == "file":
        return "videos", {"video": str(path), **budget.video_fields()}
    frames, sample_fps = load_clip(path, budget, resize=False)
    folder = frames_dir / _safe_name(str(row["problem_id"]))
    with atomic_dir(folder) as tmp:
        for t, frame in enumerate(frames):
            buf = io.BytesIO()
            frame.save(buf, format="JPEG", quality=95)
            (tmp / f"frame_{t + 1:03d}.jpg").write_bytes(buf.getvalue())
    paths = [str(folder / f"frame_{t + 1:03d}.jpg") for t in range(len(frames))]
    return "videos", {"video": paths, "sample_fps": sample_fps, "max_pixels": budget.max_pixels,
                      "min_pixels": budget.min_pixels}


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120] or "sample"


def to_verl_rows(rows: list[dict], root: str | os.PathLike, opts: ConvertOptions,
                 frames_dir: Path | None = None, progress=None) -> list[dict]:
    """Convert validated rows; ``extra_info.index`` is the row's position in the source file."""
    root = Path(root)
    out = []
    iterate = progress or (lambda x: x)
    for index, row in iterate(list(enumerate(rows))):
        column, media = _media_entry(row, root, opts, frames_dir)
        tag = "<image>" if column == "images" else "<video>"
        options = list(row.get("options") or [])
        roi = row.get("roi_path")
        boxes = row.get("roi_boxes") or ([row["roi_box"]] if row.get("roi_box") else [])
        out.append({
            "data_source": str(row.get("data_source") or opts.default_source),
            "ability": "egocentric_video_reasoning",
            "prompt": [{"role": "user",
                        "content": tag + build_prompt(row["problem"], row["problem_type"], options, opts.irl)}],
            "videos": [media] if column == "videos" else None,
            "images": [media] if column == "images" else None,
            "reward_model": {"style": "rule", "ground_truth": row["solution"]},
            "extra_info": {
                "index": index,
                "problem_id": str(row["problem_id"]),
                "problem_type": row["problem_type"],
                "options": options,
                "data_type": row["data_type"],
                "roi_path": str(resolve_under(root, roi, allow_absolute=True)) if roi else "",
                "roi_box": [[float(v) for v in b] for b in boxes],
            },
        })
    return out


def write_parquet(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write rows as one parquet file, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return atomic_write_bytes(path, buf.getvalue())


def convert_file(source: str | os.PathLike, out: str | os.PathLike, opts: ConvertOptions = ConvertOptions(),
                 progress=None) -> tuple[Path, list[Issue]]:
    """Validate ``source`` and write ``out`` (parquet); returns (out, issues of skipped rows).

    Raises ConversionError with every issue when the source has problems and ``skip_invalid`` is off.
    """
    from egoforge.ego3s.schema import load_video_r1

    if opts.video_mode not in VIDEO_MODES:
        raise ValueError(f"video_mode must be one of {VIDEO_MODES}, not {opts.video_mode!r}")
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError(f"refusing to overwrite the source file {source}")
    rows = load_video_r1(source)
    root = Path(opts.media_root) if opts.media_root else source.parent
    issues = validate_rows(rows, str(source), root, decode=opts.decode)
    if issues and not opts.skip_invalid:
        raise ConversionError(issues)
    bad = {i.row for i in issues if i.severity == "error"}
    good = [r for i, r in enumerate(rows) if i not in bad]
    if not good:
        raise ConversionError(issues or [Issue(str(source), None, None, "no samples")])
    frames_dir = out.with_name(out.stem + ".frames") if opts.video_mode == "frames" else None
    converted = to_verl_rows(good, root, opts, frames_dir, progress)
    # Keep the source row number as the index even when rows were skipped.
    kept = [i for i in range(len(rows)) if i not in bad]
    for row, index in zip(converted, kept):
        row["extra_info"]["index"] = index
    return write_parquet(converted, out), issues
