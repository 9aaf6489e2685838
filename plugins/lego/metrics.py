"""Image metrics between generated and ground-truth action frames, as the official ``all_metrics_in_one.py``.

* **CLIP**: cosine of CLIP image embeddings (the paper: ViT-L/14); images resized to the model's input size
  (bicubic) and normalised with CLIP's mean and std.
* **PSNR**: ``data_range = 1`` per image pair, averaged (torchmetrics).
* **LPIPS**: alex, vgg and squeeze backbones (torchmetrics), averaged per pair. The official script feeds [0, 1]
  images to an LPIPS that expects [-1, 1]; ``lpips_as_official=True`` reproduces that, the default rescales.
* **FID**: Inception-v3 pool features of all generated vs all ground-truth frames (torchmetrics on torch-fidelity's
  Inception; the paper used pytorch_fid on the same TF-Inception weights).
* **EgoVLP / EgoVLP+** (the paper's main metric): cosine of EgoVLP video embeddings of the generated and the
  ground-truth frame, each as a clip of the frame repeated (EgoVLP+: after the source frame), from the user's
  released checkpoint (:mod:`egoforge.lego.egovlp`).

Generated frames are resized to their ground truth's size when the two differ (the official script does this for
Epic-Kitchens). The pretrained networks are never downloaded: :func:`missing_weights` says which files are absent
and where they go, and every torch pickle is first opened with ``weights_only=True`` before a library loads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

METRICS = ("clip", "psnr", "lpips", "fid")
# computed when the user supplies the released EgoVLP checkpoint (egovlp.pth / epic_mir_plus.pth)
EGOVLP_METRICS = ("egovlp", "egovlp_plus")
ALL_METRICS = METRICS + EGOVLP_METRICS
LPIPS_NETS = ("alex", "vgg", "squeeze")
# The paper's table columns (BLIP-B / BLIP-L need the BLIP captioners and are not computed).
PAPER_COLUMNS = ("EgoVLP", "EgoVLP+", "CLIP", "FID", "PSNR", "LPIPS", "BLIP-B", "BLIP-L")

# file name in torch's hub cache, and where it comes from
TORCHVISION_BACKBONES = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1-b8a52dc0.pth", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}
FID_INCEPTION = ("weights-inception-2015-12-05-6726825d.pth",
                 "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")


class MissingWeights(FileNotFoundError):
    """Pretrained metric networks are not on disk; the message lists each file and where to put it."""


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _checked_torch_file(path: Path) -> Path:
    """Open a torch pickle with ``weights_only=True`` first: libraries that load it afterwards do so unrestricted."""
    torch.load(path, map_location="cpu", weights_only=True)
    return path


@dataclass
class MetricWeights:
    clip_model: str | None = None  # a local transformers CLIP folder (e.g. openai/clip-vit-large-patch14)
    fid_weights: str | None = None  # torch-fidelity's Inception file; default: torch's hub cache
    lpips_nets: tuple[str, ...] = LPIPS_NETS
    egovlp_checkpoint: str | None = None  # egovlp.pth (Ego4D) or epic_mir_plus.pth (Epic-Kitchens)
    egovlp_dataset: str | None = None  # ego4d | epickitchen: the clip length (4 | 16 frames), as LEGO's egovlp_args
    egovlp_config: object | None = None  # an EgoVLPConfig with other sizes (tests); default: the released base model


def missing_weights(metrics: Sequence[str], weights: MetricWeights) -> list[str]:
    """One line per absent file: what it is for, where it must be, and where it comes from."""
    lines = []
    if "clip" in metrics:
        if not weights.clip_model:
            lines.append("clip: pass --clip-model DIR, a local transformers CLIP checkpoint (the paper: "
                         "openai/clip-vit-large-patch14, e.g. `huggingface-cli download openai/clip-vit-large-patch14"
                         " --local-dir DIR` on a machine with hub access)")
        elif not any(Path(weights.clip_model).glob("*.safetensors")):
            lines.append(f"clip: {weights.clip_model} has no .safetensors weights")
    if "lpips" in metrics:
        for net in weights.lpips_nets:
            name, url = TORCHVISION_BACKBONES[net]
            if not (hub_checkpoints() / name).is_file():
                lines.append(f"lpips-{net}: {hub_checkpoints() / name} (from {url}; torch's hub cache, "
                             "TORCH_HOME moves it)")
    if "fid" in metrics:
        path = Path(weights.fid_weights) if weights.fid_weights else hub_checkpoints() / FID_INCEPTION[0]
        if not path.is_file():
            lines.append(f"fid: {path} (from {FID_INCEPTION[1]}; or pass --fid-weights FILE)")
    for metric in [m for m in EGOVLP_METRICS if m in metrics]:
        from egoforge.lego.egovlp import WHERE_TO_GET

        if not weights.egovlp_checkpoint:
            lines.append(f"{metric}: pass --egovlp-checkpoint FILE (egovlp.pth for Ego4D, epic_mir_plus.pth for "
                         f"Epic-Kitchens; {WHERE_TO_GET})")
        elif not Path(weights.egovlp_checkpoint).is_file():
            lines.append(f"{metric}: {weights.egovlp_checkpoint} not found ({WHERE_TO_GET})")
    return lines


# --- the metric networks ----------------------------------------------------------------------------------------


class ClipImageEncoder(torch.nn.Module):
    """Normalised CLIP image embeddings of [0, 1] images (the official ``ClipSimilarity.encode_image``)."""

    MEAN = (0.48145466, 0.4578275, 0.40821073)
    STD = (0.26862954, 0.26130258, 0.27577711)

    def __init__(self, model_dir: str | os.PathLike) -> None:
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        self.model = CLIPVisionModelWithProjection.from_pretrained(str(model_dir), use_safetensors=True).eval()
        self.size = self.model.config.image_size
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = F.interpolate(images.float(), size=(self.size, self.size), mode="bicubic", align_corners=False)
        embeds = self.model(pixel_values=(images - self.mean) / self.std).image_embeds
        return embeds / embeds.norm(dim=-1, keepdim=True)


def clip_similarity(encoder: Callable[[torch.Tensor], torch.Tensor], generated: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(encoder(generated), encoder(target), dim=-1)


def psnr(generated: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(generated.float(), target.float(), data_range=1.0).item()


def lpips_model(net: str):
    """torchmetrics' LPIPS with the torchvision backbone from torch's hub cache (checked, never downloaded)."""
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    name, url = TORCHVISION_BACKBONES[net]
    path = hub_checkpoints() / name
    if not path.is_file():
        raise MissingWeights(f"lpips-{net}: {path} (from {url})")
    _checked_torch_file(path)
    return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean", normalize=True).eval()


def lpips_score(model, generated: torch.Tensor, target: torch.Tensor, as_official: bool = False) -> float:
    """LPIPS of [0, 1] images; ``as_official`` passes them unscaled as if they were in [-1, 1]."""
    with torch.no_grad():
        if as_official:
            return model.net(generated.float(), target.float(), normalize=False).mean().item()
        return model.net(generated.float(), target.float(), normalize=True).mean().item()


def inception_extractor(weights: str | None = None):
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = Path(weights) if weights else hub_checkpoints() / FID_INCEPTION[0]
    if not path.is_file():
        raise MissingWeights(f"fid: {path} (from {FID_INCEPTION[1]})")
    _checked_torch_file(path)
    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                              feature_extractor_weights_path=str(path))


def frechet_distance(extractor, generated: Iterable[torch.Tensor], targets: Iterable[torch.Tensor]) -> float:
    """FID with torchmetrics; ``extractor`` maps uint8 images ``(n, 3, H, W)`` to features (Inception by default)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=extractor, normalize=False, reset_real_features=True)
    for image in targets:
        fid.update(to_uint8(image), real=True)
    for image in generated:
        fid.update(to_uint8(image), real=False)
    return fid.compute().item()


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    image = image if image.dim() == 4 else image.unsqueeze(0)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


