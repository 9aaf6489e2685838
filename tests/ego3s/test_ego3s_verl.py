"""Ego3S on verl 0.9.1's own classes (CPU): the recipe's Hydra composition, the reward verl loads from it, our
reward manager on a hand-built batch followed by verl's GRPO advantage, the dataset classes through
``create_rl_dataset`` with a tiny Qwen2.5-VL processor, and the ECR state riding in the dataloader checkpoint."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

import egoforge.verl.plugin  # noqa: F401  (what the verl.plugins entry point does in every verl process)

REPO = Path(__file__).resolve().parents[2]
RECIPES = {size: REPO / "recipes" / f"ego3s_grpo_qwen2_5_vl_{size}.sh" for size in ("7b", "3b")}


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the recipes call python3
    env.update({k: str(v) for k, v in extra.items()})
    return env


def compose_recipe(recipe: Path, cwd: Path, *overrides: str, **env) -> dict:
    """The job config verl's Hydra composes from the shipped recipe (``bash recipe.sh ... --cfg job``)."""
    proc = subprocess.run(["bash", str(recipe), *overrides, "--cfg", "job"], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def recipe_job(tmp_path_factory, tiny_qwen2_5_vl, tiny_clip, ego3s_parquet) -> dict:
    cwd = tmp_path_factory.mktemp("recipe7b")  # not the repo root: no stale in-tree egg-info on sys.path
    return compose_recipe(RECIPES["7b"], cwd, MODEL=tiny_qwen2_5_vl, CLIP_MODEL=tiny_clip, TRAIN_FILES=ego3s_parquet,
                          POOL_FILES=ego3s_parquet, VAL_FILES=ego3s_parquet)


def test_recipe_values_verl_will_use_match_the_official_run(recipe_job):
    """The values verl's own dataclasses hold after composing the recipe (what the workers read), and the
    schedule verl's trainer will run on the paper's 3,180 CSM-selected samples."""
    from egoforge.verl.plan import plan

    result = plan(recipe_job, train_rows=3180)
    values, sched = result["values"], result["schedule"]
    assert values["clip_grad"] == 5.0  # actor.optim.clip_grad: the key the FSDP engine reads (max_grad_norm 5)
    assert values["lr"] == 1e-6 and values["lr_scheduler_type"] == "cosine" and values["weight_decay"] == 0.01
    assert values["lr_warmup_steps_ratio"] == 0.0 and values["min_lr_ratio"] == 0.0  # TRL cosine: 0 warmup, to 0
    assert values["use_kl_loss"] and values["kl_loss_coef"] == 0.04 and values["kl_loss_type"] == "low_var_kl"
    assert not values["use_kl_in_reward"]
    assert values["adv_estimator"] == "grpo" and values["norm_adv_by_std_in_grpo"]
    assert values["rollout.n"] == 5 and values["rollout.temperature"] == 1.0
    assert values["loss_agg_mode"] == "seq-mean-token-mean"  # TRL 0.14: per-sequence token mean, batch mean
    assert values["ppo_mini_batch_size"] == 8 and values["ppo_epochs"] == 1  # one policy update per step
    # Official step: 1 prompt x 8 GPUs x accumulation 1 -> 3180 // 8 = 397 steps per epoch, 2 epochs.
    assert (sched["steps_per_epoch"], sched["total_steps"]) == (397, 794)
    assert sched["ecr_checks"] == [100, 200, 300, 400, 500, 600, 700]
    assert sched["saves"] == [100, 200, 300, 400, 500, 600, 700, 794]
    assert sched["validations"] == [0, 100, 200, 300, 400, 500, 600, 700, 794]
    # Each sample is rolled out about once per epoch: first-epoch checks measure no probe sample.
    measured = [sched["probe_measured"][c] for c in sched["ecr_checks"]]
    assert measured[:3] == [0.0, 0.0, 0.0] and 0 < measured[3] < 0.01
    assert measured[4:] == pytest.approx([100 / 397] * 3)
    assert sched["lr"]["step 1"] == 1e-6 and sched["lr"]["50%"] == pytest.approx(5e-7, rel=0.01)
    assert sched["lr"]["last"] < 1e-9

    job = recipe_job
    data = job["data"]
    assert data["custom_cls"] == {"path": "pkg://egoforge.verl.dataset", "name": "ECRDataset"}
    assert data["dataloader_num_workers"] == 0 and data["ecr"]["rescore_file"]
    assert data["ecr"]["probe_size"] == 500 and data["ecr"]["interval"] == 100 and data["ecr"]["lambda_s"] == 0.6
    assert job["reward"]["custom_reward_function"]["path"] == "pkg://egoforge.rewards.ego3s"
    assert job["reward"]["reward_manager"]["name"] == "ego3s_irl"


def test_plan_refuses_unread_keys_and_an_ecr_that_never_fires(recipe_job):
    import copy

    from egoforge.verl.plan import PlanError, plan

    job = copy.deepcopy(recipe_job)
    job["actor_rollout_ref"]["actor"]["grad_clip"] = 5.0  # the old recipe's key: composed, never read
    job["data"]["train_batch_size"] = 512  # the old recipe's batch: 3180 // 512 = 6 steps/epoch, 12 in all
    job["actor_rollout_ref"]["actor"]["ppo_mini_batch_size"] = 512
    job["trainer"]["typo_freq"] = 3
    with pytest.raises(PlanError) as info:
        plan(job, train_rows=3180)
    problems = "\n".join(info.value.problems)
    assert "actor_rollout_ref.actor.grad_clip=5.0 is never read" in problems
    assert "ECR never fires: 12 steps" in problems and "+trainer.typo_freq=3" in problems
    job = copy.deepcopy(recipe_job)  # the documented alternative: a larger batch with the interval scaled
    job["data"]["train_batch_size"] = job["actor_rollout_ref"]["actor"]["ppo_mini_batch_size"] = 64
    job["data"]["ecr"]["interval"] = job["trainer"]["save_freq"] = job["trainer"]["test_freq"] = 12
    assert plan(job, train_rows=3180)["schedule"]["ecr_checks"] == [12, 24, 36, 48, 60, 72, 84, 96]


def test_recipe_passes_verls_config_validation(recipe_job):
    """main_ppo's own checks (batch divisibility over 8 GPUs, registered reward manager, ...) on the recipe."""
    from omegaconf import OmegaConf
    from verl.trainer.main_ppo import validate_config
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    config = OmegaConf.create(recipe_job)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert need_reference_policy(config) and not need_critic(config)  # KL loss against the reference, no critic


@pytest.mark.slow
def test_3b_recipe_composes(tmp_path):
    from egoforge.verl.plan import plan

    job = compose_recipe(RECIPES["3b"], tmp_path, "reward.custom_reward_function.reward_kwargs.preset=official")
    assert job["actor_rollout_ref"]["model"]["path"] == "models/Qwen2.5-VL-3B-Instruct"
    result = plan(job, train_rows=3180)  # the same values and schedule as the 7b recipe
    assert {k: result["values"][k] for k in ("clip_grad", "kl_loss_coef", "kl_loss_type", "loss_agg_mode",
                                             "rollout.n", "lr", "lr_scheduler_type", "ppo_mini_batch_size")} == {
        "clip_grad": 5.0, "kl_loss_coef": 0.04, "kl_loss_type": "low_var_kl", "loss_agg_mode": "seq-mean-token-mean",
        "rollout.n": 5, "lr": 1e-6, "lr_scheduler_type": "cosine", "ppo_mini_batch_size": 8}
    assert result["schedule"]["ecr_checks"] == [100, 200, 300, 400, 500, 600, 700]
    assert job["actor_rollout_ref"]["rollout"]["tensor_model_parallel_size"] == 1
    assert job["reward"]["custom_reward_function"]["reward_kwargs"]["preset"] == "official"


def test_verl_loads_our_reward_from_the_recipe_and_ignores_the_legacy_key(recipe_job, tiny_qwen2_5_vl):
    from functools import partial

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    import egoforge.rewards.ego3s as ego3s

    fn = get_custom_reward_fn(OmegaConf.create(recipe_job))
    assert isinstance(fn, partial) and fn.args[0] is ego3s.compute_score and fn.args[1]["preset"] == "paper"
    # The pre-0.8 spelling composes fine but verl 0.9.1's main_ppo never reads it: the default scorer would run.
    with initialize_config_module("verl.trainer.config", version_base=None):
        legacy = compose("ppo_trainer", overrides=["custom_reward_function.path=pkg://egoforge.rewards.ego3s",
                                                   "custom_reward_function.name=compute_score"])
    assert get_custom_reward_fn(legacy) is None


def _batch(tokenizer, prompts: list[str], groups: list[list[str]], extra: list[dict]):
    """A DataProto shaped like verl's reward input: left-padded prompts, right-padded responses, one uid per group."""
    from tensordict import TensorDict
    from verl import DataProto

    rows = [(p, r, e, f"uid-{g}") for g, (p, rs, e) in enumerate(zip(prompts, groups, extra)) for r in rs]
    p_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p, *_ in rows]
    r_ids = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for _, r, *_ in rows]
    P, R = max(map(len, p_ids)), max(map(len, r_ids))
    pad = tokenizer.pad_token_id
    prompts_t = torch.tensor([[pad] * (P - len(x)) + x for x in p_ids])
    responses_t = torch.tensor([x + [pad] * (R - len(x)) for x in r_ids])
    mask = torch.tensor([[0] * (P - len(a)) + [1] * len(a) + [1] * len(b) + [0] * (R - len(b))
                         for a, b in zip(p_ids, r_ids)])
    batch = TensorDict({"prompts": prompts_t, "responses": responses_t, "attention_mask": mask},
                       batch_size=len(rows))
    non_tensor = {
        "data_source": np.array(["ego3s"] * len(rows), dtype=object),
        "reward_model": np.array([{"ground_truth": e["solution"], "style": "rule"} for _, _, e, _ in rows],
                                 dtype=object),
        "extra_info": np.array([{k: v for k, v in e.items() if k != "solution"} for _, _, e, _ in rows],
                               dtype=object),
        "uid": np.array([u for *_, u in rows], dtype=object),
    }
    return DataProto(batch=batch, non_tensor_batch=non_tensor), [r for _, r, *_ in rows]


