"""The 4M-style model: the paper's size, positions, padding- and modality-separation invariances, the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egoforge.egom2p.layers import sincos_1d, sincos_3d
from egoforge.egom2p.masking import MaskingConfig, mask_sample
from egoforge.egom2p.modalities import MODALITIES, describe, modality_table, video_grid
from egoforge.egom2p.model import SIZES, EgoM2P, ModelConfig, count_parameters
from egoforge.egom2p.shards import assemble

TINY = {"rgb": {"token_grid": [5, 4, 4], "vocab_size": 200}, "depth": {"token_grid": [5, 4, 4], "vocab_size": 200}}


def _batch(table, n=3, seed=0, drop_gaze_of=(1,), n_in=48, n_tgt=48):
    rng = np.random.default_rng(seed)
    sizes = [m.num_tokens for m in table.values()]
    samples, masks = [], []
    for i in range(n):
        sample = {k: rng.integers(0, m.vocab_size, m.num_tokens) for k, m in table.items()
                  if not (k == "gaze" and i in drop_gaze_of)}
        present = np.array([k in sample for k in table])
        masks.append(mask_sample(rng, MaskingConfig(n_in, n_tgt), sizes, present, present))
        samples.append(("d", f"k{i}", sample))
    return assemble(samples, table, masks)["modalities"]


def test_modality_table_is_the_papers():
    assert [m.num_tokens for m in MODALITIES.values()] == [5120, 5120, 30, 30]
    assert MODALITIES["rgb"].fps == 8 and MODALITIES["rgb"].frames == 16 and MODALITIES["cam"].frames == 60
    assert MODALITIES["depth"].vocab_size == 64000 and MODALITIES["gaze"].vocab_size == 256
    assert video_grid(16, 256) == (5, 32, 32) and video_grid(16, 32) == (5, 4, 4)
    assert "| rgb | 16x256x256x3 | 8 fps x 16 |" in describe()
    with pytest.raises(ValueError, match="cannot override"):
        modality_table({"rgb": {"fps": 30}})
    with pytest.raises(ValueError, match="unknown modality"):
        modality_table({"imu": {}})
    with pytest.raises(ValueError, match="token_grid"):
        modality_table({"cam": {"token_grid": [5, 6]}})


def test_base_model_has_about_400m_parameters():
    with torch.device("meta"):
        model = EgoM2P(ModelConfig(), modality_table())
    assert 390e6 < count_parameters(model) < 405e6  # "400M (incl. embedding layers)"
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm)))
    assert model.cfg.act == "swiglu" and SIZES["base"]["dim"] == 768


def test_sincos_positions():
    p3 = sincos_3d((5, 32, 32), 768)
    assert p3.shape == (5120, 768) and torch.unique(p3, dim=0).shape[0] == 5120
    assert sincos_3d((5, 4, 4), 64).shape == (80, 64) and sincos_1d(30, 64).shape == (30, 64)
    assert torch.allclose(sincos_1d(3, 4)[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_forward_backward_with_an_unavailable_modality():
    torch.manual_seed(0)
    table = modality_table(TINY)
    model = EgoM2P(ModelConfig(**SIZES["tiny"]), table)
    mods = _batch(table)
    assert mods["gaze"]["input_mask"][1].all() and mods["gaze"]["target_mask"][1].all()
    loss, parts = model(mods, 48, 48)
    assert torch.isfinite(loss) and set(parts) <= set(table)
    assert torch.isclose(loss, torch.stack(list(parts.values())).mean())  # mean over modalities ("mod" loss)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith(("encoder.", "decoder.")))


def test_padding_and_other_modalities_do_not_leak_into_predictions():
    torch.manual_seed(0)
    table = modality_table(TINY)
    model = EgoM2P(ModelConfig(**SIZES["tiny"]), table).eval()
    mods = _batch(table, n=2, drop_gaze_of=())
    with torch.no_grad():
        context, keys = model.encode(mods, 48)
        context_padded, keys_padded = model.encode(mods, 200)  # more slots than visible tokens: padding
        # keep only the rgb targets: decoder queries of other modalities must not change the rgb outputs
        rgb_only = {m: {**d, "target_mask": d["target_mask"] if m == "rgb" else torch.ones_like(d["target_mask"])}
                    for m, d in mods.items()}
        y, valid, mod_ids, pos, _ = model.decode(mods, context, keys, 48)
        y_pad, *_ = model.decode(mods, context_padded, keys_padded, 48)
        y_rgb, valid_rgb, _, pos_rgb, _ = model.decode(rgb_only, context, keys, 48)
    visible = int(keys.sum(1).max())
    assert torch.allclose(context[:, :visible][keys[:, :visible]], context_padded[:, :visible][keys[:, :visible]],
                          atol=1e-5)
    assert torch.allclose(y[valid], y_pad[valid], atol=1e-5)
    for b in range(2):
        rgb = valid[b] & (mod_ids[b] == 0)
        a = {int(p): v for p, v in zip(pos[b][rgb], y[b][rgb])}
        c = {int(p): v for p, v in zip(pos_rgb[b][valid_rgb[b]], y_rgb[b][valid_rgb[b]])}
        assert a.keys() == c.keys() and all(torch.allclose(a[k], c[k], atol=1e-5) for k in a)
