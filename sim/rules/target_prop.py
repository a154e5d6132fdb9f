"""Difference target propagation, with learned (DTP) or fixed (FW-DTP) feedback weights.

Shibuya et al., "Fixed-Weight Difference Target Propagation", AAAI 2023; DTP: Lee et al.
2015. With `h_l` the output of block l (l = 1..L, `h_L` the linear output), targets are
propagated top down through feedback functions `g_l(v) = tanh(B_l v)` (`B_l` maps block
l's output back to its input, no bias):

    τ_L = h_L − β ∂ℓ/∂h_L                                   (Eq. 5, ℓ per sample)
    τ_l = g_{l+1}(τ_{l+1}) + h_l − g_{l+1}(h_{l+1})          (Eq. 8, difference correction)
    L_l = ‖h_l − τ_l‖² / (2β),   τ_l constant                 (Eq. 6)

Each block descends its own `L_l`, averaged over the minibatch, through its own
activation only: `δa_l = (h_l − τ_l) / (β N)`. At the top this is exactly the gradient of
the mean loss, so the output layer learns as under backpropagation; the `1/β` keeps the
hidden signals' scale independent of β to first order.

The rule carries the displacement `Δ_l = τ_l − h_l` rather than `τ_l`. With
`tanh a − tanh b = tanh(a − b)(1 − tanh a tanh b)`,

    Δ_l = tanh(B_{l+1} Δ_{l+1}) ⊙ (1 − tanh(B_{l+1} τ_{l+1}) ⊙ tanh(B_{l+1} h_{l+1})),

which is Eq. 8 exactly, without subtracting two nearly equal activations. With the
default feedback weights `Δ` shrinks about tenfold per layer, so in the paper's six-layer
network the naive form leaves the first block's float32 displacement pure rounding noise
(relative error about 4 against float64, measured; this form: 5e-7).

FW-DTP (Eq. 12) draws every `B_l` once, U(−0.01, 0.01) by default, and never trains it.
DTP trains `B_l` before each forward update, `feedback_steps` times per minibatch, on
the noisy reconstruction loss of Eq. 7 (the plain one, as in the paper's DTP baseline),

    L'_l = ½ E_ε ‖q − g_l(f_l(q))‖²,   q = h_{l−1} + ε,   ε ~ N(0, σ² I),

averaged over the minibatch, with plain SGD. The feedback of the output layer is trained
and used like any other; block 1's would map back to the input, which needs no target,
so it does not exist. Fully connected networks only, as in the paper.
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import BlockTrace, Network
from sim.rules.base import (
    LearningRule,
    StepContext,
    StepResult,
    alignment_angle,
    backprop_deltas,
    count_option,
    positive_option,
)

FEEDBACK_INITS = ("uniform", "orthogonal", "he_uniform")


def _draw_feedback(shape: tuple[int, int], init: str, generator: torch.Generator) -> Tensor:
    """`uniform`: U(−0.01, 0.01) (the paper's); `orthogonal`; `he_uniform`: like FA's `B`."""
    matrix = torch.empty(shape)
    if init == "uniform":
        return matrix.uniform_(-0.01, 0.01, generator=generator)
    if init == "orthogonal":
        return nn.init.orthogonal_(matrix, generator=generator)
    return nn.init.kaiming_uniform_(matrix, generator=generator)


class TargetPropagation(LearningRule):
    """Targets by difference correction and block-local losses; subclasses own `B_l`."""

    output_activation: ClassVar[str] = "linear"  # softmax cross-entropy, as in the paper
    options: ClassVar[tuple[str, ...]] = ("target_step", "feedback_init", "feedback_scale")

    def __init__(
        self,
        net: Network,
        seed: int = 0,
        target_step: float = 0.01,
        feedback_init: str = "uniform",
        feedback_scale: float = 1.0,
    ) -> None:
        super().__init__(net, seed)
        for k, block in enumerate(net.blocks):
            if block.spec.kind != "fc" or block.norm is not None:
                raise ConfigError(
                    f"rule {self.name!r} supports fully connected blocks without BN; "
                    f"block {k} is {block.spec}"
                )
        if net.config.dropout > 0:
            raise ConfigError(
                f"rule {self.name!r} does not support dropout; use dropout=0, "
                f"got {net.config.dropout}"
            )
        positive_option("target_step", target_step)
        positive_option("feedback_scale", feedback_scale)
        if feedback_init not in FEEDBACK_INITS:
            raise ConfigError(
                f"feedback_init must be one of {FEEDBACK_INITS}, got {feedback_init!r}"
            )
        self.target_step = float(target_step)
        generator = torch.Generator().manual_seed(seed)
        for k in range(1, len(net.blocks)):
            width_in = net.hook_shapes[k - 1][0]
            width_out = net.hook_shapes[k][0]
            matrix = _draw_feedback((width_in, width_out), feedback_init, generator)
            self.register_buffer(f"B{k}", feedback_scale * matrix)

    def feedback(self, k: int) -> Tensor:
        """`B_k`, which maps block k's output back to block k's input (k ≥ 1)."""
        return self.get_buffer(f"B{k}")

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor | None:
        raise NotImplementedError("target propagation computes its targets in `step`")

    def displacements(self, traces: list[BlockTrace], target: Tensor) -> list[Tensor]:
        """`Δ_l = τ_l − h_l` for every block (index 0: the first hidden block)."""
        top = traces[-1].a
        loss = self.loss(top, target)
        (grad,) = torch.autograd.grad(loss, top, retain_graph=True)
        # The loss is a minibatch mean: N · ∂L/∂h_L is each sample's own ∂ℓ/∂h_L.
        deltas = [-self.target_step * top.shape[0] * grad]
        with torch.no_grad():
            for k in reversed(range(1, len(traces))):
                matrix = self.feedback(k)
                at_h = F.linear(traces[k].a.detach(), matrix)
                shift = F.linear(deltas[0], matrix)
                squashed = torch.tanh(at_h + shift) * torch.tanh(at_h)
                deltas.insert(0, torch.tanh(shift) * (1 - squashed))
        return deltas

    def targets(self, traces: list[BlockTrace], target: Tensor) -> list[Tensor]:
        """`τ_l` for every block: what its local loss pulls `h_l` towards."""
        return [
            t.a.detach() + d
            for t, d in zip(traces, self.displacements(traces, target), strict=True)
        ]

    def train_feedback(self, traces: list[BlockTrace], generator: torch.Generator | None) -> None:
        """Adapt the feedback weights to this minibatch's activations (DTP only)."""

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        """Train the feedback (DTP), then drive each block by its own local loss."""
        traces = self.network.trace(x, generator)
        self.train_feedback(traces, generator)
        scale = self.target_step * x.shape[0]
        deltas = {
            k: self._backward_block(k, traces[k], traces[k].a, -d / scale)
            for k, d in enumerate(self.displacements(traces, target))
        }
        output = traces[-1].out.detach()
        angles = None
        if track_alignment:
            bp = backprop_deltas(self.network, traces, deltas[len(traces) - 1])
            angles = tuple(alignment_angle(deltas[k], bp[k]) for k in range(len(traces) - 1))
        return StepResult(self.loss(output, target).item(), output, angles)


class FWDTP(TargetPropagation):
    """Fixed-weight DTP: `B_l` drawn once and never trained."""

    name = "fwdtp"


class DTP(TargetPropagation):
    """DTP: `B_l` trained on the noisy reconstruction loss before every forward update.

    The internal optimizer is plain SGD (lr `feedback_lr`), as in the paper's code: it
    keeps no state, so the rule's state dict (the `B_l` buffers) is all a checkpoint needs
    for an interrupted run to resume exactly.
    """

    name = "dtp"
    options: ClassVar[tuple[str, ...]] = (
        *TargetPropagation.options,
        "feedback_steps",
        "feedback_noise",
        "feedback_lr",
    )

    def __init__(
        self,
        net: Network,
        seed: int = 0,
        target_step: float = 0.01,
        feedback_init: str = "uniform",
        feedback_scale: float = 1.0,
        feedback_steps: int = 5,
        feedback_noise: float = 1e-2,
        feedback_lr: float = 0.05,
    ) -> None:
        super().__init__(net, seed, target_step, feedback_init, feedback_scale)
        self.feedback_steps = count_option("feedback_steps", feedback_steps)
        self.feedback_noise = positive_option("feedback_noise", feedback_noise, allow_zero=True)
        self.feedback_lr = positive_option("feedback_lr", feedback_lr)
        # Noise source when `step` gets no generator; training passes its own checkpointed one.
        self.noise_generator = torch.Generator().manual_seed(seed + 1)

    def _reconstruction(
        self,
        k: int,
        h_below: Tensor,
        matrix: Tensor,
        noise: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Eq. 7 for block k on one noise draw, differentiable in `matrix`."""
        q = h_below
        if noise > 0:
            q = q + noise * torch.randn(q.shape, generator=generator, dtype=q.dtype)
        with torch.no_grad():
            up = self.network.blocks[k].run(q).a
        rebuilt = torch.tanh(F.linear(up, matrix))
        return 0.5 * (rebuilt - q).pow(2).sum(1).mean()

    def reconstruction_losses(
        self, x: Tensor, noise: float = 0.0, generator: torch.Generator | None = None
    ) -> list[float]:
        """`L'_l` (Eq. 7) of every feedback block on `x`, one noise draw (none by default)."""
        with torch.no_grad():
            traces = self.network.trace(x)
            return [
                self._reconstruction(
                    k, traces[k - 1].out, self.feedback(k), noise, generator
                ).item()
                for k in range(1, len(traces))
            ]

    def train_feedback(self, traces: list[BlockTrace], generator: torch.Generator | None) -> None:
        gen = generator if generator is not None else self.noise_generator
        for _ in range(self.feedback_steps):
            for k in range(1, len(traces)):
                matrix = self.feedback(k)
                leaf = matrix.detach().requires_grad_()
                loss = self._reconstruction(
                    k, traces[k - 1].out.detach(), leaf, self.feedback_noise, gen
                )
                (grad,) = torch.autograd.grad(loss, leaf)
                matrix.sub_(self.feedback_lr * grad)