def test_reward_manager_on_a_hand_built_batch_then_grpo_advantage(recipe_job, tiny_qwen2_5_vl, tiny_clip,
                                                                  ego3s_data):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
    from verl.trainer.ppo.reward import load_reward_manager

    from egoforge.rewards.clip import load_clip
    from egoforge.rewards.ego3s import settings_from_kwargs
    from egoforge.rewards.scoring import score_group
    from egoforge.verl.reward_manager import Ego3SRewardManager

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_5_vl)
    roi = [str(ego3s_data / "roi" / f"roi_{i:04d}.jpg") for i in (1, 2)]
    groups = [
        ["<think>a red ball in hand</think><answer>B</answer><object>ball, hand</object>",
         "<think>hmm</think><answer>C</answer><object>sky</object>",
         "<answer>B</answer>",
         "<think>x</think> <answer>B</answer> <object>ball,cup,knife,board,sky,tree,hand</object>",
         "<think>x</think><answer>A</answer><object>grass</object>"],
        ["<think>count</think><answer>3</answer><object>square</object>",
         "<think>count</think><answer>3.0</answer><object>square, hand</object>",
         "<think>count</think><answer>2</answer><object>hand</object>",
         "no tags at all",
         "<think>count</think><answer>3</answer><object>ball</object>"],
    ]
    extra = [
        {"problem_type": "multiple choice", "roi_path": roi[0], "split": "train", "solution": "<answer>B</answer>"},
        {"problem_type": "numerical", "roi_path": roi[1], "split": "train", "solution": "<answer>3</answer>"},
    ]
    clip = load_clip(tiny_clip)
    sims = sorted(clip.max_similarity([o.strip() for o in r.split("<object>")[1].split("</object>")[0].split(",")],
                                      roi[g]) for g, rs in enumerate(groups) for r in rs if "<object>" in r)
    lambda_o = (sims[len(sims) // 2 - 1] + sims[len(sims) // 2]) / 2  # half the listing rollouts are grounded

    config = OmegaConf.create(recipe_job)
    config.reward.custom_reward_function.reward_kwargs.lambda_o = float(lambda_o)
    manager = load_reward_manager(config, tokenizer)
    assert isinstance(manager, Ego3SRewardManager) and manager.collector.backend == "local"
    data, texts = _batch(tokenizer, ["watch the clip", "count the squares"], groups, extra)
    outputs = manager.loop.run_until_complete(asyncio.gather(*(manager.run_single(data[i:i + 1])
                                                               for i in range(len(data)))))
    scores = [o["reward_score"] for o in outputs]

    settings = settings_from_kwargs(**dict(config.reward.custom_reward_function.reward_kwargs))
    lengths = [int(m[data.batch["prompts"].shape[1]:].sum()) for m in data.batch["attention_mask"]]
    expected = [row for g, rs in enumerate(groups) for row in
                score_group(rs, extra[g]["solution"], extra[g]["problem_type"], settings, clip, roi[g])]
    assert [t for t in texts] == [r for rs in groups for r in rs] and len(lengths) == 10
    assert scores == pytest.approx([row["score"] for row in expected], abs=1e-5)
    assert {o["reward_extra_info"]["group_size"] for o in outputs} == {5.0}
    assert any(o["reward_extra_info"]["r_int"] > 0 for o in outputs)  # the group term is really added
    assert outputs[3]["reward_extra_info"]["penalty"] == -2.0  # 7 objects, N = 5
    keys = {frozenset(o["reward_extra_info"]) for o in outputs}
    assert len(keys) == 1  # verl builds reward_extra_info arrays from the first row's keys

    rm_scores = manager.assemble_rm_scores(data, scores)
    response_mask = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:]
    assert rm_scores.sum(-1).tolist() == pytest.approx(scores, abs=1e-5)
    advantages, _ = compute_grpo_outcome_advantage(rm_scores, response_mask, data.non_tensor_batch["uid"])
    s = torch.tensor(scores).view(2, 5)
    expected_adv = ((s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-6)).flatten()
    per_row = (advantages * response_mask).sum(-1) / response_mask.sum(-1)
    assert per_row.tolist() == pytest.approx(expected_adv.tolist(), abs=1e-4)


def test_manager_refuses_the_temporal_bonus_it_cannot_compute(recipe_job, tiny_qwen2_5_vl):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    config = OmegaConf.create(recipe_job)
    config.reward.custom_reward_function.reward_kwargs.temporal = True
    with pytest.raises(ValueError, match="shuffled-frame rollouts"):
        load_reward_manager(config, AutoTokenizer.from_pretrained(tiny_qwen2_5_vl))


def test_manager_refuses_irl_without_clip_at_start_up(recipe_job, tiny_qwen2_5_vl, caplog):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_5_vl)
    config = OmegaConf.create(recipe_job)
    with caplog.at_level("WARNING", logger="egoforge.verl.reward_manager"):
        load_reward_manager(config, tokenizer)
    assert "CLIP" in caplog.text and " on cpu" in caplog.text  # the worker says which device CLIP runs on
    del config.reward.custom_reward_function.reward_kwargs["clip_model"]
    with pytest.raises(ValueError, match="no CLIP model"):
        load_reward_manager(config, tokenizer)
    config.reward.custom_reward_function.reward_kwargs.irl = False  # explicit: no interaction reward
    assert not load_reward_manager(config, tokenizer).settings.irl


