"""Learning rules for spiking networks (`SpikingNetwork`), selectable by name (`SNN_RULES`).

They share `LearningRule`'s API (`step`, `loss`, `network`; updates written to `.grad`,
then any `torch.optim` optimizer): the network's output is the output layer's spike
count per class, and `loss` is the softmax cross-entropy on those counts. Notation as in
`sim.models.snn`: at step t a layer has input x_t, current z_t = W x_t + b, membrane u_t,
spike s_t = H(u_t − θ), reset H(u_{t−1} − θ); `stab(v) = v + sign(v) ε` with sign(0) = 1.

- `lfp`: LFP-ε through time, as the reference `propagator_snn.py` (LFP paper A.6, A.7.5).
  The per-step reward R_t of Eq. A.4 reaches each layer's spikes, passes H unchanged and
  is normalised per step by how much the membrane moved:

      q_t = (R_t + ρ_t) / stab(|u_{t−1}| + |u_t + θ H(u_{t−1} − θ) − u_{t−1}|)
      ρ_{t−1} = β u_{t−1} q_t,  ρ_T = 0        (the membrane's share flows back in time)
      d_w_ij = |w_ij| Σ_t x_i,t q_j,t,  d_b_j = |b_j| Σ_t q_j,t
      r_i,t = x_i,t Σ_j w_ij q_j,t             (reward to the layer below, step by step)

  (reset by subtraction only; max pooling routes each step's reward to its winner).
- `lfp_window`: the window-aggregated form a chip affords, LFP-ε (Eqs. 8–9) on window
  totals. Per layer, A_i = Σ_t x_i,t (presynaptic spike count; input intensity × T for the
  input layer), Z_j = Σ_t z_j,t = Σ_i w_ij A_i + T b_j, r_j the window reward at j's
  spike count (output layer: Σ_t R_j,t), passed by H unchanged:

      d_w_ij = |w_ij| A_i r_j / (|Z_j| + ε),  d_b_j = |b_j| T r_j / (|Z_j| + ε)
      r_i = A_i Σ_j w_ij r_j / (|Z_j| + ε)

  One unsigned reciprocal per post-neuron and window. The denominator is the magnitude of
  the integrated current, not LFP-ε's signed `Z_j + sign(Z_j) ε`: H is not sign
  preserving (a spike count is ≥ 0 whatever the sign of Z_j), so a signed denominator
  turns a rewarded neuron with net negative current away from firing. Measured on digits
  (SNN FC_100_FC_10, 3 seeds): signed 57–76 % test error after 3 epochs, unchanged at 8;
  magnitude 15–25 % after 3 epochs, 8–12 % after 6. The
  reference's per-step rule divides by a positive quantity for the same reason.
  Max pooling splits a pooled unit's r in proportion to the steps each input won:
  r_p = Σ_t s_p,t [p wins at t] r / A.
- `drtp_window`: DRTP on window totals, the float twin of the core's DRTP (contract §6).
  Output layer, with rates n_c / T and A_i / T: `d_w_ic = (y*_c − n_c / T) A_i / T`; hidden
  layer k: `d_w_ij = B_k[c*, j] g_j A_i / T` with B_k a fixed random ±1 projection (one row
  per class, selected by the label c*) and the boxcar gate `g_j = [−T θ < Z_j < T θ]` of the
  window current; biases as weights on a constant input (A = T). No signal crosses layers.
- `surrogate_bp`: BPTT on the cross-entropy of the spike counts, H's derivative replaced
  by that of the fast sigmoid `s(x) = x / (1 + 25|x|)`, i.e. `1 / (1 + 25|x|)²` (A.7.5's
  surrogate for the MNIST SNNs; snnTorch's `surrogate.fast_sigmoid(slope=25)`).
- `bp`: the same BPTT through the true H, whose derivative is zero almost everywhere:
  every gradient is zero and the weights never move (the paper's "Grad" baseline).

LFP updates are rewards (maximised): `.grad = −d`, summed over the minibatch as in `lfp`.
"""

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from snntorch import surrogate
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import heaviside
from sim.models.snn import SpikeFn, SpikeTrace, SpikingBlock, SpikingNetwork
from sim.rules.base import StepResult
from sim.rules.lfp import normalise_reward, stabilise, write_feedback
from sim.rules.rewards import snn_spike_count


