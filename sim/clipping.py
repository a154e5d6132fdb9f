"""Adaptive gradient clipping (Brock et al., 2021, "High-performance large-scale image
recognition without normalization", Sec. 4.1), which the LFP paper uses for its SNNs.

Unit-wise: for every output unit i (a row of a weight matrix, an output channel of a
convolution, an element of a bias), the update is rescaled so that

    ‖G_i‖ ≤ λ · max(‖W_i‖, ϵ)

Rules whose raw updates dwarf the weights (LFP through spiking layers sums a reward that
is not normalised to the weights' scale) then train with plain SGD.
"""

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def _unit_norms(x: Tensor) -> Tensor:
    """Norm per output unit, broadcastable against `x`."""
    if x.dim() <= 1:
        return x.abs()
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


@torch.no_grad()
def adaptive_clip_(params: Iterable[nn.Parameter], clip: float, eps: float = 1e-3) -> None:
    """Rescale each parameter's `.grad` in place, unit by unit, to at most `clip`·‖W_i‖."""
    for p in params:
        if p.grad is None:
            continue
        limit = clip * _unit_norms(p.detach()).clamp(min=eps)
        norm = _unit_norms(p.grad)
        scale = torch.where(norm > limit, limit / norm.clamp(min=1e-12), torch.ones_like(norm))
        p.grad.mul_(scale)