def test_manager_requires_the_ego3s_reward(recipe_job, tiny_qwen2_5_vl):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    config = OmegaConf.create(recipe_job)
    config.reward.custom_reward_function.path = None  # verl's default scorer returns no Ego3S terms
    manager = load_reward_manager(config, AutoTokenizer.from_pretrained(tiny_qwen2_5_vl))
    data, _ = _batch(manager.tokenizer, ["q"], [["<answer>1</answer>"]],
                     [{"problem_type": "numerical", "solution": "1"}])
    data.non_tensor_batch["data_source"] = np.array(["openai/gsm8k"], dtype=object)
    with pytest.raises(ValueError, match="pkg://egoforge.rewards.ego3s"):
        manager.loop.run_until_complete(manager.run_single(data[0:1]))


def test_group_collector_releases_complete_partial_and_late_groups():
    from egoforge.verl.groups import GroupCollector

    async def scenario():
        c = GroupCollector(timeout_s=0.6, settle_s=0.15)
        full = await asyncio.gather(*(c.submit("g", i, expected=3) for i in range(3)))
        partial = await asyncio.gather(*(c.submit("v", i, expected=5, minimum=2) for i in range(2)))
        timed_out = await asyncio.gather(*(c.submit("t", i, expected=4) for i in range(3)))
        late = await c.submit("t", 99, expected=4)
        return full, partial, timed_out, late, c.pending()

    full, partial, timed_out, late, pending = asyncio.run(scenario())
    assert all(sorted(g) == [0, 1, 2] for g in full)
    assert all(sorted(g) == [0, 1] for g in partial)  # validation-sized group released after settling
    assert all(sorted(g) == [0, 1, 2] for g in timed_out)  # a failed sibling does not block the others
    assert late == [99] and pending == 0


