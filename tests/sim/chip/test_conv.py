"""The convolutional front end (contract §3, §8): closed forms, snnTorch, counters, fixed
kernels in parameter files, consumers that refuse it, and on-chip learning behind it.
Bit-exactness against the loop reference on random specs is in `test_golden_vs_reference.py`.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch

from quant.counters import KINDS
from quant.errors import ConfigError
from quant.spec import CoreSpec, load_spec, spec_to_toml
from sim.chip.golden import GoldenCore, conv_sums
from sim.chip.params import (
    at_width,
    initial_kernels,
    initial_weights,
    load_kernels,
    load_params,
    save_params,
)
from sim.chip.train import PARAMS, ChipTrainConfig, train_chip
from sim.data import Dataset, load_dataset
from sim.interop.nir_graph import SPEC, core_from_nir, core_to_nir

from .reference import ReferenceCore

DIGITS_CONV = load_spec(Path(__file__).resolve().parents[3] / "configs" / "digits_conv.toml")
# 2 x 5 x 5 images, 2 channels of 3x3 kernels: 2 x 3 x 3 conv neurons, then 6 and 3 neurons
CONV = CoreSpec(
    "conv", 50, (6,), 3, input_bits=4, time_steps=4, thresholds=(20, 6), rule="none",
    image_shape=(2, 5, 5), conv_channels=2, conv_kernel=3, conv_stride=1, conv_threshold=30,
    kernel_bits=4, lanes=2,
)  # fmt: skip
KERNELS = (np.arange(36) * 7 % 16 - 8).reshape(2, 2, 3, 3)  # all of [−8, 7], scattered


def _one_event(spec: CoreSpec, channel: int, row: int, col: int, code: int) -> np.ndarray:
    _, height, width = spec.image_shape
    x = np.zeros(spec.inputs, dtype=np.int64)
    x[(channel * height + row) * width + col] = code
    return x


@pytest.mark.parametrize("stride", [1, 2])
def test_one_event_adds_its_kernel_taps_to_the_patch_it_reaches(stride):
    """An input at (c, y, x) with code 7 reaches neuron (o, oy, ox) through tap
    (y − s·oy, x − s·ox) when that lies in the kernel: stride 1, pixel (1, 2, 3) reaches
    rows 0–2 of columns 1–2; stride 2 (2 x 2 outputs) only (0, 1) by tap (2, 1) and (1, 1)
    by tap (0, 1)."""
    spec = replace(CONV, conv_stride=stride)
    x = _one_event(spec, 1, 2, 3, 7)
    want = np.zeros(spec.conv_shape, dtype=np.int64)
    if stride == 1:
        for oy in range(3):
            for ox in (1, 2):
                want[:, oy, ox] = 7 * KERNELS[:, 1, 2 - oy, 3 - ox]
    else:
        want[:, 0, 1] = 7 * KERNELS[:, 1, 2, 1]
        want[:, 1, 1] = 7 * KERNELS[:, 1, 0, 1]
    assert np.array_equal(conv_sums(spec, KERNELS, x), want.ravel())
    reference = ReferenceCore(spec, initial_weights(spec, seed=0), kernels=KERNELS)
    reference.infer(x)
    assert reference.last is not None and reference.last.conv_current[0] == want.ravel().tolist()
    # intensity: the constant current integrates at every step, the membrane is t · I until
    # a spike; θ = 30
    first = [int(v) for v in want.ravel()]
    assert reference.last.conv_membrane[1] == [2 * v - 30 * (v > 30) for v in first]
    assert any(v > 30 for v in first)  # some neurons spiked at step 1


@pytest.mark.parametrize(
    ("stride", "reached"),
    [
        (1, {(0, 0, 0): 1, (1, 2, 2): 9, (0, 4, 1): 2}),
        (2, {(0, 0, 0): 1, (1, 2, 2): 4, (0, 4, 1): 1}),
    ],
)
def test_a_single_input_event_costs_its_taps_and_kernel_words(stride, reached):
    """Zero kernels leave every neuron silent, so an event's cost is the only difference
    from a zero input: 3 taps and 2 kernel words (3 channels at 2 lanes) per neuron position
    it reaches, e.g. pixel (1, 2, 2) all 9 positions at stride 1, 4 of the 2 x 2 at stride 2;
    intensity codes are multiplied."""
    spec = replace(CONV, conv_channels=3, conv_stride=stride)
    positions = spec.conv_shape[1] * spec.conv_shape[2]
    weights = initial_weights(spec, seed=1)

    def inference(x: np.ndarray) -> dict[str, int]:
        core = GoldenCore(spec, weights, kernels=np.zeros((3, 2, 3, 3), dtype=np.int64))
        core.infer(x)
        return core.counters.as_dict()["inference"]

    base = inference(np.zeros(spec.inputs, dtype=np.int64))
    # zero input, 4 steps: 3 x positions conv neurons (2 words each position), 6 + 3 dense
    # ones (3 + 2 words), and the prediction (C − 1 compares, C cycles)
    neurons = 3 * positions
    assert base == dict.fromkeys(KINDS, 0) | dict(
        adds=4 * (3 * neurons + 4 * 9), compares=4 * (neurons + 9) + 2,
        state_reads=4 * (neurons + 9), state_writes=4 * (neurons + 9),
        cycles=4 * (2 * positions + 3 + 2) + 3,
    )  # fmt: skip
    for pixel, count in reached.items():
        spent = inference(_one_event(spec, *pixel, 7))
        extra = {k: spent[k] - base[k] for k in KINDS}
        taps, words = 3 * count, 2 * count
        assert extra == dict.fromkeys(KINDS, 0) | dict(
            syn_ops=taps, adds=taps, mults=taps, weight_reads=words, cycles=words
        )


@pytest.mark.parametrize(("encoding", "stride", "theta"), [("intensity", 1, 30), ("spikes", 2, 4)])
def test_front_end_matches_torch_conv2d_and_snntorch_leaky(encoding, stride, theta):
    """With β = 1 and integer currents torch's float arithmetic is exact, so conv2d and
    `Leaky` (reset by subtraction, one-step delay) must give the front end's spike counts and
    the outputs they drive."""
    spec = replace(CONV, encoding=encoding, conv_stride=stride, conv_threshold=theta)
    weights = initial_weights(spec, seed=3)
    core = GoldenCore(spec, weights, kernels=KERNELS)
    kernels = torch.tensor(KERNELS, dtype=torch.float64)
    conv_spikes = output_spikes = 0
    for x in np.random.default_rng(0).integers(0, 16, (12, spec.inputs)):
        _, traces = core.forward(x)
        steps = torch.tensor(np.array(core._encode(x)), dtype=torch.float64)
        images = steps.reshape(spec.time_steps, *spec.image_shape)
        currents = torch.nn.functional.conv2d(images, kernels, stride=stride).flatten(1)
        inp = _leaky(currents, spec.conv_threshold)
        assert np.array_equal(inp.sum(0).numpy().astype(np.int64), traces[0].activity)
        for k, w in enumerate(weights):
            inp = _leaky(inp @ torch.tensor(w, dtype=torch.float64), spec.thresholds[k])
        assert np.array_equal(inp.sum(0).numpy().astype(np.int64), traces[-1].output)
        conv_spikes += traces[0].activity.sum()
        output_spikes += traces[-1].output.sum()
    assert conv_spikes > 0 and output_spikes > 0, (conv_spikes, output_spikes)  # spikes seen


def _leaky(currents: torch.Tensor, threshold: int) -> torch.Tensor:
    """snnTorch's integrate-and-fire spikes `[T, n]` for currents `[T, n]`."""
    lif = snn.Leaky(beta=1.0, threshold=float(threshold), reset_mechanism="subtract")
    mem = torch.zeros(currents.shape[1], dtype=torch.float64)
    spikes = []
    for current in currents:
        spk, mem = lif(current, mem)
        spikes.append(spk)
    return torch.stack(spikes).double()


