"""Stage 1: DINO egocentric representation pretraining on independent frames (multi-crop, CLS-token loss)."""

from __future__ import annotations

import torch

from egoforge.egoagent.data.images import FrameDataset
from egoforge.egoagent.data.transforms import MultiCrop, MultiCropSpec
from egoforge.egoagent.losses import dino_loss
from egoforge.egoagent.network import network_spec
from egoforge.egoagent.train.config import Stage1Config
from egoforge.egoagent.train.engine import EgoAgentTrainer

GLOBAL_CROPS = 2


class Stage1Trainer(EgoAgentTrainer):
    stage = "egoagent_stage1"
    config: Stage1Config

    def network_spec(self) -> dict:
        return network_spec(self.config.model)

    def build_dataset(self) -> FrameDataset:
        data, model = self.config.data, self.config.model
        if not data.frame_roots:
            raise ValueError("data.frame_roots is empty: list the folders written by `egoforge egoagent frames`")
        spec = MultiCropSpec(global_size=model.image_size, local_size=data.local_crop_size,
                             global_scale=tuple(data.global_crops_scale), local_scale=tuple(data.local_crops_scale),
                             local_crops=data.local_crops_number, init_crop_size=data.init_crop_size,
                             photometric=data.photometric_augmentation)
        return FrameDataset(data.frame_roots, MultiCrop(spec))

    def compute_loss(self, student, teacher, batch: dict, step: int):
        global_crops = batch["global_crops"].to(self.accelerator.device, non_blocking=True)
        local_crops = batch["local_crops"].to(self.accelerator.device, non_blocking=True)
        crops = [global_crops[:, i] for i in range(global_crops.shape[1])]
        crops += [local_crops[:, i] for i in range(local_crops.shape[1])]
        with torch.no_grad():
            teacher_logits = teacher(crops=crops[:GLOBAL_CROPS])
        student_logits = student(crops=crops)
        dino = self.config.dino
        loss = dino_loss(student_logits, teacher_logits, self.center, dino.student_temp, self.teacher_temp(step))
        return loss, {}, teacher_logits

    def images_in(self, batch: dict) -> int:
        return int(batch["global_crops"].shape[0])


def run(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 1: DINO pretraining of the causal transformer on egocentric frames (accelerate)."""
    from egoforge.train.recipe import build_config

    config = build_config(Stage1Config, recipe)
    if dry_run:
        import yaml

        print(yaml.safe_dump({"trainer": "egoagent_stage1", **recipe}, sort_keys=False))
        return 0
    Stage1Trainer(config, {"trainer": "egoagent_stage1", **recipe}).train()
    return 0
