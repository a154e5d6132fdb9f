"""Dual propagation, DP and DP⊤ (Høier & Zach, "Two Tales of Single-Phase Contrastive
Hebbian Learning", 2024).

Every unit is a dyad of two states `s⁺, s⁻`. Their weighted mean `s̄ = α s⁺ + ᾱ s⁻`
(`ᾱ = 1 − α`) goes up, their difference `Δ = s⁺ − s⁻` comes down, and block k's input is
`a_k = W_k s̄_{k−1} + b_k` (`s̄_{−1}` is the input). Hidden units settle to

    DP  (Eq. 2):   s⁺ = f(a + α Wᵀ Δ_above),   s⁻ = f(a − ᾱ Wᵀ Δ_above)
    DP⊤ (Eq. 19):  s⁺ = f(a + ᾱ Wᵀ Δ_above),   s⁻ = f(a − α Wᵀ Δ_above)

(`W`, `Δ_above`: the block above). The output is linear; its activation is absorbed into
the loss `ℓ = β ℓ̂`, whose weight β is the nudging strength (ℓ̂: `½‖s − y‖²`, the paper's
least squares, or softmax cross-entropy). With `g = ℓ'(a_L)`:

    DP  (Eq. 3):   s⁺ = argmin_s αℓ(s) + ½‖s‖² − sᵀa,   s⁻ = argmin_s −ᾱℓ(s) + ½‖s‖² − sᵀa
                   least squares: s⁺ = (a + αβy) / (1 + αβ),   s⁻ = (a − ᾱβy) / (1 − ᾱβ)
    DP⊤ (Eq. 22):  s⁺ = a − ᾱ g,   s⁻ = a + α g

So `Δ_L ≈ −β ℓ̂'(a_L)` and, a layer down, `Δ ≈ f'(a) Wᵀ Δ_above`: minus β times BP's
`δz`, with the derivative of f taken as a finite difference across the dyad. The update
is Hebbian and needs no activation derivative:

    ∂W_k = −Δ_k s̄_{k−1}ᵀ / β,   ∂b_k = −Δ_k / β          (averaged over the minibatch)

It tends to BP's gradient of ℓ̂ as β → 0. At α = ½ the two hidden rules coincide; DP⊤
keeps `s̄ = f(a) + O(Δ²)` for every α, DP only at α = ½ (else `s̄` drifts by
`(2α − 1) f' Wᵀ Δ`), which is why iterated DP diverges at α ≠ ½ (Appendix A.1).

Schedule: the first upward pass has `Δ = 0` everywhere, so it is the plain forward pass
(its output is the prediction); the output is nudged, then one downward pass settles every
hidden block (`dp_sweeps = 1`, BP's cost). `dp_sweeps = K` repeats the up-and-down pass
K − 1 more times from the states the last one left. In those repeats DP's hidden updates
are damped (Appendix F, Eq. 50), `u ← (u_Eq.2 + L_k u) / (1 + L_k)`, `s = f(u)` on the
pre-activations `u`, with `L_k = dp_damping · |1 − 2α| · ‖W_{k+1}‖₂²`: the paper's
`L = ‖WᵀW‖₂` at α ∈ {0, 1}, none at α = ½ where Eq. 2 is stable (the |1 − 2α| scaling is
the authors' reference code's). Blending pre-activations is Eq. 50 with G's Bregman
divergence as the proximal term; it has Eq. 2's fixed point for every f (the literal
state blend of Eq. 50 only for projections such as ReLU). The first pass is never
damped: nothing iterates there. DP⊤ is stable undamped and ignores `dp_damping`.

Damping cures the oscillation of α = 1 (LPOM, a minimisation). At α = 0 with least
squares, s⁻ maximises a loss that grows like `β/(1 − β) ‖W s̄‖²` against a penalty
`½‖s⁻ − f(a)‖²`: once `β/(1 − β) ‖W‖₂²` is well above 1 (He-initialised ReLU layers at
β = ½) the maximum is unbounded and repeated sweeps grow without limit, damped or not
(damping only slows them). One sweep is always finite; cross-entropy's bounded gradient
keeps α = 0 finite as well.
"""

from abc import abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from quant.errors import ConfigError
from sim.models.network import ACTIVATIONS, Network
from sim.rules.base import (
    LearningRule,
    StepContext,
    StepResult,
    alignment_angle,
    backprop_deltas,
    count_option,
    positive_option,
)

LOSSES = ("mse", "ce")
CE_ITERATIONS = 100  # cap on the fixed-point solve of Eq. 3 for cross-entropy


def loss_gradient(output: Tensor, target: Tensor, loss: str) -> Tensor:
    """`ℓ̂'(s)`: `s − y` for least squares, `softmax(s) − y` for cross-entropy."""
    if loss == "ce":
        return torch.softmax(output, 1) - target
    return output - target


