"""Sparsity and prunability of trained networks (LFP paper, Sec. 4.1 and App. A.7.4).

The paper argues that LFP's implicit weight scaling (Theorem 1: `d_w ∝ |w|`) yields
sparser models: per-layer Gini coefficients of the weight magnitudes are higher (Fig. 7),
and accuracy survives more pruning (Fig. 8). This module measures both:

* `gini` / `layer_gini`: the Gini coefficient (Hurley & Rickard, 2009) of each layer's
  weight magnitudes, as in Fig. 7 (bottom).
* `prune_mask` / `apply_masks` / `pruning_curve`: unstructured pruning of a given
  percentage of connections without re-training (A.7.4), by one of three criteria:
  smallest |w| within each layer (`magnitude_local`), smallest |w| across all layers
  (`magnitude_global`), smallest absolute LRP-ε relevance summed over a reference set,
  across all layers (`relevance`).

As in A.7.4, BatchNorm is canonized into the preceding layer before any criterion is
computed (`canonize`), since BN makes the preceding weights' scale arbitrary. Masks cover
weights only, never biases. Nothing here mutates the caller's network: criteria run on
copies and `apply_masks` returns a pruned copy unless `inplace=True`.

Deviation to know about: A.7.4 prunes convolutional layers only (after Yeom et al.,
2021). The networks here are mostly fully connected, so the default prunes every block's
weights; `PruneConfig(layers="conv")` restores the paper's setting.
"""

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import Network
from sim.rules.lfp import LFP
from sim.rules.rewards import REWARDS, get_reward

Method = Literal["magnitude_local", "magnitude_global", "relevance"]
METHODS: tuple[str, ...] = ("magnitude_local", "magnitude_global", "relevance")


def gini(values: Tensor | np.ndarray | Sequence[float]) -> float:
    """Gini coefficient of `|values|` (Hurley & Rickard, 2009; LFP paper Sec. 4.1, Fig. 7).

    With `c_(1) ≤ … ≤ c_(N)` the sorted magnitudes,

        G(c) = 1 − 2 Σ_k (c_(k) / ‖c‖₁) · (N − k + ½) / N,

    which is 0 for equal magnitudes and 1 − 1/N for a single nonzero entry (its maximum
    for length N). It is scale invariant, so the paper's per-layer max-normalisation
    does not change it. An all-zero vector (0/0 above) is defined as 0: all its entries
    are equal, like the uniform vector. Computed in float64.
    """
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    c = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n = c.size
    if n == 0:
        raise ConfigError("gini: needs at least one value, got an empty input")
    total = c.sum()
    if total == 0:
        return 0.0
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(1.0 - 2.0 * np.sum((c / total) * (n - k + 0.5) / n))


def canonize(net: Network) -> Network:
    """A copy with every BatchNorm folded into its block's layer (LFP paper, A.7.4).

    With the running statistics, `n = γ (z − μ) / √(σ² + ϵ) + β` is linear in z, so
    `W' = s W`, `b' = s (b − μ) + β` with `s = γ / √(σ² + ϵ)` per output unit gives the
    same network in eval mode. The paper canonizes before computing Gini coefficients
    and pruning criteria because BN makes the preceding weights' magnitude arbitrary.
    Networks without BN come back as a plain copy.
    """
    out = copy.deepcopy(net)
    with torch.no_grad():
        for block in out.blocks:
            norm = block.norm
            if norm is None:
                continue
            mean = norm.running_mean
            var = norm.running_var
            gamma = norm.weight if norm.weight is not None else torch.ones_like(mean)
            beta = norm.bias if norm.bias is not None else torch.zeros_like(mean)
            scale = gamma / torch.sqrt(var + norm.eps)
            weight = block.layer.weight
            weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))
            bias = block.layer.bias
            bias.copy_((bias - mean) * scale + beta)
            block.norm = None
    return out


def layer_gini(net: Network, canonize_bn: bool = True) -> list[float]:
    """Gini coefficient of each block's weights, input to output (Fig. 7, bottom).

    BatchNorm is canonized first (A.7.4) unless `canonize_bn=False`; biases are excluded.
    """
    source = canonize(net) if canonize_bn else net
    return [gini(block.layer.weight) for block in source.blocks]


