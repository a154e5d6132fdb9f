"""The interface every learning rule shares.

A rule owns its fixed feedback tensors (as buffers, so they are checkpointed with the
network) and turns one minibatch into parameter updates written to `.grad`, so any
`torch.optim` optimizer applies them. The output layer always receives the gradient of
the loss (`ΔW_K ∝ (y* − y_K) y_{K-1}ᵀ` for sigmoid + BCE); rules differ in the signal
`δa_k` they inject at each hidden block's activation. From it the block's local graph
gives the modulatory signal `δz_k = δa_k ⊙ f'(z_k)` and the updates
`ΔW_k = −η δz_k x_kᵀ`; no rule but backpropagation sends gradients between layers.

Sign convention: every signal is a gradient (descent direction). DRTP's
`W += η (B_kᵀ y*) ⊙ f'(z_k) y_{k-1}ᵀ` is therefore injected as `δa_k = −B_kᵀ y*`.
Signals are averaged over the minibatch, like the loss.
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import BlockTrace, Network


def output_loss(y: Tensor, target: Tensor, activation: str) -> Tensor:
    """BCE on sigmoid outputs, softmax cross-entropy on linear outputs, MSE on tanh outputs.

    Sigmoid outputs are the DRTP family's classifiers, linear outputs LFP's (whose
    rewards interpret them as logits), tanh outputs the regression task's.
    """
    if activation == "sigmoid":
        return F.binary_cross_entropy(y, target)
    if activation == "linear":
        return F.cross_entropy(y, target)
    return F.mse_loss(y, target)


def positive_option(name: str, value: object, allow_zero: bool = False) -> float:
    """A rule option as a float: a finite number > 0 (>= 0 with `allow_zero`), else a
    `ConfigError` naming the option."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def count_option(name: str, value: object) -> int:
    """A rule option that counts something: an integer >= 1, else a `ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def alignment_angle(a: Tensor, b: Tensor) -> float:
    """Angle in degrees between two signals flattened over the minibatch (nan if one is 0)."""
    a, b = a.flatten().double(), b.flatten().double()
    norm = a.norm() * b.norm()
    if norm == 0:
        return math.nan
    cosine = torch.clamp(torch.dot(a, b) / norm, -1.0, 1.0)
    return math.degrees(math.acos(cosine.item()))


@dataclass
class StepContext:
    """What a rule may look at when it computes a hidden block's signal."""

    traces: list[BlockTrace]
    output: Tensor  # y_K, detached
    target: Tensor  # y* (one-hot for classification)
    delta_z: dict[int, Tensor] = field(default_factory=dict)  # this rule's δz of blocks above

    @property
    def error(self) -> Tensor:
        """Output error in the gradient direction, `y_K − y*`."""
        return self.output - self.target

    @property
    def batch_size(self) -> int:
        return self.output.shape[0]


@dataclass(frozen=True)
class StepResult:
    loss: float
    output: Tensor  # y_K of the minibatch, detached
    angles: tuple[float, ...] | None  # per hidden block, degrees vs BP's δz; None if not tracked


