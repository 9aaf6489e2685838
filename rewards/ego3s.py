"""verl adapter of the Ego3S rewards: ``reward.custom_reward_function.path=pkg://egoforge.rewards.ego3s``.

``compute_score`` has verl's signature and returns a dict with ``score`` and every sub-score (verl logs each key
as ``reward_extra_info``). On its own, with any reward manager, it scores format + accuracy + the object penalty
and reports the CLIP similarity. The grounded rarity bonus needs all rollouts of a prompt: select egoforge's
``ego3s_irl`` reward manager (``reward.reward_manager.name=ego3s_irl``) and it is added per group.

Settings come from ``reward.custom_reward_function.reward_kwargs`` (verl binds them as keyword arguments):
``preset`` (paper|official), ``irl`` (object tag + grounded terms, default true), ``clip_model`` (local CLIP
folder), ``clip_backend``, ``clip_device``, ``clip_batch_size`` (rollouts per CLIP micro-batch in the ``ego3s_irl``
manager, default 64), ``clip_batch_wait_s``, and overrides ``lambda_o``, ``H``, ``N``, ``int_weight``,
``penalty_weight``, ``format_weight``, ``accuracy_weight``, ``length_control`` (Video-R1's length bonus, applied by
the ``ego3s_irl`` manager), ``temporal`` (T-GRPO's shuffled-frame bonus: TRL adapter only, see ``rewards.trl``),
``lenient_choice`` and ``guarded_regression`` (egoforge's answer-checking deviations, see ``rewards.accuracy``) and
``max_clip_objects`` (cap on the objects CLIP embeds). ``length_control`` and ``temporal`` default to the preset:
on for ``official`` (the official run scripts pass ``--temporal true --len_control true``), off for ``paper``.
verl cannot roll out the shuffled-frame completions, so there ``temporal`` defaults to off and ``true`` is an error.
"""

from __future__ import annotations

from typing import Any

from egoforge.rewards.accuracy import PROBLEM_TYPES, AnswerRules
from egoforge.rewards.clip import SimilarityBackend, load_clip
from egoforge.rewards.extras import LengthBonus, TemporalBonus
from egoforge.rewards.grounding import IRLConfig
from egoforge.rewards.scoring import RewardSettings, score_response

SETTING_KEYS = ("preset", "irl", "lambda_o", "H", "N", "int_weight", "penalty_weight", "format_weight",
                "accuracy_weight", "length_control", "temporal", "lenient_choice", "guarded_regression",
                "max_clip_objects")

# Video-R1's group bonuses per preset: (length_control, temporal). The official run scripts switch both on.
PRESET_BONUSES = {"paper": (False, False), "official": (True, True)}


def settings_from_kwargs(preset: str = "paper", irl: bool = True, lambda_o: float | None = None,
                         H: float | None = None, N: int | None = None, int_weight: float | None = None,
                         penalty_weight: float | None = None, format_weight: float = 1.0,
                         accuracy_weight: float = 1.0, length_control: bool | None = None,
                         temporal: bool | None = None, lenient_choice: bool = False,
                         guarded_regression: bool = False, max_clip_objects: int | None = None,
                         **_: Any) -> RewardSettings:
    """RewardSettings from flat keyword arguments (reward_kwargs in verl, a recipe section for TRL)."""
    irl_config = IRLConfig.preset(preset, lambda_o=lambda_o, H=H, N=N, int_weight=int_weight,
                                  penalty_weight=penalty_weight)
    default_length, default_temporal = PRESET_BONUSES[preset]
    length_control = default_length if length_control is None else bool(length_control)
    temporal = default_temporal if temporal is None else bool(temporal)
    if max_clip_objects is not None and int(max_clip_objects) < 1:
        raise ValueError(f"max_clip_objects must be >= 1 or unset, got {max_clip_objects!r}")
    return RewardSettings(irl=bool(irl), irl_config=irl_config, format_weight=float(format_weight),
                          accuracy_weight=float(accuracy_weight),
                          length_bonus=LengthBonus() if length_control else None,
                          temporal_bonus=TemporalBonus() if temporal else None,
                          answer_rules=AnswerRules(lenient_choice=bool(lenient_choice),
                                                   guarded_regression=bool(guarded_regression)),
                          max_clip_objects=None if max_clip_objects is None else int(max_clip_objects))


