"""Batches that mix clip lengths and frame counts through verl 0.9.1's own ``RLHFDataset`` path (verl#5554: "size of
tensor a (3) must match the size of tensor b (8)" when videos of different lengths meet in one batch).

The Ego3S parquet holds mp4 clips from 3 to 40 frames and frame folders; verl's ``collate_fn`` batches the rows, our
dataset class decodes each row's clip (``egoforge.data.clip``), and one processor call takes the whole batch, as the
rollout's multimodal inputs do. Needs verl (the rl environment)."""

from __future__ import annotations

import asyncio

import pytest
import torch

pytest.importorskip("verl")


@pytest.fixture(scope="module")
def mixed_parquet(tmp_path_factory):
    from egoforge.ego3s.convert import convert_file
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    root = tmp_path_factory.mktemp("mixed_clips")
    make_video_r1_dataset(root / "data", n=9, seed=5, frames=(3, 40))
    convert_file(root / "data" / "train.json", root / "train.parquet")
    return root / "train.parquet"


def _config(parquet):
    from omegaconf import OmegaConf

    return OmegaConf.create({
        "train_files": [str(parquet)], "val_files": [str(parquet) + ".val"], "prompt_key": "prompt",
        "image_key": "images", "video_key": "videos", "max_prompt_length": 8192, "filter_overlong_prompts": True,
        "filter_overlong_prompts_workers": 1, "truncation": "error", "return_raw_chat": True, "shuffle": False,
        "seed": 1, "dataloader_num_workers": 0, "cache_dir": str(parquet.parent / "cache"),
        "custom_cls": {"path": "pkg://egoforge.verl.dataset", "name": "Ego3SDataset"}})


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_a_batch_mixing_clip_lengths_is_processed_in_one_call(mixed_parquet, tiny_model_dir, arch):
    from transformers import AutoProcessor
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.dataset.rl_dataset import collate_fn

    from egoforge.verl.dataset import Ego3SDataset

    processor = AutoProcessor.from_pretrained(tiny_model_dir(arch))
    patch = processor.image_processor.patch_size
    config = _config(mixed_parquet)
    ds = create_rl_dataset(config.train_files, config, processor.tokenizer, processor)
    rows = [ds[i] for i in range(len(ds))]
    videos_rows = [r for r in rows if r["raw_prompt"][0]["content"][0]["type"] == "video"]
    batch = collate_fn(videos_rows)
    texts, all_videos, all_meta, per_sample = [], [], [], []
    for prompt in batch["raw_prompt"]:
        _, videos, _ = asyncio.run(Ego3SDataset.process_multi_modal_info(list(prompt), patch, config))
        frames, meta = videos[0]
        text = processor.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
        texts.append(text)
        all_videos.append(frames)
        all_meta.append(meta)
        alone = processor(text=[text], videos=[frames], video_metadata=[meta], do_sample_frames=False,
                          return_tensors="pt")
        per_sample.append(alone)
    counts = sorted({v.shape[0] for v in all_videos})
    assert len(counts) >= 2 and all(c % 2 == 0 for c in counts), counts  # the batch really mixes frame counts
    assert all(m["frames_indices"] == sorted(m["frames_indices"]) for m in all_meta)
    together = processor(text=texts, videos=all_videos, video_metadata=all_meta, do_sample_frames=False,
                         padding=True, return_tensors="pt")
    # the batched call gives each sample exactly what it gets alone (grid, pixels, visual tokens)
    assert torch.equal(together["video_grid_thw"], torch.cat([s["video_grid_thw"] for s in per_sample]))
    assert torch.equal(together["pixel_values_videos"], torch.cat([s["pixel_values_videos"] for s in per_sample]))
    pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    for row, alone in enumerate(per_sample):
        assert int((together["input_ids"][row] == pad).sum()) == int((alone["input_ids"] == pad).sum())


@pytest.mark.parametrize("size", ["7b", "3b"])
def test_recipes_pin_vllms_multimodal_cache_off(size, tmp_path, tiny_qwen2_5_vl, tiny_clip, ego3s_parquet):
    """The value verl's Hydra composition hands vLLM, and the vLLM fact that makes it the safe one."""
    from test_ego3s_verl import RECIPES, compose_recipe  # this folder is on sys.path under pytest

    parse = pytest.importorskip("vllm.multimodal.parse", reason="vLLM is in the rl environment (make test-rl)")
    VideoProcessorItems = parse.VideoProcessorItems

    job = compose_recipe(RECIPES[size], tmp_path, MODEL=tiny_qwen2_5_vl, CLIP_MODEL=tiny_clip,
                         TRAIN_FILES=ego3s_parquet, POOL_FILES=ego3s_parquet, VAL_FILES=ego3s_parquet)
    assert job["actor_rollout_ref"]["rollout"]["engine_kwargs"]["vllm"]["mm_processor_cache_gb"] == 0
    # vLLM 0.24 hashes a video item without its metadata: equal frames at another fps share one cache key.
    frames = torch.zeros(2, 8, 8, 3, dtype=torch.uint8).numpy()
    items = VideoProcessorItems([frames, frames], metadata=[{"fps": 2.0}, {"fps": 0.5}])
    assert items.get_item_for_hash(0) is items.get_item_for_hash(1)
