"""Layer-wise feedback propagation, LFP-ε (Weber et al., LFP paper, Eqs. 8–9).

A reward `r_c` on each linear output is decomposed backwards, layer by layer, in
proportion to each input's contribution `z_ij = w_ij a_i` to `z_j` (the bias is a weight
on a constant 1):

    r_ij = z_ij / (z_j + sign(z_j) ε) · r_j,         r_i = Σ_j r_ij          (Eq. 8)
    d_wij = |w_ij| a_i / (z_j + sign(z_j) ε) · r_j                            (Eq. 9)

One division per post-neuron (`s_j = r_j / stab(z_j)`), then `r_i = a_i Σ_j w_ij s_j` and
`d_w = |w| ⊙ (s ⊗ a)`. Elementwise activations pass the reward unchanged (so they must be
sign preserving: tanh, ReLU; not sigmoid); max pooling routes it to the winner; dropout
and flatten pass it through. Rewards are maximised: the update is written as
`.grad = −d`, summed over the minibatch like the authors' reference code, so that the
paper's learning rates apply. No gradient of any loss is used.

Batch normalisation `n = γ z̃ + β`, `z̃ = (z − E[z]) / √(Var[z] + ϵ)` (Eqs. 10–12): the
scale and shift get `d_γ = |γ| z̃ r_n / stab(n)`, `d_β = |β| r_n / stab(n)`, and the reward
passes to `z` as `r_z = γ z / √(Var[z] + ϵ) · r_n / stab(n)` (the mean taken as zero, so
the reward is not shifted across 0). A sum skip `y = a + y_prev` splits the reward in
proportion to the two summands (Eq. 13).

LFP multiplies every update by |parameter|, so a parameter at zero never moves: networks
trained with LFP default to PyTorch's initialisation, whose biases are nonzero.
"""

from typing import ClassVar

import torch
from torch import Tensor

from sim.models.network import BlockTrace, Network
from sim.rules.base import (
    LearningRule,
    StepContext,
    StepResult,
    alignment_angle,
    backprop_deltas,
)
from sim.rules.rewards import get_reward, sign


def normalise_reward(reward: Tensor) -> Tensor:
    """The reference's `norm_backward`: rescale a layer's incoming reward to max |r| = 1.

    Keeps step-activated networks (where a does not shrink with z, so r / stab(z) explodes
    near z = 0) from blowing up; it breaks Theorem 1's scale, so it is off by default.
    """
    peak = reward.abs().max()
    return reward / torch.where(peak > 0, peak, torch.ones_like(peak))


