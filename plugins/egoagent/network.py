"""Build EgoAgent networks from recipe options, and load them back from trainer checkpoints or HF exports.

A trainer checkpoint holds ``network.json`` (the backbone's HF config, the head sizes, stage 2's action frames),
``student.safetensors`` (the student) and ``teacher.safetensors`` (the EMA teacher).
An HF export holds ``config.json`` + ``model.safetensors`` of the backbone alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file

from egoforge.egoagent.agent import EgoAgentNetwork
from egoforge.egoagent.backbone import EgoAgentConfig, EgoAgentModel
from egoforge.egoagent.heads import DINOHead
from egoforge.egoagent.sizes import get_size

NETWORK_FILE = "network.json"
STUDENT_FILE = "student.safetensors"
TEACHER_FILE = "teacher.safetensors"


def network_spec(options, action_frames: int | None = None) -> dict:
    """A JSON-able description of the network a recipe's ``model:`` section asks for."""
    size = get_size(options.size)
    backbone = EgoAgentConfig.from_size(options.size, image_size=options.image_size, patch_size=options.patch_size,
                                        causal=options.causal, perframe_attention=options.perframe_attention)
    return {
        "size": options.size,
        "backbone": backbone.to_dict(),
        "head": {"out_dim": options.out_dim or size.out_dim,
                 "hidden_dim": options.head_hidden_size or size.head_hidden_size,
                 "bottleneck_dim": options.head_bottleneck_size or size.head_bottleneck_size},
        "action_frames": action_frames,
    }


def build_network(spec: dict, with_actions: bool = True) -> EgoAgentNetwork:
    config = EgoAgentConfig.from_dict(spec["backbone"])
    backbone = EgoAgentModel(config)
    head = DINOHead(config.hidden_size, **spec["head"])
    return EgoAgentNetwork(backbone, head, spec.get("action_frames") if with_actions else None)


def read_spec(checkpoint: str | os.PathLike) -> dict:
    path = Path(checkpoint) / NETWORK_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: not an EgoAgent trainer checkpoint (no {NETWORK_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_network(checkpoint: str | os.PathLike, which: str = "teacher") -> EgoAgentNetwork:
    """The student (with stage 2's pose parts, if any) or the EMA teacher of a trainer checkpoint."""
    if which not in ("teacher", "student"):
        raise ValueError(f"which must be teacher or student, got {which!r}")
    spec = read_spec(checkpoint)
    network = build_network(spec, with_actions=which == "student")
    weights = Path(checkpoint) / (TEACHER_FILE if which == "teacher" else STUDENT_FILE)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: missing from the checkpoint")
    network.load_state_dict(load_file(str(weights)))
    return network


def load_backbone(path: str | os.PathLike, which: str = "teacher") -> EgoAgentModel:
    """A backbone from an HF export (``config.json``) or from a trainer checkpoint (``network.json``)."""
    path = Path(path)
    if (path / "config.json").exists():
        return EgoAgentModel.from_pretrained(str(path))
    return load_network(path, which).backbone
