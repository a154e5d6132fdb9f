"""Feed-forward networks built from a topology string, traceable block by block.

A network is a chain of blocks. Block k computes

    x_k = dropout(flatten(y_{k-1}))      (flatten and dropout: fully connected blocks only)
    z_k = W_k x_k + b_k                  (Linear, Conv2d or LocallyConnected2d)
    n_k = BN(z_k)                        (`BN` blocks only; otherwise n_k = z_k)
    a_k = f_k(n_k)                       (the point where learning rules inject signals)
    y_k = maxpool(a_k)                   (convolutional and locally connected blocks only)
    y_k = a_k + y_{k-1}                  (`SKIP` blocks only: a sum skip connection)

`Network.trace` runs the chain with every block's input detached into its own leaf, so a
learning rule can drive each block's local backward pass with whatever signal it
prescribes at `a_k` (the DRTP reference places its feedback hook at the same point, after
the activation and before pooling) without any gradient leaking between layers.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant.errors import ConfigError
from sim.models.topology import LayerSpec, parse_topology


def heaviside(z: Tensor) -> Tensor:
    """Step `H(z) = 1(z > 0)`, kept in the autograd graph with its true derivative, 0.

    Gradient rules therefore see no signal (plain BP cannot train through it), while
    LFP, which needs no derivative, can.
    """
    return (z > 0).to(z.dtype) + 0.0 * z


ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "silu": F.silu,
    "elu": F.elu,
    "hardtanh": F.hardtanh,
    "heaviside": heaviside,
    "linear": lambda z: z,
}
# he_uniform: He-uniform weights, zero biases (DRTP reference). torch_default: PyTorch's
# layer init, nonzero biases, which |w|-scaled rules (LFP) need, since a zero parameter
# never receives an LFP update. zeros: all zero (DRTP paper's regression setup).
INITS = ("he_uniform", "torch_default", "zeros")


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to build a network; validated on construction."""

    topology: str
    input_shape: tuple[int, ...]
    hidden_activation: str = "tanh"
    output_activation: str = "sigmoid"
    dropout: float = 0.0
    conv_trainable: bool = True
    init: Literal["he_uniform", "torch_default", "zeros"] = "he_uniform"
    activation_noise: float = 0.0  # std of Gaussian noise on hidden activations, training only

    def __post_init__(self) -> None:
        parse_topology(self.topology)
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise ConfigError(f"input_shape must be positive dimensions, got {self.input_shape}")
        for field in ("hidden_activation", "output_activation"):
            if getattr(self, field) not in ACTIVATIONS:
                raise ConfigError(
                    f"{field} must be one of {sorted(ACTIVATIONS)}, got {getattr(self, field)!r}"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.activation_noise >= 0.0:
            raise ConfigError(f"activation_noise must be >= 0, got {self.activation_noise}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {self.init!r}")

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return parse_topology(self.topology)


@dataclass
class BlockTrace:
    """The tensors of one block's forward pass, connected by the block's local graph."""

    inp: Tensor  # leaf: the previous block's output, detached
    x: Tensor  # layer input after flatten and dropout
    z: Tensor  # weighted sum
    n: Tensor  # after batch normalisation (`z` itself without BN)
    a: Tensor  # activation (where rules inject their signal)
    out: Tensor  # after pooling (conv) or the skip sum, otherwise `a` itself


class LocallyConnected2d(nn.Module):
    """A convolution's connectivity with untied weights: every output unit has its own kernel.

    `weight[o * L + l]` (L = out_h · out_w locations, row-major) is the `[in_channels, k, k]`
    kernel of output channel o at location l, so the weight is laid out like a Conv2d's with
    `out_channels · L` kernels and the usual initialisers see the convolution's fan-in. The
    bias is untied too, one per output unit. Each entry is updated by its own product
    `δ_{o,l} x_{l+Δ}` instead of the sum over locations a tied kernel receives.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        out_size: tuple[int, int],
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.out_size = out_size
        locations = out_size[0] * out_size[1]
        self.weight = nn.Parameter(
            torch.empty(out_channels * locations, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, *out_size))

    def weighted_sum(self, x: Tensor, weight: Tensor) -> Tensor:
        """`Σ_j weight[o, l, j] · patch_l(x)_j` for every output unit, without the bias."""
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        kernels = weight.reshape(self.out_channels, patches.shape[-1], -1)
        z = torch.einsum("njl,olj->nol", patches, kernels)
        return z.reshape(x.shape[0], self.out_channels, *self.out_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.weighted_sum(x, self.weight) + self.bias


Layer = nn.Linear | nn.Conv2d | LocallyConnected2d


def weighted_sum(layer: Layer, x: Tensor, weight: Tensor) -> Tensor:
    """`layer`'s weighted sum of `x` with `weight` in place of W and no bias (for feedback)."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight)
    if isinstance(layer, LocallyConnected2d):
        return layer.weighted_sum(x, weight)
    return F.conv2d(x, weight, stride=layer.stride, padding=layer.padding)


def spatial_out_size(spec: LayerSpec, height: int, width: int) -> tuple[int, int]:
    """Feature map size after a CONV or LC layer's weighted sum (before pooling)."""
    return (
        (height + 2 * spec.padding - spec.kernel) // spec.stride + 1,
        (width + 2 * spec.padding - spec.kernel) // spec.stride + 1,
    )


def init_layer(layer: Layer, init: str, generator: torch.Generator) -> None:
    """Initialise `layer` as `INITS` describes, drawing from `generator`."""
    weight, bias = layer.weight, layer.bias
    with torch.no_grad():
        if init == "zeros":
            weight.zero_()
            bias.zero_()
        elif init == "he_uniform":
            nn.init.kaiming_uniform_(weight, generator=generator)
            bias.zero_()
        else:  # PyTorch's Linear/Conv2d reset_parameters (fan-in: one kernel's size)
            nn.init.kaiming_uniform_(weight, a=5**0.5, generator=generator)
            bound = 1 / weight[0].numel() ** 0.5
            nn.init.uniform_(bias, -bound, bound, generator=generator)


class Block(nn.Module):
    """One trainable layer with its activation, optional dropout and pooling."""

    def __init__(
        self,
        spec: LayerSpec,
        in_shape: tuple[int, ...],
        activation: str,
        dropout: float,
        trainable: bool,
        noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.activation = activation
        self.noise = noise
        self.dropout = dropout if spec.kind == "fc" else 0.0
        if spec.kind == "fc":
            fan_in = 1
            for d in in_shape:
                fan_in *= d
            self.layer: Layer = nn.Linear(fan_in, spec.width)
            self.pool: nn.MaxPool2d | None = None
        else:
            if spec.kind == "conv":
                self.layer = nn.Conv2d(
                    in_shape[0], spec.width, spec.kernel, stride=spec.stride, padding=spec.padding
                )
            else:
                out_size = spatial_out_size(spec, in_shape[1], in_shape[2])
                self.layer = LocallyConnected2d(
                    in_shape[0], spec.width, spec.kernel, spec.stride, spec.padding, out_size
                )
            self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.skip = spec.skip
        self.norm: nn.BatchNorm1d | nn.BatchNorm2d | None = None
        if spec.batchnorm:
            bn = nn.BatchNorm1d if spec.kind == "fc" else nn.BatchNorm2d
            self.norm = bn(spec.width)
        self.layer.requires_grad_(trainable)

    @property
    def weight(self) -> Tensor:
        return self.layer.weight

    def linear_map(self, x: Tensor, weight: Tensor) -> Tensor:
        """The layer's weighted sum with `weight` in place of W and no bias (for feedback)."""
        return weighted_sum(self.layer, x, weight)

    def prepare(self, y_prev: Tensor, generator: torch.Generator | None) -> Tensor:
        """Flatten and (when a generator is given) apply inverted dropout to the input."""
        x = y_prev.flatten(1) if self.spec.kind == "fc" else y_prev
        if generator is not None and self.dropout > 0.0:
            keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= self.dropout
            x = x * keep / (1.0 - self.dropout)
        return x

    def run(self, y_prev: Tensor, generator: torch.Generator | None = None) -> BlockTrace:
        x = self.prepare(y_prev, generator)
        z = self.layer(x)
        n = self.norm(z) if self.norm is not None else z
        a = ACTIVATIONS[self.activation](n)
        if generator is not None and self.noise > 0.0:
            # LFP paper Sec. 3.6: noise keeps Heaviside units from dying during training.
            a = a + self.noise * torch.randn(a.shape, generator=generator, dtype=a.dtype)
        out = self.pool(a) if self.pool is not None else a
        if self.skip:
            out = out + y_prev
        return BlockTrace(inp=y_prev, x=x, z=z, n=n, a=a, out=out)


class Network(nn.Module):
    """A chain of `Block`s; the last one is the output layer."""

    def __init__(self, config: NetworkConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        blocks = []
        shape = tuple(config.input_shape)
        specs = config.layers
        for i, spec in enumerate(specs):
            if spec.kind != "fc" and len(shape) != 3:
                raise ConfigError(
                    f"topology {config.topology!r}: {spec.kind.upper()} needs (channels, height, "
                    f"width) input, the input shape is {shape}"
                )
            last = i == len(specs) - 1
            if spec.skip and shape != (spec.width,):
                raise ConfigError(
                    f"topology {config.topology!r}: {spec} adds its input to its output, so "
                    f"its input must be {spec.width} wide, got shape {shape}"
                )
            out_shape = self._out_shape(spec, shape, config.topology)  # refuses too small maps
            block = Block(
                spec,
                shape,
                config.output_activation if last else config.hidden_activation,
                config.dropout,
                trainable=spec.kind == "fc" or config.conv_trainable,  # CONV and LC alike
                noise=0.0 if last else config.activation_noise,
            )
            init_layer(block.layer, config.init, generator)
            blocks.append(block)
            shape = out_shape
        self.blocks = nn.ModuleList(blocks)
        self.hook_shapes: tuple[tuple[int, ...], ...] = self._hook_shapes()

    @property
    def num_outputs(self) -> int:
        return self.config.layers[-1].width

    @staticmethod
    def _out_shape(spec: LayerSpec, shape: tuple[int, ...], topology: str) -> tuple[int, ...]:
        if spec.kind == "fc":
            return (spec.width,)
        h, w = spatial_out_size(spec, shape[1], shape[2])
        if h < 2 or w < 2:
            raise ConfigError(
                f"topology {topology!r}: {spec} leaves a {h}x{w} map, too small for 2x2 pooling"
            )
        return (spec.width, h // 2, w // 2)

    def _hook_shapes(self) -> tuple[tuple[int, ...], ...]:
        training = self.training
        self.eval()  # a probe must not touch BatchNorm's running statistics
        with torch.no_grad():
            probe = torch.zeros((1, *self.config.input_shape))
            shapes = tuple(tuple(t.a.shape[1:]) for t in self.trace(probe))
        self.train(training)
        return shapes

    def trace(self, x: Tensor, generator: torch.Generator | None = None) -> list[BlockTrace]:
        """Forward pass with each block's input detached into a leaf that requires grad.

        Dropout and activation noise are applied only when `generator` is given
        (training); the generator makes them reproducible and checkpointable.
        """
        traces = []
        y = x
        for block in self.blocks:
            leaf = y.detach().requires_grad_(torch.is_grad_enabled())
            trace = block.run(leaf, generator)
            traces.append(trace)
            y = trace.out
        return traces

    def forward(self, x: Tensor) -> Tensor:
        """Inference: one connected graph, no dropout (call `eval()` for BN running stats)."""
        y = x
        for block in self.blocks:
            y = block.run(y).out
        return y
