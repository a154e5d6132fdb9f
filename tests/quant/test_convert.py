import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from quant.convert import convert, leak_shift_for, weight_frac_bits
from quant.errors import ConfigError
from quant.spec import CoreSpec

# 2-2-2 cores: 4-bit inputs (codes 0..15), 8-bit weights, 16-bit membrane.
LIF = CoreSpec("lif", 2, (2,), 2, input_bits=4, thresholds=(1, 1), lr_shifts=(4, 4))
TANH = CoreSpec(
    "tanh", 2, (2,), 2, input_bits=4, neuron="hardtanh", time_steps=1, act_shifts=(0, 0),
    lr_shifts=(4, 4),
)  # fmt: skip
W0 = np.array([[0.5, -0.25], [0.125, 0.0]])  # peak 0.5: 2^7 → 64 fits, 2^8 → 128 does not
W1 = np.array([[1.0, -1.0], [0.5, 0.25]])  # 1.0 · 2^7 = 128 clips, so 2^6


@pytest.mark.parametrize(
    ("w", "bits", "frac"),
    [
        ([[0.5, -0.25]], 8, 7),
        ([[1.0]], 8, 6),  # +128 does not fit 8 bits ...
        ([[-1.0]], 8, 7),  # ... −128 does
        ([[-1.0, 0.999]], 8, 6),  # 0.999 · 2^7 rounds to 128
        ([[255 / 256]], 8, 6),  # 127.5 rounds up to 128
        ([[2.0**-20]], 8, 26),
        ([[1000.0]], 8, -3),  # scales above 1 are powers of two too: 1000 / 8 = 125
        ([[0.3]], 4, 4),  # 4.8 → 5 ≤ 7; 9.6 → 10 > 7
    ],
)
def test_weight_scale_is_the_finest_power_of_two_that_does_not_clip(w, bits, frac):
    assert weight_frac_bits(np.array(w), bits) == frac


def test_lif_conversion_scales_weights_and_thresholds_by_the_layer_gain():
    spec, ints = convert(LIF, [W0, W1], threshold=1.0, beta=0.75)
    assert [w.dtype for w in ints] == [np.int64, np.int64]
    assert np.array_equal(ints[0], [[64, -32], [16, 0]])
    assert np.array_equal(ints[1], [[64, -64], [32, 16]])
    # layer 1: θ · 2^7 · (2^4 − 1); layer 2 receives spikes of 1: θ · 2^6
    assert spec.thresholds == (1920, 64)
    assert spec.leak_shift == 2
    assert replace(spec, thresholds=LIF.thresholds, leak_shift=0) == LIF


def test_lif_thresholds_per_layer_and_spike_encoding():
    spec, _ = convert(LIF, [W0, W1], threshold=(0.5, 2.0))
    assert spec.thresholds == (960, 128)
    assert spec.leak_shift == 0
    spikes, _ = convert(replace(LIF, encoding="spikes"), [W0, W1], threshold=1.0)
    assert spikes.thresholds == (120, 64)  # the encoder fires at rate x / 2^4: 2^7 · 15/16


def test_hardtanh_conversion_sets_activation_shifts():
    spec, ints = convert(TANH, [W0, W1])
    assert np.array_equal(ints[0], [[64, -32], [16, 0]])
    # layer 1: z grows by 2^7 · 15 = 1920 ≈ 2^4 · 127; layer 2 takes a · 127: shift = 6 exactly
    assert spec.act_shifts == (4, 6)


@pytest.mark.parametrize(
    ("beta", "shift"),
    [(1.0, 0), (0.5, 1), (0.75, 2), (0.875, 3), (float(np.float32(0.9375)), 4), (1 - 2**-10, 10)],
)
def test_beta_maps_to_leak_shift(beta, shift):
    assert leak_shift_for(beta) == shift


@pytest.mark.parametrize(
    ("beta", "message"),
    [
        (0.9, "beta 0.9 is not 1 − 2\\^−s .*nearest: 0.875 \\(leak_shift 3\\) or 0.9375 "),
        (0.3, "nearest: 0.5 \\(leak_shift 1\\)\\)"),
        (0.0, "beta must be in \\(0, 1\\]"),
        (1.5, "beta must be in \\(0, 1\\]"),
    ],
)
def test_beta_without_a_shift_is_refused(beta, message):
    with pytest.raises(ConfigError, match=message):
        leak_shift_for(beta)


@pytest.mark.parametrize(
    ("base", "weights", "kwargs", "message"),
    [
        (LIF, [W0], {"threshold": 1.0}, "expected 2 layers, got 1"),
        (LIF, [W0, W1[:1]], {"threshold": 1.0}, "weights\\[1\\]: expected shape \\(2, 2\\)"),
        (
            replace(LIF, hidden=(3,)),
            [np.ones((3, 2)), np.ones((3, 2))],
            {"threshold": 1.0},
            "weights\\[0\\]: .*got \\(3, 2\\) \\(transpose a torch \\[out, in\\] weight\\)",
        ),
        (LIF, [W0, np.zeros((2, 2))], {"threshold": 1.0}, "weights\\[1\\]: all zero"),
        (LIF, [W0 * np.nan, W1], {"threshold": 1.0}, "weights\\[0\\]: not all finite"),
        (LIF, [W0, W1], {}, "a LIF core needs the float network's threshold"),
        (LIF, [W0, W1], {"threshold": (1.0,)}, "threshold: expected one value or 2, got 1"),
        (LIF, [W0, W1], {"threshold": -1.0}, "threshold must be finite and > 0"),
        (LIF, [W0, W1], {"threshold": 100.0}, "thresholds\\[0\\]: .* is 192000, outside"),
        (LIF, [W0, W1], {"threshold": 1e-4}, "thresholds\\[0\\]: .* is 0, outside"),
        (LIF, [W0, W1], {"threshold": 1.0, "beta": 0.9}, "beta 0.9 is not"),
        (TANH, [W0, W1], {"threshold": 1.0}, "this core is hard-tanh"),
        (TANH, [W0, W1], {"beta": 0.5}, "this core is hard-tanh"),
        (
            replace(TANH, weight_bits=4, act_bits=12),  # 2^3 · 15 ≈ 2^−4 · 2047
            [W0, W1],
            {},
            "act_shifts\\[0\\] would be -4: .*lower act_bits",
        ),
    ],
)
def test_conversion_refusals_name_the_problem(base, weights, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        convert(base, weights, **kwargs)


def test_the_numpy_side_never_imports_torch():
    code = (
        "import sys, quant.convert, quant.spec, quant.tables; "
        "assert 'torch' not in sys.modules and 'brevitas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
