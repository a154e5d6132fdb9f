"""Registers in series: one way to build a pipeline stage or a delay line.

Every unit and the sequencer cut their long paths with these, so a stage's registers are
named the same way wherever they are and a latency is the count of them.
"""

from amaranth.hdl import Module, Signal, Value


def registered(m: Module, value: Value, name: str) -> Signal:
    """`value` one clock later: the next stage's copy."""
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg


def delay_line(m: Module, name: str, last: int, shape: object = 1, first: int = 1) -> dict:
    """Stages `first … last` of a value named `{name}{stage}`: the caller drives stage
    `first`; each later stage takes the one before it every clock."""
    stages = {s: Signal(shape, name=f"{name}{s}") for s in range(first, last + 1)}
    for stage in range(first + 1, last + 1):
        m.d.sync += stages[stage].eq(stages[stage - 1])
    return stages