def write_feedback(z: Tensor, params: list[torch.nn.Parameter], normed: Tensor) -> None:
    """`.grad = −|p| ⊙ ∂z/∂p · normed` (Eq. 9), summed over the minibatch (and time)."""
    if not params:
        return
    grads = torch.autograd.grad(z, params, normed, retain_graph=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = -(p.detach().abs() * g)


def stabilise(z: Tensor, epsilon: float) -> Tensor:
    """`z + sign(z) ε` with `sign(0) = 1`: the LFP-ε denominator."""
    return z + sign(z) * epsilon


class LFP(LearningRule):
    name = "lfp"
    output_activation: ClassVar[str] = "linear"
    options: ClassVar[tuple[str, ...]] = ("reward", "epsilon", "reward_norm")
    default_init: ClassVar[str] = "torch_default"  # a zero parameter never gets an update
    supports_skip: ClassVar[bool] = True

    def __init__(
        self,
        net: Network,
        seed: int = 0,
        reward: str = "softmax_ce",
        epsilon: float = 1e-6,
        reward_norm: bool = False,
    ) -> None:
        super().__init__(net, seed)
        self.reward = get_reward(reward)
        self.epsilon = epsilon
        self.reward_norm = reward_norm

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor | None:
        raise NotImplementedError("LFP propagates rewards in `step`, not gradient signals")

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        net = self.network
        traces = net.trace(x, generator)
        output = traces[-1].out.detach()
        signals: list[Tensor] = []
        self.propagate_rewards(traces, self.reward(output, target), signals)
        loss = self.loss(output, target).item()
        angles = None
        if track_alignment:
            angles = tuple(float("nan") for _ in traces[:-1])
            if not any(block.skip for block in net.blocks):  # BP's chain has no skip path
                # BP's δz for the softmax cross-entropy the default reward is equivalent to.
                bp = backprop_deltas(net, traces, torch.softmax(output, 1) - target)
                angles = tuple(alignment_angle(-signals[k], bp[k]) for k in range(len(traces) - 1))
        return StepResult(loss, output, angles)

    def propagate_rewards(
        self, traces: list[BlockTrace], reward: Tensor, signals: list[Tensor] | None = None
    ) -> list[Tensor]:
        """Write every block's feedback to `.grad`; return the reward at each block's input.

        Entry k of the result is the reward arriving at block k's input (entry 0: the
        network input), so conservation can be checked layer by layer. `signals`, if
        given, receives each block's `r_j / stab(z_j)`: under Theorem 1 it is BP's `−δz_j`,
        which is how LFP's alignment with BP is measured.
        """
        rewards = [reward]
        normed: list[Tensor] = []
        for k in reversed(range(len(traces))):
            reward_in, per_neuron = self.propagate(k, traces[k], rewards[0])
            rewards.insert(0, reward_in)
            normed.insert(0, per_neuron)
        if signals is not None:
            signals.extend(normed)
        return rewards[:-1]

    def propagate(self, k: int, trace: BlockTrace, reward_out: Tensor) -> tuple[Tensor, Tensor]:
        """Write block k's feedback to `.grad`; return the input reward and `r / stab(z)`."""
        block = self.network.blocks[k]
        if self.reward_norm:
            reward_out = normalise_reward(reward_out)
        skip_reward = None
        if block.skip:  # Eq. 13: y = a + y_prev, shares in proportion to the summands
            share = reward_out / stabilise(trace.out.detach(), self.epsilon)
            skip_reward = trace.inp.detach() * share
            reward_out = trace.a.detach() * share
        (reward_a,) = torch.autograd.grad(trace.out, trace.a, reward_out, retain_graph=True)
        reward_z = reward_a  # elementwise activations pass the reward unchanged
        if block.norm is not None:
            reward_z = self._batchnorm(block.norm, trace, reward_a)
        normed = reward_z / stabilise(trace.z.detach(), self.epsilon)  # one division per neuron
        write_feedback(trace.z, [p for p in block.layer.parameters() if p.requires_grad], normed)
        weighted = block.linear_map(trace.x, block.weight.detach())
        (per_input,) = torch.autograd.grad(weighted, trace.x, normed, retain_graph=True)
        reward_in = (trace.x.detach() * per_input).reshape(trace.inp.shape)
        if skip_reward is not None:
            reward_in = reward_in + skip_reward
        return reward_in, normed

    def _batchnorm(self, norm: torch.nn.Module, trace: BlockTrace, reward_n: Tensor) -> Tensor:
        """Eqs. 11–12: update γ and β, return the reward at the BatchNorm's input."""
        z, n = trace.z.detach(), trace.n.detach()
        dims = [d for d in range(z.dim()) if d != 1]  # statistics per channel
        view = [1, -1] + [1] * (z.dim() - 2)
        if norm.training:  # the statistics the forward pass normalised with
            mean, var = z.mean(dims, keepdim=True), z.var(dims, unbiased=False, keepdim=True)
        else:
            mean, var = norm.running_mean.view(view), norm.running_var.view(view)
        std = torch.sqrt(var + norm.eps)
        z_hat = (z - mean) / std
        q = reward_n / stabilise(n, self.epsilon)
        gamma, beta = norm.weight, norm.bias
        if gamma.requires_grad:
            gamma.grad = -(gamma.detach().abs() * (z_hat * q).sum(dims))
        if beta.requires_grad:
            beta.grad = -(beta.detach().abs() * q.sum(dims))
        return gamma.detach().view(view) * z / std * q
