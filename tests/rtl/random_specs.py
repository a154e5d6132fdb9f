"""Random small `CoreSpec`s drawn from a seed, leaning to narrow widths so that every
saturation, rounding and padding path of the core is reached within a few samples."""

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from quant.lfsr import MAXIMAL_TAPS
from quant.spec import MAX_EXACT_BITS, CoreSpec
from rtl.geometry import BANK_WORDS


def random_spec(seed: int) -> CoreSpec:
    rng = np.random.default_rng(seed)

    def pick(options: tuple) -> object:
        return options[int(rng.integers(len(options)))]

    def between(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1))

    lif = bool(rng.random() < 0.75)
    rule = pick(("none", "drtp", "lfp") if lif else ("none", "drtp"))
    hidden = tuple(between(1, 12) for _ in range(between(0, 2)))
    inputs, classes = between(1, 16), between(2, 5)
    input_bits = between(1, 6)
    time_steps = between(1, 5) if lif else 1
    weight_bits, act_bits, membrane_bits = between(3, 8), between(2, 8), between(6, 14)
    fields: dict[str, object] = {}
    if lif:
        fields["encoding"] = pick(("intensity", "spikes"))
        top = min((1 << (membrane_bits - 1)) - 1, 1 << (weight_bits - 1))
        fields["thresholds"] = tuple(between(1, top) for _ in range(len(hidden) + 1))
        fields["leak_shift"] = between(0, 4)
        activity_bits = ((1 << input_bits) * time_steps).bit_length()
    else:
        fields["act_shifts"] = tuple(between(0, 6) for _ in range(len(hidden) + 1))
        activity_bits = max(input_bits, act_bits)
    low = max(weight_bits + activity_bits, membrane_bits if lif else 0)
    fields["acc_bits"] = between(low, low + 6)
    if rule == "lfp":
        reward_bits = between(6, 16)
        fields |= dict(
            reward_bits=reward_bits,
            reward_frac=between(0, reward_bits - 2),
            recip_bits=between(0, 4),
            q_frac=between(4, min(20, MAX_EXACT_BITS - reward_bits - 6)),
        )
    if rule != "none":
        fields["lr_shifts"] = tuple(between(0, 6) for _ in range(len(hidden) + 1))
    width = pick(tuple(sorted(MAXIMAL_TAPS)))
    return CoreSpec(
        name=f"random{seed}",
        inputs=inputs,
        hidden=hidden,
        classes=classes,
        input_bits=input_bits,
        time_steps=time_steps,
        neuron="lif" if lif else "hardtanh",
        act_bits=act_bits,
        weight_bits=weight_bits,
        membrane_bits=membrane_bits,
        rule=rule,
        rounding=pick(("floor", "nearest", "stochastic")),
        projection=pick(("rom", "lfsr")),
        lanes=between(1, 5),
        lfsr_width=width,
        seed=between(1, (1 << width) - 1),
        projection_seed=between(1, (1 << width) - 1),
        **fields,
    )


def random_specs(count: int, keep: Callable[[CoreSpec], bool]) -> list[CoreSpec]:
    """The first `count` random specs, by seed, that `keep` accepts: a bench names the kind
    of core it needs, not seeds that happen to be of that kind."""
    specs = (random_spec(seed) for seed in itertools.count())
    return list(itertools.islice(filter(keep, specs), count))


def random_conv_spec(seed: int) -> CoreSpec:
    """A random core with the convolutional front end: the first LIF `random_spec` from
    `seed` on, behind a random image, kernel, stride and channel count; the accumulator
    widened where the largest conv current needs it."""
    base = next(s for s in map(random_spec, itertools.count(seed)) if s.spiking)
    rng = np.random.default_rng([seed, 2])

    def between(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1))

    shape = (between(1, 2), between(3, 7), between(3, 7))
    kernel, kernel_bits = between(1, min((*shape[1:], 4))), between(2, 5)
    top = 1 if base.encoding == "spikes" else (1 << base.input_bits) - 1
    largest = shape[0] * kernel**2 * top << (kernel_bits - 1)
    return replace(
        base,
        name=f"random_conv{seed}",
        inputs=shape[0] * shape[1] * shape[2],
        image_shape=shape,
        conv_channels=between(1, 6),
        conv_kernel=kernel,
        conv_stride=between(1, 2),
        conv_threshold=between(1, max(1, min(largest // 8, (1 << (base.membrane_bits - 1)) - 1))),
        kernel_bits=kernel_bits,
        acc_bits=max(base.acc_bits, 1 + (largest - 1).bit_length()),
    )


def banked_spec(seed: int) -> CoreSpec:
    """A random learning core whose output layer's weight memory spans three banks
    (`BANK_WORDS`): the first learning `random_spec` from `seed` on, with 72 rows into the
    output layer (the inputs, or the last hidden layer's neurons) and 72 blocks of classes,
    wide enough to bank and narrow enough that no block vector grows long; at most 2 lanes,
    for a short build."""
    base = next(s for s in map(random_spec, itertools.count(seed)) if s.rule != "none")
    rows, lanes = 72, min(base.lanes, 2)
    blocks = -(-5 * BANK_WORDS // (2 * rows))
    base = replace(base, name=f"banked{seed}", lanes=lanes, classes=blocks * lanes)
    if not base.hidden:
        return replace(base, inputs=rows)
    return replace(base, hidden=(*base.hidden[:-1], rows))
