"""Spiking networks of leaky integrate-and-fire neurons (snnTorch `Leaky`), LFP paper A.6.

Every layer of a topology string (`FC_1000_FC_10`, `CONV_12_5_1_0_CONV_64_5_1_0_FC_10`)
is a weighted sum followed by a layer of LIF neurons. With threshold θ, decay β, reset by
subtraction and snnTorch's one-step reset delay, layer k at step t = 1..T computes

    z_t = W x_t + b                                   (input current)
    u_t = β u_{t−1} + z_t − θ H(u_{t−1} − θ),  u_0 = 0   (Eq. A.3)
    s_t = H(u_t − θ)                                  (Eq. A.2, H(0) = 0)

and a convolutional layer then max-pools its spikes (2x2, stride 2), as the reference
`LifCNN` does (conv → LIF → pool). The input is constant-current encoded: the same
sample `x` at every step. The network's output is the output layer's spike count
`Σ_t s_t` per class, `[N, C]`; the predicted class is its argmax.

The SNN LeNet of A.7.5 is `CONV_12_5_1_0_CONV_64_5_1_0_FC_10` (on 28x28 inputs the
flattened map feeding the dense layer is 64·4·4 = 1024 wide, the paper's "1,024"), the
SNN MLP `FC_1000_FC_1000_FC_10` (or `FC_1000_FC_10`, the reference's `SmallLifMLP`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import snntorch as snn
import torch
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.network import INITS, Network, heaviside, init_layer, weighted_sum
from sim.models.topology import LayerSpec, parse_topology

SpikeFn = Callable[[Tensor], Tensor]  # H(u − θ) in the forward pass; its backward is the rule's


def validate_lif(beta: float, threshold: float, time_steps: int) -> None:
    """`ConfigError` naming the field for an invalid LIF setting."""
    if not 0.0 < beta <= 1.0:
        raise ConfigError(f"beta must be in (0, 1], got {beta}")
    if not threshold > 0.0:
        raise ConfigError(f"threshold must be > 0, got {threshold}")
    if time_steps < 1:
        raise ConfigError(f"time_steps must be >= 1, got {time_steps}")


@dataclass(frozen=True)
class SNNConfig:
    """A spiking network; validated on construction."""

    topology: str
    input_shape: tuple[int, ...]
    beta: float = 0.9
    threshold: float = 1.0
    time_steps: int = 15
    init: Literal["he_uniform", "torch_default", "zeros"] = "torch_default"

    def __post_init__(self) -> None:
        layers = parse_topology(self.topology)
        if any(layer.batchnorm or layer.skip for layer in layers):
            raise ConfigError(f"topology {self.topology!r}: spiking networks take no BN or SKIP")
        if any(layer.kind == "lc" for layer in layers):
            raise ConfigError(f"topology {self.topology!r}: spiking networks take no LC layers")
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise ConfigError(f"input_shape must be positive dimensions, got {self.input_shape}")
        validate_lif(self.beta, self.threshold, self.time_steps)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {self.init!r}")

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return parse_topology(self.topology)


@dataclass
class SpikeTrace:
    """One layer's forward pass over the window; every tensor is time-major `[T, N, ...]`."""

    inp: Tensor  # the previous layer's output (a leaf in a local trace)
    x: Tensor  # layer input (flattened for FC layers)
    z: Tensor  # input currents z_t
    u: Tensor  # membranes u_t, t = 1..T
    reset: Tensor  # H(u_{t−1} − θ), the subtraction applied at step t (detached)
    s: Tensor  # spikes s_t
    out: Tensor  # spikes after max pooling (conv), otherwise `s` itself

    @property
    def u_prev(self) -> Tensor:
        """u_{t−1}, t = 1..T (u_0 = 0)."""
        u = self.u.detach()
        return torch.cat([torch.zeros_like(u[:1]), u[:-1]])


