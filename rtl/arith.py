"""Combinational arithmetic shared by the units: saturation, rounding shifts, LFSR steps.

Each function builds Amaranth expressions for one operation of the contract, so every unit
saturates, rounds and steps its LFSR the same way (contract §1, §4).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from quant.lfsr import MAXIMAL_TAPS


def saturate(value: Value, bits: int) -> Value:
    """`sat_bits(value)`: clamp to the signed `bits`-bit range (contract §1)."""
    high, low = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    clamped = Mux(value > high, high, Mux(value < low, low, value))
    return clamped.as_signed()[:bits].as_signed()


def clip(value: Value, bound: int) -> Value:
    """Clamp to `[−bound, bound]`."""
    return Mux(value > bound, bound, Mux(value < -bound, -bound, value))


def round_shift(value: Value, shift: int, rounding: str, random: Value | None) -> Value:
    """`value / 2^shift` rounded as the spec's `rounding` says (contract §4): floor, nearest
    (ties toward +∞), or stochastic with the low `shift` bits of an LFSR state added."""
    if shift == 0:
        return value
    if rounding == "floor":
        return value >> shift
    if rounding == "nearest":
        return (value + (1 << (shift - 1))) >> shift
    assert random is not None, "stochastic rounding needs an LFSR state"
    noise = random[: min(shift, len(random))]
    return (value + noise) >> shift


def lfsr_states(m: Module, state: Value, width: int, count: int, name: str) -> list[Signal]:
    """The `count` states that follow `state` (quant.lfsr.step unrolled): one XOR per step.
    Each state is its own signal: nested expressions would repeat the taps' cones."""
    taps = MAXIMAL_TAPS[width]
    out = []
    for n in range(count):
        feedback = Const(0, 1)
        for t in taps:
            feedback = feedback ^ state[t - 1]
        nxt = Signal(width, name=f"{name}{n}")
        m.d.comb += nxt.eq(Cat(feedback, state[: width - 1]))
        out.append(nxt)
        state = nxt
    return out


def magnitude(value: Value) -> Value:
    """|value| as a non-negative signed value one bit wider."""
    wide = value.as_signed()
    return Mux(wide < 0, -wide, wide).as_signed()
