"""Float network → fixed-point core: power-of-two weight scales, thresholds, shifts.

The core has no multipliers for scales, so each weight layer k gets one power-of-two scale
`2^−f_k`: its integers are `W_k = ⌊w · 2^f_k + ½⌋` with the largest `f_k` at which no
weight leaves the W-bit range. Everything the float network compares against a current
is then rescaled by the factor by which that current grew, the *gain* of layer k:

    g_k = 2^f_k · (2^B − 1)           layer 1, `intensity` (codes `⌊u (2^B − 1) + ½⌋`, §2)
    g_k = 2^f_k · (2^B − 1) / 2^B     layer 1, `spikes` (the encoder fires at rate x / 2^B)
    g_k = 2^f_k                       LIF, k > 1 (a spike is 1 in both worlds)
    g_k = 2^f_k · A                   hard-tanh, k > 1 (activations are integers `a · A`)

LIF: `thresholds[k] = ⌊θ_k g_k + ½⌋` and `leak_shift = s` for `β = 1 − 2^−s` (β = 1:
integrate-and-fire, s = 0); the membrane and reset then track the float network's scaled
by `g_k`, so both fire on the same steps up to rounding. Hard-tanh (`clip(z, −1, 1)`):
`act_shifts[k] = round(log2(g_k / A))`, so `z >> act_shifts[k]` is `A z` (exactly for
k > 1, within a factor `2^±½` for layer 1 whose gain carries `2^B − 1`).

Weights are numpy arrays in the core's layout `[n_in, n_out]` (contract §1): pass a
torch `Linear.weight` (`[out, in]`) transposed. Numpy only, so a trained network can be
converted without torch.
"""

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from quant.errors import ConfigError
from quant.spec import CoreSpec

BETA_TOLERANCE = 1e-3  # relative error of 1 − β against 2^−s accepted as that shift


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """`⌊x + ½⌋`, the host's rounding of contract §2, used for every float → integer here."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def weight_frac_bits(w: np.ndarray, bits: int, name: str = "weights") -> int:
    """The largest `f` at which `⌊w · 2^f + ½⌋` fits `bits`-bit two's complement."""
    w = np.asarray(w, dtype=np.float64)
    peak = float(np.abs(w).max(initial=0.0))
    if peak == 0.0:
        raise ConfigError(f"{name}: all zero, no scale to choose")
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def fits(f: int) -> bool:
        q = round_half_up(np.ldexp(w, f))
        return bool(q.min() >= low and q.max() <= high)

    f = math.floor(math.log2(high / peak))  # |w| 2^f ≤ high: always fits
    while not fits(f):  # only if log2 rounded up
        f -= 1
    while fits(f + 1):  # the negative end may take one more bit
        f += 1
    return f


def leak_shift_for(beta: float) -> int:
    """The core's leak shift for a float decay β: `β = 1 − 2^−s`, β = 1 → 0 (no leak)."""
    if not 0.0 < beta <= 1.0:
        raise ConfigError(f"beta must be in (0, 1], got {beta}")
    if beta == 1.0:
        return 0
    exact = -math.log2(1.0 - beta)
    s = max(1, round(exact))
    if abs((1.0 - beta) * 2.0**s - 1.0) > BETA_TOLERANCE:
        nearest = " or ".join(
            f"{1 - 2.0**-t:g} (leak_shift {t})"
            for t in sorted({max(1, math.floor(exact)), math.ceil(exact)})
        )
        raise ConfigError(
            f"beta {beta:g} is not 1 − 2^−s for an integer s, the only decays the core's "
            f"shift leak makes (nearest: {nearest})"
        )
    return s


def _float_weights(spec: CoreSpec, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    checked = spec.layer_arrays(weights, np.float64)
    for k, w in enumerate(checked):
        if not np.isfinite(w).all():
            raise ConfigError(f"weights[{k}]: not all finite")
    return checked


def _per_layer(name: str, value: float | Sequence[float], layers: int) -> tuple[float, ...]:
    values = (float(value),) * layers if np.ndim(value) == 0 else tuple(map(float, value))
    if len(values) != layers:
        raise ConfigError(f"{name}: expected one value or {layers}, got {len(values)}")
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be finite and > 0, got {v}")
    return values


def layer_gains(spec: CoreSpec, frac_bits: Sequence[int]) -> list[float]:
    """`g_k`: how much larger layer k's integer current is than its float current."""
    full = (1 << spec.input_bits) - 1
    first = full if spec.encoding == "intensity" else full / (1 << spec.input_bits)
    later = 1 if spec.spiking else spec.activation_max
    return [math.ldexp(first if k == 0 else later, f) for k, f in enumerate(frac_bits)]


def convert(
    base: CoreSpec,
    weights: Sequence[np.ndarray],
    threshold: float | Sequence[float] | None = None,
    beta: float = 1.0,
) -> tuple[CoreSpec, list[np.ndarray]]:
    """`base` with thresholds/leak (LIF) or act_shifts (hard-tanh) for these float weights,
    and the integer weights `[n_in, n_out]`; every other field of `base` is kept.

    `threshold` (θ, one for all layers or one per layer) and `beta` describe the float LIF
    network; a hard-tanh network (`clip(z, −1, 1)`) takes neither.
    """
    base.require_no_conv("the float → integer conversion")
    floats = _float_weights(base, weights)
    frac_bits = [
        weight_frac_bits(w, base.weight_bits, f"weights[{k}]") for k, w in enumerate(floats)
    ]
    ints = [round_half_up(np.ldexp(w, f)) for w, f in zip(floats, frac_bits, strict=True)]
    gains = layer_gains(base, frac_bits)
    if base.spiking:
        if threshold is None:
            raise ConfigError("threshold: a LIF core needs the float network's threshold θ")
        thetas = _per_layer("threshold", threshold, len(floats))
        top = (1 << (base.membrane_bits - 1)) - 1
        scaled = []
        for k, (theta, gain) in enumerate(zip(thetas, gains, strict=True)):
            value = int(round_half_up(theta * gain))
            if not 1 <= value <= top:
                raise ConfigError(
                    f"thresholds[{k}]: θ = {theta:g} at weight scale 2^{-frac_bits[k]} is "
                    f"{value}, outside [1, {top}] of the {base.membrane_bits}-bit membrane"
                )
            scaled.append(value)
        spec = replace(base, thresholds=tuple(scaled), leak_shift=leak_shift_for(beta))
    else:
        if threshold is not None or beta != 1.0:
            raise ConfigError("threshold and beta describe LIF neurons; this core is hard-tanh")
        shifts = tuple(round(math.log2(g / base.activation_max)) for g in gains)
        for k, shift in enumerate(shifts):
            if shift < 0:
                raise ConfigError(
                    f"act_shifts[{k}] would be {shift}: weights at scale 2^{-frac_bits[k]} "
                    f"are too coarse for {base.act_bits}-bit activations; lower act_bits"
                )
        spec = replace(base, act_shifts=shifts)
    return spec, ints
