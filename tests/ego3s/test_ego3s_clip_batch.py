"""The CLIP term of the grounded reward in micro-batches: batched scores equal one-at-a-time scores (same tiny
random CLIP), and a step's responses scored through verl 0.9.1's own ``RewardLoopWorker`` take ceil(N / micro_batch)
CLIP batches instead of N. Needs verl (the rl environment) for the worker test only."""

from __future__ import annotations

import asyncio
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

NAMES = ["hand", "cup", "knife", "cutting board", "red ball", "sky", "green tree", "square", "door handle", "phone"]


def _images(folder: Path, n: int) -> list[str]:
    """n distinct random RGB images (interaction crops)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"roi_{i}.png"
        Image.fromarray(rng.integers(0, 256, (24 + i, 40 - i, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _requests(images: list[str], n: int, seed: int = 0) -> list[tuple[list[str], str]]:
    rng = random.Random(seed)
    return [(rng.sample(NAMES, rng.randint(1, 4)), images[rng.randrange(len(images))]) for _ in range(n)]


def test_batched_clip_equals_one_at_a_time_in_ceil_n_over_batch_passes(tiny_clip, tmp_path):
    from egoforge.rewards.clip import TransformersClip

    images = _images(tmp_path / "roi", 10)
    requests = [([NAMES[i], NAMES[(3 * i + 1) % len(NAMES)]], images[i]) for i in range(10)]
    requests += _requests(images, 15, seed=1)  # repeats: cached images and names cost no pass
    singles = []
    for names, image in requests:  # a fresh model per request: nothing shared, no cache, one pass per term
        one = TransformersClip(tiny_clip, device="cpu")
        singles.append(one.max_similarity(names, image))
        assert one.forward_passes == {"image": 1, "text": 1}

    batched = TransformersClip(tiny_clip, device="cpu", batch_size=4)
    scores = batched.max_similarities(requests)
    assert scores == pytest.approx(singles, abs=1e-5)
    assert len(set(round(s, 4) for s in scores)) > 5  # the similarities really differ between requests
    assert batched.forward_passes == {"image": math.ceil(10 / 4), "text": 1}  # 10 distinct images, 10 names
    assert batched.max_similarities(requests[:3]) == pytest.approx(singles[:3], abs=1e-5)
    assert batched.forward_passes == {"image": 3, "text": 1}  # all cached now

    missing = str(tmp_path / "gone.png")
    with pytest.warns(UserWarning, match="gone.png"):
        mixed = batched.max_similarities([(["hand"], missing), (["hand"], images[0]), ([], images[1])])
    assert mixed[0] == 0.0 and mixed[2] == 0.0 and mixed[1] == pytest.approx(batched.max_similarity(["hand"],
                                                                                                    images[0]))


def test_batcher_gathers_concurrent_requests_into_micro_batches(tiny_clip, tmp_path):
    from egoforge.rewards.clip import ClipBatcher, TransformersClip

    images = _images(tmp_path / "roi", 6)
    requests = _requests(images, 23)
    reference = TransformersClip(tiny_clip, device="cpu").max_similarities(requests)

    async def score(batcher):
        return await asyncio.gather(*(batcher.max_similarity(n, i) for n, i in requests),
                                    batcher.max_similarity([], images[0]))  # nothing to embed: no request

    for micro_batch in (1, 5, 64):
        batcher = ClipBatcher(TransformersClip(tiny_clip, device="cpu"), micro_batch, wait_s=0.2)
        *scores, empty = asyncio.run(score(batcher))
        assert scores == pytest.approx(reference, abs=1e-5) and empty == 0.0
        assert (batcher.batches, batcher.requests) == (math.ceil(23 / micro_batch), 23)

    class Broken:
        def max_similarity(self, texts, image):
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):  # every waiting rollout sees it, none hangs
        asyncio.run(asyncio.wait_for(score(ClipBatcher(Broken(), 4, wait_s=0.01)), timeout=30))


def _reward_config(model: Path, clip: Path, **reward_kwargs):
    from hydra import compose, initialize_config_module

    kwargs = {"clip_model": str(clip), "clip_device": "cpu", **reward_kwargs}
    overrides = [f"actor_rollout_ref.model.path={model}", "actor_rollout_ref.rollout.n=5",
                 "reward.custom_reward_function.path=pkg://egoforge.rewards.ego3s",
                 "reward.custom_reward_function.name=compute_score", "reward.reward_manager.name=ego3s_irl"]
    overrides += [f"+reward.custom_reward_function.reward_kwargs.{k}={v}" for k, v in kwargs.items()]
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def test_a_step_through_verls_reward_loop_worker_takes_ceil_n_over_micro_batch_clip_batches(
        tiny_qwen2_5_vl, tiny_clip, tmp_path):
    """verl's ``RewardLoopWorker.compute_score_batch`` (what ``RewardLoopManager`` sends each worker) starts one
    task per response; the CLIP requests of the step meet in the manager's batcher."""
    pytest.importorskip("verl")
    from test_ego3s_verl import _batch  # the verl-shaped reward input (this folder is on sys.path under pytest)
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    import egoforge.verl.plugin  # noqa: F401  (the verl.plugins entry point's registrations)
    from egoforge.rewards.clip import TransformersClip
    from egoforge.rewards.ego3s import settings_from_kwargs
    from egoforge.rewards.scoring import score_group

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_5_vl)
    images = _images(tmp_path / "roi", 4)
    rng = random.Random(3)
    groups, extra = [], []
    for g in range(4):
        rollouts = [f"<think>look</think><answer>{rng.choice('AB')}</answer><object>{', '.join(rng.sample(NAMES, 2))}"
                    "</object>" for _ in range(4)]
        groups.append(rollouts + ["<think>no objects</think><answer>A</answer>"])  # no CLIP request
        extra.append({"problem_type": "multiple choice", "roi_path": images[g], "split": "train",
                      "solution": "<answer>A</answer>"})
    data, _ = _batch(tokenizer, [f"prompt {g}" for g in range(4)], groups, extra)
    needing_clip = 16

    one_at_a_time = TransformersClip(tiny_clip, device="cpu", batch_size=1)
    sims = sorted(one_at_a_time.max_similarity([o.strip() for o in r.split("<object>")[1].split("</object>")[0]
                                                .split(",")], extra[g]["roi_path"])
                  for g, rs in enumerate(groups) for r in rs if "<object>" in r)
    lambda_o = (sims[7] + sims[8]) / 2  # half the listing rollouts grounded: r_int depends on every similarity
    settings = settings_from_kwargs(lambda_o=lambda_o)
    expected = [row["score"] for g, rs in enumerate(groups)
                for row in score_group(rs, extra[g]["solution"], extra[g]["problem_type"], settings, one_at_a_time,
                                       extra[g]["roi_path"])]

    for micro_batch in (1, 6, 64):
        config = _reward_config(tiny_qwen2_5_vl, tiny_clip, lambda_o=lambda_o, clip_batch_size=micro_batch,
                                clip_batch_wait_s=0.5)
        worker = RewardLoopWorker(config)
        manager = worker.reward_manager
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            outputs = worker.loop.run_until_complete(worker.compute_score_batch(data))
        assert [o["reward_score"] for o in outputs] == pytest.approx(expected, abs=1e-5)
        batcher = manager.clip_batcher
        assert (batcher.batches, batcher.requests) == (math.ceil(needing_clip / micro_batch), needing_clip)
        passes = batcher.backend.forward_passes
        # one image pass per batch that meets a not-yet-cached image: which batches do depends on the order the
        # concurrent rollouts arrive in, so between 1 and min(4 images, batches)
        assert 1 <= passes["image"] <= min(4, batcher.batches) and passes["text"] <= batcher.batches
        assert any(o["reward_extra_info"]["r_int"] > 0 for o in outputs)
    assert torch.tensor([o["reward_extra_info"]["clip_sim"] for o in outputs]).count_nonzero() == needing_clip


def test_compute_score_takes_a_programmatic_backend_and_refuses_anything_else(tiny_clip):
    from egoforge.rewards.ego3s import compute_score

    class Recorder:
        requests: list = []

        def max_similarity(self, texts, image):
            self.requests.append((list(texts), image))
            return 0.0

    info = {"problem_type": "multiple choice", "roi_path": "/roi/a.png"}
    response = "<think>x</think><answer>B</answer><object>cup, red ball</object>"
    result = compute_score("ego3s", response, "<answer>B</answer>", info, clip=Recorder(), clip_model=str(tiny_clip))
    assert Recorder.requests == [(["cup", "red ball"], "/roi/a.png")] and result["clip_sim"] == 0.0
    assert result["accuracy"] == 1.0 and result["n_objects"] == 2.0
    with pytest.raises(ValueError, match="clip must be a CLIP backend object"):
        compute_score("ego3s", response, "<answer>B</answer>", info, clip="models/clip", clip_model=str(tiny_clip))