def test_learning_never_touches_the_kernels_and_counts_only_learning_as_learning():
    spec = replace(CONV, rule="drtp", lr_shifts=(2, 2))
    core = GoldenCore(spec, initial_weights(spec, seed=2), kernels=KERNELS)
    xs = np.random.default_rng(5).integers(0, 16, (15, spec.inputs))
    core.infer(xs[0])
    once = core.counters.as_dict()["inference"]
    core.learn(xs[0], 1)
    assert core.counters.as_dict()["inference"] == {k: 2 * v for k, v in once.items()}
    for i, x in enumerate(xs):
        core.learn(x, i % 3)
    assert np.array_equal(core.kernels, KERNELS)
    assert core.counters.as_dict()["learning"]["weight_writes"] > 0


def test_inference_only_conv_core_counts_no_learning_and_scales_linearly():
    core = GoldenCore(
        replace(CONV, encoding="spikes"), initial_weights(CONV, seed=2), None, KERNELS
    )
    xs = np.random.default_rng(4).integers(0, 16, (10, CONV.inputs))
    for x in xs:
        core.infer(x)
    once = core.counters.as_dict()
    for _ in range(2):
        for x in xs:
            core.infer(x)
    counts = core.counters.as_dict()
    assert all(v == 0 for v in counts["learning"].values())
    assert counts["inference"] == {k: 3 * v for k, v in once["inference"].items()}
    assert once["inference"]["syn_ops"] > 0 and once["inference"]["mults"] == 0  # spikes


