import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from quant.errors import ConfigError
from quant.spec import CoreSpec, load_spec, save_spec, spec_from_toml, spec_to_toml

CONFIGS = sorted(Path(__file__).parents[2].joinpath("configs").glob("*.toml"))
LIF = CoreSpec("lif", 16, (8, 4), 3, thresholds=(100, 20, 10), lr_shifts=(4, 4, 4))
TANH = CoreSpec(
    "tanh", 16, (8,), 3, neuron="hardtanh", time_steps=1, act_shifts=(3, 4), lr_shifts=(2, 2)
)
FRONT_END = dict(
    image_shape=(1, 4, 4), conv_channels=2, conv_kernel=2, conv_stride=1, conv_threshold=50,
    kernel_bits=4,
)  # fmt: skip
CONV = replace(LIF, **FRONT_END)  # 2 x 3 x 3 = 18 conv neurons
# The fields every spec without a front end writes, in order, as before the front end existed.
FIELDS_BEFORE_FRONT_END = [
    "name", "inputs", "hidden", "classes", "input_bits", "encoding", "time_steps", "neuron",
    "thresholds", "leak_shift", "act_shifts", "act_bits", "weight_bits", "membrane_bits",
    "acc_bits", "reward_bits", "reward_frac", "q_frac", "recip_bits", "rule", "lr_shifts",
    "rounding", "projection", "lanes", "lfsr_width", "seed", "projection_seed",
]  # fmt: skip


def test_shipped_specs_exist_and_round_trip():
    assert len(CONFIGS) >= 2
    for path in CONFIGS:
        spec = load_spec(path)
        assert spec_from_toml(spec_to_toml(spec)) == spec


@pytest.mark.parametrize(
    "spec",
    [
        LIF,
        TANH,
        replace(LIF, rule="lfp"),
        replace(LIF, rule="none", lr_shifts=()),
        replace(TANH, learn_gate="margin", gate_margin=5),
        CONV,
        replace(CONV, encoding="spikes", image_shape=(4, 2, 2), conv_kernel=1, rule="lfp"),
    ],
)
def test_toml_round_trip_through_a_file(spec, tmp_path):
    save_spec(spec, tmp_path / "core.toml")
    assert load_spec(tmp_path / "core.toml") == spec


