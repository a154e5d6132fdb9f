"""The torch side of the quantization bridge: brevitas QAT layers with a fixed binary point.

A QAT layer's weight scale is a constant `2^−frac_bits`, not a learned or statistics-driven
one: the core shifts instead of multiplying by scales, so the binary point must not move
while the network trains. Weights are narrow-range (`±(2^(W−1) − 1)`), symmetric like the
float weights they shadow, so that `quant.convert` maps a trained QAT layer onto the core
without loss. `brevitas.nn.QuantLinear` subclasses `nn.Linear`, so the project's learning
rules (which read `layer.weight` and `layer.parameters()`) train it unchanged; gradients
pass the rounding and the clamp as a straight-through estimator.

This is the only module of `quant` that imports torch and brevitas; nothing else in
`quant` imports it, so the fixed-point room stays numpy-only.
"""

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.nn import QuantLinear
from brevitas.quant import Int8WeightPerTensorFixedPoint
from torch import nn

from quant.errors import ConfigError


def qat_linear(
    in_features: int, out_features: int, weight_bits: int, frac_bits: int
) -> QuantLinear:
    """A bias-free `QuantLinear` whose integer weights are `W`-bit at constant scale `2^−f`.

    brevitas's constant "scaling" is the range, `2^(W−1)` integer steps of the scale, hence
    `2^(W−1−f)`; its power-of-two restriction keeps the scale exact.
    """
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or weight_bits < 2:
        raise ConfigError(f"weight_bits must be an integer >= 2, got {weight_bits!r}")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int):
        raise ConfigError(f"frac_bits must be an integer, got {frac_bits!r}")
    return QuantLinear(
        in_features,
        out_features,
        bias=False,
        weight_quant=Int8WeightPerTensorFixedPoint,
        weight_bit_width=weight_bits,
        weight_narrow_range=True,
        weight_scaling_impl_type=ScalingImplType.CONST,
        weight_scaling_init=2.0 ** (weight_bits - 1 - frac_bits),
        weight_float_to_int_impl_type=FloatToIntImplType.ROUND,
        return_quant_tensor=False,
    )


def _swap_linears(model: nn.Module, make: Callable[[int, nn.Linear], nn.Linear]) -> None:
    """Replace every `nn.Linear` of `model` (in registration order) by `make(k, layer)`,
    its weight copied. The core has no biases, so a nonzero one is refused."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
    ]
    for k, (parent, name, layer) in enumerate(targets):
        if layer.bias is not None and bool(layer.bias.detach().any()):
            raise ConfigError(
                f"linear layer {k} has a nonzero bias and the core has none: build the "
                "network with zero biases (init 'he_uniform' or 'zeros')"
            )
        new = make(k, layer)
        with torch.no_grad():
            new.weight.copy_(layer.weight)
        new.weight.requires_grad_(layer.weight.requires_grad)
        new.train(layer.training)
        setattr(parent, name, new)


def drop_biases(model: nn.Module) -> None:
    """Swap every `nn.Linear` for a bias-free float one, so a float network trains as the
    core computes (no biases) before `quant.convert` picks its scales."""
    _swap_linears(model, lambda _, layer: nn.Linear(layer.in_features, layer.out_features, False))


def quantize_linears(model: nn.Module, weight_bits: int, frac_bits: int | Sequence[int]) -> None:
    """Swap every `nn.Linear` of `model` for `qat_linear` (one `frac_bits` for all layers or
    one per layer, in registration order), in place, before an optimizer sees the weights."""
    count = sum(type(m) is nn.Linear for m in model.modules())
    per_layer = [frac_bits] * count if isinstance(frac_bits, int) else list(frac_bits)
    if len(per_layer) != count:
        raise ConfigError(f"frac_bits: the model has {count} linear layers, got {len(per_layer)}")
    _swap_linears(
        model,
        lambda k, layer: qat_linear(
            layer.in_features, layer.out_features, weight_bits, per_layer[k]
        ),
    )


def core_weights(model: nn.Module) -> list[np.ndarray]:
    """Every linear layer's weight in the core's `[n_in, n_out]` layout, as floats (the
    quantized values for QAT layers): the input of `quant.convert.convert`."""
    weights = []
    for layer in model.modules():
        if isinstance(layer, QuantLinear):
            weights.append(layer.quant_weight().value.detach().double().numpy().T.copy())
        elif isinstance(layer, nn.Linear):
            weights.append(layer.weight.detach().double().numpy().T.copy())
    return weights


def integer_weights(model: nn.Module) -> list[tuple[np.ndarray, int]]:
    """Each QAT layer's integer weights `[n_in, n_out]` (int64) and its fraction bits."""
    result = []
    for layer in model.modules():
        if isinstance(layer, QuantLinear):
            quant = layer.quant_weight()
            frac = -round(math.log2(float(quant.scale)))
            result.append((quant.int().detach().numpy().T.astype(np.int64), frac))
    return result