def test_group_collector_actor_is_per_job_and_not_detached(monkeypatch):
    """A detached actor would outlive the job in a long-lived Ray cluster (and serve the next job stale groups)."""
    import sys
    import types

    from egoforge.verl import groups

    calls = {}

    class Remote:
        def __init__(self, cls):
            self.cls = cls

        def options(self, **options):
            calls.update(options)
            return types.SimpleNamespace(remote=lambda **kwargs: ("actor", kwargs))

    fake = types.SimpleNamespace(remote=lambda **_: Remote,
                                 get_runtime_context=lambda: types.SimpleNamespace(get_job_id=lambda: "03000000"))
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert groups.ray_collector(10.0, 1.0) == ("actor", {"timeout_s": 10.0, "settle_s": 1.0})
    assert calls == {"name": f"{groups.RAY_ACTOR_NAME}_03000000", "get_if_exists": True}  # no lifetime="detached"


@pytest.mark.slow
def test_group_collector_as_a_shared_ray_actor():
    """With several reward workers the collector is one named Ray actor; two clients meet in it."""
    ray = pytest.importorskip("ray")
    from egoforge.verl.groups import CollectorClient

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, namespace="egoforge-test")
    try:
        a = CollectorClient(backend="ray", timeout_s=30)
        b = CollectorClient(backend="ray", timeout_s=30)

        async def both():
            return await asyncio.gather(a.submit("u", 1, 2), b.submit("u", 2, 2))

        assert [sorted(x) for x in asyncio.run(both())] == [[1, 2], [1, 2]]
    finally:
        ray.shutdown()