# --- pairs and the whole evaluation ------------------------------------------------------------------------------


def load_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1]; resized (bilinear, antialiased) to ``size`` = (H, W) when given and different."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        tensor = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    if size is not None and tuple(tensor.shape[1:]) != tuple(size):
        tensor = F.interpolate(tensor[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return tensor.clamp(0, 1)


@dataclass
class EvaluationResult:
    n: int
    values: dict[str, float] = field(default_factory=dict)
    per_sample: list[dict] = field(default_factory=list)

    def paper_row(self, lpips_net: str = "alex") -> dict[str, float | None]:
        v = self.values
        return {"EgoVLP": v.get("egovlp"), "EgoVLP+": v.get("egovlp_plus"), "CLIP": v.get("clip"),
                "FID": v.get("fid"), "PSNR": v.get("psnr"),
                "LPIPS": v.get(f"lpips_{lpips_net}"), "BLIP-B": None, "BLIP-L": None}


def load_egovlp(weights: MetricWeights):
    """The user's EgoVLP checkpoint as FrozenInTime with the clip length of ``weights.egovlp_dataset``."""
    from egoforge.lego.egovlp import FrozenInTime, config_for

    if weights.egovlp_dataset is None:
        raise ValueError("EgoVLP needs the dataset (ego4d: 4-frame clips, epickitchen: 16; --egovlp-dataset)")
    return FrozenInTime.from_checkpoint(weights.egovlp_checkpoint,
                                        config_for(weights.egovlp_dataset, weights.egovlp_config))


def evaluate_pairs(pairs: Sequence[tuple[str, Path, Path]], metrics: Sequence[str] = METRICS,
                   weights: MetricWeights | None = None, lpips_as_official: bool = False,
                   networks: dict | None = None, progress: Callable[[Iterable], Iterable] | None = None
                   ) -> EvaluationResult:
    """Metrics over ``(id, generated path, ground-truth path)`` pairs; EgoVLP+ needs a fourth element, the action's
    source frame (:func:`pairs_from_index` adds it).

    ``networks`` may hold ready-made metric networks (``clip``: image encoder, ``lpips_<net>``: LPIPS module,
    ``fid``: feature extractor, ``egovlp``: FrozenInTime); otherwise they are loaded from the weights named in
    ``weights`` and an error lists every missing file at once.
    """
    weights = weights or MetricWeights()
    networks = dict(networks or {})
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {ALL_METRICS}")
    if "egovlp_plus" in metrics:
        no_context = [p[0] for p in pairs if len(p) < 4 or p[3] is None]
        if no_context:
            raise ValueError(f"egovlp_plus needs each pair's source frame; {len(no_context)} pairs have none "
                             f"(first: {no_context[0]})")
    needed = [m for m in metrics if not (m in networks or (m == "lpips" and any(k.startswith("lpips_")
                                                                               for k in networks))
                                         or (m in EGOVLP_METRICS and "egovlp" in networks))]
    missing = missing_weights(needed, weights)
    if missing:
        raise MissingWeights("metric weights are missing (nothing is downloaded):\n  " + "\n  ".join(missing))
    if "clip" in metrics and "clip" not in networks:
        networks["clip"] = ClipImageEncoder(weights.clip_model)
    if "lpips" in metrics and not any(k.startswith("lpips_") for k in networks):
        for net in weights.lpips_nets:
            networks[f"lpips_{net}"] = lpips_model(net)
    if "fid" in metrics and "fid" not in networks:
        networks["fid"] = inception_extractor(weights.fid_weights)
    if set(EGOVLP_METRICS) & set(metrics) and "egovlp" not in networks:
        networks["egovlp"] = load_egovlp(weights)
    result = EvaluationResult(n=len(pairs))
    sums: dict[str, float] = {}
    generated_all, targets_all = [], []
    for sample_id, gen_path, gt_path, *context_path in (progress or (lambda x: x))(pairs):
        target = load_image(gt_path)
        generated = load_image(gen_path, size=tuple(target.shape[1:]))
        record: dict = {"id": sample_id}
        if set(EGOVLP_METRICS) & set(metrics):
            egovlp_scores(networks["egovlp"], metrics, gen_path, target, context_path, record)
        if "psnr" in metrics:
            record["psnr"] = psnr(generated[None], target[None])
        if "clip" in metrics:
            record["clip"] = clip_similarity(networks["clip"], generated[None], target[None]).item()
        for key in [k for k in networks if k.startswith("lpips_")] if "lpips" in metrics else []:
            record[key] = lpips_score(networks[key], generated[None], target[None], lpips_as_official)
        for key, value in record.items():
            if key != "id":
                sums[key] = sums.get(key, 0.0) + value
        result.per_sample.append(record)
        if "fid" in metrics:
            generated_all.append(generated)
            targets_all.append(target)
    result.values = {key: total / max(1, len(pairs)) for key, total in sums.items()}
    if "fid" in metrics:
        result.values["fid"] = frechet_distance(networks["fid"], generated_all, targets_all)
    return result


def egovlp_scores(model, metrics: Sequence[str], gen_path: Path, target: torch.Tensor, context_path: list,
                  record: dict) -> None:
    """EgoVLP / EgoVLP+ of one pair into ``record``. The generated frame is used at its saved size (the official
    script does not resize it to the ground truth's; each clip is resized and centre-cropped on its own)."""
    from egoforge.lego.egovlp import egovlp_similarity

    generated = load_image(gen_path)
    if "egovlp" in metrics:
        record["egovlp"] = egovlp_similarity(model, generated, target)
    if "egovlp_plus" in metrics:
        record["egovlp_plus"] = egovlp_similarity(model, generated, target, context=load_image(context_path[0]))


def egovlp_dataset_of(rows: Sequence[dict]) -> str:
    """``ego4d`` or ``epickitchen`` from the rows' source frames (``ego4d.fho/...`` / ``epickitchen/...``, as
    ``egoforge lego convert`` writes them); mixed or other paths are an error asking for ``--egovlp-dataset``."""
    found = {Path(str(row.get("source", ""))).parts[0] if row.get("source") else "" for row in rows}
    names = {{"ego4d.fho": "ego4d", "ego4d": "ego4d", "epickitchen": "epickitchen"}.get(f) for f in found}
    if len(names) != 1 or None in names:
        raise ValueError(f"cannot tell the EgoVLP dataset from the source folders {sorted(found)[:4]}; pass "
                         "--egovlp-dataset ego4d|epickitchen")
    return names.pop()


def pairs_from_index(rows: Sequence[dict], generated_dir: str | os.PathLike, media_root: str | os.PathLike,
                     gt_dir: str | os.PathLike | None = None, with_source: bool = False) -> list[tuple]:
    """Pair each index row's generated frame with its ground truth (``gt_dir`` = a ``val_gt_for_metric`` folder
    laid out ``<clip>/<action>/<frame>``, or by default the row's target frame under ``media_root``);
    ``with_source`` appends the row's source frame, EgoVLP+'s context (the official script takes the first frame
    of the action's ``val`` folder, which is the source frame)."""
    from egoforge.data.paths import resolve_under
    from egoforge.lego.sampling import output_name

    pairs = []
    for row in rows:
        generated = resolve_under(generated_dir, output_name(row))
        if not generated.is_file():
            raise FileNotFoundError(f"{generated}: no generated frame for {row['id']} (run `egoforge lego sample`)")
        if gt_dir is not None:
            gt = resolve_under(gt_dir, Path(output_name(row)).relative_to("images"))
        else:
            gt = resolve_under(media_root, row["target"])
        if not gt.is_file():
            raise FileNotFoundError(f"{gt}: no ground-truth frame for {row['id']}")
        if with_source:
            source = resolve_under(media_root, row["source"])
            if not source.is_file():
                raise FileNotFoundError(f"{source}: no source frame for {row['id']} (EgoVLP+ context)")
            pairs.append((row["id"], generated, gt, source))
        else:
            pairs.append((row["id"], generated, gt))
    return pairs


def results_markdown(rows: dict[str, dict[str, float | None]], columns: Sequence[str] = PAPER_COLUMNS) -> str:
    """A markdown table with the paper's metric columns (4 decimals: CLIP and LPIPS live in [0, 1])."""
    lines = ["| Method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in rows.items():
        cells = ["–" if row.get(c) is None else f"{row[c]:.4f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
