"""Weighted kNN classification on CLS features over any ImageFolder dataset (DINO's protocol: k=20, T=0.07).

The official evaluation (``eval_knn_conv_stem_cls.py``) is not public; it reuses DINO's, whose defaults these are
([INFERENCE]). Features are L2-normalised CLS hidden states; each test image's k nearest training images vote with
weight exp(cosine / T).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader


def knn_scores(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
               num_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Class scores ``[N_test, C]``: the sum of exp(sim / T) over the k most similar training samples per class.

    Features must be L2-normalised (cosine similarity)."""
    k = min(k, train_features.shape[0])
    scores = []
    for start in range(0, test_features.shape[0], chunk):
        similarity = test_features[start:start + chunk] @ train_features.T
        top_sim, top_index = similarity.topk(k, dim=1)
        votes = F.one_hot(train_labels[top_index], num_classes).to(top_sim.dtype)
        scores.append((votes * (top_sim / temperature).exp().unsqueeze(-1)).sum(1))
    return torch.cat(scores)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent (k capped at the number of classes)."""
    result = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        result[f"top{k}"] = 100.0 * (top == labels[:, None]).any(1).float().mean().item()
    return result


@torch.no_grad()
def extract_features(backbone, dataset, batch_size: int = 64, device: str = "cpu", num_workers: int = 0,
                     progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised CLS features and labels of an (image, label) dataset."""
    from tqdm import tqdm

    backbone = backbone.to(device).eval()
    features, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    for images, targets in tqdm(loader, desc="features", unit="batch", disable=not progress):
        features.append(F.normalize(backbone(images.to(device)).pooler_output.float(), dim=-1).cpu())
        labels.append(targets)
    return torch.cat(features), torch.cat(labels)


def image_folder(root: str | os.PathLike, image_size: int):
    from torchvision.datasets import ImageFolder

    from egoforge.egoagent.data.transforms import eval_transform

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: ImageFolder root not found (expected <root>/<class>/<image>)")
    return ImageFolder(str(root), transform=eval_transform(image_size))


def evaluate_knn(backbone, train_dir: str | os.PathLike, val_dir: str | os.PathLike, image_size: int,
                 k: int = 20, temperature: float = 0.07, batch_size: int = 64, device: str = "cpu",
                 num_workers: int = 0, progress: bool = True) -> dict:
    train_set, val_set = image_folder(train_dir, image_size), image_folder(val_dir, image_size)
    if train_set.classes != val_set.classes:
        raise ValueError(f"{val_dir}: classes {val_set.classes} differ from {train_dir}: {train_set.classes}")
    train_features, train_labels = extract_features(backbone, train_set, batch_size, device, num_workers, progress)
    val_features, val_labels = extract_features(backbone, val_set, batch_size, device, num_workers, progress)
    scores = knn_scores(train_features, train_labels, val_features, len(train_set.classes), k, temperature)
    return {**topk_accuracy(scores, val_labels), "k": k, "temperature": temperature,
            "classes": len(train_set.classes), "train_images": len(train_set), "val_images": len(val_set),
            "chance_top1": 100.0 / len(train_set.classes)}


def knn_table(results: dict, model: str) -> tuple[dict[str, dict], list[str]]:
    """(rows, columns) of results.md: the model and chance, accuracies in percent."""
    columns = ["top-1 (%)", "top-5 (%)"]
    rows = {model: {columns[0]: results["top1"], columns[1]: results["top5"]},
            "chance": {columns[0]: results["chance_top1"], columns[1]: min(100.0, 5 * results["chance_top1"])}}
    return rows, columns
