"""The vectorised golden model against the loop-by-loop reference, on random small cores.

Both read the same contract and nothing else in common but the constant tables, so exact
agreement of outputs, weights, LFSR state and every counter after every sample checks the
golden model's vectorisation (block skipping, lane padding, draw order, saturation points).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.lfsr import MAXIMAL_TAPS
from quant.spec import MAX_EXACT_BITS, CoreSpec
from sim.chip.golden import GoldenCore

from .reference import ReferenceCore


@st.composite
def front_ends(draw: st.DrawFn, encoding: str, input_bits: int, membrane_bits: int) -> dict:
    """The fields of a small convolutional front end (images of 1–2 channels, 3x3 to 6x6,
    kernels 1–3, strides 1–2), and `fan` and `sum_bits`: its neurons and the width of its
    largest current, which bound `acc_bits`."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    channels, kernel, stride = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
    )
    kernel_bits = draw(st.integers(2, 8))
    top = (1 << (membrane_bits - 1)) - 1
    outputs = channels * ((shape[1] - kernel) // stride + 1) * ((shape[2] - kernel) // stride + 1)
    largest = shape[0] * kernel**2 * (1 if encoding == "spikes" else (1 << input_bits) - 1)
    return dict(
        inputs=shape[0] * shape[1] * shape[2],
        image_shape=shape,
        conv_channels=channels,
        conv_kernel=kernel,
        conv_stride=stride,
        conv_threshold=draw(st.one_of(st.integers(1, min(top, 30)), st.integers(1, top))),
        kernel_bits=kernel_bits,
        fan=outputs,
        sum_bits=1 + ((largest << (kernel_bits - 1)) - 1).bit_length(),
    )


@st.composite
def core_specs(draw: st.DrawFn) -> CoreSpec:
    """A valid small `CoreSpec`; widths lean small so that every saturation is reached. A
    half of the LIF cores have a convolutional front end."""
    neuron = draw(st.sampled_from(("lif", "hardtanh")))
    lif = neuron == "lif"
    rule = draw(st.sampled_from(("none", "drtp", "lfp") if lif else ("none", "drtp")))
    hidden = tuple(draw(st.lists(st.integers(1, 12), min_size=0, max_size=3)))
    inputs, classes = draw(st.integers(1, 20)), draw(st.integers(2, 5))
    input_bits = draw(st.integers(1, 8))
    time_steps = draw(st.integers(1, 6)) if lif else 1
    weight_bits = draw(st.integers(2, 10))
    act_bits = draw(st.integers(2, 10))
    membrane_bits = draw(st.integers(4, 16))
    fields: dict[str, object] = {}
    fan, sum_bits = inputs, 0
    if lif:
        fields["encoding"] = draw(st.sampled_from(("intensity", "spikes")))
        if draw(st.booleans()):
            conv = draw(front_ends(fields["encoding"], input_bits, membrane_bits))
            fan, sum_bits = conv.pop("fan"), conv.pop("sum_bits")
            inputs = conv.pop("inputs")
            fields |= conv
        top = (1 << (membrane_bits - 1)) - 1
        fields["thresholds"] = tuple(
            draw(st.one_of(st.integers(1, min(top, 40)), st.integers(1, top)))
            for _ in range(len(hidden) + 1)
        )
        fields["leak_shift"] = draw(st.one_of(st.integers(0, 4), st.integers(0, membrane_bits)))
        activity_bits = ((1 << input_bits) * time_steps).bit_length()
    else:
        fields["act_shifts"] = tuple(draw(st.integers(0, 8)) for _ in range(len(hidden) + 1))
        activity_bits = max(input_bits, act_bits)
    fan = max(fan, *hidden, classes).bit_length()
    low = max(weight_bits + activity_bits, membrane_bits if lif else 0, sum_bits)
    high = MAX_EXACT_BITS - weight_bits - max(activity_bits, fan)
    acc_bits = draw(st.one_of(st.integers(low, min(high, low + 6)), st.integers(low, high)))
    if rule == "lfp":
        reward_bits = draw(st.integers(4, 24))
        recip_bits = draw(st.integers(0, 5))
        q_top = MAX_EXACT_BITS - reward_bits - recip_bits - 2
        q_frac = draw(st.one_of(st.integers(0, min(24, q_top)), st.integers(0, q_top)))
        fields |= dict(
            reward_bits=reward_bits,
            reward_frac=draw(st.integers(0, reward_bits - 2)),
            recip_bits=recip_bits,
            q_frac=q_frac,
        )
        shift_top = min(40, MAX_EXACT_BITS - q_frac)
        shifts = st.one_of(st.integers(0, min(12, shift_top)), st.integers(0, shift_top))
    else:
        shifts = st.one_of(st.integers(0, 4), st.integers(0, 40))
    if rule != "none":
        fields["lr_shifts"] = tuple(draw(shifts) for _ in range(len(hidden) + 1))
        if draw(st.booleans()):
            top = time_steps if lif else (1 << (act_bits - 1)) - 1
            fields |= dict(learn_gate="margin", gate_margin=draw(st.integers(0, min(top, 3))))
    width = draw(st.sampled_from(sorted(MAXIMAL_TAPS)))
    seeds = st.integers(1, (1 << width) - 1)
    return CoreSpec(
        name="random",
        inputs=inputs,
        hidden=hidden,
        classes=classes,
        input_bits=input_bits,
        time_steps=time_steps,
        neuron=neuron,
        act_bits=act_bits,
        weight_bits=weight_bits,
        membrane_bits=membrane_bits,
        acc_bits=acc_bits,
        rule=rule,
        rounding=draw(st.sampled_from(("floor", "nearest", "stochastic"))),
        projection=draw(st.sampled_from(("rom", "lfsr"))),
        lanes=draw(st.integers(1, 5)),
        lfsr_width=width,
        seed=draw(seeds),
        projection_seed=draw(seeds),
        **fields,  # type: ignore[arg-type]
    )


def _weights(spec: CoreSpec, rng: np.random.Generator, zeros: float, scale: float) -> list:
    """Random weights in the weight range, a fraction `zeros` of them zero, magnitudes up
    to `scale` of the full range (small weights keep LIF neurons out of saturation)."""
    top = (1 << (spec.weight_bits - 1)) - 1
    bound = max(1, round(top * scale))
    sizes = spec.layer_sizes
    out = []
    for k in range(len(sizes) - 1):
        w = rng.integers(-bound - 1 if scale == 1 else -bound, bound + 1, (sizes[k], sizes[k + 1]))
        w[rng.random(w.shape) < zeros] = 0
        out.append(w.astype(np.int64))
    return out


def _kernels(spec: CoreSpec, rng: np.random.Generator, zeros: float) -> np.ndarray | None:
    """Random front-end kernels over their whole range (a fraction `zeros` of them zero), or
    None without a front end."""
    if not spec.conv:
        return None
    top = 1 << (spec.kernel_bits - 1)
    k = spec.conv_kernel
    kernels = rng.integers(-top, top, (spec.conv_channels, spec.image_shape[0], k, k))
    kernels[rng.random(kernels.shape) < zeros] = 0
    return kernels


def _inputs(spec: CoreSpec, rng: np.random.Generator) -> np.ndarray:
    top = (1 << spec.input_bits) - 1
    x = rng.integers(0, top + 1, spec.inputs)
    x[rng.random(spec.inputs) < rng.choice([0.0, 0.3, 0.9])] = 0
    if rng.random() < 0.2:
        x[:] = top
    return x.astype(np.int64)


def _assert_same(golden: GoldenCore, reference: ReferenceCore, out, ref_out, where: str) -> None:
    output, prediction = ref_out
    assert [int(v) for v in np.asarray(out.output)] == output, f"{where}: output"
    assert int(out.prediction) == prediction, f"{where}: prediction"
    for k, (g, r) in enumerate(zip(golden.weights, reference.weights, strict=True)):
        assert np.array_equal(np.asarray(g), r), f"{where}: W_{k + 1}"
    assert int(golden.lfsr_state) == reference.lfsr_state, f"{where}: LFSR state"
    assert golden.counters.as_dict() == reference.counters.as_dict(), f"{where}: counters"


@settings(
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    spec=core_specs(),
    seed=st.integers(0, 2**32 - 1),
    zeros=st.sampled_from((0.0, 0.0, 0.5, 0.9)),
    scale=st.sampled_from((1.0, 1.0, 0.25, 0.05)),
    samples=st.integers(3, 5),
)
def test_golden_matches_reference(spec, seed, zeros, scale, samples):
    rng = np.random.default_rng(seed)
    weights = _weights(spec, rng, zeros, scale)
    kernels = _kernels(spec, rng, zeros)
    golden = GoldenCore(spec, [w.copy() for w in weights], kernels=kernels)
    reference = ReferenceCore(spec, weights, kernels=kernels)
    for sample in range(samples):
        x = _inputs(spec, rng)
        label = int(rng.integers(0, spec.classes))
        where = f"{spec}, sample {sample}, x={x.tolist()}, label={label}"
        if spec.rule != "none" and rng.random() < 0.8:
            out, ref_out = golden.learn(x, label), reference.learn(x, label)
        else:
            out, ref_out = golden.infer(x), reference.infer(x)
        _assert_same(golden, reference, out, ref_out, where)
