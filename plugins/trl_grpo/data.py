"""Video-R1 samples as TRL GRPO rows (frames as images), served through ECR's fixed slots.

TRL 0.24 has no video path for VLMs, so a clip's sampled frames become the prompt's images (the same frames the
paper's budget selects). The trainer caches the dataset length and its sampler draws slot indices, so the
curriculum changes what a slot points to, never how many slots there are.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from egoforge.data.paths import resolve_under
from egoforge.ego3s.ecr import ECRCurriculum
from egoforge.ego3s.media import FrameBudget, load_clip
from egoforge.ego3s.prompts import build_prompt


def trl_row(sample: dict, root: str | os.PathLike, budget: FrameBudget, irl: bool = True) -> dict:
    """One GRPO row: conversational prompt with one image slot per frame, the frames, and the reward columns."""
    frames, _ = load_clip(resolve_under(root, sample["path"], allow_absolute=True), budget)
    text = build_prompt(sample["problem"], sample["problem_type"], sample.get("options") or [], irl)
    content = [{"type": "image", "text": None} for _ in frames] + [{"type": "text", "text": text}]
    roi = sample.get("roi_path")
    return {
        "prompt": [{"role": "user", "content": content}],
        "images": frames,
        "solution": sample["solution"],
        "problem_type": sample["problem_type"],
        "roi_path": str(resolve_under(root, roi, allow_absolute=True)) if roi else "",
        "problem_id": str(sample["problem_id"]),
    }


class CurriculumDataset(Dataset):
    """Slot ``i`` -> the sample the curriculum currently puts there; frames are decoded when a row is fetched."""

    def __init__(self, samples: dict[str, dict], curriculum: ECRCurriculum, root: str | os.PathLike,
                 budget: FrameBudget = FrameBudget(), irl: bool = True) -> None:
        missing = [x for x in curriculum.slots + curriculum.pool if x not in samples]
        if missing:
            raise ValueError(f"curriculum ids without a sample: {missing[:5]}")
        self.samples = samples
        self.curriculum = curriculum
        self.root = Path(root)
        self.budget = budget
        self.irl = irl

    def __len__(self) -> int:
        return len(self.curriculum.slots)

    def __getitem__(self, slot: int) -> dict:
        return trl_row(self.samples[self.curriculum.slots[slot]], self.root, self.budget, self.irl)
