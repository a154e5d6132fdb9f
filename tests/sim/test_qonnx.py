"""QONNX and QCDQ export of QAT networks: the graphs hold the core's scales and compute what
brevitas computes."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from brevitas.nn import QuantLinear
from onnx import numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.general.quant import quant
from qonnx.util.cleanup import cleanup_model
from torch import nn

from quant.errors import ConfigError
from quant.qat import integer_weights, quantize_linears
from sim.interop.qonnx_export import export_qcdq, export_qonnx
from sim.models import Network, NetworkConfig

CONFIG = NetworkConfig("FC_32_FC_10", (64,), hidden_activation="hardtanh")
BITS, FRACS = 6, (4, 5)
SHAPE = (4, 64)
ATOL = 1e-6  # float32 sums in another order; a quantization error is 1e-2 or more


def _float_net() -> Network:
    return Network(CONFIG, seed=0)


def _qat_net(bits: int = BITS) -> Network:
    net = _float_net()
    quantize_linears(net, bits, FRACS)
    return net.eval()


@pytest.fixture(scope="module")
def net() -> Network:
    return _qat_net()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def qonnx_file(net, tmp_path_factory) -> Path:
    return export_qonnx(net, SHAPE, tmp_path_factory.mktemp("qonnx") / "net.onnx")


@pytest.fixture(scope="module")
def qcdq_file(net, tmp_path_factory) -> Path:
    return export_qcdq(net, SHAPE, tmp_path_factory.mktemp("qcdq") / "net.onnx", opset=19)


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _nodes(model: onnx.ModelProto, op_type: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if node.op_type == op_type]


def _attributes(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_quant_nodes_hold_each_layers_power_of_two_scale_and_the_cores_integers(net, qonnx_file):
    model = onnx.load(qonnx_file)
    values = _initializers(model)
    nodes = _nodes(model, "Quant")
    assert len(nodes) == len(FRACS)
    for node, frac, (ints, _) in zip(nodes, FRACS, integer_weights(net), strict=True):
        weight, scale, zero, bits = (values[name] for name in node.input)
        assert scale == np.float32(2.0**-frac) and zero == 0 and bits == BITS
        attrs = _attributes(node)
        assert (attrs["signed"], attrs["narrow"], attrs["rounding_mode"]) == (1, 1, b"ROUND")
        quantized = quant(weight, scale, zero, bits, signed=1, narrow=1, rounding_mode="ROUND")
        assert np.array_equal(quantized / scale, ints.T)


def test_qonnx_execution_matches_brevitas(net, x, qonnx_file):
    model = cleanup_model(ModelWrapper(str(qonnx_file)))
    out = execute_onnx(model, {model.graph.input[0].name: x.numpy()})
    got = out[model.graph.output[0].name]
    with torch.no_grad():
        expected, unquantized = net(x).numpy(), _float_net()(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    assert np.abs(got - unquantized).max() > 100 * ATOL  # the tolerance sees quantization


def test_qcdq_is_standard_onnx_that_onnxruntime_runs_like_brevitas(net, x, qcdq_file):
    model = onnx.load(qcdq_file)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    values = _initializers(model)
    scales = [values[node.input[1]] for node in _nodes(model, "DequantizeLinear")]
    assert scales == [np.float32(2.0**-f) for f in FRACS]
    session = onnxruntime.InferenceSession(qcdq_file, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), rtol=0, atol=ATOL)


def test_files_carry_the_requested_opset_and_the_layer_formats(qonnx_file, qcdq_file):
    for path, fmt, opset in ((qonnx_file, "qonnx", 18), (qcdq_file, "qcdq", 19)):
        model = onnx.load(path)
        assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == opset
        props = {p.key: p.value for p in model.metadata_props}
        assert props["plasticore.format"] == fmt
        assert props["plasticore.topology"] == "FC_32_FC_10"
        assert json.loads(props["plasticore.layers"]) == ["blocks.0.layer", "blocks.1.layer"]
        assert json.loads(props["plasticore.weight_bits"]) == [BITS, BITS]
        assert json.loads(props["plasticore.frac_bits"]) == list(FRACS)
        assert list(path.parent.iterdir()) == [path]  # no scratch or .data file left


def _half_quantized() -> Network:
    net = _float_net()
    quantize_linears(net, BITS, FRACS)
    net.blocks[1].layer = nn.Linear(32, 10, bias=False)
    return net


def _statistics_scaled() -> Network:
    net = _qat_net()
    net.blocks[0].layer = QuantLinear(64, 32, bias=False)  # brevitas's default: a float scale
    return net


def _ten_bit() -> Network:
    return _qat_net(bits=10)


@pytest.mark.parametrize(
    ("make", "export", "opset", "message"),
    [
        (_float_net, export_qonnx, 18, "no quantized layers"),
        (_qat_net, export_qonnx, 13, "opset 13: .* 18 or later"),
        (_qat_net, export_qcdq, 17, "opset 17"),
        (_half_quantized, export_qcdq, 18, r"float weight layers left: 'blocks.1.layer' \(Linear"),
        (_statistics_scaled, export_qonnx, 18, "'blocks.0.layer': weight scale .* not a power"),
        (_ten_bit, export_qcdq, 18, r"int8, too narrow for 'blocks.0.layer' \(10-bit"),
    ],
)
def test_refused_exports_name_the_problem_and_write_nothing(
    make: Callable[[], nn.Module], export, opset: int, message: str, tmp_path
):
    with pytest.raises(ConfigError, match=message):
        export(make(), SHAPE, tmp_path / "net.onnx", opset=opset)
    assert not any(tmp_path.iterdir())