@pytest.mark.parametrize(
    ("base", "changes", "field"),
    [
        (LIF, {"name": "a b"}, "name"),
        (LIF, {"inputs": 0}, "inputs"),
        (LIF, {"hidden": (8, 0)}, "hidden[1]"),
        (LIF, {"classes": 1}, "classes"),
        (LIF, {"input_bits": 0}, "input_bits"),
        (LIF, {"encoding": "rate"}, "encoding"),
        (LIF, {"time_steps": 0}, "time_steps"),
        (LIF, {"neuron": "izhikevich"}, "neuron"),
        (LIF, {"thresholds": (100, 20)}, "thresholds"),
        (LIF, {"thresholds": (100, 0, 10)}, "thresholds[1]"),
        (LIF, {"thresholds": (100, 20, 1 << 15)}, "thresholds[2]"),
        (LIF, {"leak_shift": 17}, "leak_shift"),
        (LIF, {"weight_bits": 1}, "weight_bits"),
        (LIF, {"membrane_bits": 3}, "membrane_bits"),
        (LIF, {"acc_bits": 12}, "acc_bits"),
        (LIF, {"acc_bits": 60}, "acc_bits"),
        (LIF, {"rule": "bp"}, "rule"),
        (LIF, {"lr_shifts": (4, 4)}, "lr_shifts"),
        (LIF, {"lr_shifts": (4, -1, 4)}, "lr_shifts[1]"),
        (LIF, {"rounding": "banker"}, "rounding"),
        (LIF, {"projection": "dram"}, "projection"),
        (LIF, {"lanes": 0}, "lanes"),
        (LIF, {"lfsr_width": 12}, "lfsr_width"),
        (LIF, {"seed": 0}, "seed"),
        (LIF, {"projection_seed": 1 << 32}, "projection_seed"),
        (LIF, {"rule": "lfp", "recip_bits": 9}, "recip_bits"),
        (LIF, {"rule": "lfp", "reward_frac": 15}, "reward_frac"),
        (LIF, {"rule": "lfp", "q_frac": 50}, "q_frac"),
        (LIF, {"rule": "none"}, "lr_shifts"),
        (TANH, {"time_steps": 4}, "time_steps"),
        (TANH, {"encoding": "spikes"}, "encoding"),
        (TANH, {"act_bits": 1}, "act_bits"),
        (TANH, {"act_shifts": (3,)}, "act_shifts"),
        (TANH, {"act_shifts": (3, 41)}, "act_shifts[1]"),
        (LIF, {"act_shifts": (1, 1, 1)}, "act_shifts"),
        (TANH, {"rule": "lfp"}, "neuron 'lif'"),
        (TANH, {"thresholds": (5, 5)}, "thresholds"),
        (LIF, {"learn_gate": "loss"}, "learn_gate"),
        (LIF, {"gate_margin": 1}, "gate_margin"),
        (LIF, {"learn_gate": "margin", "gate_margin": 9}, "gate_margin"),
        (TANH, {"learn_gate": "margin", "gate_margin": 128}, "gate_margin"),
        (LIF, {"rule": "none", "lr_shifts": (), "learn_gate": "margin"}, "learn_gate"),
        (LIF, {"image_shape": (1, 4, 4)}, "image_shape"),
        (LIF, {"conv_kernel": 2}, "conv_kernel"),
        (LIF, {"conv_stride": 1}, "conv_stride"),
        (LIF, {"conv_threshold": 50}, "conv_threshold"),
        (LIF, {"kernel_bits": 4}, "kernel_bits"),
        (CONV, {"conv_channels": -1}, "conv_channels"),
        (CONV, {"conv_channels": 1025}, "conv_channels"),
        (replace(TANH, rule="none", lr_shifts=()), FRONT_END, "conv_channels"),
        (CONV, {"image_shape": (4, 4)}, "image_shape"),
        (CONV, {"image_shape": (1, 0, 16)}, "image_shape[1]"),
        (CONV, {"image_shape": (1, 4, 5)}, "image_shape"),
        (CONV, {"conv_kernel": 0}, "conv_kernel"),
        (CONV, {"conv_kernel": 5}, "conv_kernel"),
        (CONV, {"conv_stride": 0}, "conv_stride"),
        (CONV, {"conv_stride": 5}, "conv_stride"),
        (CONV, {"conv_threshold": 0}, "conv_threshold"),
        (CONV, {"conv_threshold": 1 << 15}, "conv_threshold"),
        (CONV, {"kernel_bits": 1}, "kernel_bits"),
        (CONV, {"kernel_bits": 17}, "kernel_bits"),
        (
            CONV,
            {"inputs": 1 << 16, "image_shape": (1, 256, 256), "conv_kernel": 1},
            "conv_channels",
        ),
    ],
)
def test_each_invalid_field_is_refused_by_name(base, changes, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        replace(base, **changes)


def test_a_gate_left_off_leaves_the_toml_as_it_was():
    """The gate fields are written only when the gate is on, so an ungated spec keeps the
    text (and the hash its Verilog carries) it had before the gate existed."""
    text = spec_to_toml(LIF)
    assert "learn_gate" not in text and "gate_margin" not in text
    gated = spec_to_toml(replace(LIF, learn_gate="margin", gate_margin=2))
    assert gated == text + 'learn_gate = "margin"\ngate_margin = 2\n'
    assert replace(LIF, learn_gate="margin").inference_only() == LIF.inference_only()


def test_a_spec_without_front_end_serialises_as_before():
    """The front end's fields are written only when it exists: a shipped spec's TOML keeps
    its fields, in order, and every line its committed file holds (so its hash and Verilog
    stay byte for byte)."""
    for path in CONFIGS:
        spec = load_spec(path)
        if spec.conv:
            continue
        lines = spec_to_toml(spec).splitlines()
        assert [line.split(" = ")[0] for line in lines[1:]] == FIELDS_BEFORE_FRONT_END
        committed = [line for line in path.read_text().splitlines() if line[:1].isalpha()]
        assert set(committed) <= set(lines)
    text = spec_to_toml(CONV)
    assert text == spec_to_toml(LIF) + "".join(
        f"{key} = {list(value) if isinstance(value, tuple) else value}\n"
        for key, value in FRONT_END.items()
    )


def test_front_end_geometry():
    assert CONV.conv and not LIF.conv
    assert CONV.conv_shape == (2, 3, 3) and CONV.layer_sizes == (18, 8, 4, 3)
    strided = replace(CONV, image_shape=(2, 5, 7), inputs=70, conv_kernel=3, conv_stride=2)
    assert strided.conv_shape == (2, 2, 3) and strided.conv_outputs == 12
    assert LIF.layer_sizes == (16, 8, 4, 3)


def test_accumulator_must_hold_the_largest_conv_current():
    """2 channels of 5x5 taps at −2^15 times input 255: 50 · 255 · 2^15 = 417 792 000 needs
    30 signed bits, more than the 20 of the dense layers' rule (8 + 12)."""
    spec = replace(
        CONV, inputs=72, image_shape=(2, 6, 6), conv_kernel=5, kernel_bits=16, acc_bits=30
    )
    assert spec.conv_sum_bits == 30
    with pytest.raises(ConfigError, match=r"acc_bits must be an integer in \[30, "):
        replace(spec, acc_bits=29)
    assert replace(spec, encoding="spikes", acc_bits=22).conv_sum_bits == 22  # 50 · 2^15


def test_consumers_without_front_end_refuse_conv_specs_by_name():
    LIF.require_no_conv("the RTL generator")
    with pytest.raises(ConfigError, match="conv_channels: the RTL generator does not support"):
        CONV.require_no_conv("the RTL generator")


def test_toml_errors_name_the_problem(tmp_path):
    text = spec_to_toml(LIF)
    with pytest.raises(ConfigError, match=r"unknown field.*colour"):
        spec_from_toml(text + 'colour = "red"\n')
    with pytest.raises(ConfigError, match=r"missing field.*classes"):
        spec_from_toml(text.replace("classes = 3\n", ""))
    with pytest.raises(ConfigError, match="not valid TOML"):
        spec_from_toml("[core\n")
    with pytest.raises(ConfigError, match=r"\[core\] table"):
        spec_from_toml("x = 1\n")
    with pytest.raises(ConfigError, match="lanes"):
        spec_from_toml(text.replace("lanes = 8", "lanes = 0"), "my.toml")
    with pytest.raises(ConfigError, match="cannot read spec"):
        load_spec(tmp_path / "absent.toml")


def test_input_codes_round_to_nearest_and_refuse_bad_values():
    spec = replace(LIF, input_bits=4)
    u = np.linspace(0, 1, 16)[None].repeat(1, 0)
    assert spec.input_codes(u).tolist() == [list(range(16))]
    assert spec.input_codes(np.full(16, 0.5 / 15 - 1e-9)).max() == 0
    for bad in (np.full(16, 1.5), np.full(16, np.nan), np.zeros(15)):
        with pytest.raises(ConfigError, match="inputs"):
            spec.input_codes(bad)
