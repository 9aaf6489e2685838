"""egoforge's own trainers (non-LLM models) behind one command: ``egoforge train RECIPE [key=value ...]``.

A recipe is YAML (read with ``yaml.safe_load``) whose ``trainer:`` key names a trainer registered in
``egoforge.registry.TRAINERS``; the remaining keys are that trainer's configuration. Trainers run on standard
machinery (HF Trainer / accelerate), so the same command works single-process and under
``torchrun ... -m egoforge.tools.cli train RECIPE`` or ``accelerate launch -m egoforge.tools.cli train RECIPE``.
"""