class SpikingBlock(nn.Module):
    """A Linear or Conv2d layer feeding a layer of snnTorch `Leaky` neurons."""

    def __init__(
        self, spec: LayerSpec, in_shape: tuple[int, ...], beta: float, threshold: float
    ) -> None:
        super().__init__()
        self.spec = spec
        if spec.kind == "fc":
            fan_in = torch.Size(in_shape).numel()
            self.layer: nn.Linear | nn.Conv2d = nn.Linear(fan_in, spec.width)
            self.pool: nn.MaxPool2d | None = None
        else:
            self.layer = nn.Conv2d(
                in_shape[0], spec.width, spec.kernel, stride=spec.stride, padding=spec.padding
            )
            self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.lif = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism="subtract")

    @property
    def weight(self) -> Tensor:
        return self.layer.weight

    @property
    def beta(self) -> Tensor:
        return self.lif.beta.clamp(0, 1)  # as snnTorch applies it

    @property
    def threshold(self) -> Tensor:
        return self.lif.threshold

    def linear_map(self, x: Tensor, weight: Tensor) -> Tensor:
        """`W x` over a `[T, N, ...]` input with `weight` in place of W and no bias."""
        return weighted_sum(self.layer, x.flatten(0, 1), weight).unflatten(0, x.shape[:2])

    def run(self, inp: Tensor, spike: SpikeFn) -> SpikeTrace:
        """Eqs. A.2–A.3 over the window, written out so every step's tensors are kept."""
        x = inp.flatten(2) if self.spec.kind == "fc" else inp
        # Per step on a fresh (aligned) copy, as snnTorch is driven: BLAS results depend on
        # the batch size and the buffer's alignment, and the trace must match it bit for bit.
        z = torch.stack([self.layer(x_t.clone()) for x_t in x])
        theta = self.threshold
        u = torch.zeros_like(z[0])
        us, resets, spikes = [], [], []
        for z_t in z:
            reset = (u - theta > 0).to(u.dtype)  # snnTorch's detached `mem_reset`
            u = self.beta * u + z_t - reset * theta
            us.append(u)
            resets.append(reset)
            spikes.append(spike(u - theta))
        s = torch.stack(spikes)
        out = self.pool(s.flatten(0, 1)).unflatten(0, s.shape[:2]) if self.pool else s
        return SpikeTrace(inp, x, z, torch.stack(us), torch.stack(resets), s, out)


class SpikingNetwork(nn.Module):
    """A chain of `SpikingBlock`s; the last one is the output layer."""

    def __init__(self, config: SNNConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        blocks = []
        shape = tuple(config.input_shape)
        for spec in config.layers:
            if spec.kind == "conv" and len(shape) != 3:
                raise ConfigError(
                    f"topology {config.topology!r}: CONV needs (channels, height, width) input, "
                    f"the input shape is {shape}"
                )
            block = SpikingBlock(spec, shape, config.beta, config.threshold)
            init_layer(block.layer, config.init, generator)
            blocks.append(block)
            shape = Network._out_shape(spec, shape, config.topology)
        self.blocks = nn.ModuleList(blocks)

    @property
    def num_outputs(self) -> int:
        return self.config.layers[-1].width

    def encode(self, x: Tensor) -> Tensor:
        """Constant-current encoding: `x` repeated at each of the T steps, `[T, N, ...]`."""
        return x.unsqueeze(0).expand(self.config.time_steps, *x.shape)

    def trace(self, x: Tensor, spike: SpikeFn = heaviside, local: bool = True) -> list[SpikeTrace]:
        """Forward pass keeping every layer's per-step tensors.

        `spike` is the step's autograd function (its forward is always H; `heaviside` has
        the true derivative 0, a surrogate gives BPTT a signal). With `local`, each layer's
        input is detached into its own leaf, as `Network.trace` does; otherwise the graph
        runs through the whole network (BPTT).
        """
        traces = []
        y = self.encode(x)
        for block in self.blocks:
            if local:
                y = y.detach().requires_grad_(torch.is_grad_enabled())
            trace = block.run(y, spike)
            traces.append(trace)
            y = trace.out
        return traces

    def forward(self, x: Tensor) -> Tensor:
        """Output spike counts `[N, C]`, computed by snnTorch's own `Leaky` step."""
        spikes, _ = self.snntorch_states(x)[-1]
        return spikes.sum(0)

    def snntorch_states(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Plain snnTorch forward (time outer, layers inner): per layer, spikes and u_t."""
        mems: list[Tensor] = [block.lif.init_leaky() for block in self.blocks]
        spikes: list[list[Tensor]] = [[] for _ in self.blocks]
        membranes: list[list[Tensor]] = [[] for _ in self.blocks]
        for _ in range(self.config.time_steps):
            y = x
            for k, block in enumerate(self.blocks):
                current = block.layer(y.flatten(1) if block.spec.kind == "fc" else y)
                spk, mems[k] = block.lif(current, mems[k])
                spikes[k].append(spk)
                membranes[k].append(mems[k])
                y = block.pool(spk) if block.pool is not None else spk
        return [(torch.stack(s), torch.stack(u)) for s, u in zip(spikes, membranes, strict=True)]
