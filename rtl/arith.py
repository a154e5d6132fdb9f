"""Combinational arithmetic shared by the units: saturation, rounding shifts, LFSR steps.

Each function builds Amaranth expressions for one operation of the contract, so every unit
saturates, rounds and steps its LFSR the same way (contract §1, §4).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from quant.lfsr import MAXIMAL_TAPS


def saturate(value: Value, bits: int) -> Value:
    """`sat_bits(value)`: clamp to the signed `bits`-bit range (contract §1). The value is
    in range when the bits from `bits − 1` up are all equal: a LUT tree, no comparators."""
    value = value.as_signed() if value.shape().signed else Cat(value, Const(0, 1)).as_signed()
    if len(value) <= bits:
        return value
    top, sign = value[bits - 1 :], value[-1]
    limit = Cat((~sign).replicate(bits - 1), sign)  # 0111… or 1000…
    return Mux(top.all() | ~top.any(), value[:bits], limit).as_signed()


def times(value: Value, constant: int) -> Value:
    """`value · constant` (constant ≥ 0) as a sum of shifted copies: a multiplier block
    would be slower than the adders for the small constants of addresses."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0, 1)


def multiply(value: Value, narrow: Value, nonnegative: bool = False) -> Value:
    """`value · narrow` as a tree of shifted adds over `narrow`'s few bits (its top bit
    weighs negative when signed): on an ECP5 a multiplier block and its wires alone take
    most of a 100 MHz cycle, a few adders do not. A `narrow` known `nonnegative` (input
    codes, spike counts) has its sign bit left out: one adder fewer."""
    if nonnegative:
        narrow = narrow[: len(narrow) - 1]
    bits = len(narrow)
    signed = narrow.shape().signed
    terms = [Mux(narrow[n], value << n, 0) for n in range(bits - 1 if signed else bits)]
    if signed:
        terms.append(Mux(narrow[-1], -(value << (bits - 1)), 0))
    while len(terms) > 1:
        terms = [sum(terms[n : n + 2]) for n in range(0, len(terms), 2)]
    return terms[0]


def first_set(mask: Value) -> tuple[Value, Value]:
    """(some bit of `mask` is set, index of the lowest set bit): a priority encoder as a tree
    of halves, log depth (the index is meaningless for an empty mask)."""
    if len(mask) == 1:
        return mask[0], Const(0, 1)
    half = 1 << (len(mask) - 1).bit_length() - 1  # the low half: a power of two
    low_any, low = first_set(mask[:half])
    high_any, high = first_set(mask[half:])
    bits = half.bit_length() - 1
    return low_any | high_any, Cat(Mux(low_any, low, high)[:bits], ~low_any)


def several(mask: Value) -> Value:
    """Whether `mask` has two or more bits set: a tree of halves, like `first_set`."""

    def tree(bits: Value) -> tuple[Value, Value]:  # (any, several)
        if len(bits) == 1:
            return bits[0], Const(0, 1)
        half = len(bits) // 2
        (low_any, low_more), (high_any, high_more) = tree(bits[:half]), tree(bits[half:])
        return low_any | high_any, low_more | high_more | (low_any & high_any)

    return tree(mask)[1]


def clip(value: Value, bound: int) -> Value:
    """Clamp to `[−bound, bound]`."""
    return Mux(value > bound, bound, Mux(value < -bound, -bound, value))


def within(value: Value, bound: int) -> Value:
    """`−bound < value < bound` (bound > 0). Above the bits of `bound` the value must be a
    sign extension, a LUT tree; only the low bits meet a comparator: two full-width carry
    chains in series would take most of a 100 MHz cycle."""
    value = value.as_signed()
    bits = bound.bit_length()
    if len(value) <= bits + 1:
        return (value > -bound) & (value < bound)
    low, high = value[:bits], value[bits:]
    return Mux(value[-1], high.all() & (low > (1 << bits) - bound), ~high.any() & (low < bound))


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
