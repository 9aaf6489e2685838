"""What Ego3S adds to egoforge's registries (``egoforge list``): its rewards; imports nothing heavy.

Its verl reward manager and trainer are registered by ``egoforge.verl.register``, its TRL trainer by
``egoforge.trl_grpo.register``.
"""

from __future__ import annotations

from egoforge.registry import REWARDS
from egoforge.rewards import accuracy, answers, ego3s

REWARDS.add("ego3s", ego3s.compute_score,
            "verl compute_score: format + accuracy + IRL object penalty/CLIP similarity "
            "(pkg://egoforge.rewards.ego3s)")
REWARDS.add("ego3s_accuracy", accuracy.accuracy, "accuracy per Video-R1 problem_type (MC, numerical, OCR, "
            "free-form, regression)")
REWARDS.add("ego3s_format", answers.format_matches, "<think>..</think><answer>..</answer>[<object>..</object>]")
