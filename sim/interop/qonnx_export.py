"""Brevitas QAT networks → QONNX and plain ONNX (QCDQ) files that other tools read.

QONNX keeps each layer's weight quantizer as one `Quant` node (scale, zero point, bit
width), the form that QONNX-reading hardware compilers take in; QCDQ spells the same
quantizer in standard ONNX (`QuantizeLinear` → `Clip` → `DequantizeLinear`), so any ONNX
runtime executes it.
Only the weights carry quantizers: `quant.qat` quantizes nothing else, so activations are
float in both graphs, as in the brevitas model.

Only a network whose every weight layer is quantized at one constant power-of-two scale
(`quant.qat`) is exported: anything else is not the core's network, and the metadata that
names each layer's fraction bits would misstate it.
"""

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx
import torch
from brevitas import export as brevitas_export
from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer
from torch import nn

from quant.atomic import atomic_write
from quant.errors import ConfigError
from sim.models.network import LocallyConnected2d, Network

# torch's exporter implements opset 18 and later; a lower request is down-converted, and
# where that fails the file silently stays at 18.
MIN_OPSET = 18
QCDQ_MAX_BITS = 8  # QuantizeLinear's int8 container, the widest brevitas's QCDQ export writes
FLOAT_LAYERS = (nn.Linear, nn.Conv2d, LocallyConnected2d)

Format = Literal["qonnx", "qcdq"]
EXPORTERS = {"qonnx": brevitas_export.export_qonnx, "qcdq": brevitas_export.export_onnx_qcdq}


@dataclass(frozen=True)
class LayerFormat:
    """A quantized layer's module name and weight format: `bits`-bit integers at `2^−frac`."""

    name: str
    bits: int
    frac: int


def quantized_layers(model: nn.Module) -> list[LayerFormat]:
    """Each quantized layer's weight format, in registration order (a `Network`'s graph order).

    Refuses a model without quantized layers, one with float weight layers left, and
    scales that are not a single power of two.
    """
    quantized, left_float = [], []
    for name, module in model.named_modules():
        if isinstance(module, QuantWeightBiasInputOutputLayer):  # first: also an nn.Linear
            quantized.append(_layer_format(name, module))
        elif isinstance(module, FLOAT_LAYERS):
            left_float.append(f"{name!r} ({type(module).__name__})")
    if not quantized:
        raise ConfigError(
            "the model has no quantized layers: quantize it with quant.qat.quantize_linears "
            "before exporting"
        )
    if left_float:
        raise ConfigError(
            f"float weight layers left: {', '.join(left_float)}; the core quantizes every "
            "layer, so quantize them all before exporting"
        )
    return quantized


def _layer_format(name: str, layer: QuantWeightBiasInputOutputLayer) -> LayerFormat:
    quant = layer.quant_weight()
    scale = quant.scale.detach()
    if scale.numel() != 1:
        raise ConfigError(
            f"layer {name!r}: {scale.numel()} weight scales; the core has one power-of-two "
            "scale per layer"
        )
    mantissa, exponent = math.frexp(float(scale))
    if mantissa != 0.5:
        raise ConfigError(
            f"layer {name!r}: weight scale {float(scale):g} is not a power of two, so the "
            "core cannot shift by it (quant.qat layers have 2^-frac)"
        )
    return LayerFormat(name, int(quant.bit_width), 1 - exponent)


def export_qonnx(
    model: nn.Module, input_shape: Sequence[int], path: str | Path, opset: int = MIN_OPSET
) -> Path:
    """Write `model` as QONNX: a `Quant` node (scale `2^−frac`, zero point 0, bit width,
    narrow range) on each layer's float weights. `input_shape` includes the batch."""
    return _export(model, input_shape, path, "qonnx", opset)


def export_qcdq(
    model: nn.Module, input_shape: Sequence[int], path: str | Path, opset: int = MIN_OPSET
) -> Path:
    """Write `model` as standard ONNX, each weight through QuantizeLinear → Clip (narrow
    range) → DequantizeLinear at scale `2^−frac`; weights of at most 8 bits."""
    return _export(model, input_shape, path, "qcdq", opset)


def _export(
    model: nn.Module, input_shape: Sequence[int], path: str | Path, fmt: Format, opset: int
) -> Path:
    """Check, export through brevitas into a scratch file, add metadata, validate, then
    write `path` atomically: a refused or failed export leaves no file behind."""
    _check_opset(opset)
    shape = _check_shape(input_shape)
    layers = quantized_layers(model)
    if fmt == "qcdq":
        _check_qcdq_bits(layers)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "model.onnx"
        EXPORTERS[fmt](model, torch.zeros(shape), export_path=str(raw), **_torch_options(opset))
        proto = onnx.load(raw)
    props = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, props | metadata(model, fmt, layers))
    onnx.checker.check_model(proto, full_check=True)
    return atomic_write(path, lambda handle: handle.write(proto.SerializeToString()))


def _torch_options(opset: int) -> dict[str, object]:
    """The `torch.onnx.export` options brevitas passes on.

    torch >= 2.9 makes the torch.export-based ("dynamo") exporter the default, and brevitas
    follows that default; the TorchScript exporter (`dynamo=False`) still runs but warns
    that it is legacy. Naming `dynamo=True` keeps the graph from changing with torch's
    default. brevitas sets `keep_initializers_as_inputs=True`, which makes every weight a
    graph input a runtime asks to be fed; the dynamo exporter puts weights in a `.data`
    side file unless `external_data=False`, and one self-contained file is what the atomic
    write renames; `optimize` (onnxscript's constant folding) is what brevitas recommends
    with dynamo; `verbose=False` keeps the exporter's progress lines off stdout.
    """
    return {
        "opset_version": opset,
        "dynamo": True,
        "keep_initializers_as_inputs": False,
        "external_data": False,
        "optimize": True,
        "verbose": False,
    }


def metadata(model: nn.Module, fmt: Format, layers: Sequence[LayerFormat]) -> dict[str, str]:
    """The `metadata_props` written: format, quantized layer names, their weight bits and
    fraction bits (JSON lists, the graph's layer order) and, for a `Network`, its topology.
    The dynamo exporter renames weights, so the layer names map Quant nodes to modules."""
    props = {
        "plasticore.format": fmt,
        "plasticore.layers": json.dumps([layer.name for layer in layers]),
        "plasticore.weight_bits": json.dumps([layer.bits for layer in layers]),
        "plasticore.frac_bits": json.dumps([layer.frac for layer in layers]),
    }
    if isinstance(model, Network):
        props["plasticore.topology"] = model.config.topology
    return props


def _check_opset(opset: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ConfigError(
            f"opset {opset!r}: export writes ONNX opset {MIN_OPSET} or later, the lowest "
            "that torch's exporter implements"
        )


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ConfigError(
            f"input_shape must be positive integers, batch first, got {input_shape!r}"
        )
    return shape


def _check_qcdq_bits(layers: Sequence[LayerFormat]) -> None:
    wide = [f"{layer.name!r} ({layer.bits}-bit)" for layer in layers if layer.bits > QCDQ_MAX_BITS]
    if wide:
        raise ConfigError(
            f"QCDQ holds weights in int8, too narrow for {', '.join(wide)}: export QONNX instead"
        )
