"""Fixed-point numbers as the learning core computes them: integers with a declared width.

A `QFormat` is a two's-complement (or unsigned) integer of `bits` bits whose value is
`q · 2^-frac`. All arithmetic stays in int64 numpy arrays; results are brought back to a
width by explicit saturation, and right shifts (the core's only division, for learning
rates and rescaling) round in one of three modes:

- `floor`: arithmetic shift, `⌊x / 2^n⌋` (free in hardware);
- `nearest`: `⌊(x + 2^(n-1)) / 2^n⌋`, ties toward +∞ (one adder);
- `stochastic`: `⌊(x + r) / 2^n⌋` with `r` uniform in `[0, 2^n)` taken from the low `n`
  bits of an LFSR draw, so that `E[result] = x / 2^n` (unbiased) and the golden model and
  the hardware, given the same LFSR, round identically.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from quant.errors import ConfigError

Rounding = Literal["floor", "nearest", "stochastic"]
ROUNDINGS: tuple[str, ...] = ("floor", "nearest", "stochastic")
MAX_BITS = 62  # int64 headroom for one addition of two saturated values


@dataclass(frozen=True)
class QFormat:
    """`bits`-bit integer (signed two's complement or unsigned) scaled by `2^-frac`."""

    bits: int
    frac: int = 0
    signed: bool = True

    def __post_init__(self) -> None:
        if not 1 + self.signed <= self.bits <= MAX_BITS:
            raise ConfigError(f"bits must be in [{1 + self.signed}, {MAX_BITS}], got {self.bits}")
        if not 0 <= self.frac <= MAX_BITS:
            raise ConfigError(f"frac must be in [0, {MAX_BITS}], got {self.frac}")

    @cached_property  # read on every saturation
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @cached_property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def saturate(self, q: np.ndarray | int) -> np.ndarray:
        """Clamp integers to the representable range."""
        # two ufuncs: np.clip's wrapper costs more than the work on the core's small vectors
        return np.minimum(np.maximum(np.asarray(q, dtype=np.int64), self.min_int), self.max_int)

    def contains(self, q: np.ndarray | int) -> bool:
        q = np.asarray(q, dtype=np.int64)
        return bool(((q >= self.min_int) & (q <= self.max_int)).all())

    def quantize(self, x: np.ndarray | float, rounding: Rounding = "nearest") -> np.ndarray:
        """Float to saturated integer code; deterministic modes only (floats never reach the
        core, so stochastic rounding of floats has no hardware counterpart)."""
        scaled = np.asarray(x, dtype=np.float64) * (1 << self.frac)
        if rounding == "floor":
            q = np.floor(scaled)
        elif rounding == "nearest":
            q = np.floor(scaled + 0.5)
        else:
            raise ConfigError(f"rounding for quantize must be floor or nearest, got {rounding!r}")
        return self.saturate(np.clip(q, -(2.0**62), 2.0**62).astype(np.int64))

    def to_float(self, q: np.ndarray | int) -> np.ndarray:
        return np.asarray(q, dtype=np.float64) / (1 << self.frac)


def shift_right(
    x: np.ndarray | int,
    n: int,
    rounding: Rounding = "floor",
    random_bits: np.ndarray | int | None = None,
) -> np.ndarray:
    """`x / 2^n` rounded as `rounding` says; `random_bits` (≥ n bits each) for stochastic."""
    x = np.asarray(x, dtype=np.int64)
    if n < 0 or n > MAX_BITS:
        raise ConfigError(f"shift must be in [0, {MAX_BITS}], got {n}")
    if n == 0:
        return x.copy()
    if rounding == "floor":
        return x >> n
    if rounding == "nearest":
        return (x + (1 << (n - 1))) >> n
    if rounding == "stochastic":
        if random_bits is None:
            raise ConfigError("stochastic rounding needs random_bits (LFSR draws)")
        r = np.asarray(random_bits, dtype=np.int64) & ((1 << n) - 1)
        return (x + r) >> n
    raise ConfigError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
