"""Behaviour of the golden model; bit-exactness against a loop reference is in
`test_golden_vs_reference.py`."""

from dataclasses import replace

import numpy as np
import pytest
import snntorch as snn
import torch

from quant.counters import KINDS
from quant.errors import ConfigError
from quant.spec import CoreSpec
from sim.chip.golden import GoldenCore
from sim.chip.params import initial_weights

LIF = CoreSpec(
    "lif", 12, (9,), 4, input_bits=4, time_steps=6, thresholds=(40, 12), lr_shifts=(3, 3)
)


def _inputs(spec: CoreSpec, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << spec.input_bits, (n, spec.inputs))


@pytest.mark.parametrize("encoding", ["intensity", "spikes"])
def test_lif_layers_match_snntorch_leaky_with_reset_delay(encoding):
    """With β = 1 (leak_shift 0) and integer currents snnTorch's float arithmetic is exact,
    so its `Leaky` (reset by subtraction, one-step delay) must give the same spikes."""
    spec = replace(
        LIF, encoding=encoding, hidden=(9, 7), thresholds=(40, 12, 6), rule="none", lr_shifts=()
    )
    weights = initial_weights(spec, "random", seed=3)
    core = GoldenCore(spec, weights)
    for x in _inputs(spec, 20):
        _, traces = core.forward(x)
        steps = core._encode(x)
        inp = torch.tensor(steps, dtype=torch.float64)
        for k, w in enumerate(weights):
            lif = snn.Leaky(
                beta=1.0, threshold=float(spec.thresholds[k]), reset_mechanism="subtract"
            )
            mem = torch.zeros(w.shape[1], dtype=torch.float64)
            spikes = []
            for t in range(spec.time_steps):
                spk, mem = lif(inp[t] @ torch.tensor(w, dtype=torch.float64), mem)
                spikes.append(spk)
            inp = torch.stack(spikes).double()
            assert np.array_equal(inp.sum(0).numpy().astype(np.int64), traces[k].output)


def test_inference_only_core_counts_no_learning_and_cannot_learn():
    spec = replace(LIF, rule="none", lr_shifts=())
    core = GoldenCore(spec, initial_weights(spec, seed=1))
    for x in _inputs(spec, 10):
        core.infer(x)
    counts = core.counters.as_dict()
    assert all(v == 0 for v in counts["learning"].values())
    assert counts["inference"]["syn_ops"] > 0
    with pytest.raises(ConfigError, match="cannot learn"):
        core.learn(_inputs(spec, 1)[0], 0)


@pytest.mark.parametrize("rule", ["drtp", "lfp"])
def test_learning_counts_land_in_the_learning_phase_only(rule):
    spec = replace(LIF, rule=rule)
    core = GoldenCore(spec, initial_weights(spec, seed=1))
    x = _inputs(spec, 1)[0]
    core.infer(x)
    inference_only = core.counters.as_dict()["inference"]
    core.learn(x, 2)
    counts = core.counters.as_dict()
    assert counts["inference"] == {k: 2 * v for k, v in inference_only.items()}
    assert counts["learning"]["weight_writes"] > 0
    assert counts["learning"]["weight_reads"] == counts["learning"]["weight_writes"]


def test_counts_scale_linearly_with_samples():
    spec = replace(LIF, rule="none", lr_shifts=(), encoding="spikes")
    core = GoldenCore(spec, initial_weights(spec, seed=2))
    xs = _inputs(spec, 15, seed=4)
    for x in xs:
        core.infer(x)
    once = core.counters.as_dict()["inference"]
    for _ in range(2):
        for x in xs:
            core.infer(x)
    assert core.counters.as_dict()["inference"] == {k: 3 * v for k, v in once.items()}
    assert set(once) == set(KINDS)


def test_projection_source_changes_cost_not_results():
    rom = replace(LIF, hidden=(9, 5), thresholds=(40, 12, 6), lr_shifts=(3, 3, 3), projection="rom")
    lfsr = replace(rom, projection="lfsr")
    weights = initial_weights(rom, seed=5)
    cores = [GoldenCore(spec, weights) for spec in (rom, lfsr)]
    for i, x in enumerate(_inputs(rom, 12, seed=6)):
        outputs = [core.learn(x, i % 4).output for core in cores]
        assert np.array_equal(*outputs)
    for a, b in zip(cores[0].weights, cores[1].weights, strict=True):
        assert np.array_equal(a, b)
    c_rom, c_lfsr = (core.counters.as_dict()["learning"] for core in cores)
    assert c_rom["proj_reads"] > 0 and c_lfsr["proj_reads"] == 0
    assert c_lfsr["lfsr_draws"] - c_rom["lfsr_draws"] == 12 * (9 + 5)  # one per entry of B_k[label]