@dataclass(frozen=True)
class PruneConfig:
    """How pruning criteria are computed.

    `layers`: "all" prunes every block's weights; "conv" only convolutional ones, as
    the paper (A.7.4, after Yeom et al., 2021). `canonize_bn`: fold BatchNorm first
    (A.7.4). `epsilon`, `reward`: the LRP-ε stabiliser and initial reward of the
    relevance criterion (LFP Eqs. 8–9, Table 2). `chunk`: reference samples per
    forward pass, which bounds memory and does not change the summed relevance.
    """

    layers: Literal["all", "conv"] = "all"
    canonize_bn: bool = True
    epsilon: float = 1e-6
    reward: str = "softmax_ce"
    chunk: int = 1000

    def __post_init__(self) -> None:
        if self.layers not in ("all", "conv"):
            raise ConfigError(f"layers must be 'all' or 'conv', got {self.layers!r}")
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"epsilon must be a finite number >= 0, got {self.epsilon}")
        if self.reward not in REWARDS:
            raise ConfigError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.chunk < 1:
            raise ConfigError(f"chunk must be >= 1, got {self.chunk}")


def relevance_scores(
    net: Network,
    x: Tensor,
    target: Tensor,
    epsilon: float = 1e-6,
    reward: str = "softmax_ce",
    chunk: int = 1000,
    canonize_bn: bool = True,
) -> list[Tensor]:
    """Per-weight pruning relevance `|Σ_n R_ij|` of each block (LFP paper, A.7.4).

    A.7.4 applies LRP-ε, sums each connection's relevance over the reference set and
    uses the absolute sum. LRP-ε's connection relevance is LFP's Eq. 8,

        R_ij = a_i w_ij / (z_j + sign(z_j) ε) · r_j,

    summed over samples (and, for convolutions, over every position sharing the
    weight). LFP's feedback (Eq. 9) is the same sum scaled by |w| instead of w:
    `d_w = |w| Σ a_i r_j / stab(z_j)`, so `|Σ R| = |d_w|`, and the project's LFP rule
    computes it: `.grad = −d_w` per chunk, summed, then the absolute value. The initial
    reward `r` is computed from the output layer's weighted sum (the logits) with
    `reward` (default Table 2 #3, softmax cross-entropy, the reward the paper's pruned
    models were trained with; the paper does not name LRP's initial relevance).

    `target` is one-hot `[N, C]`. The network is not touched: the rule runs on a copy
    (canonized unless `canonize_bn=False`), with every weight made trainable there so
    frozen layers get scores too.
    """
    if len(x) != len(target) or len(x) == 0:
        raise ConfigError(
            f"relevance_scores: need matching non-empty x and target, got {len(x)} "
            f"and {len(target)} samples"
        )
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1, got {chunk}")
    model = canonize(net) if canonize_bn else copy.deepcopy(net)
    model.requires_grad_(True)
    model.eval()
    rule = LFP(model, reward=reward, epsilon=epsilon)
    initial = get_reward(reward)
    totals = [torch.zeros_like(block.layer.weight) for block in model.blocks]
    with torch.enable_grad():
        for start in range(0, len(x), chunk):
            traces = model.trace(x[start : start + chunk])
            logits = traces[-1].z.detach()
            rule.propagate_rewards(traces, initial(logits, target[start : start + chunk]))
            for total, block in zip(totals, model.blocks, strict=True):
                total.add_(block.layer.weight.grad)
    return [total.abs() for total in totals]


def _eligible(net: Network, config: PruneConfig) -> list[bool]:
    return [config.layers == "all" or isinstance(b.layer, nn.Conv2d) for b in net.blocks]


def _count(fraction: float, n: int) -> int:
    """round(fraction · n), halves rounded up (a stated, deterministic rule)."""
    return min(n, math.floor(fraction * n + 0.5))


def _lowest(scores: Tensor, k: int) -> Tensor:
    """Boolean mask of the k lowest scores; ties go to the lower flat index (stable sort)."""
    flat = scores.flatten()
    pruned = torch.zeros(flat.numel(), dtype=torch.bool)
    order = torch.sort(flat, stable=True).indices
    pruned[order[:k]] = True
    return pruned


