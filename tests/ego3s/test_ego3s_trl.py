"""GRPO through TRL 0.24's GRPOTrainer on CPU: the compatibility fixes, the reward adapter, and real GRPO steps of
a tiny Qwen2.5-VL (frames as images) with egoforge's rewards while the ECR curriculum drives the data."""

from __future__ import annotations

import json

import pytest
import torch


def test_trl_imports_after_the_compatibility_fixes():
    from egoforge.trl_grpo.compat import apply

    apply()
    import trl.import_utils as iu
    from transformers import PreTrainedModel
    from trl import GRPOConfig, GRPOTrainer  # noqa: F401  (fails on `mergekit` without fix 1)

    assert all(not isinstance(getattr(iu, n), tuple) for n in dir(iu) if n.endswith("_available"))
    assert isinstance(PreTrainedModel.warnings_issued, dict)


def _vl_inputs(model_dir):
    from PIL import Image
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    frames = [Image.new("RGB", (56, 56), (200, 30 * i, 40)) for i in range(3)]
    messages = [{"role": "user", "content": [{"type": "image"}] * 3 + [{"type": "text", "text": "which colour?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    return processor, processor(text=[text + "<think>red"], images=frames, return_tensors="pt")


def test_mm_token_type_ids_hook_restores_the_positions_trl_drops(tiny_qwen2_5_vl):
    from transformers import AutoModelForImageTextToText

    from egoforge.trl_grpo.compat import install_mm_token_type_hook, mm_token_type_ids_from

    processor, inputs = _vl_inputs(tiny_qwen2_5_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2_5_vl, dtype=torch.float32).eval()
    cfg = model.config
    rebuilt = mm_token_type_ids_from(inputs["input_ids"], cfg.image_token_id, cfg.video_token_id)
    assert torch.equal(rebuilt.long(), inputs["mm_token_type_ids"].long())  # == the processor's own tensor
    without = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    with torch.no_grad():
        reference = model(**inputs).logits
        silent = model(**without).logits  # what TRL 0.24's loss forward computes: no error, other positions
        assert not torch.allclose(reference, silent, atol=1e-6)
        assert install_mm_token_type_hook(model) and not install_mm_token_type_hook(model)
        fixed = model(**without).logits
    assert torch.allclose(reference, fixed, atol=0, rtol=0)


def test_trl_reward_functions_group_by_prompt_and_match_the_core():
    from egoforge.rewards.scoring import RewardSettings, score_group
    from egoforge.rewards.trl import Ego3STRLRewards, group_slices

    class HalfClip:
        def max_similarity(self, texts, image_path):
            return 0.5 if "ball" in texts else 0.0

    responses = ["<think>a</think><answer>B</answer><object>ball</object>", "<answer>C</answer>",
                 "<think>a</think><answer>3</answer><object>hand</object>",
                 "<think>a</think><answer>3</answer><object>ball,hand</object>"]
    kwargs = {"solution": ["<answer>B</answer>"] * 2 + ["<answer>3</answer>"] * 2,
              "problem_type": ["multiple choice"] * 2 + ["numerical"] * 2,
              "roi_path": ["/r/a.jpg"] * 2 + ["/r/b.jpg"] * 2, "problem_id": ["7", "7", "9", "9"]}
    seen = []
    suite = Ego3STRLRewards(RewardSettings(), HalfClip(), num_generations=2,
                            on_scored=lambda ids, totals: seen.append((ids, totals)))
    completions = [[{"role": "assistant", "content": r}] for r in responses]
    parts = [f(completions=completions, **kwargs) for f in suite.functions()]
    assert [f.__name__ for f in suite.functions()] == ["ego3s_accuracy", "ego3s_format", "ego3s_grounded"]
    expected = (score_group(responses[:2], kwargs["solution"][0], "multiple choice", RewardSettings(), HalfClip(),
                            "/r/a.jpg")
                + score_group(responses[2:], kwargs["solution"][2], "numerical", RewardSettings(), HalfClip(),
                              "/r/b.jpg"))
    assert [sum(p) for p in zip(*parts)] == pytest.approx([e["score"] for e in expected])
    assert len(seen) == 1 and seen[0][0] == kwargs["problem_id"]  # scored once per batch, shared by all three
    assert seen[0][1] == pytest.approx([e["score"] for e in expected])
    assert group_slices(None, 5, 2) == [[0, 1], [2, 3], [4]]
    assert group_slices(["a", "b", "a"], 3, 2) == [[0, 2], [1]]


def test_temporal_bonus_from_shuffled_frame_rollouts_of_the_live_policy(tiny_qwen2_5_vl):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from egoforge.rewards.ego3s import settings_from_kwargs
    from egoforge.rewards.trl import Ego3STRLRewards
    from egoforge.trl_grpo.temporal import ShuffledFrameSampler

    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2_5_vl, dtype=torch.float32)
    calls = []
    sampler = ShuffledFrameSampler(processor, max_new_tokens=6).bind(model)

    def spy(prompt, images, n):
        calls.append(([img.getpixel((0, 0)) for img in images], n))
        return sampler(prompt, images, n)

    settings = settings_from_kwargs(temporal=True, irl=False)
    suite = Ego3STRLRewards(settings, num_generations=4, shuffled_sampler=spy, seed=3)
    frames = [Image.new("RGB", (56, 56), (10 * i, 0, 0)) for i in range(3)]
    prompt = [{"role": "user", "content": [{"type": "image", "text": None}] * 3 + [{"type": "text", "text": "q"}]}]
    texts = ["<think>a</think><answer>B</answer>", "<think>a</think><answer>B</answer>", "<answer>C</answer>",
             "<answer>B</answer>"]
    kwargs = {"solution": ["<answer>B</answer>"] * 4, "problem_type": ["multiple choice"] * 4,
              "problem_id": ["1"] * 4, "prompts": [prompt] * 4, "images": [frames] * 4}
    names = [f.__name__ for f in suite.functions()]
    bonus = suite.functions()[names.index("ego3s_temporal")](completions=texts, **kwargs)
    (pixels, n), = calls
    assert n == 2 and sorted(pixels) == sorted(f.getpixel((0, 0)) for f in frames) and pixels != sorted(pixels)
    # the random policy never answers B from shuffled frames: accurate ordered rollouts earn T-GRPO's 0.3
    assert bonus == [0.3, 0.3, 0.0, 0.3]
    with pytest.raises(ValueError, match="shuffled_sampler"):
        Ego3STRLRewards(settings)


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, tiny_qwen2_5_vl, tiny_clip):
    """Three real GRPO steps of a warm-started tiny Qwen2.5-VL: 2 active samples (one step = one epoch), a pool.

    Free-form and OCR questions make the accuracy reward continuous (ROUGE, 1 - WER), so sampled completions
    give rewards that vary within a group. ECR checks after every step with ``eps`` above any reward variance:
    every group then reads as "no signal", so the first decision (step 2) stagnates whatever the sampled
    completions were, and the curriculum must swap the whole active set for pool samples, ranked by CSM's coarse
    test run with the live policy on three pool candidates.
    """
    from egoforge.testing.ego3s_data import make_video_r1_dataset, warm_start_format
    from egoforge.train.recipe import build_config
    from egoforge.trl_grpo.train import Ego3STRLRecipe, build_trainer

    work = tmp_path_factory.mktemp("trl_grpo")
    train = make_video_r1_dataset(work / "train", n=2, seed=0, frames=(4, 6), problem_types=("free-form", "OCR"))
    pool = make_video_r1_dataset(work / "pool", n=4, seed=5, frames=(4, 6), file_name="pool.json", first_id=101,
                                 problem_types=("OCR", "free-form"))
    samples = json.loads(train.read_text()) + json.loads(pool.read_text())
    model = warm_start_format(tiny_qwen2_5_vl, work / "warm", samples, steps=40)
    recipe = build_config(Ego3STRLRecipe, {
        "model": str(model), "output_dir": str(work / "out"),
        "data": {"train": str(train), "pool": str(pool), "max_pixels": 56 * 56, "min_pixels": 28 * 28,
                 "min_frames": 2, "max_frames": 2},
        "reward": {"preset": "paper", "clip_model": str(tiny_clip), "lambda_o": -1.0},
        "ecr": {"probe_size": 2, "interval": 1, "lambda_s": 0.6, "eps": 1e9, "seed": 0, "rescore": "csm",
                "rescore_candidates": 3},
        "grpo": {"use_cpu": True, "bf16": False, "per_device_train_batch_size": 8, "num_generations": 4,
                 "max_completion_length": 40, "max_steps": 3, "learning_rate": 1e-3, "beta": 0.04,
                 "logging_steps": 1, "save_strategy": "no", "temperature": 1.0, "seed": 0},
    })
    trainer, curriculum, ecr_log = build_trainer(recipe)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    scored: list[list[str]] = []
    original = curriculum.observe_groups

    def spy(groups):
        groups = dict(groups)
        scored.append(sorted(groups))
        return original(groups)

    curriculum.observe_groups = spy
    trainer.train()
    changed = any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    return trainer, curriculum, ecr_log, scored, changed


@pytest.mark.slow
def test_grpo_steps_with_ego3s_rewards_and_ecr_driving_the_data(grpo_run):
    trainer, curriculum, ecr_log, scored, changed = grpo_run
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert trainer.state.global_step == 3 and len(logs) == 3
    assert {"rewards/ego3s_accuracy/mean", "rewards/ego3s_format/mean", "rewards/ego3s_grounded/mean"} <= set(logs[0])
    assert any(h["reward_std"] > 0 for h in logs), logs  # rewards vary within groups: a real GRPO signal
    assert changed and any(h["grad_norm"] > 0 for h in logs) and all("kl" in h for h in logs)
    # every rollout group reached the curriculum: 2 prompts per step, both active samples each step
    assert scored[:2] == [["1", "2"], ["1", "2"]]
    assert [entry["step"] for entry in ecr_log] == [1, 2, 3]
    assert ecr_log[0]["ecr/stability"] == -1.0 and not ecr_log[0]["added"]  # nothing to compare with yet
    swap = ecr_log[1]
    assert swap["ecr/stagnant"] == 1.0 and sorted(swap["dropped"]) == ["1", "2"]
    assert set(swap["added"]) <= {"101", "102", "103", "104"} and len(swap["added"]) == 2
    # the live CSM re-scoring only ever ranks the first 3 pool candidates ahead of the rest
    assert len(set(swap["added"]) & set(curriculum.pool)) == 0
    assert scored[2] == sorted(swap["added"])  # step 3 rolls out the samples the curriculum brought in
    assert sorted(curriculum.slots) == sorted(swap["added"]) and sorted(curriculum.retired)[:2] == ["1", "2"]


def test_trl_recipe_dry_run_checks_every_section(capsys):
    from pathlib import Path

    from egoforge.tools.cli import main

    recipe = str(Path(__file__).resolve().parents[2] / "recipes" / "ego3s_trl_grpo_qwen2_5_vl_3b.yaml")
    assert main(["train", recipe, "grpo.max_steps=3", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["grpo"]["max_steps"] == 3
    for override, message in (("ecr.lambda_s=oops", "ecr.lambda_s: expected float"),
                              ("grpo.max_stepz=3", "unknown trl.GRPOConfig field(s) ['max_stepz']"),
                              ("reward.preset=nope", "unknown IRL preset 'nope'"),
                              ("reward.lamda_o=0.3", "reward: unknown key(s) ['lamda_o']")):
        assert main(["train", recipe, override, "--dry-run"]) == 2
        assert message in capsys.readouterr().err


def test_trl_recipe_finds_the_media_of_csms_selected_json(tmp_path, monkeypatch):
    """``select csm`` writes the source rows unchanged into csm/selected.json, so their media paths stay relative to
    the source json's folder: the recipe's data paths, read from the repository root, must find every clip."""
    import shutil
    from pathlib import Path

    from egoforge.testing.ego3s_data import make_video_r1_dataset
    from egoforge.train.recipe import load_recipe
    from egoforge.trl_grpo.train import _load_samples

    repo = Path(__file__).resolve().parents[2]
    recipe = load_recipe(repo / "recipes" / "ego3s_trl_grpo_qwen2_5_vl_3b.yaml")
    source = make_video_r1_dataset(tmp_path / "data" / "ego3s", n=4, seed=2)
    assert source == tmp_path / "data" / "ego3s" / "train.json"
    (tmp_path / "data" / "ego3s" / "csm").mkdir()
    shutil.copy(source, tmp_path / "data" / "ego3s" / "csm" / "selected.json")
    monkeypatch.chdir(tmp_path)
    for key in ("train", "pool"):
        samples, root = _load_samples(recipe["data"][key], recipe["data"].get("media_root"))
        assert len(samples) == 4 and root == Path("data/ego3s")
