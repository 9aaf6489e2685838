"""EgoM2P's entries in egoforge's trainer registry (``egoforge train recipes/egom2p_*.yaml``).

Importing this module is cheap: each trainer imports torch and its modules only when it runs.
"""

from __future__ import annotations

from egoforge.registry import TRAINERS
from egoforge.train.recipe import LocalPath

_CLIPS = LocalPath("data.clips", "write clips with `egoforge egom2p prepare RAW --out DIR --dataset NAME` "
                   "(generated recordings: `egoforge egom2p synth RAW`)")


@TRAINERS.register("egom2p", doc="EgoM2P 4M-style multimodal masked pre-training on token shards (HF accelerate)")
def egom2p(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_model import train

    return train(recipe, dry_run)


egom2p.local_paths = (LocalPath("data.root", "write token shards with `egoforge egom2p tokenize CLIPS --out DIR "
                                "--modality M --tokenizer TOKENIZER`"),)


@TRAINERS.register("egom2p_traj_tokenizer", doc="EgoM2P camera / gaze VQ-VAE tokenizer on prepared clips")
def egom2p_traj_tokenizer(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_tokenizers import guarded

    return guarded("traj", recipe, dry_run)


egom2p_traj_tokenizer.local_paths = (_CLIPS,)


@TRAINERS.register("egom2p_video_tokenizer", doc="egoforge FSQ video tokenizer (Cosmos DV grid) on prepared clips")
def egom2p_video_tokenizer(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_tokenizers import guarded

    return guarded("video", recipe, dry_run)


egom2p_video_tokenizer.local_paths = (_CLIPS,)