def criterion_scores(
    net: Network,
    method: Method,
    x: Tensor | None = None,
    target: Tensor | None = None,
    config: PruneConfig = PruneConfig(),
) -> list[Tensor]:
    """Per-weight importance of each block under `method` (lower is pruned first)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "relevance":
        if x is None or target is None:
            raise ConfigError("method 'relevance' needs a reference batch: pass x and target")
        return relevance_scores(
            net, x, target, config.epsilon, config.reward, config.chunk, config.canonize_bn
        )
    source = canonize(net) if config.canonize_bn else net
    return [block.layer.weight.detach().abs().clone() for block in source.blocks]


def masks_from_scores(
    scores: Sequence[Tensor],
    fraction: float,
    local: bool,
    eligible: Sequence[bool] | None = None,
) -> list[Tensor]:
    """Keep-masks (True = kept) pruning `fraction` of the eligible weights (A.7.4).

    `local`: round(fraction · n_l) lowest in each eligible layer. Otherwise one ranking
    over all eligible weights, i.e. a single threshold, pruning round(fraction · Σ n_l).
    Ties are broken by position (layer order, then flat index), so the pruned sets are
    nested as `fraction` grows.
    """
    if not (0.0 <= fraction <= 1.0):
        raise ConfigError(f"fraction must be in [0, 1], got {fraction}")
    eligible = list(eligible) if eligible is not None else [True] * len(scores)
    masks = [torch.ones(s.shape, dtype=torch.bool) for s in scores]
    chosen = [i for i, ok in enumerate(eligible) if ok]
    if local:
        for i in chosen:
            pruned = _lowest(scores[i].detach().cpu(), _count(fraction, scores[i].numel()))
            masks[i] = ~pruned.view(scores[i].shape)
        return masks
    if not chosen:
        return masks
    flat = torch.cat([scores[i].detach().cpu().flatten() for i in chosen])
    pruned = _lowest(flat, _count(fraction, flat.numel()))
    for i, part in zip(chosen, pruned.split([scores[i].numel() for i in chosen]), strict=True):
        masks[i] = ~part.view(scores[i].shape)
    return masks


def prune_mask(
    net: Network,
    fraction: float,
    method: Method,
    x: Tensor | None = None,
    target: Tensor | None = None,
    config: PruneConfig = PruneConfig(),
) -> list[Tensor]:
    """Per-block weight keep-masks pruning `fraction` of connections by `method` (A.7.4).

    `relevance` is global, as in the paper, and needs a reference batch `x`, `target`.
    """
    scores = criterion_scores(net, method, x, target, config)
    return masks_from_scores(
        scores, fraction, local=method == "magnitude_local", eligible=_eligible(net, config)
    )


def apply_masks(net: Network, masks: Sequence[Tensor], inplace: bool = False) -> Network:
    """Zero each block's masked-out weights; a pruned copy unless `inplace` (biases kept).

    Masks computed on the canonized network apply unchanged to the original: folding BN
    scales rows of W by nonzero factors, so pruning and canonizing commute.
    """
    if len(masks) != len(net.blocks):
        raise ConfigError(f"need one mask per block ({len(net.blocks)}), got {len(masks)}")
    out = net if inplace else copy.deepcopy(net)
    with torch.no_grad():
        for block, mask in zip(out.blocks, masks, strict=True):
            weight = block.layer.weight
            if mask.shape != weight.shape:
                raise ConfigError(
                    f"mask of shape {tuple(mask.shape)} for weight {tuple(weight.shape)}"
                )
            weight.mul_(mask.to(device=weight.device, dtype=weight.dtype))
    return out


def pruning_curve(
    net: Network,
    evaluate_fn: Callable[[Network], float],
    fractions: Sequence[float],
    method: Method,
    x: Tensor | None = None,
    target: Tensor | None = None,
    config: PruneConfig = PruneConfig(),
) -> list[tuple[float, float]]:
    """`(fraction, evaluate_fn(pruned copy))` for each fraction (Fig. 8, no re-training).

    The criterion is computed once on the unpruned network, so the pruned sets are
    nested and the number of pruned weights grows with the fraction; fraction 0
    evaluates an unpruned copy. `net` itself is never modified.
    """
    scores = criterion_scores(net, method, x, target, config)
    eligible = _eligible(net, config)
    curve = []
    for fraction in fractions:
        masks = masks_from_scores(scores, fraction, method == "magnitude_local", eligible)
        curve.append((float(fraction), float(evaluate_fn(apply_masks(net, masks)))))
    return curve
