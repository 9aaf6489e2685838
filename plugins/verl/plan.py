"""What a verl recipe will actually do: the composed job, the values verl's dataclasses hold, and the schedule.

``egoforge ego3s plan RECIPE`` runs the recipe with ``--cfg job`` (verl's own Hydra composition, nothing
re-implemented), converts the sections with ``verl.utils.config.omega_conf_to_dataclass`` as verl's workers do, and
counts steps the way ``PPOTrainer._init_dataloader`` / ``fit`` do: steps per epoch = training rows //
``data.train_batch_size``; saves at ``save_freq`` multiples and the last step; validations at ``test_freq``
multiples, the last step and (``val_before_train``) before step 1; ECR checks at ``data.ecr.interval`` multiples.

Errors (``PlanError``): a key verl composes but never reads (``actor.grad_clip``: the engine clips with
``actor.optim.clip_grad``; the legacy top-level ``custom_reward_function``), a ``+key`` outside verl's schema that
egoforge does not read either, and an ECR interval that no step reaches.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Keys verl 0.9.1 composes (they are in its yaml/dataclasses) but no code path of the V1 trainer reads.
UNREAD_KEYS = {
    "actor_rollout_ref.actor.grad_clip": "verl 0.9.1's FSDP engine clips with actor_rollout_ref.actor.optim.clip_grad",
    "actor_rollout_ref.actor.optim.grad_clip": "deprecated alias; set actor_rollout_ref.actor.optim.clip_grad",
    "custom_reward_function.path": "the V1 main_ppo reads reward.custom_reward_function.path only",
    "custom_reward_function.name": "the V1 main_ppo reads reward.custom_reward_function.name only",
}
# Keys outside verl's schema that egoforge's own classes read (prefixes).
EGOFORGE_KEYS = ("data.ecr.", "reward.custom_reward_function.reward_kwargs.")


class PlanError(ValueError):
    """The recipe would run but not as written (listed problems)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def compose_recipe(recipe: str | os.PathLike, overrides: Sequence[str] = (), env: Mapping[str, str] | None = None,
                   cwd: str | os.PathLike | None = None, timeout: float = 600) -> dict:
    """The job config verl's Hydra composes from a shell recipe (``bash RECIPE overrides... --cfg job``)."""
    run_env = dict(os.environ)
    run_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{run_env.get('PATH', '')}"  # recipes call python3
    run_env.update({k: str(v) for k, v in (env or {}).items()})
    proc = subprocess.run(["bash", str(Path(recipe).resolve()), *overrides, "--cfg", "job"], cwd=cwd, env=run_env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ValueError(f"{recipe}: verl could not compose the recipe:\n{proc.stderr[-3000:]}")
    return yaml.safe_load(proc.stdout)


def default_job() -> dict:
    """verl's own defaults (``ppo_trainer`` with no overrides), as a plain dict."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module("verl.trainer.config", version_base=None):
        return OmegaConf.to_container(compose("ppo_trainer"), resolve=False)


def _flatten(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, Mapping) and tree:
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def key_problems(job: Mapping, defaults: Mapping) -> list[str]:
    """Keys the recipe changes that verl never reads, or adds outside both verl's and egoforge's schema."""
    flat_job, flat_default = _flatten(job), _flatten(defaults)
    problems = []
    for key, value in sorted(flat_job.items()):
        if key in flat_default:
            if key in UNREAD_KEYS and value != flat_default[key]:
                problems.append(f"{key}={value} is never read: {UNREAD_KEYS[key]}")
        elif not key.startswith(EGOFORGE_KEYS) and not any(d.startswith(f"{key}.") or key.startswith(f"{d}.")
                                                           for d in _open_sections(flat_default, key)):
            problems.append(f"+{key}={value} is read neither by verl nor by egoforge")
    return problems


def _open_sections(flat_default: Mapping, key: str) -> list[str]:
    """verl sections whose default is an empty or null mapping (free-form: ``+key`` there is read as data)."""
    parts = key.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
            if p in flat_default and flat_default[p] in ({}, None)]


@dataclass
class Schedule:
    train_rows: int
    steps_per_epoch: int
    total_steps: int
    ecr_checks: list[int] = field(default_factory=list)
    saves: list[int] = field(default_factory=list)
    validations: list[int] = field(default_factory=list)
    probe_measured: dict[int, float] = field(default_factory=dict)  # expected share of the probe per ECR check
    lr: dict[str, float] = field(default_factory=dict)


def schedule(job: Mapping, train_rows: int, values: Mapping) -> Schedule:
    """Steps, ECR checks, saves and validations exactly as verl's V1 trainer counts them."""
    data, trainer = job["data"], job["trainer"]
    steps_per_epoch = train_rows // int(data["train_batch_size"])
    total = steps_per_epoch * int(trainer["total_epochs"])
    if trainer.get("total_training_steps") is not None:
        total = int(trainer["total_training_steps"])
    steps = range(1, total + 1)

    def every(freq) -> list[int]:
        freq = int(freq or 0)
        return [s for s in steps if freq > 0 and (s % freq == 0 or s == total)]

    ecr = data.get("ecr") or {}
    interval = int(ecr.get("interval", 0) or 0) if ecr else 0
    plan = Schedule(train_rows, steps_per_epoch, total,
                    ecr_checks=[s for s in steps if interval > 0 and s % interval == 0],
                    saves=every(trainer.get("save_freq")),
                    validations=([0] if trainer.get("val_before_train", True) else [])
                    + every(trainer.get("test_freq")))
    if interval > 0 and steps_per_epoch > 0:
        plan.probe_measured = expected_probe_coverage(plan.ecr_checks, steps_per_epoch, interval)
    plan.lr = lr_schedule(values, total)
    return plan


def expected_probe_coverage(checks: Sequence[int], steps_per_epoch: int, interval: int) -> dict[int, float]:
    """Expected share of the probe that ECR measures at each check when states come from training rollouts.

    verl's sampler serves every sample once per epoch at a uniformly random step of it. A probe sample is measured
    at a check when it was rolled out in the window since the previous check and either had a state before the
    window or was rolled out twice in it (``egoforge.ego3s.ecr``).
    """
    out = {}
    for check in checks:
        start = check - interval + 1  # the window is steps start..check
        # distribution over (seen before the window, rollouts in the window capped at 2), epoch by epoch
        dist = {(False, 0): 1.0}
        for epoch in range(math.ceil(check / steps_per_epoch)):
            first, last = epoch * steps_per_epoch + 1, (epoch + 1) * steps_per_epoch
            before = max(0, min(last, start - 1) - first + 1) / steps_per_epoch
            inside = max(0, min(last, check) - max(first, start) + 1) / steps_per_epoch
            step = {}
            for (seen, count), p in dist.items():
                for (s, c), q in (((True, count), before), ((seen, min(2, count + 1)), inside),
                                  ((seen, count), 1.0 - before - inside)):
                    step[(s, c)] = step.get((s, c), 0.0) + p * q
            dist = step
        out[check] = sum(p for (seen, count), p in dist.items() if count >= 2 or (seen and count >= 1))
    return out


def lr_schedule(values: Mapping, total_steps: int) -> dict[str, float]:
    """Learning rate at a few points of the run, from verl's own scheduler functions."""
    import torch
    from verl.utils.torch_functional import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    optim = values["optim"]
    if total_steps <= 0:
        return {}
    warmup = optim.lr_warmup_steps if (optim.lr_warmup_steps or -1) > 0 else int(optim.lr_warmup_steps_ratio
                                                                                 * total_steps)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=optim.lr)
    if optim.lr_scheduler_type == "cosine":
        sched = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps, min_lr_ratio=optim.min_lr_ratio or 0.0,
                                                num_cycles=optim.num_cycles)
    else:
        sched = get_constant_schedule_with_warmup(optimizer, warmup)
    points = {"step 1": 1, "25%": math.ceil(total_steps / 4), "50%": math.ceil(total_steps / 2),
              "75%": math.ceil(3 * total_steps / 4), "last": total_steps}
    lrs = {1: optimizer.param_groups[0]["lr"]}
    for step in range(2, total_steps + 1):
        optimizer.step()
        sched.step()
        lrs[step] = optimizer.param_groups[0]["lr"]
    return {name: float(lrs[step]) for name, step in points.items()}