def nudged_output(a: Tensor, target: Tensor, strength: float, loss: str) -> Tensor:
    """Eq. 3's `argmin_s strength·ℓ̂(s) + ½‖s‖² − sᵀa`, i.e. `s = a − strength·ℓ̂'(s)`.

    Closed form for least squares. For cross-entropy a fixed-point iteration, which
    contracts for |strength| < 2 since the softmax Jacobian's norm is at most ½.
    """
    if loss == "mse":
        return (a + strength * target) / (1 + strength)
    s = a
    for _ in range(CE_ITERATIONS):
        s, previous = a - strength * loss_gradient(s, target, loss), s
        if torch.allclose(s, previous, rtol=1e-6, atol=1e-7):
            break
    return s


def _check_network(net: Network, rule: str) -> None:
    """The dyads are simulated on fully connected chains with a linear output."""
    for block in net.blocks:
        if block.spec.kind != "fc" or block.norm is not None:
            raise ConfigError(
                f"rule {rule!r} supports fully connected layers without BN only, got "
                f"{block.spec} in topology {net.config.topology!r}"
            )
    if net.config.dropout > 0 or net.config.activation_noise > 0:
        raise ConfigError(
            f"rule {rule!r} supports neither dropout nor activation noise (the dyads would "
            f"need one mask per state), got dropout={net.config.dropout} "
            f"activation_noise={net.config.activation_noise}"
        )
    if net.config.output_activation != "linear":
        raise ConfigError(
            f"rule {rule!r} needs a linear output layer (its activation is absorbed into "
            f"the loss), got output_activation={net.config.output_activation!r}"
        )