def verl_settings_from_kwargs(**kwargs: Any) -> RewardSettings:
    """RewardSettings for verl: the T-GRPO bonus is off whatever the preset (verl rolls out no shuffled frames)."""
    if kwargs.get("temporal"):
        raise ValueError("reward_kwargs.temporal: the T-GRPO bonus needs extra shuffled-frame rollouts, which "
                         "verl 0.9.1's agent loop does not produce; use egoforge's TRL trainer "
                         "(ego3s_trl_grpo) for it, or drop the key")
    return settings_from_kwargs(**{**kwargs, "temporal": False})


DEFAULT_CLIP_BATCH = 64


def clip_batch_size(kwargs: dict[str, Any]) -> int:
    """Rollouts per CLIP micro-batch (``clip_batch_size``), checked."""
    value = kwargs.get("clip_batch_size", DEFAULT_CLIP_BATCH)
    if value is None or int(value) < 1:
        raise ValueError(f"reward_kwargs.clip_batch_size must be an integer >= 1, got {value!r}")
    return int(value)


def clip_from_kwargs(clip_model: str | None = None, clip_backend: str = "transformers",
                     clip_device: str | None = None, clip_batch_size: int | None = None, **_: Any):
    """The process-wide CLIP backend named by the kwargs, or None when no model is configured."""
    if not clip_model:
        return None
    return load_clip(clip_model, clip_backend, device=clip_device, batch_size=clip_batch_size)


def require_clip(kwargs: dict[str, Any]) -> None:
    """IRL without a CLIP model would score the grounded terms as 0 silently: refuse (``irl=false`` is explicit)."""
    if settings_from_kwargs(**kwargs).irl and not kwargs.get("clip_model"):
        raise ValueError("egoforge.rewards.ego3s: IRL is on but no CLIP model is configured, so the grounded reward "
                         "would always be 0: set reward.custom_reward_function.reward_kwargs.clip_model=<local CLIP "
                         "folder>, or irl=false to train without the interaction reward")


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  clip: SimilarityBackend | None = None, **kwargs: Any) -> dict[str, float]:
    """Score one rollout for verl (see the module docstring for the keyword arguments).

    ``clip`` (programmatic, not a config key) replaces the backend named by ``clip_model``: the ``ego3s_irl``
    manager passes a recorder, so the CLIP term is computed later in a micro-batch with the step's other rollouts.
    """
    extra_info = extra_info or {}
    problem_type = extra_info.get("problem_type")
    if not problem_type:
        raise ValueError(f"egoforge.rewards.ego3s: row {extra_info.get('index', '?')} ({data_source}): "
                         "extra_info has no 'problem_type'; convert the data with `egoforge ego3s convert`")
    if problem_type not in PROBLEM_TYPES:  # a typo would otherwise score accuracy 0 on every rollout
        raise ValueError(f"egoforge.rewards.ego3s: row {extra_info.get('index', '?')} ({data_source}): "
                         f"unknown problem_type {problem_type!r}; allowed: {list(PROBLEM_TYPES)}")
    require_clip(kwargs)
    settings = verl_settings_from_kwargs(**kwargs)
    if clip is not None and not hasattr(clip, "max_similarity"):
        raise ValueError(f"egoforge.rewards.ego3s: clip must be a CLIP backend object, not {clip!r} (name the model "
                         "with reward_kwargs.clip_model)")
    if settings.irl and clip is None:
        clip = clip_from_kwargs(**kwargs)
    return score_response(solution_str, str(ground_truth), str(problem_type), settings, clip if settings.irl else None,
                          extra_info.get("roi_path") or None)
