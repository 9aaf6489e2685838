"""Trainer checkpoints that resume to the identical state.

``OUTPUT/checkpoint-<step>/``:

- ``student.safetensors``, ``teacher.safetensors``, ``network.json``: the networks, usable on their own (evaluation,
  export, stage-2 initialisation);
- ``dino_center.safetensors``: the teacher-centering vector;
- ``trainer_state.json``: optimiser step, epoch and position in the epoch's sample order (the data position);
- ``accelerate_state/``: ``accelerator.save_state`` (student, optimiser, LR scheduler, every process's RNG),
  loaded back with ``weights_only=True`` by accelerate;
- ``recipe.yaml``: the recipe the run used.

A checkpoint is written into ``.checkpoint-<step>.tmp`` and renamed when complete, then ``OUTPUT/latest`` names it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from egoforge.data.atomic import atomic_write_text
from egoforge.egoagent.network import NETWORK_FILE, STUDENT_FILE, TEACHER_FILE

STATE_FILE = "trainer_state.json"
CENTER_FILE = "dino_center.safetensors"
ACCELERATE_DIR = "accelerate_state"
LATEST_FILE = "latest"


@dataclass
class TrainState:
    global_step: int = 0  # optimiser steps done
    epoch: int = 0
    consumed: int = 0  # samples of this epoch already trained on, per process
    world_size: int = 1
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    seed: int = 0


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(accelerator, output_dir: str | os.PathLike, state: TrainState, student, teacher,
                    center: torch.Tensor, spec: dict, recipe: dict) -> Path:
    """Save everything (collective: every process must call it)."""
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{state.global_step}"
    tmp = output_dir / f".checkpoint-{state.global_step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / ACCELERATE_DIR))
    student_state = accelerator.get_state_dict(student)  # unwrapped and gathered (DDP, DeepSpeed ZeRO-1/2)
    if accelerator.is_main_process:
        save_file(_contiguous(student_state), str(tmp / STUDENT_FILE))
        save_file(_contiguous(teacher.state_dict()), str(tmp / TEACHER_FILE))
        save_file({"center": center.detach().float().cpu().contiguous()}, str(tmp / CENTER_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")
        (tmp / NETWORK_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_text(output_dir / LATEST_FILE, final.name + "\n")
    accelerator.wait_for_everyone()
    return final


def resolve_checkpoint(output_dir: str | os.PathLike, value: str | None) -> Path | None:
    """``resume_from_checkpoint``: None, "latest" (``output_dir/latest``; None when there is none yet), or a path."""
    if not value:
        return None
    if value == "latest":
        pointer = Path(output_dir) / LATEST_FILE
        return Path(output_dir) / pointer.read_text().strip() if pointer.exists() else None
    path = Path(value)
    if not (path / STATE_FILE).exists():
        raise FileNotFoundError(f"{path}: not an EgoAgent checkpoint (no {STATE_FILE})")
    return path


def load_checkpoint(accelerator, path: str | os.PathLike, teacher, center: torch.Tensor) -> TrainState:
    """Restore student, optimiser, scheduler and RNG (accelerate), the teacher, the centre and the data position."""
    path = Path(path)
    state = TrainState(**json.loads((path / STATE_FILE).read_text()))
    current = (accelerator.num_processes,)
    if (state.world_size,) != current:
        raise ValueError(f"{path}: saved with {state.world_size} processes, resuming with {current[0]}: the data "
                         "order is sharded per process, resume with the same number")
    accelerator.load_state(str(path / ACCELERATE_DIR))
    teacher.load_state_dict(load_file(str(path / TEACHER_FILE), device=str(center.device)))
    center.copy_(load_file(str(path / CENTER_FILE))["center"].to(center.device))
    return state
