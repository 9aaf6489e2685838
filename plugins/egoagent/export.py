"""Export a trained backbone in Hugging Face format (``config.json`` + ``model.safetensors``).

The export is the backbone only (conv stem, CLS token, transformer, final norm), like the official
``convert2hf_dino_conv_stem_cls.py``; the DINO head and stage 2's pose parts stay in the trainer checkpoint.
Load it with ``import egoforge.egoagent.backbone`` (registers the ``egoagent`` model type) and
``transformers.AutoModel.from_pretrained(path)``; ``pooler_output`` is the CLS feature.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from egoforge.data.atomic import atomic_dir
from egoforge.egoagent.network import load_network, read_spec


def export_backbone(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, which: str = "teacher") -> Path:
    """Write the teacher's (DINO's usual choice for evaluation) or the student's backbone to ``out_dir``."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    spec = read_spec(checkpoint)
    backbone = load_network(checkpoint, which).backbone
    with atomic_dir(out_dir) as tmp:
        backbone.save_pretrained(str(tmp))
        provenance = {"source_checkpoint": str(checkpoint.resolve()), "weights": which, "size": spec.get("size")}
        (tmp / "egoforge_export.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return out_dir
