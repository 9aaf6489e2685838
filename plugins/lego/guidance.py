"""Classifier-free guidance for LEGO: which conditions a training sample drops, and how sampling combines them.

Pure tensor functions (no model), so the paper's scheme is readable and tested on its own.
"""

from __future__ import annotations

import torch


def dropout_masks(u: torch.Tensor, uncond: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (drop_text, drop_image) from ``u ~ U(0, 1)``, the InstructPix2Pix scheme LEGO trains with.

    The text prompt is dropped when ``u < 2 * uncond`` (10%) and the source image when
    ``uncond <= u < 3 * uncond`` (10%), so 5% of samples keep only the image, 5% drop both and 5% keep only the
    text. The VLLM features are dropped together with the text (see :func:`keep_vllm`).
    """
    drop_text = u < 2 * uncond
    drop_image = (u >= uncond) & (u < 3 * uncond)
    return drop_text, drop_image


def keep_vllm(drop_text: torch.Tensor) -> torch.Tensor:
    """The VLLM image and text features travel with the prompt: zeroed exactly when the text is dropped."""
    return ~drop_text


def dual_guidance(eps_text_image: torch.Tensor, eps_image: torch.Tensor, eps_none: torch.Tensor,
                  text_scale: float = 7.5, image_scale: float = 1.5) -> torch.Tensor:
    """eps = eps(0, 0) + s_T (eps(c_I, c_T) - eps(c_I, 0)) + s_I (eps(c_I, 0) - eps(0, 0)).

    ``eps_text_image`` sees the source image and the text (with the VLLM features), ``eps_image`` only the source
    image (null prompt, VLLM features zeroed) and ``eps_none`` neither (source latent zeroed too). With both scales
    at 1 this is just ``eps_text_image``.
    """
    return eps_none + text_scale * (eps_text_image - eps_image) + image_scale * (eps_image - eps_none)