def effective_values(job: Mapping):
    """verl's dataclasses for the actor, rollout and algorithm sections, as its workers build them."""
    import warnings

    from omegaconf import OmegaConf
    from verl.utils.config import omega_conf_to_dataclass

    config = OmegaConf.create(dict(job))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actor = omega_conf_to_dataclass(config.actor_rollout_ref.actor)
        rollout = omega_conf_to_dataclass(config.actor_rollout_ref.rollout)
        algorithm = omega_conf_to_dataclass(config.algorithm)
    return {"actor": actor, "optim": actor.optim, "rollout": rollout, "algorithm": algorithm}


def summary(values: Mapping) -> dict[str, object]:
    """The values that decide what the optimisation does, read from verl's dataclasses."""
    actor, optim, rollout, algorithm = values["actor"], values["optim"], values["rollout"], values["algorithm"]
    return {
        "adv_estimator": algorithm.adv_estimator,
        "norm_adv_by_std_in_grpo": algorithm.norm_adv_by_std_in_grpo,
        "rollout.n": rollout.n,
        "rollout.temperature": rollout.temperature,
        "clip_grad": optim.clip_grad,
        "lr": optim.lr,
        "lr_scheduler_type": optim.lr_scheduler_type,
        "lr_warmup_steps_ratio": optim.lr_warmup_steps_ratio,
        "min_lr_ratio": optim.min_lr_ratio,
        "weight_decay": optim.weight_decay,
        "use_kl_loss": actor.use_kl_loss,
        "kl_loss_coef": actor.kl_loss_coef,
        "kl_loss_type": actor.kl_loss_type,
        "use_kl_in_reward": algorithm.use_kl_in_reward,
        "loss_agg_mode": actor.loss_agg_mode,
        "ppo_mini_batch_size": actor.ppo_mini_batch_size,
        "ppo_epochs": actor.ppo_epochs,
        "clip_ratio": [actor.clip_ratio_low, actor.clip_ratio_high],
        "entropy_coeff": actor.entropy_coeff,
    }


def count_rows(files) -> int:
    import pyarrow.parquet as pq

    files = [files] if isinstance(files, str) else list(files)
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(f"training file(s) not found: {missing}; pass --train-rows N")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def plan(job: Mapping, train_rows: int | None = None, defaults: Mapping | None = None) -> dict:
    """Everything ``egoforge ego3s plan`` prints; raises PlanError on keys verl never reads or an ECR that never
    fires."""
    values = effective_values(job)
    rows = count_rows(job["data"]["train_files"]) if train_rows is None else int(train_rows)
    sched = schedule(job, rows, values)
    problems = key_problems(job, default_job() if defaults is None else defaults)
    ecr = job["data"].get("ecr")
    if ecr is not None and not sched.ecr_checks:
        problems.append(f"ECR never fires: {sched.total_steps} steps ({rows} rows // data.train_batch_size="
                        f"{job['data']['train_batch_size']} x {job['trainer']['total_epochs']} epochs) and "
                        f"data.ecr.interval={ecr.get('interval')}; lower the batch or scale the interval")
    if problems:
        raise PlanError(problems)
    return {"values": summary(values), "schedule": sched.__dict__}
