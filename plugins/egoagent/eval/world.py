"""Stage-2 evaluations on held-out Ego-Exo4D windows.

- **Future-state retrieval**: the student's predicted next-state embedding (the DINO head's normalised bottleneck
  at each action token) retrieves the EMA observer's embedding of the real next frame among every state frame of
  the evaluation set; top-1 / top-5 accuracy and the mean rank. [INFERENCE] the paper's exact candidate set and
  embedding space are not public.
- **3D motion prediction**: MPJPE in millimetres between the predicted and the true future joints (visible joints
  only), beside the zero-velocity baseline (the last observed pose held), the standard reference in motion
  prediction.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader

from egoforge.egoagent.data.sequences import JointSequenceDataset, SequenceSpec
from egoforge.egoagent.losses import joint_errors
from egoforge.egoagent.network import load_network


def retrieval_ranks(queries: torch.Tensor, gallery: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of ``gallery[targets[i]]`` among all gallery rows by cosine similarity to ``queries[i]``."""
    similarity = queries @ gallery.T
    target_similarity = similarity.gather(1, targets[:, None])
    return (similarity > target_similarity).sum(1)


def retrieval_metrics(ranks: torch.Tensor, gallery_size: int) -> dict[str, float]:
    return {"top1": 100.0 * (ranks < 1).float().mean().item(), "top5": 100.0 * (ranks < 5).float().mean().item(),
            "mean_rank": float(ranks.float().mean().item()) + 1.0, "candidates": gallery_size,
            "chance_top1": 100.0 / gallery_size, "queries": int(ranks.numel())}


def masked_mean_error(errors: torch.Tensor, visible: torch.Tensor) -> float:
    mask = visible.float()
    return float((errors * mask).sum() / mask.sum().clamp_min(1.0))


@torch.no_grad()
def evaluate_world(checkpoint: str | os.PathLike, pose_dir: str | os.PathLike, frames_root: str | os.PathLike,
                   spec: SequenceSpec, image_size: int, history_attention: bool = True, batch_size: int = 16,
                   device: str = "cpu", num_workers: int = 0, progress: bool = True,
                   takes_json: str | os.PathLike | None = None) -> dict:
    """Both stage-2 evaluations of a stage-2 checkpoint on the windows of ``pose_dir`` / ``frames_root``."""
    from tqdm import tqdm

    student = load_network(checkpoint, "student").to(device).eval()
    observer = load_network(checkpoint, "teacher").to(device).eval()
    if student.pose_embed.proj.in_features != spec.action_frames * 17 * 4:
        raise ValueError(f"{checkpoint}: trained with a different action_frames than {spec.action_frames}")
    dataset = JointSequenceDataset(pose_dir, frames_root, spec, image_size, train=False, takes_json=takes_json)
    gallery = torch.zeros(len(dataset.frame_ids), observer.head.mlp[-1].out_features)
    queries, targets, errors, visibles, base_errors, base_visibles = [], [], [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    for batch in tqdm(loader, desc="stage-2 eval", unit="batch", disable=not progress):
        frames, actions = batch["student"].to(device), batch["actions"].to(device)
        visible, views, ids = batch["visible"].to(device), batch["observer"].to(device), batch["frame_ids"]
        out = student(frames=frames, actions=actions, visible=visible, history_attention=history_attention)
        observed = observer.head.bottleneck(observer.cls_features(views.flatten(0, 1))).float().cpu()
        gallery[ids.flatten()] = observed
        queries.append(out["pred_embedding"].float().cpu().flatten(0, 1))
        targets.append(ids[:, 1:].flatten())
        errors.append(joint_errors(out["actions"], actions).cpu())
        visibles.append(visible.cpu())
        # zero-velocity baseline for steps t >= 1: hold the last pose of the previous action
        held = actions[:, :-1, -1:].expand_as(actions[:, 1:])
        base_errors.append(joint_errors(held, actions[:, 1:]).cpu())
        base_visibles.append((visible[:, 1:] * visible[:, :-1, -1:]).cpu())
    ranks = retrieval_ranks(torch.cat(queries), gallery, torch.cat(targets))
    errors, visibles = torch.cat(errors), torch.cat(visibles)
    to_mm = 1000.0 / spec.pose_scale
    motion = {"mpjpe_mm": to_mm * masked_mean_error(errors, visibles),
              "mpjpe_mm_steps_1plus": to_mm * masked_mean_error(errors[:, 1:], visibles[:, 1:] *
                                                                visibles[:, :-1, -1:]),
              "zero_velocity_mpjpe_mm": to_mm * masked_mean_error(torch.cat(base_errors), torch.cat(base_visibles)),
              "windows": len(dataset)}
    return {"retrieval": retrieval_metrics(ranks, len(dataset.frame_ids)), "motion": motion}


# results.md's columns: each metric with its unit, and which rows it has a value in
WORLD_COLUMNS = {"top1": "top-1 (%)", "top5": "top-5 (%)", "mean_rank": "mean rank (1 = best)",
                 "mpjpe_mm_steps_1plus": "MPJPE steps 1+ (mm)", "mpjpe_mm": "MPJPE all steps (mm)"}


def world_table(results: dict, model: str) -> tuple[dict[str, dict], list[str]]:
    """(rows, columns) of results.md: the model, chance for retrieval and the zero-velocity baseline for motion.

    The baseline holds the last observed pose, which exists from the second step on, so it is compared with the
    model's steps-1+ column; the all-steps column (step 0 included) has no baseline value."""
    retrieval, motion = results["retrieval"], results["motion"]
    values = {**retrieval, **motion}
    rows = {model: {WORLD_COLUMNS[k]: values[k] for k in WORLD_COLUMNS},
            f"chance ({retrieval['candidates']} candidates)": {
                WORLD_COLUMNS["top1"]: retrieval["chance_top1"],
                WORLD_COLUMNS["top5"]: min(100.0, 5 * retrieval["chance_top1"]),
                WORLD_COLUMNS["mean_rank"]: (retrieval["candidates"] + 1) / 2},
            "zero-velocity baseline (last pose held)": {
                WORLD_COLUMNS["mpjpe_mm_steps_1plus"]: motion["zero_velocity_mpjpe_mm"]}}
    return rows, list(WORLD_COLUMNS.values())
