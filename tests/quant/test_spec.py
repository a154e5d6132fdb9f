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