def test_entry_point_registers_manager_and_trainer_in_a_fresh_process(tmp_path):
    code = ("import sys, verl\n"
            "from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls\n"
            "from verl.trainer.ppo.v1 import get_trainer_cls\n"
            "print(get_reward_manager_cls('ego3s_irl').__module__, get_trainer_cls('ego3s_ecr').__module__)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["egoforge.verl.reward_manager", "egoforge.verl.trainer"]
    cheap = subprocess.run([sys.executable, "-c", "import sys, egoforge.verl.plugin; "
                            "print(sorted(m for m in ('torch', 'verl', 'ray') if m in sys.modules))"],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert cheap.stdout.strip() == "[]", cheap.stderr  # the plugin imports nothing heavy


def _data_config(train: list[str], val: list[str], **extra):
    from omegaconf import OmegaConf

    base = {"train_files": train, "val_files": val, "prompt_key": "prompt", "image_key": "images",
            "video_key": "videos", "max_prompt_length": 4096, "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1, "truncation": "error", "return_raw_chat": True, "shuffle": True,
            "seed": 1, "dataloader_num_workers": 0, "cache_dir": "/tmp/egoforge-verl-cache",
            "custom_cls": {"path": "pkg://egoforge.verl.dataset", "name": "Ego3SDataset"}}
    base.update(extra)
    return OmegaConf.create(base)


def test_rlhf_dataset_through_our_class_with_a_tiny_qwen2_5_vl_processor(ego3s_parquet, tiny_qwen2_5_vl):
    from transformers import AutoProcessor
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    from egoforge.verl.dataset import Ego3SDataset

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    config = _data_config([str(ego3s_parquet)], [str(ego3s_parquet) + "x"])
    ds = create_rl_dataset(config.train_files, config, processor.tokenizer, processor)
    assert type(ds) is Ego3SDataset and ds.split == "train" and len(ds) == 10  # none filtered as overlong
    item = ds[0]
    assert item["extra_info"]["split"] == "train" and item["index"] == 0
    video = item["raw_prompt"][0]["content"][0]
    assert video["type"] == "video" and video["video"].endswith(".mp4") and video["fps"] == 2.0
    images, videos, _ = asyncio.run(Ego3SDataset.process_multi_modal_info(item["raw_prompt"], 14, config))
    (frames, meta), = videos
    assert images is None and 4 <= frames.shape[0] <= 16 and frames.shape[0] % 2 == 0
    assert frames.shape[2] * frames.shape[3] <= 128 * 28 * 28
    # What verl's agent loop does next: the chat template and the processor over the decoded frames.
    text = processor.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=[frames], video_metadata=[meta], do_sample_frames=False,
                       return_tensors="pt")
    video_tokens = (inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum()
    assert int(video_tokens) == int(inputs["video_grid_thw"].prod() // 4) > 0
    batch = collate_fn([ds[i] for i in range(4)])
    assert batch["dummy_tensor"].shape == (4, 1) and len(batch["raw_prompt"]) == 4
    assert list(create_rl_sampler(config, ds))[:1]
    image_item = next(ds[i] for i in range(len(ds)) if ds[i]["raw_prompt"][0]["content"][0]["type"] == "image")
    images, videos, _ = Ego3SDataset._process_multi_modal_info(image_item["raw_prompt"], 14, config)
    assert len(images) == 1 and videos is None


def _split_parquet(source: Path, out: Path, n_active: int) -> tuple[str, str]:
    table = pq.read_table(source)
    pq.write_table(table.slice(0, n_active), out / "active.parquet")
    pq.write_table(table.slice(n_active), out / "pool.parquet")
    return str(out / "active.parquet"), str(out / "pool.parquet")


def _loader(config, processor):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    ds = create_rl_dataset(config.train_files, config, processor.tokenizer, processor)
    return ds, StatefulDataLoader(ds, batch_size=2, num_workers=0, drop_last=True, collate_fn=collate_fn,
                                  sampler=create_rl_sampler(config, ds))


def _train_steps(ds, loader, steps, state_at=None):
    """Feed rollout groups to the dataset as verl's ECR trainer does (new iterator at each epoch end).

    Rewards are a fixed function of the sample: even problem ids are solved every time (no variance)."""
    from egoforge.verl.dataset import group_rewards

    seen, saved, it = [], None, iter(loader)
    for step in steps:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        uids, indices, scores = [], [], []
        for index, info in zip(batch["index"], batch["extra_info"]):
            uids += [f"{step}-{info['problem_id']}"] * 5
            indices += [index] * 5
            scores += [1.0] * 5 if int(info["problem_id"]) % 2 == 0 else [0.0, 1.0, 0.0, 1.0, 1.0]
        ds.observe(group_rewards(uids, indices, scores))
        metrics = ds.curriculum_step(step)
        seen.append((sorted(info["problem_id"] for info in batch["extra_info"]), metrics))
        if step == state_at:
            saved = loader.state_dict()  # what verl's _save_checkpoint writes to data.pt
    return seen, saved


def test_an_empty_ecr_selection_is_an_error_naming_the_file(ego3s_parquet, tiny_qwen2_5_vl, tmp_path):
    """An empty CSM selection (a parquet without rows, or none written) stops verl's dataset with the file named
    (verl's own reader fails with "BatchSize must be greater than 0" / a bare file-not-found)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    empty, pool = _split_parquet(ego3s_parquet, tmp_path, 0)
    ecr = {"pool_files": [pool], "probe_size": 6, "interval": 2, "lambda_s": 0.4, "seed": 0}
    custom = {"path": "pkg://egoforge.verl.dataset", "name": "ECRDataset"}
    config = _data_config([empty], [pool], filter_overlong_prompts=False, ecr=ecr, custom_cls=custom)
    with pytest.raises(ValueError, match=r"active\.parquet: no samples to train on"):
        _loader(config, processor)
    config = _data_config([str(tmp_path / "selected.parquet")], [pool], filter_overlong_prompts=False, ecr=ecr,
                          custom_cls=custom)
    with pytest.raises(FileNotFoundError, match=r"selected\.parquet: training file not found .*csm_report\.json"):
        _loader(config, processor)


def test_ecr_dataset_recurates_and_resumes_from_the_dataloader_checkpoint(ego3s_parquet, tiny_qwen2_5_vl,
                                                                          tmp_path):
    from transformers import AutoProcessor

    from egoforge.verl.dataset import ECRDataset

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    active, pool = _split_parquet(ego3s_parquet, tmp_path, 6)
    ecr = {"pool_files": [pool], "probe_size": 6, "interval": 2, "lambda_s": 0.4, "seed": 0}
    custom = {"path": "pkg://egoforge.verl.dataset", "name": "ECRDataset"}
    config = _data_config([active], [pool], filter_overlong_prompts=False, ecr=ecr, custom_cls=custom)
    ds, loader = _loader(config, processor)
    assert isinstance(ds, ECRDataset) and len(ds) == 6 and len(ds.curriculum.pool) == 4
    run, saved = _train_steps(ds, loader, range(1, 9), state_at=3)
    assert saved["dataset_state"]["curriculum"]["slots"]  # the dataloader state carries the ECR state
    torch.save(saved, tmp_path / "data.pt")
    stagnant = [step for step, (_, m) in enumerate(run, start=1) if m.get("ecr/stagnant")]
    assert stagnant, run
    first = run[stagnant[0] - 1][1]
    assert first["ecr/added"] == first["ecr/dropped"] > 0
    assert ds.curriculum.retired and all(int(x) % 2 == 0 for x in ds.curriculum.retired)  # no-variance ones leave
    later = {pid for ids, _ in run[stagnant[0]:] for pid in ids}
    assert later & {"7", "8", "9", "10"}  # pool samples are served after the recuration

    # A fresh process resumes from step 3: the same files, and verl loads data.pt into the dataloader.
    ds2, loader2 = _loader(config, processor)
    loader2.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    resumed, _ = _train_steps(ds2, loader2, range(4, 9))
    assert resumed == run[3:]
    assert ds2.curriculum.state_dict() == ds.curriculum.state_dict()

    with pytest.raises(ValueError, match="different training/pool files"):
        ds3, _ = _loader(_data_config([pool], [active], filter_overlong_prompts=False,
                                      ecr={**ecr, "pool_files": [active]}, custom_cls=custom), processor)
        ds3.load_state_dict(ds.state_dict())
    with pytest.raises(ValueError, match="dataloader_num_workers=0"):
        _loader(_data_config([active], [pool], dataloader_num_workers=2, custom_cls=custom), processor)


def test_ecr_dataset_brings_pool_samples_in_by_their_csm_value(ego3s_parquet, tiny_qwen2_5_vl, tmp_path):
    """The CSM report ranks candidates (|deviation| for the two-sided test, as the live re-scorer), samples it
    rejected never come in unless asked, and a refreshed report (an offline CSM pass with a newer checkpoint) is
    picked up at the next check."""
    import json
    import os

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    active, pool = _split_parquet(ego3s_parquet, tmp_path, 6)
    report = tmp_path / "csm_report.json"  # what `egoforge select csm` over the pool writes

    def write_report(samples: dict) -> None:
        report.write_text(json.dumps({"settings": {"coarse_side": "both"}, "samples": samples}))

    write_report({"7": {"coarse_deviation": 0.1, "kept": True}, "8": {"coarse_deviation": -0.9, "kept": True},
                  "9": {"coarse_deviation": 2.0, "kept": False}, "10": {"coarse_deviation": 0.5, "kept": True}})

    def run(**extra):
        ecr = {"pool_files": [pool], "probe_size": 6, "interval": 1, "max_replace": 0.34,
               "rescore_file": str(report), **extra}
        config = _data_config([active], [pool], filter_overlong_prompts=False, ecr=ecr,
                              custom_cls={"path": "pkg://egoforge.verl.dataset", "name": "ECRDataset"})
        ds, _ = _loader(config, processor)
        for step in (1, 2):
            ds.observe({ds.row_of[x]: [1.0] * 5 for x in ds.curriculum.slots})  # every group without a signal
            metrics = ds.curriculum_step(step)
        return ds, metrics

    ds, metrics = run()
    added = [x for r in ds.curriculum.history for x in r["added"]]
    assert metrics["ecr/added"] == 2 and added[:2] == ["8", "10"]  # |-0.9| first; 9 was rejected by CSM
    assert "9" not in ds.curriculum.slots
    ds, _ = run(readmit_rejected=True)
    assert [x for r in ds.curriculum.history for x in r["added"]][:2] == ["9", "8"]

    ds, _ = run()
    write_report({"9": {"coarse_deviation": 0.3, "kept": True}, "7": {"coarse_deviation": 0.0, "kept": False}})
    os.utime(report, ns=(1, 10**18))  # a new mtime even on coarse-grained file systems
    ds.observe({ds.row_of[x]: [1.0] * 5 for x in ds.curriculum.slots})
    ds.curriculum_step(3)
    assert ds.curriculum.history[-1]["added"][:1] == ["9"] and "7" not in ds.curriculum.slots
    with pytest.raises(ValueError, match="not a CSM report"):
        report.write_text("[]")
        run()


def _trainer_config(recipe_job, active: str, pool: str, val: str, **ecr):
    """The composed 7b recipe, scaled down: 2 prompts per step, the tiny files, ECR every 2 steps."""
    from omegaconf import OmegaConf, open_dict

    config = OmegaConf.create(recipe_job)
    with open_dict(config):
        config.data.train_batch_size = 2
        config.data.train_files, config.data.val_files = [active], [val]
        config.data.cache_dir = "/tmp/egoforge-verl-cache"
        config.data.ecr = {"pool_files": [pool], "probe_size": 6, "interval": 2, "lambda_s": 0.4, **ecr}
    return config


def _rollouts(batch: dict, step: int):
    """A hand-built verl DataProto of one step's rollouts as TransferQueue holds them after the reward loop:
    5 rollouts per prompt, ``rm_scores`` with the scalar on the last response token. Even problem ids are
    solved every time (no variance: they stagnate), odd ones vary."""
    from tensordict import TensorDict
    from verl import DataProto

    uids, indices, scores = [], [], []
    for index, info in zip(batch["index"], batch["extra_info"]):
        group = [1.0] * 5 if int(info["problem_id"]) % 2 == 0 else [0.0, 1.0, 0.0, 1.0, 1.0]
        uids += [f"{step}-{info['problem_id']}"] * 5
        indices += [int(index)] * 5
        scores += group
    lengths = torch.tensor([3 + i % 4 for i in range(len(scores))])
    rm_scores = torch.zeros(len(scores), 8)
    rm_scores[torch.arange(len(scores)), lengths - 1] = torch.tensor(scores)
    return DataProto(batch=TensorDict({"rm_scores": rm_scores}, batch_size=len(scores)),
                     non_tensor_batch={"uid": np.array(uids, dtype=object), "index": np.array(indices)})


def test_ecr_trainer_is_verls_sync_trainer_plus_the_curriculum(recipe_job, ego3s_parquet, tiny_qwen2_5_vl, tmp_path,
                                                                monkeypatch):
    """verl's own trainer classes on CPU: the ECR trainer takes every sync branch (replay buffer, batch sizes,
    no TransferQueue checkpoint), and its overrides, driven with hand-built DataProto rollouts through a
    stand-in for TransferQueue, recurate on stagnation; the dataloader state verl saves as data.pt restores the
    identical selection in a fresh trainer."""
    from transformers import AutoProcessor
    from verl.protocol import DataProto
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_base import KVBatchMeta, PPOTrainer

    import egoforge.verl.trainer as ecr_trainer

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    active, pool = _split_parquet(ego3s_parquet, tmp_path, 6)

    def build(cls, mode: str, val: str):
        config = _trainer_config(recipe_job, active, pool, val)
        config.trainer.v1.trainer_mode = mode
        trainer = cls(config)
        trainer.tokenizer, trainer.processor = processor.tokenizer, processor
        trainer._init_dataloader()
        return trainer

    cls = get_trainer_cls("ego3s_ecr")
    assert issubclass(cls, PPOTrainerSync) and cls is ecr_trainer.ECRTrainer
    trainer = build(cls, "ego3s_ecr", active)  # validation file == training file: split set by the trainer
    reference = build(PPOTrainerSync, "sync", pool)
    assert trainer.trainer_mode == reference.trainer_mode == "sync" == trainer.config.trainer.v1.trainer_mode
    assert type(trainer.replay_buffer) is type(reference.replay_buffer) is ReplayBuffer
    for name in ("train_batch_size", "gen_batch_size", "max_inflight_gen_batches", "sync_refill_failed_groups",
                 "filter_groups_metric"):
        assert getattr(trainer.replay_buffer, name) == getattr(reference.replay_buffer, name), name
    assert trainer.replay_buffer.gen_batch_size == 2 and trainer.config.data.get("gen_batch_size") is None
    assert trainer.train_dataloader.batch_size == reference.train_dataloader.batch_size == 2
    assert (trainer.steps_per_epoch, trainer.total_training_steps) == (3, 6)  # 6 active rows // 2, 2 epochs
    assert trainer.train_dataset.split == "train" and trainer.val_dataset.split == "val"
    assert trainer.val_dataset[0]["extra_info"]["split"] == "val"  # the reward manager waits for val_kwargs.n

    # TransferQueue stand-in: keys -> rows of the DataProto the reward loop produced for this step.
    store: dict[str, DataProto] = {}

    def kv_batch_get(keys, partition_id, select_fields):
        assert partition_id == "train" and select_fields == ecr_trainer.REWARD_FIELDS
        rows = DataProto.concat([store[k] for k in keys])
        return rows.to_tensordict().select(*select_fields)

    advantages_called = []
    monkeypatch.setattr(ecr_trainer.tq, "kv_batch_get", kv_batch_get)
    monkeypatch.setattr(PPOTrainerSync, "_compute_advantage",
                        lambda self, batch, metrics: advantages_called.append(len(batch.keys)) or batch)

    def fake_step(self, metrics, timing_raw):  # verl's step: sample, ..., _compute_advantage, update
        try:
            batch = next(self._it)
        except (AttributeError, StopIteration):
            self._it = iter(self.train_dataloader)
            batch = next(self._it)
        data = _rollouts(batch, self.global_steps)
        keys = [f"{self.global_steps}_{i}" for i in range(len(data))]
        store.update({k: data[i:i + 1] for i, k in enumerate(keys)})
        tags = [{"is_padding": False}] * len(keys) + [{"is_padding": True}]  # sync mode pads, never observed
        self.served.append(sorted(info["problem_id"] for info in batch["extra_info"]))
        return self._compute_advantage(KVBatchMeta(partition_id="train", keys=keys + ["pad"], tags=tags), metrics)

    monkeypatch.setattr(PPOTrainer, "step", fake_step)

    def run(t, steps, save_at=None):
        t.served, log, saved = [], [], None
        for step in steps:
            t.global_steps = step
            metrics = {}
            t.step(metrics, {})
            log.append(metrics)
            if step == save_at:
                saved = t.train_dataloader.state_dict()  # what _save_checkpoint writes to data.pt
        return log, saved

    log, saved = run(trainer, range(1, 7), save_at=2)
    assert advantages_called == [11] * 6 and all(m["ecr/groups_observed"] == 2.0 for m in log)
    checks = [m for m in log if "ecr/stagnant" in m]
    assert len(checks) == 3 and any(m["ecr/stagnant"] and m["ecr/added"] > 0 for m in checks), log
    assert trainer.train_dataset.curriculum.retired and all(int(x) % 2 == 0
                                                           for x in trainer.train_dataset.curriculum.retired)
    torch.save(saved, tmp_path / "data.pt")

    resumed = build(cls, "ego3s_ecr", active)
    resumed.train_dataloader.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    log2, _ = run(resumed, range(3, 7))
    assert log2 == log[2:] and resumed.served == trainer.served[2:]
    assert resumed.train_dataset.curriculum.state_dict() == trainer.train_dataset.curriculum.state_dict()


def test_group_rewards_by_uid():
    from egoforge.verl.dataset import group_rewards

    assert group_rewards(["u1"] * 3 + ["u2"] * 2, [7, 7, 7, 3, 3], [1, 0, 1, 0, 0]) == {7: [1, 0, 1], 3: [0, 0]}


def test_length_filter_with_one_worker_forks_no_pool(ego3s_parquet, tiny_qwen2_5_vl, monkeypatch):
    """datasets >= 5 (the rl lock) forks a pool even for num_proc=1, and that child died decoding videos: egoforge's
    dataset filters in-process with one worker."""
    import multiprocess
    from transformers import AutoProcessor
    from verl.trainer.ppo.utils import create_rl_dataset

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for the one-worker length filter")

    monkeypatch.setattr(multiprocess, "Pool", no_pool)  # what datasets' filter calls (`mp.Pool`)
    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    config = _data_config([str(ego3s_parquet)], [str(ego3s_parquet) + "x"])
    ds = create_rl_dataset(config.train_files, config, processor.tokenizer, processor)
    assert len(ds) == 10 and ds.num_workers == 1