@pytest.mark.parametrize(
    ("kernels", "phrase"),
    [
        (None, "kernels: spec 'conv' has a convolutional front end"),
        (KERNELS[:1], r"kernels: expected shape \(2, 2, 3, 3\)"),
        (KERNELS * 4, "kernels: values outside the 4-bit range"),
    ],
)
def test_bad_kernels_are_refused_by_name(kernels, phrase):
    with pytest.raises(ConfigError, match=phrase):
        GoldenCore(CONV, initial_weights(CONV), kernels=kernels)
    plain = replace(CONV, **_without_front_end())
    with pytest.raises(ConfigError, match="kernels: spec 'conv' has no convolutional"):
        GoldenCore(plain, initial_weights(plain), kernels=KERNELS)


def test_initial_kernels_fill_the_kernel_range_and_refuse_cores_without_front_end():
    kernels = initial_kernels(DIGITS_CONV, seed=3)
    assert kernels.shape == (8, 1, 3, 3) and kernels.dtype == np.int64
    wide = initial_kernels(replace(CONV, kernel_bits=2), seed=0)
    assert set(np.unique(wide)) == {-2, -1, 0, 1}  # the whole 2-bit range
    assert np.array_equal(initial_kernels(DIGITS_CONV, seed=3), kernels)
    assert not np.array_equal(initial_kernels(DIGITS_CONV, seed=4), kernels)
    with pytest.raises(ConfigError, match="no convolutional front end"):
        initial_kernels(replace(CONV, **_without_front_end()))


def _without_front_end() -> dict:
    return dict(
        inputs=18, image_shape=(), conv_channels=0, conv_kernel=0, conv_stride=0,
        conv_threshold=0, kernel_bits=0,
    )  # fmt: skip


def test_kernels_travel_in_the_parameter_file(tmp_path):
    weights = initial_weights(CONV, seed=1)
    path = tmp_path / "p.npz"
    save_params(path, CONV, weights, 9, {"a": 1}, KERNELS)
    assert np.array_equal(load_kernels(path, CONV), KERNELS)
    loaded, lfsr, meta = load_params(path, CONV)
    assert lfsr == 9 and meta == {"a": 1}
    assert all(np.array_equal(a, b) for a, b in zip(loaded, weights, strict=True))
    with pytest.raises(ConfigError, match="kernels: spec 'conv' has a convolutional"):
        save_params(path, CONV, weights, 9)
    with pytest.raises(ConfigError, match="another spec"):
        load_kernels(path, replace(CONV, conv_threshold=31))
    plain = replace(CONV, **_without_front_end())
    with pytest.raises(ConfigError, match="no convolutional front end"):
        save_params(path, plain, initial_weights(plain), 9, None, KERNELS)
    with pytest.raises(ConfigError, match="no convolutional front end"):
        load_kernels(path, plain)


def test_at_width_leaves_the_front_end_as_it_is():
    spec = replace(CONV, rule="drtp", lr_shifts=(4, 4))
    weights = initial_weights(spec, seed=1)
    for bits in (4, 12):
        wide, wide_w = at_width(spec, weights, bits)
        assert wide.conv_shape == spec.conv_shape and wide.conv_threshold == spec.conv_threshold
        for x in np.random.default_rng(2).integers(0, 16, (5, spec.inputs)):
            a = GoldenCore(spec, weights, kernels=KERNELS).forward(x)[1][0].activity
            b = GoldenCore(wide, wide_w, kernels=KERNELS).forward(x)[1][0].activity
            assert np.array_equal(a, b)


