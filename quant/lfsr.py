"""Linear-feedback shift registers: the core's only source of randomness.

A Fibonacci LFSR of width n with feedback polynomial `x^n + ... + 1`, given by its taps
(exponents, highest first, as in the usual maximal-length tables): each step computes the
XOR of the tapped bits, shifts the register left by one and inserts that bit at the
bottom. For a primitive polynomial the state visits all `2^n − 1` nonzero values, so the
low bits of successive states are (nearly) uniform: good enough for stochastic rounding,
and a single XOR gate plus flip-flops in hardware. State 0 is a fixed point and is
refused as a seed.
"""

from dataclasses import dataclass

import numpy as np

from quant.errors import ConfigError

# Maximal-length taps (exponents of x, highest first); `primitive()` verifies each.
MAXIMAL_TAPS: dict[int, tuple[int, ...]] = {
    8: (8, 6, 5, 4),
    16: (16, 15, 13, 4),
    24: (24, 23, 22, 17),
    32: (32, 22, 2, 1),
}


@dataclass(frozen=True)
class LFSRSpec:
    """Width, taps and seed of one LFSR; validated on construction."""

    width: int
    seed: int
    taps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.width not in MAXIMAL_TAPS and not self.taps:
            raise ConfigError(
                f"width must be one of {sorted(MAXIMAL_TAPS)} unless taps are given, "
                f"got {self.width}"
            )
        taps = self.polynomial_taps
        if taps[0] != self.width or any(not 1 <= t <= self.width for t in taps):
            raise ConfigError(f"taps must start with the width {self.width}, got {taps}")
        if not 1 <= self.seed < (1 << self.width):
            raise ConfigError(f"seed must be in [1, 2^{self.width} - 1], got {self.seed}")

    @property
    def polynomial_taps(self) -> tuple[int, ...]:
        return self.taps or MAXIMAL_TAPS[self.width]


def step(state: int, spec: LFSRSpec) -> int:
    """One shift: feedback = XOR of the tapped bits (tap t is bit t − 1)."""
    feedback = 0
    for t in spec.polynomial_taps:
        feedback ^= (state >> (t - 1)) & 1
    return ((state << 1) | feedback) & ((1 << spec.width) - 1)


def draws(spec: LFSRSpec, count: int, state: int | None = None) -> tuple[np.ndarray, int]:
    """`count` successive states after `state` (default: the seed) and the final state."""
    state = spec.seed if state is None else state
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        state = step(state, spec)
        out[i] = state
    return out, state


class LFSRStream:
    """The LFSR's successive states, many at a time, exactly as `step` would give them.

    The register is a window on the bit sequence `b_n = XOR_t b_(n−t)` (t over the taps):
    state after step n holds `b_n` in bit 0 down to `b_(n−width+1)`. Because squaring is
    linear over GF(2), the same sequence obeys `b_n = XOR_t b_(n−tK)` for every power of
    two K, whose smallest lag is K: K bits at a time come from one vectorised XOR. The
    stream keeps a history of past bits so long draws run at numpy speed.
    """

    HISTORY = 1 << 17  # bits kept between calls: blocks of 4096 for a 32-bit register

    def __init__(self, spec: LFSRSpec, state: int | None = None) -> None:
        self.spec = spec
        state = spec.seed if state is None else state
        if not 1 <= state < (1 << spec.width):
            raise ConfigError(f"LFSR state must be in [1, 2^{spec.width} - 1], got {state}")
        # oldest first: b_(−width+1) … b_0, where bit i of the state is b_(−i). The bits live
        # in a buffer with room to grow, so a draw does not copy the history it keeps.
        self._buf = np.array(
            [(state >> i) & 1 for i in reversed(range(spec.width))], dtype=np.uint8
        )
        self._n = spec.width  # bits of `_buf` in use

    @property
    def state(self) -> int:
        window = self._buf[self._n - self.spec.width : self._n][::-1]
        return int(sum(int(bit) << i for i, bit in enumerate(window)))

    def _reserve(self, count: int) -> None:
        """Room for `count` more bits, keeping the last `HISTORY` (the long lags' source)."""
        if self._n + count <= len(self._buf):
            return
        keep = self._buf[max(0, self._n - max(self.HISTORY, self.spec.width)) : self._n]
        buf = np.empty(2 * (len(keep) + count), dtype=np.uint8)
        buf[: len(keep)] = keep
        self._buf, self._n = buf, len(keep)

    def _extend(self, count: int) -> None:
        taps = self.spec.polynomial_taps
        self._reserve(count)
        out, n = self._buf, self._n
        target = n + count
        while n < target:
            lag = 1 << max(0, (n // taps[0]).bit_length() - 1)  # largest K with width·K ≤ n
            k = min(lag, target - n)
            new = out[n - taps[0] * lag : n - taps[0] * lag + k].copy()
            for t in taps[1:]:
                new ^= out[n - t * lag : n - t * lag + k]
            out[n : n + k] = new
            n += k
        self._n = n

    def take(self, count: int) -> np.ndarray:
        """The next `count` states (int64), advancing the register by `count` steps."""
        width = self.spec.width
        self._extend(count)
        start = self._n - count
        bits = self._buf[start - width + 1 : self._n].astype(np.int64)  # b_(n−width+1) … newest
        # State n is Σ_i b_(n−i) 2^i. Build the 8-bit chunks c_n = Σ_(i<8) b_(n−i) 2^i once
        # (8 shifts), then each state from width/8 chunks (every width in MAXIMAL_TAPS is a
        # multiple of 8): a third of the bitwise work.
        chunks = bits.copy()
        for i in range(1, 8):
            chunks[i:] |= bits[: len(bits) - i] << i
        states = np.zeros(count, dtype=np.int64)
        for j in range(width // 8):
            at = width - 1 - 8 * j
            states |= chunks[at : at + count] << (8 * j)
        return states


def _polymulmod(a: int, b: int, poly: int, degree: int) -> int:
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= poly
    return result


def _polypow(exponent: int, poly: int, degree: int) -> int:
    result, base = 1, 0b10  # the polynomial x
    while exponent:
        if exponent & 1:
            result = _polymulmod(result, base, poly, degree)
        base = _polymulmod(base, base, poly, degree)
        exponent >>= 1
    return result


def _prime_factors(n: int) -> list[int]:
    factors, d = [], 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return sorted(set(factors))


def primitive(taps: tuple[int, ...]) -> bool:
    """Whether `x^taps[0] + Σ x^t (other taps) + 1` is primitive over GF(2), i.e. the
    LFSR has the maximal period `2^n − 1`: x has order exactly `2^n − 1` modulo it."""
    degree = taps[0]
    poly = 1 | sum(1 << t for t in taps)
    order = (1 << degree) - 1
    if _polypow(order, poly, degree) != 1:
        return False
    return all(_polypow(order // q, poly, degree) != 1 for q in _prime_factors(order))
