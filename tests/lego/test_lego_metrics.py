"""Metrics against hand computations, with locally built networks standing in for the pretrained ones (nothing is
downloaded): PSNR, CLIP image similarity, LPIPS (random AlexNet weights placed in torch's hub cache) and FID."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from egoforge.lego import metrics as M


def _pair(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen)


def test_psnr_is_10_log10_of_inverse_mse():
    a, b = _pair()
    mse = ((a - b) ** 2).mean().item()
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1.0 / mse), rel=1e-5)
    assert M.psnr(a, (a + 0.1).clamp(0, 1)) > M.psnr(a, b)


def test_clip_score_is_the_cosine_of_normalised_image_embeddings(tiny_clip):
    from transformers import CLIPVisionModelWithProjection

    a, b = _pair(1)
    encoder = M.ClipImageEncoder(tiny_clip)
    model = CLIPVisionModelWithProjection.from_pretrained(tiny_clip).eval()
    mean = torch.tensor(M.ClipImageEncoder.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(M.ClipImageEncoder.STD).view(1, 3, 1, 1)

    def embed(x):
        x = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
        with torch.no_grad():
            return model(pixel_values=(x - mean) / std).image_embeds[0]

    ea, eb = embed(a), embed(b)
    expected = (ea @ eb / (ea.norm() * eb.norm())).item()
    assert M.clip_similarity(encoder, a, b).item() == pytest.approx(expected, abs=1e-5)
    assert M.clip_similarity(encoder, a, a).item() == pytest.approx(1.0, abs=1e-5)


def test_lpips_matches_the_formula_on_the_cached_backbone(random_alexnet):
    import torchvision

    a, b = _pair(2)
    model = M.lpips_model("alex")
    score = M.lpips_score(model, a, b)
    # LPIPS by hand: scaled inputs -> AlexNet relu1..relu5 -> unit-normalise channels -> squared difference ->
    # learned 1x1 weights -> spatial mean -> sum over layers.
    alex = torchvision.models.alexnet()
    alex.load_state_dict(torch.load(random_alexnet, weights_only=True))
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    cut = (1, 4, 7, 9, 11)  # after each ReLU of torchvision's alexnet.features

    def layers(x):
        x, out = ((2 * x - 1) - shift) / scale, []
        for i, layer in enumerate(alex.features[:12]):
            x = layer(x)
            if i in cut:
                out.append(x)
        return out

    lins = [lin.model[-1].weight.detach() for lin in model.net.lins]
    with torch.no_grad():
        total = 0.0
        for fa, fb, w in zip(layers(a), layers(b), lins):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += F.conv2d((na - nb) ** 2, w).mean().item()
    assert score == pytest.approx(total, rel=1e-4)
    assert M.lpips_score(model, a, a) == pytest.approx(0.0, abs=1e-7)
    # the official script's quirk: [0, 1] images passed unscaled to an LPIPS that expects [-1, 1]
    assert M.lpips_score(model, a, b, as_official=True) != pytest.approx(score)


class TinyFeatures(torch.nn.Module):
    """A fixed random feature extractor on uint8 images, standing in for Inception."""

    num_features = 6

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=3)

    def forward(self, images):
        with torch.no_grad():
            return self.conv(images.float() / 255.0).relu().mean(dim=(2, 3))


def test_fid_is_the_frechet_distance_of_the_feature_gaussians():
    gen = torch.Generator().manual_seed(3)
    real = [torch.rand(3, 20, 20, generator=gen) for _ in range(12)]
    fake = [(torch.rand(3, 20, 20, generator=gen) * 0.6) for _ in range(12)]
    extractor = TinyFeatures()
    fid = M.frechet_distance(extractor, fake, real)
    fr = torch.cat([extractor(M.to_uint8(x)) for x in real]).double().numpy()
    ff = torch.cat([extractor(M.to_uint8(x)) for x in fake]).double().numpy()
    mu1, mu2 = fr.mean(0), ff.mean(0)
    s1, s2 = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert fid == pytest.approx(expected, rel=1e-3)
    assert M.frechet_distance(extractor, real, real) == pytest.approx(0.0, abs=1e-3)


def test_missing_weights_are_listed_with_where_they_go(hub_dir, tmp_path):
    lines = M.missing_weights(M.METRICS, M.MetricWeights())
    assert [line.split(":")[0] for line in lines] == ["clip", "lpips-alex", "lpips-vgg", "lpips-squeeze", "fid"]
    assert str(hub_dir / "alexnet-owt-7be5be79.pth") in lines[1] and "download.pytorch.org" in lines[1]
    assert "weights-inception-2015-12-05-6726825d.pth" in lines[4]
    with pytest.raises(M.MissingWeights, match=r"nothing is downloaded(.|\n)*lpips-vgg(.|\n)*fid"):
        M.evaluate_pairs([("x", tmp_path / "a.png", tmp_path / "b.png")], ["psnr", "lpips", "fid"])
    with pytest.raises(M.MissingWeights, match="lpips-alex"):
        M.lpips_model("alex")


def test_evaluate_pairs_averages_per_pair_and_pools_fid(tmp_path, tiny_clip, random_alexnet):
    from PIL import Image

    gen = np.random.default_rng(0)
    pairs = []
    for i in range(4):
        target = gen.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        generated = gen.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # other size: resized to the target's
        Image.fromarray(target).save(tmp_path / f"t{i}.png")
        Image.fromarray(generated).save(tmp_path / f"g{i}.png")
        pairs.append((f"s{i}", tmp_path / f"g{i}.png", tmp_path / f"t{i}.png"))
    weights = M.MetricWeights(clip_model=str(tiny_clip), lpips_nets=("alex",))
    result = M.evaluate_pairs(pairs, M.METRICS, weights, networks={"fid": TinyFeatures()})
    assert set(result.values) == {"psnr", "clip", "lpips_alex", "fid"} and result.n == 4
    assert result.values["psnr"] == pytest.approx(np.mean([r["psnr"] for r in result.per_sample]))
    row = result.paper_row("alex")
    assert list(row) == list(M.PAPER_COLUMNS) and row["EgoVLP"] is None and row["FID"] == result.values["fid"]
    table = M.results_markdown({"ours": row})
    assert table.splitlines()[0] == "| Method | EgoVLP | EgoVLP+ | CLIP | FID | PSNR | LPIPS | BLIP-B | BLIP-L |"


def test_clip_metric_loads_the_full_clip_that_make_tiny_model_writes(tmp_path):
    """``egoforge make tiny-model clip`` writes a full CLIPModel (as openai/clip-vit-large-patch14 is); the metric
    loads its vision tower with projection from that folder (it failed on a projection size mismatch)."""
    import torch

    from egoforge.lego import metrics as M
    from egoforge.testing.ego3s_data import build_tiny_clip

    encoder = M.ClipImageEncoder(build_tiny_clip(tmp_path / "clip"))
    embeddings = encoder(torch.rand(2, 3, 40, 56))
    assert embeddings.shape == (2, 16)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)
