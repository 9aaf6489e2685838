"""The EgoAgent network: shapes, token counts, attention masks, named sizes, HF round trip, EMA teacher."""

from __future__ import annotations

import pytest
import torch

from egoforge.egoagent.agent import EgoAgentNetwork
from egoforge.egoagent.backbone import EgoAgentConfig, EgoAgentModel
from egoforge.egoagent.ema import ema_update_, make_teacher, paired_parameters
from egoforge.egoagent.heads import DINOHead
from egoforge.egoagent.layers import attention_mask, swiglu_hidden_size
from egoforge.egoagent.sizes import SIZES, get_size
from egoforge.egoagent.stem import ConvStem


def tiny_network(image_size: int = 64, action_frames: int | None = 2) -> EgoAgentNetwork:
    torch.manual_seed(0)
    backbone = EgoAgentModel(EgoAgentConfig.from_size("tiny", image_size=image_size))
    return EgoAgentNetwork(backbone, DINOHead(32, 256, 64, 32), action_frames)


def test_conv_stem_token_counts_match_the_paper():
    stem = ConvStem(hidden_size=16, image_size=224, patch_size=16)
    assert stem(torch.zeros(1, 3, 224, 224)).shape == (1, 196, 16)  # global crop: 14 x 14
    assert stem(torch.zeros(1, 3, 112, 112)).shape == (1, 49, 16)  # local crop: 7 x 7
    with pytest.raises(ValueError, match="multiple of patch_size"):
        stem(torch.zeros(1, 3, 100, 100))


def test_multicrop_forward_backward_shapes():
    net = tiny_network()
    crops = [torch.randn(3, 3, 64, 64) for _ in range(2)] + [torch.randn(3, 3, 32, 32) for _ in range(4)]
    logits = net(crops=crops)
    assert logits.shape == (6, 3, 256)
    logits.logsumexp(-1).mean().backward()
    grads = {n: p.grad for n, p in net.named_parameters() if not n.startswith(("pose_embed", "action_head"))}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert net.backbone(torch.randn(2, 3, 64, 64)).last_hidden_state.shape == (2, 16 + 1, 32)  # patches + CLS


def test_stage2_sequence_forward_backward_shapes():
    net = tiny_network()
    batch, steps = 2, 3
    out = net(frames=torch.randn(batch, steps, 3, 64, 64), actions=torch.randn(batch, steps, 2, 17, 3),
              visible=torch.ones(batch, steps, 2, 17, dtype=torch.long))
    assert out["state_logits"].shape == out["pred_logits"].shape == (batch, steps, 256)
    assert out["pred_embedding"].shape == (batch, steps, 32)
    assert out["actions"].shape == (batch, steps, 2, 17, 3)
    sum(v.float().mean() for v in out.values()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_causal_state_readout_ignores_the_future():
    """A state's CLS sees only the past: changing a later frame or the current action leaves it unchanged,
    while the action token (which predicts the next state) does see the current action."""
    net = tiny_network().eval()
    frames, actions = torch.randn(1, 3, 3, 64, 64), torch.randn(1, 3, 2, 17, 3)
    visible = torch.ones(1, 3, 2, 17, dtype=torch.long)
    state, action = net.sequence(frames, actions, visible)
    later = frames.clone()
    later[:, 2] = torch.randn(3, 64, 64)
    changed_action = actions.clone()
    changed_action[:, 1] += 1.0
    state_2, _ = net.sequence(later, actions, visible)
    state_3, action_3 = net.sequence(frames, changed_action, visible)
    torch.testing.assert_close(state_2[:, :2], state[:, :2])
    assert not torch.allclose(state_2[:, 2], state[:, 2])
    torch.testing.assert_close(state_3[:, :2], state[:, :2])  # a_1 comes after s_1's CLS
    assert not torch.allclose(action_3[:, 1], action[:, 1])
    # history_attention=False: step 1 no longer sees step 0
    isolated, _ = net.sequence(frames, actions, visible, history_attention=False)
    changed_first = frames.clone()
    changed_first[:, 0] = torch.randn(3, 64, 64)
    isolated_2, _ = net.sequence(changed_first, actions, visible, history_attention=False)
    torch.testing.assert_close(isolated_2[:, 1:], isolated[:, 1:])


def test_perframe_mask_blocks_other_frames_and_the_future():
    segments = torch.tensor([[0, 0, 1, 1]])
    mask = attention_mask(segments, 4, causal=True, perframe=True, device="cpu")[0, 0]
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert attention_mask(segments, 4, causal=True, perframe=False, device="cpu") is None  # SDPA is_causal path


def test_named_sizes_have_the_official_dimensions():
    def dims(name):
        return SIZES[name].hidden_size, SIZES[name].num_hidden_layers, SIZES[name].num_attention_heads

    assert dims("300m") == (1024, 22, 8)
    assert dims("1b") == (2048, 22, 16)
    assert SIZES["300m"].out_dim == SIZES["1b"].out_dim == 65536
    assert swiglu_hidden_size(1024, 8 / 3, 256) == 2816
    with pytest.raises(KeyError, match="known: tiny, 300m, 1b|known: 300m, 1b, tiny"):
        get_size("7b")
    counts = {}
    for name in ("300m", "1b"):
        with torch.device("meta"):
            backbone = EgoAgentModel(EgoAgentConfig.from_size(name))
            head = DINOHead(SIZES[name].hidden_size, SIZES[name].out_dim)
        counts[name] = sum(p.numel() for p in [*backbone.parameters(), *head.parameters()]) / 1e6
    assert 280 < counts["300m"] < 340, counts  # "300M"
    assert 1000 < counts["1b"] < 1300, counts  # "1B"


def test_hf_round_trip_through_automodel(tmp_path):
    from transformers import AutoConfig, AutoModel

    backbone = tiny_network().backbone.eval()
    backbone.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "egoagent"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(loaded(images).pooler_output, backbone(images).pooler_output)
    assert (tmp_path / "model.safetensors").exists()


def test_ema_teacher_update():
    student = tiny_network(action_frames=None)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = {n: p.clone() for n, p in teacher.named_parameters()}
    ema_update_(*paired_parameters(teacher, student), momentum=0.9)
    for name, param in teacher.named_parameters():
        expected = 0.9 * before[name] + 0.1 * dict(student.named_parameters())[name]
        torch.testing.assert_close(param, expected)
