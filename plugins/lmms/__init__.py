"""egoforge inside lmms-eval: benchmark tasks, local metrics and a Qwen-VL model class.

- ``egoforge.lmms.tasks``: one module per benchmark. QAEgo4D, EgoTextVQA and EgoCross CloseQA are egoforge's own
  tasks (YAML templates + hooks); EgoSchema, EgoPlan-Bench2 and EgoThink reuse lmms-eval's stock tasks and only
  point them at local data (and, for EgoThink, replace the remote GPT judge with a local metric).
- ``egoforge.lmms.taskgen``: writes a run's task folder (YAML + prepared docs) for lmms-eval's ``--include_path``.
- ``egoforge.lmms.model``: the ``egoforge_vl`` model (entry point ``lmms_eval.models``): transformers or vLLM,
  CPU or GPU, frame lists fed as one video with their true timestamps.
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
MODEL_NAME = "egoforge_vl"
