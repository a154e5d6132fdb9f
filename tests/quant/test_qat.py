"""The torch side of the bridge, and the bridge measured: float network → integer core."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from brevitas.nn import QuantLinear

from quant.convert import convert
from quant.errors import ConfigError
from quant.qat import core_weights, drop_biases, integer_weights, qat_linear, quantize_linears
from quant.spec import load_spec
from sim.chip.golden import GoldenCore
from sim.chip.train import dataset_codes
from sim.data import load_dataset
from sim.models import Network, NetworkConfig
from sim.train import TrainConfig, train

DIGITS = load_spec("configs/digits.toml")  # 64-100-10 LIF, 4-bit inputs, 8-bit weights


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _core_error(spec, weights, dataset) -> float:
    _, x_test = dataset_codes(spec, dataset)
    core = GoldenCore(spec, weights)
    wrong = sum(core.infer(x).prediction != y for x, y in zip(x_test, dataset.y_test, strict=True))
    return wrong / len(x_test)


def test_qat_layer_has_a_constant_power_of_two_scale():
    layer = qat_linear(4, 3, weight_bits=6, frac_bits=4)
    with torch.no_grad():
        layer.weight.copy_(
            torch.tensor([[5.0, -5.0, 0.51, -0.03], [0.0, 1.0, 1.97, -1.9], [0.1] * 4])
        )
    quant = layer.quant_weight()
    assert float(quant.scale) == 2.0**-4 and int(quant.bit_width) == 6
    assert quant.int().tolist() == [[31, -31, 8, 0], [0, 16, 31, -30], [2, 2, 2, 2]]
    assert torch.equal(quant.value, quant.int().float() * 2.0**-4)
    assert layer.bias is None and isinstance(layer, torch.nn.Linear)


def test_swaps_copy_weights_and_refuse_biases():
    config = NetworkConfig("FC_8_FC_3", (5,), init="he_uniform")
    net = Network(config, seed=1)
    before = [b.layer.weight.detach().clone() for b in net.blocks]
    quantize_linears(net, weight_bits=8, frac_bits=(7, 6))
    assert all(isinstance(b.layer, QuantLinear) for b in net.blocks)
    for (ints, frac), w, f in zip(integer_weights(net), before, (7, 6), strict=True):
        assert frac == f
        assert np.array_equal(ints, np.clip(np.round(w.numpy().T * 2.0**f), -127, 127))
    with pytest.raises(ConfigError, match="has 2 linear layers, got 3"):
        quantize_linears(Network(config), 8, (7, 6, 5))
    with pytest.raises(ConfigError, match="linear layer 0 has a nonzero bias"):
        drop_biases(Network(replace(config, init="torch_default")))
    plain = Network(config)
    drop_biases(plain)
    assert all(type(b.layer) is torch.nn.Linear and b.layer.bias is None for b in plain.blocks)


@pytest.mark.parametrize("rule", ["drtp", "bp"])
def test_rules_train_a_qat_network_and_the_scale_never_moves(rule, digits):
    config = TrainConfig(
        rule=rule,
        topology="FC_32_FC_10",
        data="digits",
        epochs=3,
        batch_size=20,
        lr=3e-3,
        hidden_activation="hardtanh",
        init="he_uniform",
        track_alignment=False,
    )
    result = train(
        config,
        dataset=digits,
        progress=False,
        prepare=partial(quantize_linears, weight_bits=6, frac_bits=4),
    )
    assert result.final.test_error < 0.5  # measured: drtp 0.28, bp 0.13 (chance: 0.9)
    layers = integer_weights(result.network)
    assert [frac for _, frac in layers] == [4, 4]
    for ints, _ in layers:
        assert ints.min() >= -31 and ints.max() <= 31
    # A QAT network converts without loss: its weights are already on the core's grid.
    spec = replace(DIGITS, hidden=(32,), weight_bits=6, thresholds=(1, 1))
    _, converted = convert(spec, core_weights(result.network), threshold=1.0)
    for (ints, _), core in zip(layers, converted, strict=True):
        shift = int(np.log2(np.abs(core).max() / np.abs(ints).max()))
        assert np.array_equal(core, ints << shift) and shift >= 0


def test_integer_lif_core_matches_the_float_snn(digits):
    """A float SNN (snnTorch Leaky, β = 0.875, θ = 1), converted: the integer core's error.

    Measured over seeds 0–3 (5 epochs): float 4.2/12.8/5.3/7.8 %, core 4.4/12.2/6.7/6.7 %.
    """
    config = TrainConfig(
        rule="surrogate_bp",
        topology="FC_64_FC_10",
        data="digits",
        epochs=5,
        batch_size=20,
        lr=3e-3,
        neuron="lif",
        beta=0.875,
        threshold=1.0,
        time_steps=DIGITS.time_steps,
        init="he_uniform",
        track_alignment=False,
    )
    result = train(config, dataset=digits, progress=False, prepare=drop_biases)
    spec, weights = convert(
        replace(DIGITS, hidden=(64,)), core_weights(result.network), threshold=1.0, beta=0.875
    )
    assert spec.leak_shift == 3
    float_error, core_error = result.final.test_error, _core_error(spec, weights, digits)
    assert float_error < 0.1
    assert abs(core_error - float_error) < 0.04


def test_integer_hardtanh_core_matches_the_float_mlp(digits):
    """A float hard-tanh MLP trained by DRTP, converted to a hard-tanh core.

    Measured over seeds 0–3 (10 epochs): float 5.3/5.0/5.6/4.2 %, core 5.0/5.8/5.8/4.4 %.
    """
    config = TrainConfig(
        rule="drtp",
        topology="FC_64_FC_10",
        data="digits",
        epochs=10,
        batch_size=20,
        lr=3e-3,
        hidden_activation="hardtanh",
        init="he_uniform",
        track_alignment=False,
    )
    result = train(config, dataset=digits, progress=False, prepare=drop_biases)
    base = replace(
        DIGITS, hidden=(64,), neuron="hardtanh", time_steps=1, thresholds=(), act_shifts=(0, 0)
    )
    spec, weights = convert(base, core_weights(result.network))
    float_error, core_error = result.final.test_error, _core_error(spec, weights, digits)
    assert float_error < 0.1
    assert abs(core_error - float_error) < 0.03