class SpikingRule(nn.Module, ABC):
    """Computes one minibatch's parameter updates of a `SpikingNetwork` into `.grad`."""

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()  # `TrainConfig` fields passed to the constructor

    def __init__(self, net: SpikingNetwork, seed: int = 0) -> None:
        """`seed` keeps `make_rule`'s signature; no spiking rule draws feedback tensors."""
        super().__init__()
        self.net = [net]  # a list keeps the network out of this module's state_dict

    @property
    def network(self) -> SpikingNetwork:
        return self.net[0]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Softmax cross-entropy on the spike counts `output` `[N, C]`."""
        return F.cross_entropy(output, target)

    @abstractmethod
    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        """Forward one minibatch, write the updates to `.grad`; no alignment angles."""


class BPTT(SpikingRule):
    """Backpropagation through time through the true Heaviside step: zero gradients."""

    name = "bp"
    spike: ClassVar[SpikeFn] = staticmethod(heaviside)

    def _traces(self, x: Tensor) -> list[SpikeTrace]:
        """The forward pass with one graph through every layer."""
        return self.network.trace(x, self.spike, local=False)

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        traces = self._traces(x)
        counts = traces[-1].s.sum(0)
        loss = self.loss(counts, target)
        params = [p for p in self.network.parameters() if p.requires_grad]
        for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
            p.grad = g
        return StepResult(loss.item(), counts.detach(), None)


class SurrogateBPTT(BPTT):
    """BPTT with the fast-sigmoid surrogate derivative `1 / (1 + 25|u − θ|)²` (A.7.5).

    With `reward_norm` the gradient arriving at each layer's output is rescaled to
    max |g| = 1, as A.7.5 normalises the backward pass of every method in the Fig. 9 runs:
    through silent LIF layers the surrogate's signal shrinks by ~1/676 per layer, which
    plain SGD cannot follow.
    """

    name = "surrogate_bp"
    options: ClassVar[tuple[str, ...]] = ("reward_norm",)
    spike: ClassVar[SpikeFn] = staticmethod(surrogate.fast_sigmoid(slope=25))

    def __init__(self, net: SpikingNetwork, seed: int = 0, reward_norm: bool = False) -> None:
        super().__init__(net, seed)
        self.reward_norm = reward_norm

    def _traces(self, x: Tensor) -> list[SpikeTrace]:
        traces = super()._traces(x)
        if self.reward_norm:
            for trace in traces:
                trace.out.register_hook(normalise_reward)
        return traces


class SpikingLFP(SpikingRule):
    """LFP-ε through time (the reference's per-step rule); see the module docstring."""

    name = "lfp"
    options: ClassVar[tuple[str, ...]] = ("epsilon", "reward_norm")

    def __init__(
        self,
        net: SpikingNetwork,
        seed: int = 0,
        epsilon: float = 1e-6,
        reward_norm: bool = False,
    ) -> None:
        super().__init__(net, seed)
        self.epsilon = epsilon
        self.reward_norm = reward_norm

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        traces = self.network.trace(x)
        spikes = traces[-1].s.detach()
        reward = self.initial_reward(snn_spike_count(spikes, target))
        for block, trace in zip(reversed(self.network.blocks), reversed(traces), strict=True):
            if self.reward_norm:  # A.7.5: "normalized by the maximum absolute value"
                reward = normalise_reward(reward)
            reward = self.propagate(block, trace, reward)
        counts = spikes.sum(0)
        return StepResult(self.loss(counts, target).item(), counts, None)

    @staticmethod
    def initial_reward(per_step: Tensor) -> Tensor:
        """The output layer's reward in this rule's form: per step, `[T, N, C]`."""
        return per_step

    def propagate(self, block: SpikingBlock, trace: SpikeTrace, reward_out: Tensor) -> Tensor:
        """Write the block's feedback to `.grad`; return the reward at its input."""
        if block.pool is not None:  # each step's reward to that step's winner
            (reward_out,) = torch.autograd.grad(trace.out, trace.s, reward_out, retain_graph=True)
        normed = self.normalise(block, trace, reward_out)
        self._write_feedback(block, trace, normed)
        weighted = block.linear_map(trace.x, block.weight.detach())
        (per_input,) = torch.autograd.grad(weighted, trace.x, normed, retain_graph=True)
        return (trace.x.detach() * per_input).reshape(trace.inp.shape)

    def normalise(self, block: SpikingBlock, trace: SpikeTrace, reward: Tensor) -> Tensor:
        """`q_t` for t = T..1, carrying the membrane's share `ρ` back in time."""
        u, u_prev = trace.u.detach(), trace.u_prev
        moved = (u + trace.reset * block.threshold - u_prev).abs()
        denominator = stabilise(u_prev.abs() + moved, self.epsilon)
        normed = torch.empty_like(reward)
        carry = torch.zeros_like(reward[0])
        for t in reversed(range(len(reward))):
            normed[t] = (reward[t] + carry) / denominator[t]
            carry = block.beta * u_prev[t] * normed[t]
        return normed

    @staticmethod
    def _write_feedback(block: SpikingBlock, trace: SpikeTrace, normed: Tensor) -> None:
        """`.grad = −|p| ⊙ Σ_t ∂z_t/∂p · normed_t`, summed over the minibatch."""
        write_feedback(trace.z, [p for p in block.layer.parameters() if p.requires_grad], normed)


class WindowLFP(SpikingLFP):
    """LFP-ε on window totals (spike counts, integrated currents); see the module docstring."""

    name = "lfp_window"

    @staticmethod
    def initial_reward(per_step: Tensor) -> Tensor:
        return per_step.sum(0)  # r_j = Σ_t R_j,t, `[N, C]`

    def propagate(self, block: SpikingBlock, trace: SpikeTrace, reward_out: Tensor) -> Tensor:
        if block.pool is not None:  # r_p = Σ_t s_p,t [p wins at t] r / A
            pooled = trace.out.detach().sum(0)
            share = (reward_out / torch.where(pooled > 0, pooled, 1.0)).expand_as(trace.out)
            (routed,) = torch.autograd.grad(trace.out, trace.s, share, retain_graph=True)
            reward_out = (trace.s.detach() * routed).sum(0)
        current = trace.z.detach().sum(0).abs()  # |Z_j|: see the module docstring
        normed = reward_out / (current + self.epsilon)
        per_step = normed.expand_as(trace.z)  # constant over the window: Σ_t x_t = A
        self._write_feedback(block, trace, per_step)
        counts = trace.x.detach().sum(0)  # A_i
        weighted = block.linear_map(trace.x[:1], block.weight.detach())
        (per_input,) = torch.autograd.grad(weighted, trace.x, per_step[:1], retain_graph=True)
        return (counts * per_input[0]).reshape(trace.inp.shape[1:])


class WindowDRTP(SpikingRule):
    """DRTP on window totals (spike counts, integrated currents); see the module docstring."""

    name = "drtp_window"

    def __init__(self, net: SpikingNetwork, seed: int = 0) -> None:
        super().__init__(net, seed)
        if any(block.spec.kind != "fc" for block in net.blocks):
            raise ConfigError("rule 'drtp_window' takes fully connected spiking networks only")
        generator = torch.Generator().manual_seed(seed)
        classes = net.num_outputs
        for k, block in enumerate(net.blocks[:-1]):
            signs = torch.randint(0, 2, (classes, block.spec.width), generator=generator)
            self.register_buffer(f"B{k}", 2.0 * signs - 1.0)

    def step(
        self,
        x: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        track_alignment: bool = False,
    ) -> StepResult:
        traces = self.network.trace(x)
        steps = len(traces[-1].s)
        counts = traces[-1].s.detach().sum(0)
        label = target.argmax(1)
        for k, (block, trace) in enumerate(zip(self.network.blocks, traces, strict=True)):
            if k == len(traces) - 1:
                post = target - counts / steps
            else:
                current = trace.z.detach().sum(0)
                gate = (current.abs() < steps * block.threshold.detach()).to(current.dtype)
                post = self.get_buffer(f"B{k}")[label] * gate
            rates = trace.x.detach().sum(0) / steps  # A_i / T
            block.layer.weight.grad = -(post.T @ rates)
            if block.layer.bias is not None and block.layer.bias.requires_grad:
                block.layer.bias.grad = -post.sum(0)
        return StepResult(self.loss(counts, target).item(), counts, None)


SNN_RULES: dict[str, type[SpikingRule]] = {
    rule.name: rule for rule in (BPTT, SurrogateBPTT, SpikingLFP, WindowLFP, WindowDRTP)
}


def make_snn_rule(name: str, net: SpikingNetwork, seed: int = 0, **options: object) -> SpikingRule:
    """Build the spiking rule called `name` for `net` (options: `epsilon`, `reward_norm`)."""
    if name not in SNN_RULES:
        raise ConfigError(f"unknown SNN rule {name!r}; choose one of {', '.join(SNN_RULES)}")
    try:
        return SNN_RULES[name](net, seed=seed, **options)
    except TypeError as error:
        raise ConfigError(f"SNN rule {name!r} does not take options {sorted(options)}") from error
