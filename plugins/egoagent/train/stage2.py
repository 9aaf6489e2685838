"""Stage 2: joint representation-prediction-action training on interleaved frame / body-pose sequences.

L = rep_weight * L_rep + pred_weight * L_pred + lambda_act * L_act, with

- L_rep: DINO cross-entropy between each state's in-context CLS (student) and the EMA observer's encoding of
  another view of the same frame (as in stage 1, on the sequence);
- L_pred: DINO cross-entropy between the prediction at each action token and the observer's encoding of the real
  next frame (teacher temperature 0.04);
- L_act: MPJPE (or squared error) of the predicted next action, the future joints, on visible joints.

The network starts from a stage-1 checkpoint (``stage2.init_from``); the pose embedding and action head start
fresh. Loss weights, the sequence layout and the read-out positions are [INFERENCE] (egoforge.egoagent.agent).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from egoforge.data.models import resolve_model_path
from egoforge.egoagent.data.sequences import JointSequenceDataset, SequenceSpec
from egoforge.egoagent.losses import masked_mse, matched_dino_loss, mpjpe
from egoforge.egoagent.network import NETWORK_FILE, STUDENT_FILE, TEACHER_FILE, network_spec, read_spec
from egoforge.egoagent.train.checkpoint import CENTER_FILE, STATE_FILE
from egoforge.egoagent.train.config import Stage2Config
from egoforge.egoagent.train.engine import EgoAgentTrainer
from egoforge.train.checkpoints import latest_checkpoint


def sequence_spec(config: Stage2Config) -> SequenceSpec:
    data = config.data
    return SequenceSpec(history=data.history, stride=data.stride, action_frames=data.action_frames,
                        window_step=data.window_step, pose_scale=data.pose_scale)


def _check_compatible(spec: dict, stage1: dict, where: Path) -> None:
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size", "multiple_of")
    mismatched = [k for k in keys if spec["backbone"][k] != stage1["backbone"][k]]
    if spec["head"] != stage1["head"]:
        mismatched.append("head")
    if mismatched:
        raise ValueError(f"{where}: stage-1 network differs from this recipe's model in {mismatched} "
                         f"(recipe size {spec['size']!r}, checkpoint size {stage1.get('size')!r})")



def resolve_init_source(source: str | Path) -> Path:
    """``stage2.init_from`` -> the folder to load: a stage-1 checkpoint or HF export as given, or, for a stage-1 run
    folder, its newest complete ``checkpoint-N`` (so a recipe need not hard-code the step count)."""
    path = Path(source)
    if (path / NETWORK_FILE).exists() or (path / "config.json").exists():
        return path
    latest = latest_checkpoint(path, STATE_FILE) if path.is_dir() else None
    return latest if latest is not None else path

class Stage2Trainer(EgoAgentTrainer):
    stage = "egoagent_stage2"
    config: Stage2Config

    def network_spec(self) -> dict:
        return network_spec(self.config.model, action_frames=self.config.data.action_frames)

    def build_dataset(self) -> JointSequenceDataset:
        data = self.config.data
        return JointSequenceDataset(data.pose_dir, data.frames_root, sequence_spec(self.config),
                                    self.config.model.image_size, train=True, view_scale=tuple(data.view_scale),
                                    photometric=data.photometric_augmentation, takes_json=data.takes_json)

    def initialise(self, student, teacher, center: torch.Tensor) -> None:
        """Backbone and DINO head from stage 1 (student <- stage-1 student, observer <- stage-1 teacher by
        default); an exported HF backbone folder initialises the backbone of both."""
        source = self.config.stage2.init_from
        if not source:
            self.accelerator.print("warning: stage2.init_from is not set; stage 2 starts from random weights")
            return
        # a local folder: a missing one is "not found" at once, never taken for a hub id; a stage-1 run folder
        # stands for its newest complete checkpoint
        path = resolve_init_source(resolve_model_path(source, online=False, what="stage2.init_from"))
        if (path / NETWORK_FILE).exists():
            _check_compatible(self.spec, read_spec(path), path)
            student_state = load_file(str(path / STUDENT_FILE))
            teacher_file = TEACHER_FILE if self.config.stage2.init_teacher_from == "teacher" else STUDENT_FILE
            teacher_state = load_file(str(path / teacher_file))
            missing, unexpected = student.load_state_dict(student_state, strict=False)
            if unexpected or any(not k.startswith(("pose_embed.", "action_head.")) for k in missing):
                raise ValueError(f"{path}: stage-1 weights do not fit (missing {missing}, unexpected {unexpected})")
            teacher.load_state_dict({k: v for k, v in teacher_state.items() if k in teacher.state_dict()})
            if (path / CENTER_FILE).exists():
                center.copy_(load_file(str(path / CENTER_FILE))["center"].to(center.device))
        elif (path / "config.json").exists():
            from egoforge.egoagent.backbone import EgoAgentModel

            backbone = EgoAgentModel.from_pretrained(str(path))
            student.backbone.load_state_dict(backbone.state_dict())
            teacher.backbone.load_state_dict(backbone.state_dict())
        else:
            raise FileNotFoundError(f"{path}: neither a stage-1 checkpoint ({NETWORK_FILE}), a stage-1 run folder "
                                    "with checkpoint-* folders, nor an HF export (config.json)")
        self.accelerator.print(f"stage 2 initialised from {path}")

    def compute_loss(self, student, teacher, batch: dict, step: int):
        device = self.accelerator.device
        frames = batch["student"].to(device, non_blocking=True)  # [B, H, 3, S, S]
        observer_views = batch["observer"].to(device, non_blocking=True)  # [B, H + 1, 3, S, S]
        actions = batch["actions"].to(device, non_blocking=True)
        visible = batch["visible"].to(device, non_blocking=True)
        batch_size, steps = frames.shape[:2]
        options, dino = self.config.stage2, self.config.dino
        with torch.no_grad():
            observed = teacher(crops=[observer_views.flatten(0, 1)])[0].view(batch_size, steps + 1, -1)
        out = student(frames=frames, actions=actions, visible=visible, history_attention=options.history_attention)
        temp = self.teacher_temp(step)
        loss_rep = matched_dino_loss(out["state_logits"].flatten(0, 1), observed[:, :-1].flatten(0, 1), self.center,
                                     dino.student_temp, temp)
        loss_pred = matched_dino_loss(out["pred_logits"].flatten(0, 1), observed[:, 1:].flatten(0, 1), self.center,
                                      dino.student_temp, temp)
        action_loss = mpjpe if options.action_loss == "mpjpe" else masked_mse
        loss_act = action_loss(out["actions"], actions, visible)
        loss = options.rep_weight * loss_rep + options.pred_weight * loss_pred + options.lambda_act * loss_act
        metrics = {"loss_rep": loss_rep, "loss_pred": loss_pred, "loss_act": loss_act}
        return loss, metrics, observed

    def images_in(self, batch: dict) -> int:
        return int(batch["student"].shape[0] * batch["student"].shape[1])

    def loss_units(self) -> dict[str, str]:
        return stage2_loss_units(self.config)


def stage2_loss_units(config: Stage2Config) -> dict[str, str]:
    """``loss.png``'s axes: the two DINO terms share a cross-entropy axis, the action term (metres, or squared
    metres, times ``data.pose_scale``) and the weighted total (a mix of both units) each get their own."""
    scale = config.data.pose_scale
    unit = "m" if config.stage2.action_loss == "mpjpe" else "m²"
    unit = unit if scale == 1 else f"{unit} × {scale:g}"
    action = "MPJPE" if config.stage2.action_loss == "mpjpe" else "joint squared error"
    return {"loss": "weighted total (no unit)", "loss_rep": "DINO cross-entropy (nats)",
            "loss_pred": "DINO cross-entropy (nats)", "loss_act": f"{action} ({unit})"}


def run(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 2: joint representation-prediction-action training from a stage-1 checkpoint (accelerate)."""
    from egoforge.train.recipe import RecipeError, build_config

    config = build_config(Stage2Config, recipe)
    try:
        sequence_spec(config)
    except ValueError as exc:
        raise RecipeError(f"recipe.data: {exc}") from None
    if dry_run:
        import yaml

        print(yaml.safe_dump({"trainer": "egoagent_stage2", **recipe}, sort_keys=False))
        return 0
    Stage2Trainer(config, {"trainer": "egoagent_stage2", **recipe}).train()
    return 0