class DualRule(LearningRule):
    """What DP and DP⊤ share: the dyads, the sweep schedule and the Hebbian update."""

    output_activation: ClassVar[str] = "linear"
    options: ClassVar[tuple[str, ...]] = (
        "dp_alpha",
        "dp_beta",
        "dp_sweeps",
        "dp_loss",
        "dp_damping",
    )

    def __init__(
        self,
        net: Network,
        seed: int = 0,
        dp_alpha: float = 0.5,
        dp_beta: float = 0.5,
        dp_sweeps: int = 1,
        dp_loss: str = "mse",
        dp_damping: float = 1.0,
    ) -> None:
        super().__init__(net, seed)
        _check_network(net, self.name)
        self.alpha = positive_option("dp_alpha", dp_alpha, allow_zero=True)
        if self.alpha > 1.0:
            raise ConfigError(f"dp_alpha must be in [0, 1], got {dp_alpha}")
        self.beta = positive_option("dp_beta", dp_beta)
        self.sweeps = count_option("dp_sweeps", dp_sweeps)
        if dp_loss not in LOSSES:
            raise ConfigError(f"dp_loss must be one of {LOSSES}, got {dp_loss!r}")
        self.objective = dp_loss
        self.damping = positive_option("dp_damping", dp_damping, allow_zero=True)
        self.check_nudging()

    def check_nudging(self) -> None:
        """Refuse (α, β) for which the output states are not defined."""

    @abstractmethod
    def nudges(self) -> tuple[float, float]:
        """Coefficients of `Wᵀ Δ_above` in a hidden unit's s⁺ and s⁻."""

    @abstractmethod
    def output_states(self, a: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """The output dyad `(s⁺, s⁻)` for the output block's input `a`."""

    def damping_weights(self) -> list[float]:
        """`L_k` of each hidden block for the repeated sweeps; 0: undamped."""
        return [0.0] * (len(self.network.blocks) - 1)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """ℓ̂, the loss the updates descend as β → 0 (minibatch mean)."""
        if self.objective == "ce":
            return F.cross_entropy(output, target)
        return 0.5 * (output - target).square().sum(1).mean()

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor | None:
        raise NotImplementedError("dual propagation settles its dyads in `step`")

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        inputs, deltas, output = self.infer(x, target)
        scale = -1.0 / (self.beta * len(x))
        for block, inp, delta in zip(self.network.blocks, inputs, deltas, strict=True):
            weight, bias = block.layer.weight, block.layer.bias
            if weight.requires_grad:
                weight.grad = scale * delta.T @ inp
            if bias is not None and bias.requires_grad:
                bias.grad = scale * delta.sum(0)
        angles = self.angles(x, target, deltas) if track_alignment else None
        return StepResult(self.loss(output, target).item(), output, angles)

    @torch.no_grad()
    def infer(self, x: Tensor, target: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """Settle the dyads; return each block's input `s̄_{k−1}`, its `Δ_k`, the prediction."""
        blocks = self.network.blocks
        hidden = len(blocks) - 1
        weights = [block.layer.weight.detach() for block in blocks]
        biases = [block.layer.bias.detach() for block in blocks]
        activations = [ACTIVATIONS[block.activation] for block in blocks[:-1]]
        up, down = self.nudges()
        damping = self.damping_weights() if self.sweeps > 1 else []
        inputs = [blocks[0].prepare(x, None)] * len(blocks)
        deltas = [inputs[0].new_zeros(len(x), w.shape[0]) for w in weights]
        drive: list[Tensor] = [inputs[0]] * hidden  # a_k, updated on the way up
        pre: dict[int, tuple[Tensor, Tensor]] = {}  # (u⁺, u⁻): the arguments of f

        def settle(k: int, damp: float) -> None:
            feedback = deltas[k + 1] @ weights[k + 1]
            u_plus, u_minus = drive[k] + up * feedback, drive[k] - down * feedback
            if damp:
                old_plus, old_minus = pre[k]
                u_plus = (u_plus + damp * old_plus) / (1 + damp)
                u_minus = (u_minus + damp * old_minus) / (1 + damp)
            pre[k] = (u_plus, u_minus)
            s_plus, s_minus = activations[k](u_plus), activations[k](u_minus)
            inputs[k + 1] = self.alpha * s_plus + (1 - self.alpha) * s_minus
            deltas[k] = s_plus - s_minus

        for k in range(hidden):  # Δ = 0 everywhere: the plain forward pass
            drive[k] = F.linear(inputs[k], weights[k], biases[k])
            settle(k, 0.0)
        prediction = a_out = F.linear(inputs[-1], weights[-1], biases[-1])
        for sweep in range(self.sweeps):
            damp = damping if sweep else [0.0] * hidden
            if sweep:  # block 0 was settled last, with the same input and Δ_1
                for k in range(1, hidden):
                    drive[k] = F.linear(inputs[k], weights[k], biases[k])
                    settle(k, damp[k])
                a_out = F.linear(inputs[-1], weights[-1], biases[-1])
            s_plus, s_minus = self.output_states(a_out, target)
            deltas[-1] = s_plus - s_minus
            for k in reversed(range(hidden)):
                settle(k, damp[k])
        return inputs, deltas, prediction

    def angles(self, x: Tensor, target: Tensor, deltas: list[Tensor]) -> tuple[float, ...]:
        """Per hidden block, the angle between `−Δ_k` (this rule's δz) and BP's δz."""
        with torch.enable_grad():
            traces = self.network.trace(x)
            top = traces[-1].z.detach()
            bp = backprop_deltas(self.network, traces, loss_gradient(top, target, self.objective))
        return tuple(alignment_angle(-deltas[k], bp[k]) for k in range(len(traces) - 1))


class DualPropagation(DualRule):
    """DP: Eq. 2 in the hidden blocks, Eq. 3 at the output, damped when iterated."""

    name = "dp"

    def check_nudging(self) -> None:
        """Eq. 3's s⁻ minimises `−ᾱβ ℓ̂(s) + ½‖s‖² − sᵀa` only while that is convex."""
        if self.objective == "mse" and (1 - self.alpha) * self.beta >= 1:
            raise ConfigError(
                "rule 'dp' with dp_loss='mse' needs (1 - dp_alpha) * dp_beta < 1, got "
                f"dp_alpha={self.alpha} dp_beta={self.beta}"
            )
        if self.objective == "ce" and max(self.alpha, 1 - self.alpha) * self.beta >= 2:
            raise ConfigError(
                "rule 'dp' with dp_loss='ce' needs max(dp_alpha, 1 - dp_alpha) * dp_beta < 2, "
                f"got dp_alpha={self.alpha} dp_beta={self.beta}"
            )

    def nudges(self) -> tuple[float, float]:
        return self.alpha, 1 - self.alpha

    def output_states(self, a: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        plus = nudged_output(a, target, self.alpha * self.beta, self.objective)
        minus = nudged_output(a, target, -(1 - self.alpha) * self.beta, self.objective)
        return plus, minus

    def damping_weights(self) -> list[float]:
        """App. F's `L_k = ‖W_{k+1}‖₂²` (exact, where the paper takes 5 power iterations)."""
        scale = self.damping * abs(1 - 2 * self.alpha)
        if scale == 0:
            return super().damping_weights()
        return [
            scale * torch.linalg.matrix_norm(block.layer.weight.detach(), ord=2).item() ** 2
            for block in self.network.blocks[1:]
        ]


class DualPropagationT(DualRule):
    """DP⊤: Eq. 19 in the hidden blocks, Eq. 22 at the output; stable for every α."""

    name = "dpt"

    def nudges(self) -> tuple[float, float]:
        return 1 - self.alpha, self.alpha

    def output_states(self, a: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        g = self.beta * loss_gradient(a, target, self.objective)
        return a - (1 - self.alpha) * g, a + self.alpha * g