def test_nir_interchange_refuses_conv_cores_by_name():
    with pytest.raises(ConfigError, match=r"conv_channels: NIR export \(core_to_nir\)"):
        core_to_nir(CONV, initial_weights(CONV))
    plain = replace(CONV, **_without_front_end())
    graph = core_to_nir(plain, initial_weights(plain))
    graph.metadata[SPEC] = spec_to_toml(CONV)  # a graph claiming a conv core
    with pytest.raises(ConfigError, match=r"conv_channels: NIR import \(core_from_nir\)"):
        core_from_nir(graph)
    del graph.metadata[SPEC]  # a float graph converted onto a conv base
    with pytest.raises(ConfigError, match=r"conv_channels: NIR import \(core_from_nir\)"):
        core_from_nir(graph, base=CONV)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_shipped_conv_core_matches_the_reference_on_digits(digits):
    """The shipped core at its real size (288 conv neurons, 8 lanes) learning on digits:
    outputs, weights, LFSR state and every counter equal the loop reference's."""
    x = DIGITS_CONV.input_codes(digits.x_train[:6].reshape(6, -1))
    kernels, weights = initial_kernels(DIGITS_CONV, 1), initial_weights(DIGITS_CONV, seed=1)
    golden = GoldenCore(DIGITS_CONV, weights, kernels=kernels)
    reference = ReferenceCore(DIGITS_CONV, weights, kernels=kernels)
    for xi, label in zip(x, digits.y_train[:6], strict=True):
        forward, (output, prediction) = golden.learn(xi, label), reference.learn(xi, label)
        assert forward.output.tolist() == output and forward.prediction == prediction
    assert all(np.array_equal(a, b) for a, b in zip(golden.weights, reference.weights, strict=True))
    assert golden.lfsr_state == reference.lfsr_state
    assert golden.counters == reference.counters
    assert reference.last is not None and any(map(any, reference.last.conv_spikes))


def test_on_chip_learning_behind_fixed_random_kernels_learns_digits(digits):
    """One online epoch over the 1437 training digits, kernels from seed 0. Measured test
    error 0.072; over seeds 0–2 (their own splits) 0.066 ± 0.014 after one epoch and
    0.044 ± 0.015 after three, against 0.078 ± 0.007 for the same 10 outputs on the raw
    pixels (no front end; threshold and shift picked alike) and 0.063 ± 0.020 for the
    64-100-10 DRTP core of configs/digits.toml; chance is 0.9. The bound is four deviations
    above the mean."""
    result = train_chip(DIGITS_CONV, ChipTrainConfig(epochs=1), progress=False, dataset=digits)
    assert result.final.test_error < 0.12
    assert np.array_equal(result.core.kernels, initial_kernels(DIGITS_CONV, 0))


def test_chip_training_resumes_with_its_kernels_and_refuses_weights_without_them(tmp_path, digits):
    small = Dataset(
        "digits", digits.x_train[:200], digits.y_train[:200], digits.x_test[:50],
        digits.y_test[:50], digits.num_classes, digits.task, digits.input_shape,
    )  # fmt: skip
    config = ChipTrainConfig(epochs=2, seed=3)
    kernels = initial_kernels(DIGITS_CONV, seed=7)  # not the seed's: resume must read them
    straight = train_chip(DIGITS_CONV, config, progress=False, dataset=small, kernels=kernels)
    first = replace(config, epochs=1)
    train_chip(DIGITS_CONV, first, tmp_path, progress=False, dataset=small, kernels=kernels)
    assert np.array_equal(load_kernels(tmp_path / PARAMS, DIGITS_CONV), kernels)
    resumed = train_chip(DIGITS_CONV, config, tmp_path, resume=True, progress=False, dataset=small)
    for a, b in zip(straight.core.weights, resumed.core.weights, strict=True):
        assert np.array_equal(a, b)
    assert straight.core.lfsr_state == resumed.core.lfsr_state
    weights = initial_weights(DIGITS_CONV)
    with pytest.raises(ConfigError, match="pass its kernels with the weights"):
        train_chip(DIGITS_CONV, config, progress=False, dataset=small, weights=weights)
