"""Image transforms: DINO multi-crop for training, resize + centre crop for evaluation.

Augmentations draw from torch's global RNG; ``seeded`` runs a transform under a fixed seed inside a forked RNG so a
sample's crops depend only on (run seed, epoch, index). That makes resumed runs see exactly the crops an
uninterrupted run would, whatever the number of data-loader workers.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MultiCropSpec:
    """Stage-1 crops: 2 global 224 crops at scale (0.4, 1), 6 local 112 crops at scale (0.05, 0.4)."""

    global_size: int = 224
    local_size: int = 112
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    local_crops: int = 6
    # Official ``init_crop_size=300``: [INFERENCE] resize the short side to 300, then a random 300x300 crop.
    init_crop_size: int | None = 300
    # DINO's colour jitter, grayscale, blur and solarisation (the flip always applies). The paper recipes keep
    # them; the tiny CPU recipes turn them off so a 2-layer model learns within a hundred steps.
    photometric: bool = True


def _to_tensor_normalized() -> T.Compose:
    return T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class RandomGaussianBlur:
    """DINO's PIL Gaussian blur (radius uniform in [0.1, 2]) with probability ``p``, drawn from torch's RNG.
    PIL's filter is ~100x cheaper on CPU than torchvision's convolution for a single image."""

    def __init__(self, p: float, radius: tuple[float, float] = (0.1, 2.0)) -> None:
        self.p, self.radius = p, radius

    def __call__(self, image: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return image
        radius = self.radius[0] + float(torch.rand(())) * (self.radius[1] - self.radius[0])
        return image.filter(ImageFilter.GaussianBlur(radius=radius))


def _photometric(blur_p: float, solarize_p: float, enabled: bool = True) -> list:
    if not enabled:
        return [T.RandomHorizontalFlip()]
    jitter = T.RandomApply([T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8)
    ops = [T.RandomHorizontalFlip(), jitter, T.RandomGrayscale(p=0.2)]
    if blur_p > 0:
        ops.append(RandomGaussianBlur(blur_p))
    if solarize_p > 0:
        ops.append(T.RandomSolarize(threshold=128, p=solarize_p))
    return ops


class MultiCrop:
    """DINO's augmentation: global crop 1 (blur p=1), global crop 2 (blur p=0.1, solarise p=0.2), local crops
    (blur p=0.5). Returns ``(globals [2, 3, G, G], locals [n, 3, L, L])``."""

    def __init__(self, spec: MultiCropSpec) -> None:
        self.spec = spec
        bicubic = InterpolationMode.BICUBIC
        self.init = (T.Compose([T.Resize(spec.init_crop_size, interpolation=bicubic),
                                T.RandomCrop(spec.init_crop_size)]) if spec.init_crop_size else None)
        normalize = _to_tensor_normalized()
        global_crop = T.RandomResizedCrop(spec.global_size, scale=spec.global_scale, interpolation=bicubic)
        local_crop = T.RandomResizedCrop(spec.local_size, scale=spec.local_scale, interpolation=bicubic)
        photometric = spec.photometric
        self.global_1 = T.Compose([global_crop, *_photometric(1.0, 0.0, photometric), normalize])
        self.global_2 = T.Compose([global_crop, *_photometric(0.1, 0.2, photometric), normalize])
        self.local = T.Compose([local_crop, *_photometric(0.5, 0.0, photometric), normalize])

    def __call__(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        image = image.convert("RGB")
        if self.init is not None:
            image = self.init(image)
        globals_ = torch.stack([self.global_1(image), self.global_2(image)])
        if self.spec.local_crops == 0:
            return globals_, torch.empty(0, 3, self.spec.local_size, self.spec.local_size)
        return globals_, torch.stack([self.local(image) for _ in range(self.spec.local_crops)])


class TwoViews:
    """Stage 2: two global views of a frame (student and observer), DINO's global-crop recipe without
    the local crops."""

    def __init__(self, size: int, scale: tuple[float, float] = (0.4, 1.0), photometric: bool = True) -> None:
        self.crops = MultiCrop(MultiCropSpec(global_size=size, global_scale=scale, local_crops=0, init_crop_size=None,
                                             photometric=photometric))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.crops(image)[0]


def eval_transform(size: int, resize_ratio: float = 256 / 224) -> T.Compose:
    """Resize the short side to size * 256/224 and centre-crop ``size`` (DINO's kNN evaluation)."""
    return T.Compose([T.Resize(int(round(size * resize_ratio)), interpolation=InterpolationMode.BICUBIC),
                      T.CenterCrop(size), _to_tensor_normalized()])


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed from (run seed, epoch, sample index); distinct for distinct triples in practice."""
    value = (run_seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB)
    return value % (2**63 - 1)


@contextlib.contextmanager
def seeded(seed: int):
    """Run the body with torch's global CPU RNG seeded, restoring the previous RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
