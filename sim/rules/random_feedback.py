"""Updated and fixed random feedback, URFB and FRFB (Amit, 2021, "Deep learning with
asymmetric connections and Hebbian updates").

Hard-tanh hidden units `σ(h) = clip(h, −1, 1)`, `σ'(h) = 1(|h| ≤ 1)`, a linear output
layer and the multi-class hinge loss of Eq. (4), whose output signal (Eq. 6) needs only the
unit's own input and the label:

    L = max(1 − x_c, 0) + μ Σ_{i≠c} max(1 + x_i, 0)
    δ_L,i = −∂L/∂x_i = 1 if i = c and x_i ≤ 1,  −μ if i ≠ c and x_i ≥ −1,  0 otherwise

The error travels down through separate feedback weights `R`, and every connection changes
by the product of the two activities it joins (W feeds forward, R the same units back):

    δ_l = σ'(h_l) ⊙ (R_{l+1} δ_{l+1})
    W_l += η δ_l x_{l−1}ᵀ        R_l += η x_{l−1} δ_lᵀ     (URFB; FRFB keeps R fixed)

FRFB is feedback alignment (Lillicrap et al., 2016) with this loss. With `R₀ = W₀ᵀ` URFB's
two increments are transposes of each other, so `R = Wᵀ` throughout: backpropagation.

Here, as for every rule, `.grad` holds the descent direction averaged over the minibatch
(`δz = −δ / N`) and the optimizer moves W. Buffer `R{k}` holds the paper's `R_k`
transposed, laid out like `W_k` (as FA's `B_k`), so the symmetric start is `R{k} == W_k` and
the forward map's own transpose carries the feedback: the transposed convolution with a
separate kernel for CONV blocks, per-location kernels for LC (untied, locally connected)
blocks. R is not an optimizer parameter: URFB adds `−lr · ∂L/∂W_k` to it itself, i.e. plain
SGD with the run's learning rate, the paper's protocol. Under plain SGD W and R get the
same increment; under Adam (or momentum) W takes the optimizer's step while R still takes
`lr` times the raw Hebbian product, which at Adam's small learning rates barely moves R,
so URFB then behaves almost like FRFB.

`connectivity < 1` keeps each connection of W and, independently, of R with that
probability (the paper's 50 % variant), masks drawn from the rule's seed. Masked weights
are zeroed when the rule is built and their updates every step, so they stay zero under
any optimizer without weight decay. Biases (the paper has none) are trained as BP trains
them and never masked. μ defaults to 1: the paper gives no value; μ = 1 is the
one-versus-all hinge loss Eq. (4) is said to reproduce and meets Appendix 1's `μ ≤ 1`.
The paper uses hard-tanh; other hidden activations are accepted (each block's own `f'`
gates the feedback). The output layer must be linear.
"""

from typing import ClassVar

import torch
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import Network
from sim.rules.base import StepResult, positive_option
from sim.rules.fa import FeedbackAlignment


def hinge_loss(output: Tensor, target: Tensor, mu: float) -> Tensor:
    """Eq. (4) on linear outputs and one-hot targets, averaged over the minibatch.

    Written as `weight · margin · 1(margin ≥ 0)` so that its gradient is Eq. (5) exactly,
    the boundaries `x_c = 1` and `x_i = −1` included, whatever subgradient a clamp would pick.
    """
    sign = 2 * target - 1  # +1 for the labelled class, −1 for the others
    margin = 1 - sign * output
    weight = target + mu * (1 - target)
    return (weight * margin * (margin >= 0)).sum(1).mean()


class FRFB(FeedbackAlignment):
    """Fixed random feedback: FA through a fixed (optionally sparse) R, hinge loss."""

    name = "frfb"
    output_activation: ClassVar[str] = "linear"
    options: ClassVar[tuple[str, ...]] = ("hinge_mu", "connectivity")

    def __init__(
        self, net: Network, seed: int = 0, hinge_mu: float = 1.0, connectivity: float = 1.0
    ) -> None:
        positive_option("hinge_mu", hinge_mu)
        if not 0.0 < connectivity <= 1.0:
            raise ConfigError(f"connectivity must be in (0, 1], got {connectivity}")
        if net.blocks[-1].activation != "linear":
            raise ConfigError(
                f"rule {self.name!r} needs a linear output layer for its hinge loss, got "
                f"{net.blocks[-1].activation!r}"
            )
        self.hinge_mu = hinge_mu
        self.connectivity = connectivity  # read by build_feedback, which the base calls
        super().__init__(net, seed)
        with torch.no_grad():
            for k, block in enumerate(net.blocks):
                block.weight.mul_(self.get_buffer(f"mask_W{k}"))

    def build_feedback(self, net: Network, generator: torch.Generator) -> None:
        """He-uniform `R{k}` shaped like `W_k` (as FA's `B_k`), then the masks of W and R."""
        for k, block in enumerate(net.blocks[1:], start=1):
            matrix = torch.empty_like(block.weight)
            nn.init.kaiming_uniform_(matrix, generator=generator)
            self.register_buffer(f"R{k}", matrix)
        for k, block in enumerate(net.blocks):
            self.register_buffer(f"mask_W{k}", self._mask(block.weight, generator))
            if k > 0:
                mask = self._mask(block.weight, generator)
                self.register_buffer(f"mask_R{k}", mask)
                self.feedback(k).mul_(mask)

    def _mask(self, weight: Tensor, generator: torch.Generator) -> Tensor:
        """Keep each connection with probability `connectivity`."""
        return torch.rand(weight.shape, generator=generator) < self.connectivity

    def feedback(self, k: int) -> Tensor:
        """`R_k` (transposed, in `W_k`'s layout): replaces `W_k` on the way back."""
        return self.get_buffer(f"R{k}")

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return hinge_loss(output, target, self.hinge_mu)

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        """FA's chain through R; then R's own update and the connectivity masks.

        Every δ goes through R as it was before the step, as BP's go through the W of
        before the step, which is what makes `R₀ = W₀ᵀ` reproduce BP exactly.
        """
        result = super().step(x, target, generator, track_alignment)
        for k, block in enumerate(self.network.blocks):
            grad = block.weight.grad
            if grad is None:  # a fixed CONV/LC layer: its R stays fixed as well
                continue
            if k > 0:
                self.update_feedback(k, grad)
            grad.mul_(self.get_buffer(f"mask_W{k}"))
        return result

    def update_feedback(self, k: int, grad: Tensor) -> None:
        """FRFB: the feedback weights never change."""


class URFB(FRFB):
    """Updated random feedback: R takes the Hebbian increment W takes, `R += lr · x δᵀ`."""

    name = "urfb"
    options: ClassVar[tuple[str, ...]] = ("hinge_mu", "connectivity", "lr")

    def __init__(
        self,
        net: Network,
        seed: int = 0,
        hinge_mu: float = 1.0,
        connectivity: float = 1.0,
        lr: float = 0.1,
    ) -> None:
        positive_option("lr", lr)
        super().__init__(net, seed, hinge_mu, connectivity)
        self.lr = lr

    def update_feedback(self, k: int, grad: Tensor) -> None:
        """`R_k −= lr · ∂L/∂W_k` on R's own connections (the product before W's mask)."""
        self.feedback(k).sub_(self.lr * grad * self.get_buffer(f"mask_R{k}"))
