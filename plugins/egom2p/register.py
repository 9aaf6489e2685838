"""EgoM2P's entries in egoforge's trainer registry (``egoforge train recipes/egom2p_*.yaml``).

Importing this module is cheap: each trainer imports torch and its modules only when it runs.
"""

from __future__ import annotations

from egoforge.registry import TRAINERS


@TRAINERS.register("egom2p", doc="EgoM2P 4M-style multimodal masked pre-training on token shards (HF accelerate)")
def egom2p(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_model import train

    return train(recipe, dry_run)


@TRAINERS.register("egom2p_traj_tokenizer", doc="EgoM2P camera / gaze VQ-VAE tokenizer on prepared clips")
def egom2p_traj_tokenizer(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_tokenizers import guarded

    return guarded("traj", recipe, dry_run)


@TRAINERS.register("egom2p_video_tokenizer", doc="egoforge FSQ video tokenizer (Cosmos DV grid) on prepared clips")
def egom2p_video_tokenizer(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.train_tokenizers import guarded

    return guarded("video", recipe, dry_run)
