"""Entry point ``lmms_eval.models``: tells lmms-eval where ``egoforge_vl`` lives (imported only when used)."""

from __future__ import annotations

from egoforge.lmms import MODEL_NAME


def manifests() -> list:
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_NAME, simple_class_path="egoforge.lmms.model.EgoforgeVL")]