class LearningRule(nn.Module, ABC):
    """Computes one minibatch's parameter updates into `.grad`."""

    name: ClassVar[str]
    output_activation: ClassVar[str] = "sigmoid"  # for classification; see `output_loss`
    options: ClassVar[tuple[str, ...]] = ()  # `TrainConfig` fields passed to the constructor
    default_init: ClassVar[str] = "he_uniform"  # network init when the user names none
    supports_skip: ClassVar[bool] = False  # block-local signals cannot follow a skip path

    def __init__(self, net: Network, seed: int = 0) -> None:
        super().__init__()
        if not self.supports_skip and any(block.skip for block in net.blocks):
            raise ConfigError(
                f"rule {self.name!r} does not support SKIP layers; use 'lfp' for skip networks"
            )
        self.net = [net]  # a list keeps the network out of this module's state_dict
        self.build_feedback(net, torch.Generator().manual_seed(seed))

    @property
    def network(self) -> Network:
        return self.net[0]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The loss this rule reports (and, for gradient rules, descends) on `output`."""
        return output_loss(output, target, self.network.blocks[-1].activation)

    def build_feedback(self, net: Network, generator: torch.Generator) -> None:
        """Create fixed feedback tensors as buffers; rules without feedback keep none."""

    @abstractmethod
    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor | None:
        """`δa_k` for hidden block k (shape of `ctx.traces[k].a`), or None for no update."""

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        """Forward one minibatch and write every trainable parameter's update to `.grad`."""
        net = self.network
        traces = net.trace(x, generator)
        top = traces[-1]
        loss = self.loss(top.out, target)
        delta_top = self._backward_block(len(traces) - 1, top, loss, None)
        ctx = StepContext(traces, top.out.detach(), target, {len(traces) - 1: delta_top})
        for k in reversed(range(len(traces) - 1)):
            signal = self.hidden_signal(k, ctx)
            if signal is None:
                self._clear_grads(k)
                continue
            ctx.delta_z[k] = self._backward_block(k, traces[k], traces[k].a, signal)
        angles = None
        if track_alignment:
            bp = self.reference_deltas(traces, ctx)
            angles = tuple(
                alignment_angle(ctx.delta_z[k], bp[k]) if k in ctx.delta_z else math.nan
                for k in range(len(traces) - 1)
            )
        return StepResult(loss.item(), top.out.detach(), angles)

    def reference_deltas(self, traces: list[BlockTrace], ctx: StepContext) -> list[Tensor]:
        """BP's `δz_k` on this step's forward pass, against which alignment is measured."""
        return backprop_deltas(self.network, traces, ctx.delta_z[len(traces) - 1])

    @staticmethod
    def _local_delta(trace: BlockTrace, signal: Tensor) -> Tensor:
        (delta,) = torch.autograd.grad(trace.a, trace.z, signal, retain_graph=True)
        return delta

    def _backward_block(
        self, k: int, trace: BlockTrace, root: Tensor, signal: Tensor | None
    ) -> Tensor:
        """Block k's local backward from `root` (the loss, or `a_k` driven by `signal`).

        Writes the block's parameter gradients (weights, bias, BatchNorm scale and shift)
        to `.grad` and returns the modulatory signal `δz_k` at the weighted sum.
        """
        params = [p for p in self.network.blocks[k].parameters() if p.requires_grad]
        grads = torch.autograd.grad(root, [*params, trace.z], signal, retain_graph=True)
        for p, g in zip(params, grads, strict=False):
            p.grad = g
        return grads[-1]

    def _clear_grads(self, k: int) -> None:
        for p in self.network.blocks[k].parameters():
            p.grad = None


def feedback_to_activation(
    net: Network, traces: list[BlockTrace], k: int, delta_above: Tensor, weight: Tensor
) -> Tensor:
    """Carry `δz_{k+1}` down to `δa_k` through block k+1 with `weight` in place of W_{k+1}.

    The transposed weighted sum, the dropout mask, the flatten and the max-pool routing
    all come from the forward graph; only the weight is swapped. With `weight = W_{k+1}`
    this is backpropagation, with a fixed random `B_{k+1}` it is feedback alignment.
    """
    above = traces[k + 1]
    feedback = net.blocks[k + 1].linear_map(above.x, weight)
    (at_output,) = torch.autograd.grad(feedback, above.inp, delta_above, retain_graph=True)
    (at_activation,) = torch.autograd.grad(traces[k].out, traces[k].a, at_output, retain_graph=True)
    return at_activation


def backprop_deltas(net: Network, traces: list[BlockTrace], delta_top: Tensor) -> list[Tensor]:
    """BP's modulatory signals `δz_k` for every block on the same forward pass."""
    deltas = [delta_top]
    for k in reversed(range(len(traces) - 1)):
        weight = net.blocks[k + 1].weight.detach()
        signal = feedback_to_activation(net, traces, k, deltas[0], weight)
        deltas.insert(0, LearningRule._local_delta(traces[k], signal))
    return deltas
