"""Initial rewards for LFP (LFP paper, Table 2), selectable by name.

Every reward is per sample, shape `[N, C]`, computed from the linear outputs `o` and the
one-hot target `y`. `sign(0) = 1` throughout, as the paper defines it.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from quant.errors import ConfigError


def sign(x: Tensor) -> Tensor:
    """`sign` with `sign(0) = 1` (LFP paper, Sec. 3.1.3)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def correct_class(o: Tensor, y: Tensor) -> Tensor:
    """#1: `sign(o_c) · 1(y_c = 1)`: push the true class up, nothing else."""
    return sign(o) * y


def false_positive(o: Tensor, y: Tensor) -> Tensor:
    """#2 (Eq. 17): `−1(∃c'. y_c' = 1 ∧ o_c > o_c') · sign(o_c)`: punish outranking classes."""
    true_output = (o * y).sum(1, keepdim=True)
    return -((o > true_output) & (y == 0)).to(o.dtype) * sign(o)


def softmax_ce(o: Tensor, y: Tensor) -> Tensor:
    """#3: `o_c (y_c − softmax(o)_c)`; with Theorem 1 the softmax cross-entropy equivalent."""
    return o * (y - torch.softmax(o, dim=1))


def sigmoid_ce(o: Tensor, y: Tensor) -> Tensor:
    """#4: `o_c (y_c − σ(o_c))`; the sigmoid (binary) cross-entropy equivalent."""
    return o * (y - torch.sigmoid(o))


def snn_spike_count(spikes: Tensor, y: Tensor) -> Tensor:
    """Eq. A.4 on output spike trains `o` `[T, N, C]` (not logits); per step, `[T, N, C]`.

    `1 − σ(Σ_t o_c,t − ⌊T/2⌋)` for the true class, `−o_c,t (1 − σ(Σ_t |o_c,t − 1| − ⌊T/2⌋))`
    for the others: as the reference's `SnnCorrectClassRewardSpikesRateCoded`, which
    floors T/2 and gates the wrong-class term by the step's spike (a silent wrong class is
    left alone). Only the spiking rules use it.
    """
    half = spikes.shape[0] // 2
    hit = 1 - torch.sigmoid(spikes.sum(0) - half)
    miss = 1 - torch.sigmoid((spikes - 1).abs().sum(0) - half)
    return torch.where(y > 0, hit, -spikes * miss)


REWARDS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "correct_class": correct_class,
    "false_positive": false_positive,
    "softmax_ce": softmax_ce,
    "sigmoid_ce": sigmoid_ce,
}


def get_reward(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    if name not in REWARDS:
        raise ConfigError(f"reward: unknown reward {name!r}; choose one of {', '.join(REWARDS)}")
    return REWARDS[name]
