"""Camera / gaze VQ tokenizers and the video tokenizers: shapes, masking, quantisers, the Cosmos adapter on
TorchScript files, and reconstruction error falling with training through the real trainers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egoforge.egom2p.cosmos import CosmosMissingError, CosmosVideoTokenizer
from egoforge.egom2p.geometry import canonicalize
from egoforge.egom2p.quantizers import FSQ, CosineEMAQuantizer
from egoforge.egom2p.tokenizers import load_tokenizer
from egoforge.egom2p.traj_tokenizer import (
    TrajectoryTokenizer,
    TrajectoryVQVAE,
    TrajTokenizerConfig,
    gaze_features,
    load_traj_tokenizer,
    reconstruction_error,
    save_traj_tokenizer,
)
from egoforge.egom2p.video_tokenizer import FSQVideoAutoencoder, FSQVideoTokenizer, VideoTokenizerConfig
from egoforge.testing.egom2p_data import (
    export_cosmos_style_jit,
    random_camera_clips,
    random_gaze_clips,
    write_clip_folders,
)
from egoforge.tools.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
TINY_TRAJ = {"dim": 64, "depth": 2, "num_heads": 4}
TINY_VIDEO = {"size": 32, "levels": [8, 5, 5], "base_channels": 8, "channel_mult": [1, 1, 2, 2]}


def test_trajectory_tokenizer_shapes_and_save_load(tmp_path):
    torch.manual_seed(0)
    model = TrajectoryVQVAE(TrajTokenizerConfig(modality="cam", **TINY_TRAJ))
    tok = TrajectoryTokenizer(model)
    clips = random_camera_clips(3, seed=0)
    tokens = tok.encode(clips)
    assert tokens.shape == (3, 30) and tokens.dtype == np.int32 and tokens.min() >= 0 and tokens.max() < 256
    poses = tok.decode(tokens)
    assert poses.shape == (3, 60, 4, 4)
    R = poses[..., :3, :3].astype(np.float64)
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-4)  # decoded 6D -> proper rotations
    save_traj_tokenizer(model, tmp_path / "tok")
    again = load_traj_tokenizer(tmp_path / "tok")
    assert np.array_equal(again.encode(clips), tokens)
    assert load_tokenizer(tmp_path / "tok", "cam").info()["token_grid"] == [30]
    with pytest.raises(ValueError, match="cannot tokenize gaze"):
        load_tokenizer(tmp_path / "tok", "gaze")
    with pytest.raises(FileNotFoundError, match="no tokenizer here"):
        load_tokenizer(tmp_path / "missing", "cam")


def test_gaze_validity_mask_hides_invalid_samples():
    clips = random_gaze_clips(2, seed=1)
    clips[..., 2] = 1.0
    clips[0, 10:15, 2] = 0.0  # tracking lost
    clips[1, 3, :2] = [1.5, 0.5]  # far outside the crop: invalid too
    feats, valid = gaze_features(clips)
    assert not valid[0, 10:15].any() and not valid[1, 3] and valid.sum() == 120 - 6
    torch.manual_seed(0)
    tok = TrajectoryTokenizer(TrajectoryVQVAE(TrajTokenizerConfig(modality="gaze", **TINY_TRAJ)))
    changed = clips.copy()
    changed[0, 10:15, :2] = 0.9  # values under the mask must not change the tokens
    assert np.array_equal(tok.encode(clips), tok.encode(changed))


def test_cosine_ema_quantizer_and_dead_code_restart():
    torch.manual_seed(0)
    vq = CosineEMAQuantizer(num_codes=16, dim=4, decay=0.5, dead_code_threshold=0.0)
    z = torch.randn(2, 8, 4, requires_grad=True)
    q, idx, loss = vq(z)
    assert q.shape == z.shape and idx.shape == (2, 8) and loss.item() >= 0
    assert torch.allclose(q.norm(dim=-1), torch.ones(2, 8), atol=1e-5)
    q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through gradient
    dead = CosineEMAQuantizer(num_codes=16, dim=4, dead_code_threshold=100.0)  # every code counts as dead
    batch = torch.nn.functional.normalize(torch.randn(64, 4), dim=-1)
    dead(batch)
    matches = (dead.codebook[:, None, :] - batch[None]).abs().sum(-1).min(1).values
    assert (matches < 1e-5).all()  # restarted from vectors of the batch


def test_fsq_round_trip_and_vocabulary():
    assert FSQ([8, 8, 8, 5, 5, 5]).vocab_size == 64000  # Cosmos DV's vocabulary
    fsq = FSQ([4, 3, 5])
    indices = torch.arange(fsq.vocab_size)
    codes = fsq.indices_to_codes(indices)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    _, idx = fsq(torch.randn(100, 3) * 3)
    assert idx.min() >= 0 and idx.max() < fsq.vocab_size


def test_video_tokenizer_grid_matches_cosmos_and_round_trips():
    assert VideoTokenizerConfig().token_grid == (5, 32, 32) and VideoTokenizerConfig().vocab_size == 64000
    torch.manual_seed(0)
    tok = FSQVideoTokenizer(FSQVideoAutoencoder(VideoTokenizerConfig(**TINY_VIDEO)), "rgb")
    clips = np.random.default_rng(0).integers(0, 255, (2, 16, 32, 32, 3), dtype=np.uint8)
    tokens = tok.encode(clips)
    assert tokens.shape == (2, 5, 4, 4) and tokens.min() >= 0 and tokens.max() < 200
    video = tok.decode(tokens)
    assert video.shape == clips.shape and video.dtype == np.uint8
    depth = FSQVideoTokenizer(tok.model, "depth")
    decoded = depth.decode(depth.encode(np.random.default_rng(1).random((1, 16, 32, 32)).astype(np.float16)))
    assert decoded.shape == (1, 16, 32, 32) and decoded.min() >= 0.0 and decoded.max() <= 1.0
    with pytest.raises(ValueError, match="channel_mult"):
        VideoTokenizerConfig(spatial_compression=8, channel_mult=[1, 2])


def test_cosmos_adapter_on_torchscript_files(tmp_path):
    with pytest.raises(CosmosMissingError, match="Cosmos-0.1-Tokenizer-DV4x8x8"):
        CosmosVideoTokenizer(tmp_path / "nothing-here")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "encoder.jit").write_bytes(b"")
    with pytest.raises(CosmosMissingError, match=r"decoder\.jit not found"):
        load_tokenizer(tmp_path / "half", "rgb")
    torch.manual_seed(0)
    autoencoder = FSQVideoAutoencoder(VideoTokenizerConfig(**TINY_VIDEO))
    folder = export_cosmos_style_jit(autoencoder, tmp_path / "jit", frames=16, size=32)
    adapter = CosmosVideoTokenizer(folder, "rgb", device="cpu", dtype="float32")
    clips = np.random.default_rng(0).integers(0, 255, (2, 16, 32, 32, 3), dtype=np.uint8)
    tokens = adapter.encode(clips)
    own = FSQVideoTokenizer(autoencoder, "rgb")
    assert np.array_equal(tokens, own.encode(clips)) and adapter.token_grid == (5, 4, 4)
    assert adapter.decode(tokens).shape == clips.shape  # the padded 17th frame is dropped
    assert isinstance(load_tokenizer(folder, "depth"), CosmosVideoTokenizer)
    with pytest.raises(ValueError, match="Cosmos tokenizes video"):
        load_tokenizer(folder, "cam")


def _train_tokenizer(recipe: str, out: Path, overrides: dict) -> dict:
    args = ["train", str(REPO / "recipes" / recipe), f"output_dir={out}", "progress=false", "save_steps=1000",
            *[f"{k}={v}" for k, v in overrides.items()]]
    assert cli(args) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("modality", ["cam", "gaze"])
def test_trajectory_tokenizer_learns_through_the_trainer(tmp_path, modality):
    clips = random_camera_clips(120, seed=3) if modality == "cam" else random_gaze_clips(120, seed=3)
    write_clip_folders(tmp_path / "clips", "synth", {modality: clips})
    overrides = {"data.clips": f"[{tmp_path / 'clips'}]", "data.val_fraction": 0.2, "batch_size": 16,
                 "max_steps": 80, "logging_steps": 40, "warmup_epochs": 0.5, "optim.blr": 4e-3,
                 "tokenizer.dead_code_threshold": 0.5, **{f"tokenizer.{k}": v for k, v in TINY_TRAJ.items()}}
    out = tmp_path / "tok"
    metrics = _train_tokenizer(f"egom2p_{modality}_tokenizer.yaml", out, overrides)
    trained = load_traj_tokenizer(out)
    untrained = TrajectoryVQVAE(trained.model.cfg)
    untrained.load_state_dict({k: v for k, v in trained.model.state_dict().items() if k.startswith("feature_")},
                              strict=False)  # same normalisation, fresh weights
    from egoforge.egom2p.train_tokenizers import ClipData, split_clips

    _, val = split_clips(ClipData(clips=[str(tmp_path / "clips")], val_fraction=0.2), modality)
    feats, valid = (trained.model.normalize(torch.from_numpy(a)) if i == 0 else torch.from_numpy(a)
                    for i, a in enumerate(_features(modality, val)))
    mask = valid if modality == "gaze" else None
    before, after = reconstruction_error(untrained, feats, mask), reconstruction_error(trained.model, feats, mask)
    assert after < 0.5 * before, (before, after)
    assert metrics["val_recon_mse"] == pytest.approx(after, rel=1e-4)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["val_recon_mse"] < log[0]["val_recon_mse"] and (out / "loss.png").stat().st_size > 0
    if modality == "cam":
        assert metrics["val_ate"] < 0.5 * _ate_of_untrained(untrained, val)
    else:
        assert 0 <= metrics["val_gaze_l2"] < 0.2


def _features(modality, clip_dirs):
    from egoforge.egom2p.clips import load_clip
    from egoforge.egom2p.traj_tokenizer import clip_features

    return clip_features(modality, np.stack([load_clip(d, modality) for d in clip_dirs]))


def _ate_of_untrained(model, clip_dirs) -> float:
    from egoforge.egom2p.clips import load_clip
    from egoforge.egom2p.metrics import camera_metrics

    tok = TrajectoryTokenizer(model)
    clips = np.stack([load_clip(d, "cam") for d in clip_dirs])
    recon = tok.decode(tok.encode(clips))
    return float(np.mean([camera_metrics(r, canonicalize(c), align="none")["ate"] for r, c in zip(recon, clips)]))


@pytest.mark.slow
def test_video_tokenizer_learns_through_the_trainer(tmp_path, egom2p_raw_and_clips):
    overrides = {"data.clips": f"[{egom2p_raw_and_clips / 'clips'}]", "data.val_fraction": 0.0, "batch_size": 4,
                 "max_steps": 40, "logging_steps": 20, "mixed_precision": "no", "optim.blr": 0.05,
                 "warmup_epochs": 0, **{f"tokenizer.{k}": v for k, v in TINY_VIDEO.items()}}
    out = tmp_path / "video"
    metrics = _train_tokenizer("egom2p_video_tokenizer.yaml", out, overrides)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["val_psnr"] > log[0]["val_psnr"] and log[-1]["recon_mse"] < log[0]["recon_mse"]
    assert (out / "reconstruction.png").stat().st_size > 0
    from egoforge.egom2p.clips import list_clips
    from egoforge.egom2p.pretokenize import reconstruction_report

    clips = list_clips(egom2p_raw_and_clips / "clips")
    trained = reconstruction_report(load_tokenizer(out, "rgb"), "rgb", clips)
    torch.manual_seed(0)
    fresh = FSQVideoTokenizer(FSQVideoAutoencoder(VideoTokenizerConfig(**TINY_VIDEO)), "rgb")
    untrained = reconstruction_report(fresh, "rgb", clips)
    assert trained["mse"] < 0.7 * untrained["mse"] and trained["psnr"] > untrained["psnr"] + 1.5, (untrained, trained)
    assert metrics["val_psnr"] > 13
    tok = load_tokenizer(out, "depth")
    assert tok.token_grid == (5, 4, 4) and tok.vocab_size == 200
