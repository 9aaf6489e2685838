"""EgoVLP / EgoVLP+ scores on a tiny random checkpoint written in the released layout (FrozenInTime state_dict in
``{"state_dict": ..., "config": <EgoVLP's ConfigParser>, ...}``, ``module.`` keys, small sizes).

The oracle is written here from the official code's behaviour: ``run_egovlp`` (frames stacked, torchvision
``Resize`` + ``CenterCrop`` + ``NormalizeVideo``), Frozen-in-Time's space-time attention with einops, and
``sim_matrix``; it runs on the checkpoint's tensors directly, not on egoforge's modules."""

from __future__ import annotations

import argparse
import pathlib
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from egoforge.lego import egovlp as E
from egoforge.lego import metrics as M

TEXT = {"vocab_size": 40, "dim": 16, "n_layers": 1, "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 32}
TINY = E.EgoVLPConfig(num_frames=4, image_size=32, patch_size=8, embed_dim=24, depth=2, num_heads=2, mlp_ratio=2.0,
                      projection_dim=12, text=TEXT)


def official_layout(cfg: E.EgoVLPConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of FrozenInTime.state_dict() as the official modules name them (written out by hand)."""
    d, t = cfg.embed_dim, cfg.text
    patches = (cfg.image_size // cfg.patch_size) ** 2
    keys = {"video_model.cls_token": (1, 1, d), "video_model.pos_embed": (1, patches + 1, d),
            "video_model.temporal_embed": (1, cfg.num_frames, d),
            "video_model.patch_embed.proj.weight": (d, 3, cfg.patch_size, cfg.patch_size),
            "video_model.patch_embed.proj.bias": (d,), "video_model.norm.weight": (d,), "video_model.norm.bias": (d,),
            "vid_proj.0.weight": (cfg.projection_dim, d), "vid_proj.0.bias": (cfg.projection_dim,),
            "txt_proj.1.weight": (cfg.projection_dim, t["dim"]), "txt_proj.1.bias": (cfg.projection_dim,),
            "text_model.embeddings.word_embeddings.weight": (t["vocab_size"], t["dim"]),
            "text_model.embeddings.position_embeddings.weight": (t["max_position_embeddings"], t["dim"]),
            "text_model.embeddings.LayerNorm.weight": (t["dim"],), "text_model.embeddings.LayerNorm.bias": (t["dim"],)}
    hidden = int(d * cfg.mlp_ratio)
    for i in range(cfg.depth):
        b = f"video_model.blocks.{i}."
        for norm in ("norm1", "norm2", "norm3"):
            keys[b + norm + ".weight"], keys[b + norm + ".bias"] = (d,), (d,)
        for attn in ("attn", "timeattn"):
            keys[b + attn + ".qkv.weight"], keys[b + attn + ".qkv.bias"] = (3 * d, d), (3 * d,)
            keys[b + attn + ".proj.weight"], keys[b + attn + ".proj.bias"] = (d, d), (d,)
        keys[b + "mlp.fc1.weight"], keys[b + "mlp.fc1.bias"] = (hidden, d), (hidden,)
        keys[b + "mlp.fc2.weight"], keys[b + "mlp.fc2.bias"] = (d, hidden), (d,)
    for i in range(t["n_layers"]):
        b = f"text_model.transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            keys[b + f"attention.{lin}.weight"], keys[b + f"attention.{lin}.bias"] = (t["dim"], t["dim"]), (t["dim"],)
        for norm in ("sa_layer_norm", "output_layer_norm"):
            keys[b + norm + ".weight"], keys[b + norm + ".bias"] = (t["dim"],), (t["dim"],)
        keys[b + "ffn.lin1.weight"], keys[b + "ffn.lin1.bias"] = (t["hidden_dim"], t["dim"]), (t["hidden_dim"],)
        keys[b + "ffn.lin2.weight"], keys[b + "ffn.lin2.bias"] = (t["dim"], t["hidden_dim"]), (t["dim"],)
    return keys


def random_state(cfg: E.EgoVLPConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=gen) * 0.2 for k, shape in official_layout(cfg).items()}
    for k in state:
        if "norm" in k.lower() and k.endswith(".weight"):
            state[k] = 1 + state[k] * 0.1
    # transformers of EgoVLP's time saved DistilBERT's position ids
    state["text_model.embeddings.position_ids"] = torch.arange(cfg.text["max_position_embeddings"])[None]
    return state


@pytest.fixture
def released_checkpoint(tmp_path, monkeypatch):
    """A checkpoint as EgoVLP's trainer saves it: its ConfigParser (paths, argparse namespace) beside the weights,
    DataParallel ``module.`` keys, an optimizer state."""
    module = types.ModuleType("parse_config")

    class ConfigParser:
        def __init__(self):
            self.args = argparse.Namespace(config="configs/pt/egoclip.json", device="0")
            self.resume = pathlib.PosixPath("results/checkpoint-epoch3.pth")
            self._config = {"arch": {"type": "FrozenInTime"}}

    ConfigParser.__module__, ConfigParser.__qualname__ = "parse_config", "ConfigParser"
    module.ConfigParser = ConfigParser
    monkeypatch.setitem(sys.modules, "parse_config", module)
    state = random_state(TINY)
    path = tmp_path / "egovlp.pth"
    torch.save({"arch": "FrozenInTime", "epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 3e-5}]}, "monitor_best": 0.1,
                "config": ConfigParser()}, path)
    monkeypatch.delitem(sys.modules, "parse_config")  # as on a machine without EgoVLP's code
    return path, state


# --- the oracle ------------------------------------------------------------------------------------------------


def _oracle_attention(x, w, prefix, heads, einops_from, einops_to, **dims):
    q, k, v = F.linear(x, w[prefix + ".qkv.weight"], w[prefix + ".qkv.bias"]).chunk(3, dim=-1)
    q, k, v = (rearrange(t, "b n (h d) -> (b h) n d", h=heads) for t in (q, k, v))
    q = q * (x.shape[-1] // heads) ** -0.5
    (cls_q, q_), (cls_k, k_), (cls_v, v_) = ((t[:, 0:1], t[:, 1:]) for t in (q, k, v))

    def att(q, k, v):
        return torch.einsum("b i d, b j d -> b i j", q, k).softmax(dim=-1).matmul(v)

    cls_out = att(cls_q, k, v)
    q_, k_, v_ = (rearrange(t, f"{einops_from} -> {einops_to}", **dims) for t in (q_, k_, v_))
    r = q_.shape[0] // cls_k.shape[0]
    cls_k, cls_v = (repeat(t, "b () d -> (b r) () d", r=r) for t in (cls_k, cls_v))
    out = att(q_, torch.cat((cls_k, k_), dim=1), torch.cat((cls_v, v_), dim=1))
    out = torch.cat((cls_out, rearrange(out, f"{einops_to} -> {einops_from}", **dims)), dim=1)
    out = rearrange(out, "(b h) n d -> b n (h d)", h=heads)
    return F.linear(out, w[prefix + ".proj.weight"], w[prefix + ".proj.bias"])


def oracle_video_embedding(w, cfg, video):
    ln = lambda x, p: F.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"], eps=1e-6)  # noqa: E731
    b, f = video.shape[:2]
    x = F.conv2d(video.reshape(-1, *video.shape[2:]), w["video_model.patch_embed.proj.weight"],
                 w["video_model.patch_embed.proj.bias"], stride=cfg.patch_size)
    x = x.flatten(2).transpose(2, 1).reshape(b, -1, cfg.embed_dim)
    x = torch.cat((w["video_model.cls_token"].expand(b, -1, -1), x), dim=1)
    pos, n = w["video_model.pos_embed"], (cfg.image_size // cfg.patch_size) ** 2
    total = pos[:, 1:].repeat(1, cfg.num_frames, 1) + w["video_model.temporal_embed"].repeat_interleave(n, 1)
    x = x + torch.cat([pos[:, 0:1], total], dim=1)[:, : x.shape[1]]
    for i in range(cfg.depth):
        p = f"video_model.blocks.{i}."
        time_out = _oracle_attention(ln(x, p + "norm3"), w, p + "timeattn", cfg.num_heads, "b (f n) d",
                                     "(b n) f d", n=n)
        space_out = _oracle_attention(ln(x + time_out, p + "norm1"), w, p + "attn", cfg.num_heads, "b (f n) d",
                                      "(b f) n d", f=f)
        x = x + space_out
        h = F.gelu(F.linear(ln(x, p + "norm2"), w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    x = ln(x, "video_model.norm")[:, 0]
    return F.linear(x, w["vid_proj.0.weight"], w["vid_proj.0.bias"])


def oracle_clip(image, cfg, pre_image=None):
    """``run_egovlp``'s input for a PIL image, with torchvision's transforms as the official environment ran them
    (tensor Resize without antialiasing)."""
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    frame = to_tensor(image)
    pre = to_tensor(pre_image) if pre_image is not None else None
    half = cfg.num_frames // 2
    frames = [frame] * cfg.num_frames if pre is None else [pre] * half + [frame] * half
    clip = torch.stack(frames, dim=0).transpose(0, 1)  # [C, T, H, W]
    clip = transforms.CenterCrop(cfg.image_size)(transforms.Resize(cfg.image_size, antialias=False)(clip))
    mean = torch.tensor(E.IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(E.IMAGENET_STD).view(3, 1, 1, 1)
    return ((clip - mean) / std).transpose(0, 1)[None]


def oracle_score(w, cfg, gt, gen, pre=None):
    a = oracle_video_embedding(w, cfg, oracle_clip(gt, cfg, pre))
    b = oracle_video_embedding(w, cfg, oracle_clip(gen, cfg, pre))
    a = a / torch.max(a.norm(dim=1)[:, None], 1e-8 * torch.ones(1))
    b = b / torch.max(b.norm(dim=1)[:, None], 1e-8 * torch.ones(1))
    return (a @ b.T)[0, 0].item()


def _image(seed, size=(40, 56)):
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size[::-1], Image.BILINEAR)


def _tensor(image):
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


# --- the tests -------------------------------------------------------------------------------------------------


def test_module_tree_has_the_released_key_layout():
    model = E.FrozenInTime(TINY)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    assert shapes == official_layout(TINY)


def test_released_checkpoint_loads_strictly_and_scores_as_the_official_formula(released_checkpoint):
    path, state = released_checkpoint
    with pytest.raises(Exception, match="parse_config"):  # plain weights_only refuses the trainer's config object
        torch.load(path, weights_only=True)
    model = E.FrozenInTime.from_checkpoint(path, TINY)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    gt, gen, pre = _image(1), _image(2), _image(3)
    score = E.egovlp_similarity(model, _tensor(gen), _tensor(gt))
    plus = E.egovlp_similarity(model, _tensor(gen), _tensor(gt), context=_tensor(pre))
    assert score == pytest.approx(oracle_score(state, TINY, gt, gen), abs=1e-5)
    assert plus == pytest.approx(oracle_score(state, TINY, gt, gen, pre), abs=1e-5)
    assert abs(score - plus) > 1e-4  # the context frames change the clip
    assert E.egovlp_similarity(model, _tensor(gt), _tensor(gt)) == pytest.approx(1.0, abs=1e-6)
    assert E.egovlp_similarity(model, _tensor(gt), _tensor(gt), _tensor(pre)) == pytest.approx(1.0, abs=1e-6)


def test_epic_kitchens_clips_are_16_frames_with_the_temporal_embedding_zero_filled(released_checkpoint):
    path, state = released_checkpoint
    cfg = E.config_for("epickitchen", TINY)
    model = E.FrozenInTime.from_checkpoint(path, cfg)
    embed = model.video_model.temporal_embed
    assert embed.shape[1] == 16 and torch.equal(embed[:, :4], state["video_model.temporal_embed"])
    assert not embed[:, 4:].any()  # the official _inflate_positional_embeds with 'zeros'
    inflated = dict(state, **{"video_model.temporal_embed": embed.detach().clone()})
    gt, gen, pre = _image(4), _image(5), _image(6)
    assert E.egovlp_similarity(model, _tensor(gen), _tensor(gt), _tensor(pre)) == pytest.approx(
        oracle_score(inflated, cfg, gt, gen, pre), abs=1e-5)


def test_wrong_checkpoints_are_refused_by_name(tmp_path, released_checkpoint):
    _, state = released_checkpoint
    clip_like = {k: v for k, v in state.items() if not k.startswith("vid_proj")}
    clip_like["visual.proj"] = torch.zeros(2, 2)
    torch.save(clip_like, tmp_path / "other.pth")
    with pytest.raises(E.EgoVLPCheckpointError, match=r"2 missing keys \['vid_proj.0.bias', 'vid_proj.0.weight'\]"
                       r".*1 unexpected keys \['visual.proj'\]"):
        E.FrozenInTime.from_checkpoint(tmp_path / "other.pth", TINY)
    wider = dict(state, **{"vid_proj.0.weight": torch.zeros(7, TINY.embed_dim)})
    torch.save({"state_dict": wider}, tmp_path / "wider.pth")
    with pytest.raises(E.EgoVLPCheckpointError, match=r"vid_proj.0.weight \(7, 24\) \(model \(12, 24\)\)"):
        E.FrozenInTime.from_checkpoint(tmp_path / "wider.pth", TINY)
    torch.save({"state_dict": {"a": 1}}, tmp_path / "not_tensors.pth")
    with pytest.raises(E.EgoVLPCheckpointError, match="not tensors"):
        E.read_state_dict(tmp_path / "not_tensors.pth")
    with pytest.raises(FileNotFoundError, match="download_metric_weights.sh"):
        E.read_state_dict(tmp_path / "egovlp_missing.pth")


def test_placeholders_never_run_the_pickled_code(tmp_path, monkeypatch):
    """A global in the checkpoint that would run code on load is only named, never imported or called."""
    module = types.ModuleType("evil_module")
    calls = []

    def record(what):
        calls.append(what)

    class Payload:
        def __reduce__(self):
            return (record, ("ran",))

    Payload.__module__, Payload.__qualname__ = "evil_module", "Payload"
    record.__module__, record.__qualname__ = "evil_module", "record"
    module.Payload, module.record = Payload, record
    monkeypatch.setitem(sys.modules, "evil_module", module)
    torch.save({"state_dict": {"w": torch.ones(1)}, "config": Payload()}, tmp_path / "c.pth")
    monkeypatch.delitem(sys.modules, "evil_module")
    loaded = E.safe_torch_load(tmp_path / "c.pth")
    assert calls == [] and isinstance(loaded["config"], E._InertObject)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(1))


def test_text_similarity_is_the_cosine_of_projected_cls_tokens(released_checkpoint, tmp_path):
    from transformers import DistilBertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "person", "cuts", "an", "onion", "picks", "up",
             "a", "knife", "with", "left", "hand"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = DistilBertTokenizer(str(tmp_path / "vocab.txt"))
    path, state = released_checkpoint
    model = E.FrozenInTime.from_checkpoint(path, TINY)
    a, b = "the person cuts an onion", "picks up a knife with left hand"
    assert E.text_similarity(model, tokenizer, a, a) == pytest.approx(1.0, abs=1e-6)

    def oracle(text):
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            cls = model.text_model(**ids).last_hidden_state[:, 0]
        return F.linear(F.relu(cls), state["txt_proj.1.weight"], state["txt_proj.1.bias"])

    assert E.text_similarity(model, tokenizer, a, b) == pytest.approx(
        F.cosine_similarity(oracle(a), oracle(b)).item(), abs=1e-6)


def test_evaluate_pairs_fills_the_egovlp_columns(released_checkpoint, tmp_path):
    path, state = released_checkpoint
    pairs = []
    for i in range(3):
        for name, seed in (("g", 10 + i), ("t", 20 + i), ("s", 30 + i)):
            _image(seed).save(tmp_path / f"{name}{i}.png")
        pairs.append((f"x{i}", tmp_path / f"g{i}.png", tmp_path / f"t{i}.png", tmp_path / f"s{i}.png"))
    weights = M.MetricWeights(egovlp_checkpoint=str(path), egovlp_dataset="ego4d", egovlp_config=TINY)
    result = M.evaluate_pairs(pairs, ["psnr", "egovlp", "egovlp_plus"], weights)
    from PIL import Image

    expected = [oracle_score(state, TINY, Image.open(t), Image.open(g), Image.open(s)) for _, g, t, s in pairs]
    assert result.values["egovlp_plus"] == pytest.approx(np.mean(expected), abs=1e-5)
    row = result.paper_row()
    assert row["EgoVLP"] == result.values["egovlp"] and row["EgoVLP+"] == result.values["egovlp_plus"]
    with pytest.raises(ValueError, match="egovlp_plus needs each pair's source frame"):
        M.evaluate_pairs([p[:3] for p in pairs], ["egovlp_plus"], weights)
    lines = M.missing_weights(["egovlp", "egovlp_plus"], M.MetricWeights())
    assert [line.split(":")[0] for line in lines] == ["egovlp", "egovlp_plus"] and "egovlp.pth" in lines[0]
    assert M.egovlp_dataset_of([{"source": "epickitchen/val/P01/a/1.jpg"}]) == "epickitchen"
    with pytest.raises(ValueError, match="--egovlp-dataset"):
        M.egovlp_dataset_of([{"source": "ego4d.fho/val/c/a/1.jpg"}, {"source": "epickitchen/val/c/a/1.jpg"}])


def test_metrics_command_fills_egovlp_from_the_checkpoint(released_checkpoint, tmp_path, capsys, monkeypatch):
    import json

    from PIL import Image

    from egoforge.lego.sampling import output_name
    from egoforge.testing.lego_data import make_lego_dataset
    from egoforge.tools.cli import main

    path, state = released_checkpoint
    make_lego_dataset(tmp_path / "lego", "ego4d", clips={"train": 1, "val": 1}, actions_per_clip=2)
    assert main(["lego", "convert", "--root", str(tmp_path / "lego")]) == 0
    index = tmp_path / "lego" / "egoforge" / "ldm_ego4d_val.jsonl"
    media = tmp_path / "lego" / "EgoGen"
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    for i, row in enumerate(rows):
        out = tmp_path / "gen" / output_name(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(media / row["target"]) as target:  # the official protocol saves at the clip's aspect
            _image(40 + i, size=target.size[::-1]).save(out)
    base = ["lego", "metrics", "--generated", str(tmp_path / "gen"), "--index", str(index), "--media-root",
            str(media), "--out", str(tmp_path / "scores"), "--quiet"]
    capsys.readouterr()
    # the released base sizes (12 blocks) refuse a 2-block checkpoint, in one line naming the missing keys
    assert main([*base, "--metrics", "egovlp", "--egovlp-checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is not an EgoVLP (FrozenInTime) checkpoint" in err
    assert "missing keys ['text_model.transformer.layer.1." in err
    assert main([*base, "--egovlp-checkpoint", str(tmp_path / "none.pth")]) == 2  # a missing input file
    assert "egovlp: " + str(tmp_path / "none.pth") + " not found" in capsys.readouterr().err
    monkeypatch.setattr(E, "EgoVLPConfig", lambda: TINY)
    assert main([*base, "--metrics", "psnr,egovlp,egovlp_plus", "--egovlp-checkpoint", str(path)]) == 0
    results = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert results["egovlp_dataset"] == "ego4d"
    expected = [oracle_score(state, TINY, Image.open(media / r["target"]), Image.open(tmp_path / "gen" /
                                                                                        output_name(r)),
                             Image.open(media / r["source"])) for r in rows]
    assert results["metrics"]["egovlp_plus"] == pytest.approx(np.mean(expected), abs=1e-5)
    assert results["table"]["egoforge LEGO"]["EgoVLP"] == results["metrics"]["egovlp"]
    assert "EgoVLP / EgoVLP+: " + str(path) in (tmp_path / "scores" / "results.md").read_text()
