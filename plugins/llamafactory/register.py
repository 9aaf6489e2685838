"""Register egoforge's templates and mm plugins into LLaMA-Factory's registries (idempotent)."""

from __future__ import annotations

import dataclasses

# template name -> (stock template it copies, egoforge mm plugin it uses instead of the stock one)
TEMPLATES = {
    "qwen2_vl_ego_frames": ("qwen2_vl", "ego_frames_qwen2_vl"),
    "qwen3_vl_ego_frames": ("qwen3_vl", "ego_frames_qwen3_vl"),
    "qwen3_vl_nothink_ego_frames": ("qwen3_vl_nothink", "ego_frames_qwen3_vl"),
}
TEMPLATE_DOCS = {
    "qwen2_vl_ego_frames": "qwen2_vl with a sample's <image> frames fed as one video at video_fps",
    "qwen3_vl_ego_frames": "qwen3_vl (empty <think> block in labels) with frames as one timestamped video",
    "qwen3_vl_nothink_ego_frames": "qwen3_vl_nothink with frames as one timestamped video",
}


def register_all() -> list[str]:
    """Add our mm plugins and templates to LLaMA-Factory; returns the names newly registered.

    Templates are copies of the stock Qwen templates (same formatters, stop words, thinking behaviour) with only
    the mm plugin swapped, so upstream fixes to the stock templates carry over.
    """
    from llamafactory.data import mm_plugin, template

    from egoforge.llamafactory.plugins import MM_PLUGINS

    added = []
    for name, cls in MM_PLUGINS.items():
        if name not in mm_plugin.PLUGINS:
            mm_plugin.register_mm_plugin(name, cls)
            added.append(name)
    for name, (stock, plugin) in TEMPLATES.items():
        if name in template.TEMPLATES:
            continue
        base = template.TEMPLATES[stock]
        tokens = {"image_token": base.mm_plugin.image_token, "video_token": base.mm_plugin.video_token}
        template.TEMPLATES[name] = dataclasses.replace(base, mm_plugin=mm_plugin.get_mm_plugin(plugin, **tokens))
        added.append(name)
    return added