def test_lfp_never_moves_a_zero_weight_and_drtp_learns_from_zero():
    x = _inputs(LIF, 30, seed=7)
    lfp = replace(LIF, rule="lfp")
    core = GoldenCore(lfp, initial_weights(lfp, "zero"))
    for i, xi in enumerate(x):
        core.learn(xi, i % 4)
    assert all(not w.any() for w in core.weights)
    core = GoldenCore(LIF, initial_weights(LIF, "zero"))
    for i, xi in enumerate(x):
        core.learn(xi, i % 4)
    assert all(w.any() for w in core.weights)


def test_weights_saturate_at_their_width():
    spec = replace(LIF, lr_shifts=(0, 0), rounding="floor", weight_bits=4)
    core = GoldenCore(spec, initial_weights(spec, seed=0))
    for xi in _inputs(spec, 40, seed=8):
        core.learn(xi, 1)
    w = np.concatenate([w.ravel() for w in core.weights])
    assert w.min() >= -8 and w.max() <= 7
    assert w.max() == 7 or w.min() == -8


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        (lambda core: core.infer(np.zeros(11, dtype=np.int64)), "expected 12 integers"),
        (lambda core: core.infer(np.zeros(12)), "expected 12 integers"),
        (lambda core: core.infer(np.full(12, 16)), "codes must be in"),
        (lambda core: core.learn(np.zeros(12, dtype=np.int64), 4), "label must be in"),
        (lambda core: core.learn(np.zeros(12, dtype=np.int64), -1), "label must be in"),
    ],
)
def test_bad_inputs_are_refused_by_name(call, phrase):
    core = GoldenCore(LIF, initial_weights(LIF, seed=0))
    with pytest.raises(ConfigError, match=phrase):
        call(core)


def test_bad_weights_are_refused_by_name():
    good = initial_weights(LIF, seed=0)
    with pytest.raises(ConfigError, match="expected 2 layers"):
        GoldenCore(LIF, good[:1])
    with pytest.raises(ConfigError, match=r"weights\[1\]: expected shape"):
        GoldenCore(LIF, [good[0], good[1].T])
    with pytest.raises(ConfigError, match=r"weights\[0\]: values outside the 8-bit range"):
        GoldenCore(LIF, [good[0] * 100, good[1]])


@pytest.mark.parametrize("rule", ["drtp", "lfp"])
def test_margin_gate_skips_exactly_the_samples_already_learned(rule):
    """A gated core does nothing but C compares for a sample predicted right with the margin,
    and otherwise takes the ungated core's step to the bit."""
    spec = replace(LIF, rule=rule, learn_gate="margin", gate_margin=1)
    weights = initial_weights(spec, "random", seed=5)
    gated = GoldenCore(spec, [w.copy() for w in weights])
    plain = GoldenCore(replace(spec, learn_gate="always", gate_margin=0), weights)
    skipped = learned = 0
    for x in _inputs(spec, 40, seed=2):
        forward = plain.infer(x)
        out = forward.output
        label = int(np.argmax(out)) if skipped <= learned else int(np.argmin(out))
        ahead = forward.prediction == label and out[label] - np.delete(out, label).max() >= 1
        before = gated.counters.as_dict()["learning"]
        assert gated.learn(x, label).learned is not ahead
        spent = {k: v - before[k] for k, v in gated.counters.as_dict()["learning"].items()}
        if ahead:
            assert spent == {k: spec.classes if k == "compares" else 0 for k in KINDS}
            skipped += 1
        else:
            plain.learn(x, label)
            learned += 1
        assert all(np.array_equal(a, b) for a, b in zip(plain.weights, gated.weights, strict=True))
        assert plain.lfsr_state == gated.lfsr_state
    assert skipped >= 5 and learned >= 5
