"""AdamW parameter groups: weight decay on the weights, none on the parameters a trainer exempts."""

from __future__ import annotations

from collections.abc import Callable, Collection

from torch import nn

Exempt = Callable[[str, nn.Parameter], bool]


def bias_or_1d(name: str, param: nn.Parameter) -> bool:
    """DINO's rule (EgoAgent): biases and 1-D parameters (norms) get no weight decay."""
    return name.endswith(".bias") or param.ndim == 1


def below_2d(name: str, param: nn.Parameter) -> bool:
    """4M's default rule (EgoM2P): every parameter with fewer than 2 dimensions gets no weight decay."""
    return param.ndim < 2


def named(names: Collection[str]) -> Exempt:
    """Exempt exactly the parameters named (a model's ``no_weight_decay()``)."""
    names = set(names)
    return lambda name, param: name in names


def decay_groups(model: nn.Module, exempt: Exempt, weight_decay: float | None = None) -> list[dict]:
    """``[decay group, no-decay group]`` over the trainable parameters, in ``named_parameters`` order.

    With ``weight_decay`` None the decay group carries no ``weight_decay`` key (it takes the optimizer's default).
    """
    decay, skip = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (skip if exempt(name, param) else decay).append(param)
    first = {"params": decay} if weight_decay is None else {"params": decay, "weight_decay": weight_decay}
    return [first, {"params": skip, "weight_decay": 0.0}]
